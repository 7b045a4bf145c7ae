"""A check that could not run (a timeout, a call skipped after hangs, an internal grader error)
is retried once in a fresh worker, then reported as NOT GRADED, never scored as the student's
failure. The failure is injected into the real runner (a correct submission, real workers)."""
import shutil
from pathlib import Path

import pytest

from autograder import report, runner
from autograder.checks import core

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab" / "rnn_layers.py"
API = "rnn_step_forward"


@pytest.fixture
def correct(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    shutil.copy(REF, folder / "rnn_layers.py")
    return str(folder)


def _grade(folder, monkeypatch, fail_times):
    """Grade ``API`` with the first call of its group timing out on the first ``fail_times``
    runs of the group; returns (SubmissionResult, number of runs of the group)."""
    real = runner.ModuleRun.run_calls
    runs = {"n": 0}

    def flaky(self, api, calls):
        results = real(self, api, calls)
        if api == API:
            runs["n"] += 1
            if runs["n"] <= fail_times:
                results[0] = core.Result(ok=False, failure=("timeout", "timed out after 10 s"))
        return results

    monkeypatch.setattr(runner.ModuleRun, "run_calls", flaky)
    [res] = runner.grade([folder], runner.Options(only=[API], jobs=1))
    return res, runs["n"]


def test_retried_once_and_graded(correct, monkeypatch):
    res, runs = _grade(correct, monkeypatch, fail_times=1)
    assert runs == 2
    assert all(r.passed and not r.not_graded for r in res.results)
    assert res.score == res.max_score


def test_not_graded_after_two_failures(correct, monkeypatch):
    res, runs = _grade(correct, monkeypatch, fail_times=2)
    assert runs == 2  # retried once, not more
    stuck = [r for r in res.results if r.not_graded]
    assert len(stuck) == 1 and stuck[0].score == 0
    assert report.feedback(stuck[0]).startswith("NOT GRADED: ")
    assert all(r.passed for r in res.results if not r.not_graded)
    data = report.results_json(res)
    assert "NOT GRADED" in data["output"] and stuck[0].title in data["output"]
    assert "NOT GRADED: 1 check(s)" in report.summary(res, quiet=True)
