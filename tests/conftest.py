"""Project tests. ``reference`` imports the reference package from solutions/ by path."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions" / "sequence_models"
if str(SOURCE) not in sys.path:
    sys.path.insert(0, str(SOURCE))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def report(pytestconfig):
    """``report(line)``: print a measurement (a wall time) on the terminal although pytest
    captures the test's output. Figures for the closing notes, never asserted."""
    plugins = pytestconfig.pluginmanager

    def write(line):
        print(line)
        reporter = plugins.get_plugin("terminalreporter")
        capman = plugins.get_plugin("capturemanager")
        if reporter is None or capman is None:
            return
        with capman.global_and_fixture_disabled():
            reporter.ensure_newline()
            reporter.write_line(line)
    return write


@pytest.fixture(scope="session")
def shared_venv():
    """A world-readable Python environment with the course's requirements, for tests that run
    code as other Linux users (student accounts, an unprivileged grader). ``.ci/run`` builds it
    from Debian's Python and names it in ``SEQLAB_SHARED_VENV``. Where it is missing the test
    is skipped, except when ``SEQLAB_REQUIRE_E2E=1`` (CI), where it fails."""
    path = Path(os.environ.get("SEQLAB_SHARED_VENV", "/opt/seqlab-venv"))
    if not (path / "bin" / "python").exists():
        require_e2e("no shared venv at %s (.ci/run builds it)" % path)
    return path


def require_e2e(reason):
    """Skip an end-to-end test whose machine prerequisite is missing, or fail under CI
    (``SEQLAB_REQUIRE_E2E=1``), where every prerequisite is installed by ``.ci/run``."""
    if os.environ.get("SEQLAB_REQUIRE_E2E") == "1":
        pytest.fail("end-to-end prerequisite missing under CI: " + reason)
    pytest.skip(reason)
