"""The autograder on the reference solution (full marks) and the release stubs (zero): one full
run of each (the reference twice, for determinism), plus unit tests of submission discovery,
the reference loader and the CLI."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import course
from seqlab_dev.testing import grade_at_once

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab"
STUDENT_MODULES = list(course.STUDENT_MODULES)

# Every function and class of the student API (the contract: the course manifest).
API_NAMES = list(course.API_NAMES)


def _stub_text(mod):
    from autograder.release import stub_source
    return stub_source((REF / f"{mod}.py").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("grade")
    ref = base / "reference"
    ref.mkdir()
    for mod in STUDENT_MODULES:
        (ref / f"{mod}.py").write_bytes((REF / f"{mod}.py").read_bytes())
    stub = base / "stub"
    stub.mkdir()
    for mod in STUDENT_MODULES:
        (stub / f"{mod}.py").write_text(_stub_text(mod))
    # the reference as a zip in an assignment layout, with junk that must be ignored
    zpath = base / "reference_zip.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for mod in STUDENT_MODULES:
            zf.writestr(f"submission/sequence_models/seqlab/{mod}.py",
                        (REF / f"{mod}.py").read_bytes())
            zf.writestr(f"__MACOSX/submission/sequence_models/seqlab/{mod}.py", b"garbage(")
        zf.writestr("submission/sequence_models/seqlab/gradient_check.py",
                    b"raise RuntimeError('a student copy of a given file must be ignored')")
        zf.writestr("submission/sequence_models/seqlab/__init__.py", b"import os; os._exit(1)")
        zf.writestr("submission/rnn_layers.py", b"raise RuntimeError('deeper copy wins')")
        zf.writestr("results.json", b'{"score": 1000}')
    # both at once (one run with --jobs 2 keeps the two cores busy only part of the time); the
    # second grades the reference again, for determinism
    done = grade_at_once({
        "first": (base / "out1", [ref, stub, zpath, "--out-dir", base / "out1", "--jobs", "2"]),
        "second": (base / "out2", [ref, "--out-dir", base / "out2", "--jobs", "2", "--quiet"])})
    first, second = done["first"], done["second"]
    return dict(first=first, second=second, out1=base / "out1", out2=base / "out2")


def _load(folder, name):
    return json.loads((folder / f"{name}.json").read_text())


@pytest.mark.e2e
def test_runs_complete(runs):
    for key in ("first", "second"):
        proc = runs[key]
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "INTERNAL ERROR" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.e2e
def test_reference_full_marks(runs):
    data = _load(runs["out1"], "reference")
    failed = [(t["name"], t["output"][:300]) for t in data["tests"] if t["status"] != "passed"]
    assert not failed, failed[:5]
    assert data["score"] == data["max_score"] > 0


@pytest.mark.e2e
def test_zipped_reference_in_assignment_layout(runs):
    data = _load(runs["out1"], "reference_zip")
    assert data["score"] == data["max_score"]
    assert "found rnn_layers.py at submission/sequence_models/seqlab/rnn_layers.py" \
        in data["output"]


@pytest.mark.e2e
def test_stubs_score_zero_without_crashing(runs):
    data = _load(runs["out1"], "stub")
    assert data["score"] == 0
    for t in data["tests"]:
        assert t["status"] == "failed"
        assert "internal grader error" not in t["output"]
        assert "NotImplementedError" in t["output"] or "not run" in t["output"], t


@pytest.mark.e2e
def test_grading_twice_gives_identical_json(runs):
    a = (runs["out1"] / "reference.json").read_bytes()
    b = (runs["out2"] / "reference.json").read_bytes()
    assert a == b


@pytest.mark.e2e
def test_results_schema(runs):
    data = _load(runs["out1"], "reference")
    assert set(data) >= {"score", "tests", "output"}
    names = set()
    for t in data["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "output", "tags",
                          "visibility"}
        assert t["tags"] and t["tags"][0] in API_NAMES
        assert t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert t["name"] not in names
        names.add(t["name"])
    assert abs(sum(t["score"] for t in data["tests"]) - data["score"]) < 1e-6


def test_every_api_name_has_a_group_of_checks():
    from autograder.checks.core import all_checks, api_names
    assert api_names() == API_NAMES
    for api in API_NAMES:
        group = [c for c in all_checks() if c.api == api]
        assert len(group) >= 2 and sum(c.points for c in group) > 0, api


@pytest.mark.e2e
def test_summary_names_functions(runs):
    out = runs["first"].stdout
    assert "== reference:" in out and "== stub:" in out
    assert "[BAD] rnn_step_forward" in out and "[ok ] rnn_step_forward" in out


# ---------------------------------------------------------------------------------------------
# unit tests
# ---------------------------------------------------------------------------------------------

def test_discovery_prefers_seqlab_then_shallow(tmp_path):
    from autograder import submission
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "seqlab").mkdir()
    (tmp_path / "a" / "b" / "rnn_layers.py").write_text("deep")
    (tmp_path / "rnn_layers.py").write_text("root")
    (tmp_path / "a" / "lstm_layers.py").write_text("nested")
    (tmp_path / "seqlab" / "lstm_layers.py").write_text("seqlab")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "captioning.py").write_text("hidden")
    sub = submission.load(tmp_path)
    assert sub.files["rnn_layers"] == b"root"
    assert sub.files["lstm_layers"] == b"seqlab"
    assert "captioning" not in sub.files


def test_discovery_refuses_links_and_reference_files(tmp_path):
    from autograder import submission
    os.symlink(REF / "rnn_layers.py", tmp_path / "rnn_layers.py")
    os.link(REF / "lstm_layers.py", tmp_path / "lstm_layers.py") \
        if os.stat(REF).st_dev == os.stat(tmp_path).st_dev else None
    (tmp_path / "captioning.py").write_bytes(b"x" * (submission.MAX_FILE + 1))
    sub = submission.load(tmp_path)
    assert "rnn_layers" not in sub.files
    assert "lstm_layers" not in sub.files
    assert "captioning" not in sub.files
    assert any("symbolic link" in p for p in sub.problems)


def test_discovery_zip_ignores_symlink_entries(tmp_path):
    from autograder import submission
    zpath = tmp_path / "s.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        info = zipfile.ZipInfo("seqlab/rnn_layers.py")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, str(REF / "rnn_layers.py"))
        zf.writestr("seqlab/transformer.py", b"ok")
    sub = submission.load(zpath)
    assert sub.files == {"transformer": b"ok"}


def test_scratch_holds_only_student_and_given_files(tmp_path):
    from autograder import paths, submission
    (tmp_path / "rnn_layers.py").write_text("# mine")
    (tmp_path / "gradient_check.py").write_text("# a student copy of a given file")
    sub = submission.load(tmp_path)
    scratch = submission.make_scratch(sub)
    try:
        names = sorted(p.name for p in (scratch / "seqlab").iterdir())
        assert (scratch / "seqlab" / "rnn_layers.py").read_text() == "# mine"
        assert (scratch / "seqlab" / "gradient_check.py").read_bytes() == \
            paths.given_files()["gradient_check.py"]
        for mod in STUDENT_MODULES:
            assert f"{mod}.py" in names
        assert "BEGIN SOLUTION" not in (scratch / "seqlab" / "lstm_layers.py").read_text()
        assert [p.name for p in scratch.iterdir()] == ["seqlab"]
    finally:
        submission.remove_scratch(scratch)


def test_reference_is_private():
    from autograder import reference
    mod = reference.module("captioning")
    assert mod.__name__.startswith("_seqlab_reference")
    assert "seqlab" not in sys.modules or sys.modules["seqlab"].__name__ == "seqlab"


def test_cli_bad_arguments():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    assert run("--only", "no_such_api", "x").returncode == 2
    assert run("/no/such/folder").returncode == 2
    listing = run("--list")
    assert listing.returncode == 0 and "MultiHeadAttention" in listing.stdout


RACE_SCRIPT = r"""
import sys, threading, types
from autograder import reference
sys.setswitchinterval(1e-6)          # switch threads as often as possible
stop = False
def churn():                         # what a concurrent import (torch in a warm-up thread) does
    names = [f"_churn{i}" for i in range(50)]
    while not stop:
        for name in names:
            sys.modules[name] = types.ModuleType(name)
        for name in names:
            sys.modules.pop(name, None)
t = threading.Thread(target=churn)
t.start()
try:
    for _ in range(2000):
        reference._loaded.clear()
        reference.module("rnn_layers")
finally:
    stop = True
    t.join()
print("ok")
"""


def test_reference_loader_survives_concurrent_imports():
    """Regression: the grader loads reference modules in one thread while another imports
    torch; iterating over sys.modules there raised 'dictionary changed size during iteration'
    about one run in 30 (an internal grader error that cost the reference 1.5 points)."""
    proc = subprocess.run([sys.executable, "-c", RACE_SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
