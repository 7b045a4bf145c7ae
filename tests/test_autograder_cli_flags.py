"""The grade command as instructors use it: --only (API name, module, notebook), --notebook,
per-notebook totals, --quiet, --verbose, and no hidden expected value in what a student reads.

One real grading run (the rnn_layers checks of a submission whose loss underflows), then the
selection logic on its own.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from seqlab_dev.testing import grade_at_once

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from buggy import MUTATIONS, apply  # noqa: E402
from realistic import CORPUS, MODULES, module_text  # noqa: E402

REF = ROOT / "solutions" / "sequence_models" / "seqlab"


def _grade(*args):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def underflow(tmp_path_factory):
    """A submission whose temporal_softmax_loss underflows, graded on rnn_layers, and one
    whose temporal_affine_forward forgets the bias (wrong values), with and without --verbose."""
    base = tmp_path_factory.mktemp("cli")
    sub = next(s for s in CORPUS if s.name == "loss_log_softmax_underflow")
    no_bias = next(m for m in MUTATIONS if m.name == "affine_no_bias")
    folder, folder2 = base / "student", base / "nobias"
    folder.mkdir()
    folder2.mkdir()
    for module in MODULES:
        text = (REF / f"{module}.py").read_text(encoding="utf-8")
        (folder / f"{module}.py").write_text(module_text(sub, module, text), encoding="utf-8")
        (folder2 / f"{module}.py").write_text(apply(no_bias, text) if module == no_bias.module
                                              else text, encoding="utf-8")
    args = {
        "plain": (str(folder), "--only", "rnn_layers", "--json", str(base / "a.json"),
                  "--jobs", "1"),
        "quiet": (str(folder), "--only", "temporal_softmax_loss", "--quiet", "--jobs", "1"),
        "values": (str(folder2), "--only", "temporal_affine_forward", "--jobs", "1",
                   "--json", str(base / "b.json")),
        "verbose": (str(folder2), "--only", "temporal_affine_forward", "--verbose",
                    "--jobs", "1"),
    }
    # all four at once (one job each: the two cores stay busy)
    runs = grade_at_once({name: (base / name, a) for name, a in args.items()})
    for name, proc in runs.items():
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
    runs["values.json"] = (base / "b.json").read_text()
    return runs, json.loads((base / "a.json").read_text())


EXPECTED_VALUE = re.compile(r", expected -?[0-9.]+")


@pytest.mark.e2e
def test_module_selection_grades_that_module_only(underflow):
    runs, data = underflow
    apis = {t["tags"][0] for t in data["tests"]}
    from autograder.checks.core import all_checks
    assert apis == {c.api for c in all_checks() if c.module == "rnn_layers"}
    assert data["score"] == data["max_score"] - 1.0  # the two large-score checks, 0.5 each


@pytest.mark.e2e
def test_summary_has_notebook_totals_and_no_expected_values(underflow):
    runs, data = underflow
    out = runs["plain"].stdout
    assert " notebook 01_rnn_captioning: 58.5 / 59.5" in out
    assert "[BAD] temporal_softmax_loss" in out and "log-sum-exp" in out
    assert not EXPECTED_VALUE.search(out)
    assert "graded 1 submission(s)" in runs["plain"].stderr  # progress without --quiet


@pytest.mark.e2e
def test_results_json_never_holds_expected_values(underflow):
    runs, data = underflow
    outputs = "\n".join(t["output"] for t in data["tests"])
    assert "you returned nan" in outputs
    assert "(you returned " in runs["values.json"]
    assert not EXPECTED_VALUE.search(outputs) and not EXPECTED_VALUE.search(runs["values.json"])
    assert not EXPECTED_VALUE.search(runs["values"].stdout)


@pytest.mark.e2e
def test_verbose_shows_expected_values(underflow):
    runs, _ = underflow
    assert EXPECTED_VALUE.search(runs["verbose"].stdout)
    # the comparison writes the expected value into the instructor's detail only
    import numpy as np

    from autograder.checks.core import F64, Failed, compare
    for got, expected, says in [(0.84, 0.848603, "you returned 0.84"),
                                ([True, False], [False, False], "you returned True")]:
        try:
            compare("x", np.array(got), np.array(expected), F64)
        except Failed as f:
            assert f"({says})" in f.message and "expected" not in f.message.split(says)[1]
            assert f"({says}, expected " in f.detail
        else:
            raise AssertionError("compare passed different values")


@pytest.mark.e2e
def test_quiet_is_one_line(underflow):
    runs, _ = underflow
    assert runs["quiet"].stdout.strip().splitlines() == ["== student: 7.5 / 8.5 points"]
    assert "graded" not in runs["quiet"].stderr and "[student]" not in runs["quiet"].stderr


def test_selection_by_module_notebook_and_api_name():
    from autograder.checks.core import all_checks, notebook_of, select
    every = all_checks()
    assert select(["lstm_layers"]) == [c for c in every if c.module == "lstm_layers"]
    assert select(["lstm_layers.py"]) == select(["lstm_layers"])
    nb2 = select(notebooks=["02"])
    assert {c.module for c in nb2} == {"lstm_layers", "captioning"}
    assert all("cell_type='lstm'" in c.title for c in nb2 if c.module == "captioning")
    for spelling in ("2", "nb02", "02_lstm_captioning"):
        assert select([spelling]) == nb2
    nb1_captioning = [c for c in select(notebooks=["01"]) if c.api == "CaptioningRNN"]
    assert nb1_captioning and all("'lstm'" not in c.title and "'attention'" not in c.title
                                  for c in nb1_captioning)
    # every check belongs to exactly one notebook; the four notebooks cover all checks
    assert sorted(c.id for n in ("01", "02", "03", "04") for c in select(notebooks=[n])) == \
        sorted(c.id for c in every)
    assert {notebook_of(c) for c in select(["CaptioningRNN"])} == {"01", "02", "03"}
    with pytest.raises(ValueError, match="no_such_thing"):
        select(["no_such_thing"])


def test_cli_notebook_flag_and_unknown_names():
    listing = _grade("--list", "--notebook", "03")
    assert listing.returncode == 0
    assert "dot_product_attention_forward" in listing.stdout and "rnn_forward" not in listing.stdout
    assert "cell_type='attention'" in listing.stdout and "cell_type='rnn'" not in listing.stdout
    bad = _grade("--only", "rnn_layer", "x")
    assert bad.returncode == 2 and "rnn_layer" in bad.stderr and "rnn_layers" in bad.stderr


def test_peak_memory_is_the_graders_own(tmp_path):
    """The grader's peak memory on stderr is its own, not that of the process that started it
    (getrusage's ru_maxrss keeps the peak from before exec: a 600 MiB parent would show)."""
    sub = tmp_path / "ref"
    sub.mkdir()
    (sub / "rnn_layers.py").write_text((REF / "rnn_layers.py").read_text(encoding="utf-8"))
    parent = ("import subprocess, sys\n"
              "ballast = bytearray(b'x' * (600 << 20))\n"
              "sys.exit(subprocess.run(sys.argv[1:]).returncode)\n")
    proc = subprocess.run([sys.executable, "-c", parent, sys.executable, "-m", "autograder",
                           "grade", str(sub), "--only", "rnn_step_forward"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak = int(re.search(r"grader peak memory (\d+) MiB", proc.stderr).group(1))
    assert peak < 400, proc.stderr[-2000:]
