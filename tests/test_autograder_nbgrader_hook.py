"""autograder.nbgrader_hook.grade as nbgrader's hidden test cells call it: from a kernel whose cwd
is <course root>/autograded/<student>/sequence_models/. It shows the results that autograde
records (nbgrader_prepare.results): from the course's result cache, graded first by a fresh
process when the cache lacks them."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e   # a kernel-side grading run per call
ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab"
sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from buggy import MUTATIONS, apply  # noqa: E402

PREAMBLE = ('import sys, os; sys.path.insert(0, os.path.abspath("../../.."))\n'
            'from autograder.nbgrader_hook import grade\n')
# counts the grader processes the kernel starts
COUNT_RUNS = ('import subprocess\nruns = []\nreal = subprocess.run\n'
              'subprocess.run = lambda *a, **k: runs.append(a) or real(*a, **k)\n')


def _student(tmp_path, name, rnn_text):
    # a course-like tree: <root>/autograded/<student>/sequence_models/seqlab/, with a copy of
    # this repository's autograder package (the result cache is <root>/nbgrader_results/)
    root = tmp_path / "course"
    if not (root / "autograder").exists():
        root.mkdir(exist_ok=True)
        shutil.copytree(ROOT / "autograder", root / "autograder",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (root / "solutions").symlink_to(ROOT / "solutions")
    seq = root / "autograded" / name / "sequence_models"
    (seq / "seqlab").mkdir(parents=True)
    for f in REF.iterdir():
        if f.suffix == ".py":
            shutil.copy(f, seq / "seqlab" / f.name)
    (seq / "seqlab" / "rnn_layers.py").write_text(rnn_text)
    return seq


def _kernel(cwd, code, env=None):
    return subprocess.run([sys.executable, "-c", PREAMBLE + code], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env=env)


def test_hook_passes_reference_and_caches(tmp_path):
    seq = _student(tmp_path, "alice", (REF / "rnn_layers.py").read_text())
    calls = ('grade("word_embedding_backward")\n'
             'grade("rnn_step_forward"); grade("CaptioningTransformer")\n'
             'print("grader runs", len(runs))\n')
    proc = _kernel(seq, COUNT_RUNS + calls)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert re.search(r"word_embedding_backward: (\d+) of \1 hidden checks passed", proc.stdout)
    assert re.search(r"CaptioningTransformer: (\d+) of \1 hidden checks passed", proc.stdout)
    assert "grader runs 1" in proc.stdout  # the submission was graded once, for all three
    assert len(list((tmp_path / "course" / "nbgrader_results").glob("*.json"))) == 1
    # another kernel on the same files reads the course's cache: no grading at all
    again = _kernel(seq, COUNT_RUNS + calls)
    assert again.returncode == 0 and "grader runs 0" in again.stdout, again.stdout + again.stderr
    assert again.stdout == proc.stdout.replace("grader runs 1", "grader runs 0")


def test_hook_gives_partial_credit_to_the_buggy_function_only(tmp_path):
    """A function that passes some of its hidden checks: grade() returns the points earned (the
    cell's value, nbgrader's partial credit), equal to the CLI's; a correct one returns None."""
    mutation = next(m for m in MUTATIONS if m.name == "embedding_lost_repeats")
    seq = _student(tmp_path, "bob", apply(mutation, (REF / "rnn_layers.py").read_text()))
    proc = _kernel(seq, 'print("FORWARD", grade("word_embedding_forward"))\n'
                        'print("BACKWARD", grade("word_embedding_backward"))\n')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert re.search(r"word_embedding_forward: (\d+) of \1 hidden checks passed", out)
    assert "FORWARD None" in out
    summary = re.search(r"word_embedding_backward: (\d+) of (\d+) hidden checks passed "
                        r"\(([\d.]+) / ([\d.]+) points\)", out)
    assert summary and 0 < int(summary[1]) < int(summary[2]), out
    earned = float(re.search(r"BACKWARD (\S+)", out)[1])
    assert earned == float(summary[3]) and 0 < earned < float(summary[4]), out
    assert "np.add.at" in out                 # the hint
    assert "(you returned " in out and not re.search(r"\(you returned [^)]*expected", out)

    # the CLI on the same files gives the same points
    cli = subprocess.run([sys.executable, "-m", "autograder", "grade", str(seq / "seqlab"),
                          "--only", "word_embedding_backward", "--json", str(tmp_path / "r.json"),
                          "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["score"] == earned


def test_hook_raises_when_no_check_passes(tmp_path):
    from autograder.release import stub_source
    seq = _student(tmp_path, "carol", stub_source((REF / "rnn_layers.py").read_text()))
    proc = _kernel(seq, 'try:\n    grade("rnn_forward")\n'
                        'except AssertionError as e:\n    print("RAISED", e)\n')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RAISED rnn_forward:" in proc.stdout and "hidden checks failed" in proc.stdout

