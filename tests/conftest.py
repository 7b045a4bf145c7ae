"""Project tests. ``reference`` imports the reference package from solutions/ by path."""
import os
import shutil
import sys
import tempfile
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


# Slow grader runs started at the start of the session. A test module that defines
# ``start_early(folder, wanted)`` (``wanted``: the names of its test functions this session
# runs, so that it starts only the runs they read; it returns an object with ``collect()`` and
# ``stop()``) and reads it through the ``early`` fixture gets its runs started as soon as the
# tests are collected, and goes last (its tests in their order): everything else runs while
# those graders do (they spend much of their time waiting for hung calls to time out).
_EARLY = {}  # module -> (folder, what its start_early returned, or the exception it raised)


def _early_modules(items):
    """The modules of ``items`` that have a ``start_early`` one of their tests uses."""
    return {item.module for item in items
            if hasattr(getattr(item, "module", None), "start_early")
            and "early" in getattr(item, "fixturenames", ())}


def pytest_collection_modifyitems(items):
    early = _early_modules(items)
    items.sort(key=lambda item: getattr(item, "module", None) in early)  # stable sort


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    for module in sorted(_early_modules(session.items), key=lambda m: m.__name__):
        _start(module, session.items)


def _start(module, items):
    folder = Path(tempfile.mkdtemp(prefix="seqlab-test-"))
    wanted = {item.originalname for item in items if getattr(item, "module", None) is module}
    try:
        _EARLY[module] = folder, module.start_early(folder, wanted)
    except Exception as exc:  # reported by the module's tests, not by the whole session
        _EARLY[module] = folder, exc


def _stop(folder, runs):
    if not isinstance(runs, Exception):
        runs.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def early(request):
    """What this module's ``start_early`` returned (called now if the session did not);
    stopped and its folder removed once the module's tests are done."""
    if request.module not in _EARLY:
        _start(request.module, request.session.items)
    folder, runs = _EARLY.pop(request.module)
    try:
        if isinstance(runs, Exception):
            raise runs
        yield runs
    finally:
        _stop(folder, runs)


def pytest_sessionfinish(session):
    """Runs that no test collected (an interrupted session) are stopped too."""
    while _EARLY:
        _stop(*_EARLY.popitem()[1])


@pytest.fixture(autouse=True)
def _no_subreaper_in_the_test_process(monkeypatch):
    """``grade`` run in this process (``cli.main``) would make it the subreaper of its
    workers' orphans (sandbox.enable_subreaper, for a process the grader owns alone), and a
    grader in a subreaper process takes every child of it that is not one of its workers for an
    escaped orphan and kills it: the background grader runs above, children of this process,
    among them. The CLI run as its own process (most tests) still becomes one. For the same
    reason the test process keeps its own SIGTERM handling (sandbox.stop_on_sigterm)."""
    from autograder import sandbox
    monkeypatch.setattr(sandbox, "enable_subreaper", lambda: None)
    monkeypatch.setattr(sandbox, "stop_on_sigterm", lambda: None)
