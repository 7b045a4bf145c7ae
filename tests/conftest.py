"""Project tests. ``reference`` imports the reference package from solutions/ by path."""
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
