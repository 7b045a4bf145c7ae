"""The Gradescope bundle: built by ``python -m autograder gradescope``, unpacked into a simulated
``/autograder`` layout in a temporary folder, ``run_autograder`` run there."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab"


def _layout(tmp_path):
    bundle = tmp_path / "bundle.zip"
    proc = subprocess.run([sys.executable, "-m", "autograder", "gradescope", str(bundle)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ag = tmp_path / "autograder"
    source = ag / "source"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        zf.extractall(source)
    assert {"setup.sh", "run_autograder", "autograder/cli.py", "requirements.txt",
            "solutions/sequence_models/seqlab/rnn_layers.py"} <= set(names)
    assert not any("tests/" in n or n.endswith(".pyc") for n in names)
    shutil.copy(source / "run_autograder", ag / "run_autograder")
    os.chmod(ag / "run_autograder", 0o755)
    (ag / "submission").mkdir()
    (ag / "results").mkdir()
    return ag


def _run(ag, *only):
    env = dict(os.environ, SEQLAB_AUTOGRADER_ROOT=str(ag), SEQLAB_PYTHON=sys.executable,
               SEQLAB_GRADE_ARGS=" ".join(f"--only {a}" for a in only) + " --quiet")
    proc = subprocess.run(["bash", str(ag / "run_autograder")], cwd=ag, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((ag / "results" / "results.json").read_text())


def test_run_autograder_grades_the_submission(tmp_path):
    ag = _layout(tmp_path)
    # Gradescope puts the uploaded files in /autograder/submission (here: a student folder)
    sub = ag / "submission" / "my_work" / "seqlab"
    sub.mkdir(parents=True)
    for mod in ("rnn_layers", "transformer"):
        shutil.copy(REF / f"{mod}.py", sub / f"{mod}.py")
    data = _run(ag, "rnn_step_forward", "causal_mask")
    assert data["score"] == sum(t["max_score"] for t in data["tests"]) > 0
    assert {t["tags"][0] for t in data["tests"]} == {"rnn_step_forward", "causal_mask"}
    for t in data["tests"]:
        assert t["status"] == "passed"


def test_run_autograder_always_writes_results(tmp_path):
    ag = _layout(tmp_path)
    (ag / "submission" / "rnn_layers.py").write_text("this is not python(")
    data = _run(ag, "rnn_step_forward")
    assert data["score"] == 0
    assert data["tests"] and all("SyntaxError" in t["output"] for t in data["tests"])
    # a broken grader install still gives a valid (zero) result
    shutil.rmtree(ag / "source" / "autograder")
    data = _run(ag, "rnn_step_forward")
    assert data["score"] == 0 and data["tests"] == []
