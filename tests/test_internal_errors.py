"""A bug of the grader is never silent: its traceback reaches stderr even with ``--quiet``
(quiet means no progress lines), and the check is reported NOT GRADED, not failed. The bug is
injected into one real check's evaluation (a correct submission, real workers)."""
import json
import shutil
from pathlib import Path

import pytest

from autograder import cli
from autograder.checks import core

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab" / "rnn_layers.py"
API = "rnn_step_forward"


@pytest.fixture
def broken_check(monkeypatch):
    """The first check of ``API`` raises in its evaluation; returns that check."""
    check = core.select([API], [])[0]

    def evaluate(results, ctx):
        raise RuntimeError("injected grader bug")

    monkeypatch.setattr(check, "evaluate", evaluate)
    return check


@pytest.mark.parametrize("quiet", [True, False])
def test_internal_error_reaches_stderr(tmp_path, broken_check, capsys, quiet):
    folder = tmp_path / "student"
    folder.mkdir()
    shutil.copy(REF, folder / "rnn_layers.py")
    out = tmp_path / "out"
    argv = ["grade", str(folder), "--only", API, "--jobs", "1", "--out-dir", str(out)]
    status = cli.main(argv + (["--quiet"] if quiet else []))
    err = capsys.readouterr().err
    assert status == 0
    assert f"INTERNAL ERROR in check {broken_check.id} (evaluating the results)" in err
    assert "RuntimeError: injected grader bug" in err
    assert ("retrying them in a fresh worker" in err) is not quiet  # progress only when not quiet
    data = json.loads((out / "student.json").read_text())
    assert "NOT GRADED" in data["output"]
    assert "internal grader error" in json.dumps(data)  # what the corpus tests look for
