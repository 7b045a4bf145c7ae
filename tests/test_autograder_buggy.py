"""Every buggy submission (tests/corpus/buggy.py) loses points on the check of the function it
breaks, only there or downstream of it, and gets the expected hint.

The corpus is graded in a few CLI runs (two jobs each, one after the other, in the background
from the start of the session): the submissions that need the same student modules graded go
together (see ``graded_modules``).
"""
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seqlab_dev.testing import BACKGROUND

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from buggy import CORRECT, DEPENDS, IMPORTED_BY, MODULE_APIS, MUTATIONS, apply  # noqa: E402

REF = ROOT / "solutions" / "sequence_models" / "seqlab"
MODULES = list(MODULE_APIS)


def graded_modules(m):
    """The student modules whose checks can tell something about ``m``: its own module and
    each module that imports it, except a module whose every API name may fail anyway for a
    mutation of ``m.api`` (DEPENDS: grading it could not fail any assertion). A correct
    variant must keep full marks everywhere: its module and every module that imports it."""
    allowed = set() if m in CORRECT else {m.api} | DEPENDS[m.api]
    return (m.module,) + tuple(o for o in IMPORTED_BY[m.module]
                               if not set(MODULE_APIS[o]) <= allowed)


class CorpusRuns:
    """The grader runs of the whole corpus, started at the start of the session
    (``start_early``, see tests/conftest.py) so that they run while the rest of the suite does,
    in the background (``BACKGROUND``): one CLI run (two jobs) per group of submissions that
    need the same student modules graded, one run after the other."""

    def __init__(self, base):
        self.base = base
        groups = {}
        for m in MUTATIONS + CORRECT:
            groups.setdefault(graded_modules(m), []).append(m)
        self.runs = list(enumerate(groups.values()))  # (k, mutations)
        self.results = None
        lines = [self._command(k, modules, muts)
                 for k, (modules, muts) in enumerate(groups.items())]
        self.proc = subprocess.Popen(BACKGROUND + ["sh", "-c", "\n".join(lines)], cwd=ROOT,
                                     start_new_session=True)

    def _command(self, k, modules, muts):
        """Write run ``k``'s submissions; its shell line (exit status in rc-k, stderr in
        grader-k.stderr)."""
        paths = []
        for m in muts:
            folder = self.base / m.module / m.name
            folder.mkdir(parents=True)
            for mod in MODULES:
                text = (REF / f"{mod}.py").read_text(encoding="utf-8")
                if mod == m.module:
                    text = apply(m, text)
                (folder / f"{mod}.py").write_text(text, encoding="utf-8")
            paths.append(str(folder))
        cmd = [sys.executable, "-m", "autograder", "grade", *paths, "--out-dir",
               str(self.base / "out" / str(k)), "--jobs", "2", "--quiet"]
        for module in modules:
            for api in MODULE_APIS[module]:
                cmd += ["--only", api]
        err, rc = self.base / f"grader-{k}.stderr", self.base / f"rc-{k}"
        return f"{shlex.join(cmd)} >/dev/null 2>{shlex.quote(str(err))}; " \
               f"echo $? >{shlex.quote(str(rc))}"

    def collect(self):
        """Wait for every run; returns {mutation name: its results.json} (computed once)."""
        if self.results is None:
            self.proc.wait(timeout=900)
            out = {}
            for k, muts in self.runs:
                rc = self.base / f"rc-{k}"
                assert rc.exists(), f"run {k} did not end (the runs: {self.proc.returncode})"
                err = (self.base / f"grader-{k}.stderr").read_text()
                assert rc.read_text().strip() == "0", err[-3000:]
                assert "INTERNAL ERROR" not in err, err[-3000:]
                for m in muts:
                    path = self.base / "out" / str(k) / f"{m.name}.json"
                    assert path.exists(), f"no {path.name} from run {k}: {err[-3000:]}"
                    out[m.name] = json.loads(path.read_text())
            self.results = out
        return self.results

    def stop(self):
        """Kill the runs if they still go."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def start_early(base, wanted):
    """Every test of this module reads the runs of the whole corpus."""
    return CorpusRuns(base)


@pytest.fixture(scope="module")
def graded(early):
    return early.collect()


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
