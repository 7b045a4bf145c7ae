"""Every buggy submission (tests/corpus/buggy.py) loses points on the check of the function it
breaks, only there or downstream of it, and gets the expected hint.

The corpus is graded in one CLI run per student module (all mutations of that module at once,
two jobs), on the API names of that module and of the modules that import it.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from buggy import CORRECT, DEPENDS, IMPORTED_BY, MODULE_APIS, MUTATIONS, apply  # noqa: E402

REF = ROOT / "solutions" / "sequence_models" / "seqlab"
MODULES = list(MODULE_APIS)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("buggy")
    out = {}
    for module in MODULES:
        muts = [m for m in MUTATIONS + CORRECT if m.module == module]
        if not muts:
            continue
        paths = []
        for m in muts:
            folder = base / module / m.name
            folder.mkdir(parents=True)
            for mod in MODULES:
                text = (REF / f"{mod}.py").read_text(encoding="utf-8")
                if mod == module:
                    text = apply(m, text)
                (folder / f"{mod}.py").write_text(text, encoding="utf-8")
            paths.append(str(folder))
        apis = list(MODULE_APIS[module])
        for other in IMPORTED_BY[module]:
            apis += MODULE_APIS[other]
        cmd = [sys.executable, "-m", "autograder", "grade", *paths, "--out-dir",
               str(base / "out" / module), "--jobs", "2", "--quiet"]
        for api in apis:
            cmd += ["--only", api]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "INTERNAL ERROR" not in proc.stderr, proc.stderr[-3000:]
        for m in muts:
            out[m.name] = json.loads((base / "out" / module / f"{m.name}.json").read_text())
    return out


def test_corpus_covers_every_api_name():
    from autograder.checks.core import api_names
    covered = {m.api for m in MUTATIONS}
    assert set(api_names()) <= covered, sorted(set(api_names()) - covered)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_caught_in_the_right_place(graded, mutation):
    data = graded[mutation.name]
    failed = [t for t in data["tests"] if t["status"] == "failed"]
    own = [t for t in failed if t["tags"][0] == mutation.api]
    assert own, f"{mutation.name}: no check of {mutation.api} failed"
    allowed = {mutation.api} | DEPENDS[mutation.api]
    elsewhere = [t["name"] for t in failed if t["tags"][0] not in allowed]
    assert not elsewhere, f"{mutation.name} also failed unrelated checks: {elsewhere[:5]}"
    for t in own:
        assert t["output"].startswith("FAILED: ")
        assert "internal grader error" not in t["output"]
    if mutation.loss is not None:
        lost = sum(t["max_score"] - t["score"] for t in data["tests"])
        assert lost == pytest.approx(mutation.loss), f"{mutation.name}: lost {lost} points"
    if mutation.hint:
        assert any(mutation.hint in t["output"] for t in own), \
            f"{mutation.name}: no hint containing {mutation.hint!r}; got " \
            f"{own[0]['output'][:400]!r}"


@pytest.mark.parametrize("variant", CORRECT, ids=lambda m: m.name)
def test_correct_variants_get_full_marks(graded, variant):
    data = graded[variant.name]
    failed = [(t["name"], t["output"][:300]) for t in data["tests"] if t["status"] != "passed"]
    assert not failed, failed[:3]
