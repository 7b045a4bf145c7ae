"""The Gradescope bundle and what Gradescope shows: the bundle built by ``python -m autograder
gradescope``, unpacked as Gradescope does and ``run_autograder`` run there; results.json against
Gradescope's schema, one test per graded function in notebook order with Markdown feedback, the
visibility policy, extra_data, a zip inside the upload, and the bundle's setup.sh (a venv from a
checked Python; its real run is tools/gradescope_chroot.sh, too slow for every CI run)."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from autograder import gradescope, report
from autograder import gradescope_results as G

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab"
NOTEBOOKS = sorted((ROOT / "solutions" / "sequence_models").glob("[0-9][0-9]_*.ipynb"))

# Gradescope's results.json, as its autograder specification describes it
# (https://gradescope-autograders.readthedocs.io/en/latest/specs/, "Output format").
_VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
_FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
GRADESCOPE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number"},
        "output": {"type": "string"},
        "output_format": _FORMAT,
        "test_output_format": _FORMAT,
        "test_name_format": _FORMAT,
        "visibility": _VISIBILITY,
        "stdout_visibility": _VISIBILITY,
        "extra_data": {"type": "object"},
        "leaderboard": {"type": "array"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": {"enum": ["passed", "failed"]},
                    "name": {"type": "string"},
                    "name_format": _FORMAT,
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "output_format": _FORMAT,
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": _VISIBILITY,
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The bundle built by ``python -m autograder gradescope`` (once for the module; each test
    unpacks its own copy)."""
    path = tmp_path_factory.mktemp("gradescope") / "bundle.zip"
    proc = subprocess.run([sys.executable, "-m", "autograder", "gradescope", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return path


def _layout(tmp_path, bundle):
    """``bundle`` unpacked as Gradescope does: /autograder/source, run_autograder beside it,
    empty submission/ and results/."""
    ag = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        zf.extractall(ag / "source")
    assert {"setup.sh", "run_autograder", "autograder/cli.py", "requirements.txt",
            G.CONFIG_NAME, "solutions/sequence_models/seqlab/rnn_layers.py"} <= set(names)
    assert not any("tests/" in n or n.endswith(".pyc") for n in names)
    shutil.copy(ag / "source" / "run_autograder", ag / "run_autograder")
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


def _check(api, title, passed, points, message="", hint="", cell=None):
    return report.CheckResult(id=f"{api}: {title}", api=api, title=title, points=points,
                              tags=(api,), visibility="visible", notebook="", cell=cell or api,
                              passed=passed, message=message, hint=hint)


@pytest.mark.e2e
def test_run_autograder_grades_the_submission(tmp_path, bundle):
    ag = _layout(tmp_path, bundle)
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


@pytest.mark.e2e
def test_run_autograder_always_writes_results(tmp_path, bundle):
    ag = _layout(tmp_path, bundle)
    (ag / "submission" / "rnn_layers.py").write_text("this is not python(")
    data = _run(ag, "rnn_step_forward")
    assert data["score"] == 0
    assert data["tests"] and all("SyntaxError" in t["output"] for t in data["tests"])
    # a broken grader install still gives a valid (zero) result
    shutil.rmtree(ag / "source" / "autograder")
    data = _run(ag, "rnn_step_forward")
    assert data["score"] == 0 and data["tests"] == []


@pytest.mark.e2e
def test_run_autograder_writes_gradescope_results(tmp_path, bundle):
    ag = _layout(tmp_path, bundle)
    sub = ag / "submission"
    shutil.copy(REF / "rnn_layers.py", sub / "rnn_layers.py")
    # a wrong rnn_step_forward (no bias), to see failures in Markdown
    text = (sub / "rnn_layers.py").read_text()
    assert "np.tanh(x @ Wx + prev_h @ Wh + b)" in text
    (sub / "rnn_layers.py").write_text(text.replace("np.tanh(x @ Wx + prev_h @ Wh + b)",
                                                    "np.tanh(x @ Wx + prev_h @ Wh)"))
    shutil.copy(REF / "transformer.py", sub / "transformer.py")
    data = _run(ag, "rnn_step_forward", "rnn_forward", "causal_mask", "CaptioningRNN")
    jsonschema.validate(data, GRADESCOPE_SCHEMA)
    assert data["output_format"] == "md" and data["test_output_format"] == "md"
    # one test per graded function, numbered in notebook order (CaptioningRNN: once per notebook)
    assert [(t["number"], t["name"]) for t in data["tests"]] == [
        ("1.1", "01 · rnn_step_forward"), ("1.3", "01 · rnn_forward"),
        ("1.10", "01 · CaptioningRNN"), ("2.5", "02 · CaptioningRNN_lstm"),
        ("3.7", "03 · CaptioningRNN_attention"), ("4.2", "04 · causal_mask")]
    by_name = {t["name"]: t for t in data["tests"]}
    assert by_name["04 · causal_mask"]["status"] == "passed"
    assert by_name["04 · causal_mask"]["score"] == by_name["04 · causal_mask"]["max_score"] > 0
    wrong = by_name["01 · rnn_step_forward"]
    assert wrong["status"] == "failed" and wrong["score"] < wrong["max_score"]
    assert wrong["output"].startswith("**") and "checks passed**" in wrong["output"]
    assert "**Failed: values vs reference" in wrong["output"] and "```text\n" in wrong["output"]
    assert "captioning.py was not found" in by_name["01 · CaptioningRNN"]["output"]
    # the total is the sum of the tests: nothing is scored twice or lost
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    versions = data["extra_data"]["versions"]
    assert versions["numpy"] == np.__version__ and versions["python"] == sys.version.split()[0]
    assert len(versions["checks"]) == 12 and "isolation" in data["extra_data"]
    assert data["extra_data"]["visibility_policy"] == {"tests": "visible",
                                                       "hints": "with_feedback"}


def test_hints_held_back_until_the_due_date_in_a_separate_zero_point_test():
    config = G.make_config(NOTEBOOKS, visibility="after_published", hints="after_due_date")
    results = [_check("rnn_forward", "values vs reference", False, 2.0,
                      "h: values differ\nmore detail", "did you start from h0?"),
               _check("rnn_forward", "shapes", True, 1.0)]
    data = G.for_gradescope(results, config, grader_versions={"python": "3.11"})
    jsonschema.validate(data, GRADESCOPE_SCHEMA)
    graded, hints = data["tests"]
    assert graded["number"] == "1.3" and graded["visibility"] == "after_published"
    assert graded["score"] == 1.0 and graded["max_score"] == 3.0
    assert "did you start from h0" not in graded["output"]
    assert "h: values differ\nmore detail" in graded["output"]
    assert "shown after the due date" in graded["output"]
    assert hints["number"] == "1.3.1" and hints["visibility"] == "after_due_date"
    assert hints["score"] == hints["max_score"] == 0
    assert "did you start from h0?" in hints["output"] and "values vs reference" in hints["output"]
    # with_feedback: the hint stays in the test, no extra test
    data = G.for_gradescope(results, G.make_config(NOTEBOOKS), grader_versions={})
    assert len(data["tests"]) == 1
    with_hint = "h: values differ\nmore detail\nHint: did you start from h0?"
    assert with_hint in data["tests"][0]["output"]


def test_markdown_shows_names_and_values_literally():
    results = [_check("CaptioningRNN", "sample: <NULL> after <END>", False, 1.0,
                      "got [[1 2]]\n```\n*not bold*", cell="CaptioningRNN_lstm")]
    data = G.for_gradescope(results, G.make_config(NOTEBOOKS), notes=["found a_b.py at x<y"],
                            grader_versions={})
    (test,) = data["tests"]
    assert test["name"] == "02 · CaptioningRNN_lstm" and test["number"] == "2.5"
    assert "&lt;NULL&gt; after &lt;END&gt;" in test["output"]
    # a fence longer than any in the feedback keeps it verbatim
    assert "````text\ngot [[1 2]]\n```\n*not bold*\n````" in test["output"]
    assert data["output"] == "- found a_b.py at x&lt;y"


def test_isolation_level_reported_by_the_grader_is_kept():
    class Reduced:
        def as_json(self):
            return {"level": "reduced"}
    data = G.for_gradescope([_check("causal_mask", "bool", True, 1.0)], G.make_config(NOTEBOOKS),
                            isolation=Reduced(), grader_versions={})
    assert data["extra_data"]["isolation"] == {"level": "reduced"}
    assert data["tests"][0]["number"] == "4.2"


def test_bad_policy_is_a_clear_error():
    with pytest.raises(ValueError, match="visibility: expected one of"):
        G.make_config(NOTEBOOKS, visibility="later")
    with pytest.raises(ValueError, match="hints: expected one of"):
        G.make_config(NOTEBOOKS, hints="never")


def test_order_comes_from_the_notebooks_graded_cells():
    order = G.notebook_order(NOTEBOOKS)
    assert [nb for nb, _ in order] == ["01_rnn_captioning", "02_lstm_captioning",
                                       "03_attention_captioning", "04_transformer"]
    assert order[0][1][0] == "rnn_step_forward" and order[3][1][-1] == "CaptioningTransformer"
    cells = [c for _, cs in order for c in cs]
    assert len(cells) == len(set(cells)) == 32


@pytest.mark.e2e
def test_a_zip_inside_the_upload_is_graded(tmp_path, bundle):
    """Gradescope puts the upload in /autograder/submission; a zip uploaded inside it used to
    score 0 ("rnn_layers.py not found")."""
    ag = _layout(tmp_path, bundle)
    with zipfile.ZipFile(ag / "submission" / "homework.zip", "w") as zf:
        zf.write(REF / "rnn_layers.py", "sequence_models/seqlab/rnn_layers.py")
    data = _run(ag, "rnn_step_forward")
    (test,) = data["tests"]
    assert test["status"] == "passed" and test["score"] > 0
    assert "homework.zip/sequence_models/seqlab/rnn_layers.py" in data["output"]


@pytest.mark.e2e
def test_only_one_level_of_zips_is_opened(tmp_path):
    from autograder import submission
    inner = tmp_path / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.write(REF / "rnn_layers.py", "rnn_layers.py")
    middle = tmp_path / "middle.zip"
    with zipfile.ZipFile(middle, "w") as zf:
        zf.write(inner, "inner.zip")
    upload = tmp_path / "upload"
    upload.mkdir()
    shutil.copy(middle, upload / "middle.zip")
    sub = submission.load(upload)                 # folder > middle.zip > inner.zip: too deep
    assert sub.files == {}
    sub = submission.load(middle)                 # zip > inner.zip: one level
    assert sub.found_at == {"rnn_layers": "inner.zip/rnn_layers.py"}


def test_setup_sh_makes_its_own_venv_from_a_checked_python(tmp_path):
    text = gradescope.setup_script()
    path = tmp_path / "setup.sh"
    path.write_text(text)
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    assert 'MIN_PYTHON="3.11"' in text and "-m venv" in text and "Debian 12" in text
    assert "Ubuntu 22.04" in text
    # never pip into the system Python (PEP 668 refuses it on Debian 12 and Ubuntu 24.04)
    for line in text.splitlines():
        assert not line.strip().startswith(("pip ", "pip3 ", "python3 -m pip")), line
    for pin in ("numpy==", "torch=="):
        assert pin in text
    run = gradescope.RUN_AUTOGRADER
    assert "$ROOT/venv/bin/python" in run and "--gradescope-config" in run


def test_setup_sh_picks_the_first_python_that_fits(tmp_path):
    """Run only the Python finder of setup.sh against fake interpreters."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, version in (("python3", (3, 10)), ("python3.11", (3, 11))):
        script = fake / name
        script.write_text("#!/bin/sh\n"
                          f'[ "$1" = "-c" ] && exec {sys.executable} -c '
                          f'"import sys; sys.exit({0 if version >= (3, 11) else 1})"\n')
        script.chmod(0o755)
    text = gradescope.setup_script()
    finder = text[text.index("fits() {"):text.index('PYTHON="$(find_python')]
    probe = f'MIN_PYTHON=3.11\n{finder}\nfind_python\n'
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    out = subprocess.run(["bash", "-c", probe], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == str(fake / "python3.11"), out
    (fake / "python3.11").unlink()
    env = {"PATH": str(fake)}
    out = subprocess.run(["/bin/bash", "-c", probe], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == "", out  # 3.10 only: setup.sh installs one
