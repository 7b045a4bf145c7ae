"""The realistic corpus (tests/corpus/realistic.py) gets exactly the scores written here.

A submission is graded on the student modules it changes and those that import them (all of
them for the degenerate ones and the unchanged one), one CLI run per such set (two jobs each,
all started at once). The
expected points were worked out by hand from the checks each bug must fail (listed next to
each figure), not copied from a run.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from realistic import CORPUS, write_corpus  # noqa: E402

pytestmark = pytest.mark.e2e


# API name -> points, for the API names that lose points; every other API name: full marks.
EXPECTED = {
    # the two saturation checks (0.5 float64 + 0.5 float32) of the function with the exp()
    "tanh_exp_loops": {"rnn_step_forward": 6.0 - 1.0},
    "tanh_exp2_einsum": {"rnn_forward": 6.0 - 1.0},
    "sigmoid_exp": {"lstm_step_forward": 6.0 - 1.0},
    # the two large-score checks (0.5 float64 + 0.5 float32)
    "loss_log_softmax_underflow": {"temporal_softmax_loss": 8.5 - 1.0},
    # float32 in -> float32 out (1) and saturation in float32 (0.5) of the forward; the
    # backward's float32 check (1), whose cache holds the float64 scale / hidden states; for
    # np.zeros, also the float32 captioning model (0.5), which calls the student's rnn_forward
    "float64_np_sqrt": {"dot_product_attention_forward": 7.0 - 1.5,
                        "dot_product_attention_backward": 7.0 - 1.0},
    "float64_np_zeros": {"rnn_forward": 6.0 - 1.5, "rnn_backward": 7.0 - 1.0,
                         "CaptioningRNN": 19.0 - 0.5},
    # the six sample checks (1.5 + 1.0 per cell type) and the shuffled-vocabulary one (1.0)
    "sample_shifted": {"CaptioningRNN": 19.0 - 3 * 2.5 - 1.0},
    # every check of scaled_dot_product_attention but "N=1, Tq=Tk=1" (0.5: with one key the
    # scale does not matter); nothing elsewhere: dependents run with library substitutes
    "sdpa_no_sqrt": {"scaled_dot_product_attention": 0.5},
    # the two saturation checks (0.25 float64 + 0.25 float32)
    "sdpa_softmax_exp": {"scaled_dot_product_attention": 7.5 - 0.5},
    # the same, although its MultiHeadAttention hands the substitute to its attention
    "sdpa_no_sqrt_captures_substitute": {"scaled_dot_product_attention": 0.5},
}
FULL = {s.name for s in CORPUS if s.name not in EXPECTED and s.expected != "all 0"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("realistic")
    groups = write_corpus(base)  # modules to grade -> submission folders
    out = base / "out"
    runs = []  # started at once: one run with --jobs 2 keeps two cores busy only part of the time
    try:
        for k, (modules, paths) in enumerate(groups.items()):
            only = [a for m in modules for a in ("--only", m)]
            stderr = open(base / f"grader-{k}.stderr", "w+")
            runs.append((stderr, subprocess.Popen(
                [sys.executable, "-m", "autograder", "grade", *paths, *only,
                 "--out-dir", str(out), "--jobs", "2", "--quiet"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, text=True)))
        for stderr, proc in runs:
            code = proc.wait(timeout=900)
            stderr.seek(0)
            err = stderr.read()
            assert code == 0, err[-3000:]
            # a grader bug's traceback reaches stderr even with --quiet
            assert "INTERNAL ERROR" not in err, err[-3000:]
    finally:
        for stderr, proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            stderr.close()
    results = {s.name: json.loads((out / f"{s.name}.json").read_text()) for s in CORPUS}
    hit = [n for n, d in results.items() if "internal grader error" in json.dumps(d)]
    assert not hit, hit
    return results


def _per_api(data):
    got, full = {}, {}
    for t in data["tests"]:
        api = t["tags"][0]
        got[api] = got.get(api, 0.0) + t["score"]
        full[api] = full.get(api, 0.0) + t["max_score"]
    return got, full


def test_every_bug_has_a_correct_twin():
    names = {s.name for s in CORPUS}
    for s in CORPUS:
        if s.name in EXPECTED:
            assert s.twin in names and s.twin in FULL, s.name


@pytest.mark.parametrize("sub", CORPUS, ids=lambda s: s.name)
def test_expected_score(graded, sub):
    data = graded[sub.name]
    got, full = _per_api(data)
    if sub.expected == "all 0":
        assert data["score"] == 0, {a: p for a, p in got.items() if p}
        return
    want = dict(full, **EXPECTED.get(sub.name, {}))
    wrong = {a: (round(got[a], 4), want[a]) for a in full if abs(got[a] - want[a]) > 1e-9}
    assert not wrong, f"{sub.name}: API name: (got, expected) {wrong}"
    if sub.hint:
        failed = [t for t in data["tests"] if t["status"] == "failed"
                  and t["tags"][0] == sub.hint_api]
        assert failed and any(sub.hint in t["output"] for t in failed), \
            f"{sub.name}: hint {sub.hint!r} missing: {failed[0]['output'][:300] if failed else ''}"
