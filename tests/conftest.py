"""Project tests. ``reference`` imports the reference package from solutions/ by path."""
import os
import sys
from pathlib import Path

import pytest

from seqlab_dev.testing import require_e2e

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "solutions" / "sequence_models"
# the reference seqlab, by folder: it is never installed (an installed reference would be a
# fallback the grader could load in place of a student's missing module)
if str(SOURCE) not in sys.path:
    sys.path.insert(0, str(SOURCE))


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
