"""What the tests share beyond fixtures (tests/conftest.py holds the fixtures)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqlab_dev import ROOT

# Command prefix of the slow grader runs that tests start at the start of the session
# (tests/conftest.py, ``start_early``): below the tests' own priority, so that they use the CPU
# the tests leave instead of starving them. Few processes at a time (a worker waits at most 60 s
# of wall clock to start, see sandbox.Limits.init_timeout).
BACKGROUND = ["nice", "-n", "10"]


def require_e2e(reason: str):
    """Skip an end-to-end test whose machine prerequisite is missing, or fail under CI
    (``SEQLAB_REQUIRE_E2E=1``), where every prerequisite is installed by ``.ci/run``."""
    if os.environ.get("SEQLAB_REQUIRE_E2E") == "1":
        pytest.fail("end-to-end prerequisite missing under CI: " + reason)
    pytest.skip(reason)


def grade_at_once(runs: dict) -> dict:
    """Run ``python -m autograder grade ARGS`` for every ``name: (log, ARGS)`` of ``runs`` at
    the same time, from the repository root, with stdout and stderr in the files
    ``log``.stdout and ``log``.stderr; returns ``{name: subprocess.CompletedProcess}`` once all
    have ended. If waiting fails, the runs still going are killed."""
    started = {}
    try:
        for name, (log, args) in runs.items():
            with open(f"{log}.stdout", "w") as out, open(f"{log}.stderr", "w") as err:
                started[name] = subprocess.Popen(
                    [sys.executable, "-m", "autograder", "grade", *map(str, args)], cwd=ROOT,
                    stdout=out, stderr=err, text=True)
        done = {}
        for name, proc in started.items():
            proc.wait(timeout=600)
            log = runs[name][0]
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode,
                                                     Path(f"{log}.stdout").read_text(),
                                                     Path(f"{log}.stderr").read_text())
        return done
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
