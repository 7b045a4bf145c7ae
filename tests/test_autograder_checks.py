"""Grader-side unit tests of the checks (no worker processes): the decoding configurations
still exercise <END> handling, known-mistake variants differ from the reference, comparisons
and the answer decoder behave."""
import numpy as np
import pytest

from autograder.checks import captioning as cap
from autograder.checks import core
from autograder.checks import transformer as tr
from autograder.checks.attention import _attention_spec
from autograder.checks.attention import _seq_spec as att_seq_spec
from autograder.checks.lstm import _seq_spec as lstm_seq_spec
from autograder.checks.lstm import _step_spec as lstm_step_spec
from autograder.checks.rnn import EMBED, RNN, RNN_STEP
from autograder.sandbox import wire


def _ends(rows, end, first_col):
    firsts = []
    for r in rows:
        hits = np.flatnonzero(r[first_col:] == end)
        firsts.append(int(hits[0]) if hits.size else None)
    done = [f for f in firsts if f is not None]
    return 0 < len(done) < len(rows) and max(done) >= 1


def test_greedy_decode_config_ends_some_rows():
    seed, boost = tr.GREEDY_CONFIG
    d = tr._tr_data(seed, N=5, S=6, T=2, end_boost=boost)()
    ys = tr.np_(tr._model_ref(d).greedy_decode(tr.t_(d["src"]), 8, 1, 3))
    assert ys.shape[1] == 8 and _ends(ys, 3, 1)


@pytest.mark.parametrize("shuffled", [False, True])
def test_captioning_transformer_sample_config_ends_some_rows(shuffled):
    seed, boost = tr.SAMPLE_CONFIGS[shuffled]
    d = tr._ct_data(seed, N=5, shuffled=shuffled, end_boost=boost)()
    caps = tr.np_(tr._model_ref(d).sample(tr.t_(d["features"]), 8))
    assert _ends(caps, d["w2i"]["<END>"], 0)


@pytest.mark.parametrize("cell,seed,shuffled", [("rnn", 750, False), ("lstm", 760, False),
                                               ("attention", 770, False), ("rnn", 810, True)])
def test_captioning_rnn_end_config_ends_some_rows(cell, seed, shuffled):
    w2i = cap.vocab(shuffled)
    params, features = cap._end_config(seed, w2i, cap.DIMS, cell, 6, 9)
    caps, _ = cap.ref_sample(w2i, cap.DIMS, cell, params, features, 9)
    assert _ends(caps, w2i["<END>"], 0)


@pytest.mark.parametrize("spec", [RNN_STEP, RNN, EMBED, lstm_step_spec(), lstm_seq_spec(),
                                  _attention_spec(), att_seq_spec()],
                         ids=lambda s: s.forward)
def test_mistake_variants_differ_from_the_reference(spec):
    inp = spec.draw(spec.sizes[0], 0)
    expected, _ = spec.ref_forward(inp)
    for hint in spec.forward_hints:
        v = hint.variant(inp, None)
        assert not all(core.matches(v[n], expected[n]) for n in v if n in expected), hint.message
    if spec.backward:
        douts = spec.douts(inp)
        grads = spec.ref_backward(inp, douts)
        torch_grads = spec.torch_grads(inp, douts)
        for g in spec.grads:  # the reference agrees with PyTorch autograd
            assert core.matches(grads[g], torch_grads[g], core.F64), g
        for hint in spec.backward_hints:
            v = hint.variant(inp, douts)
            assert not all(core.matches(v[n], grads[n]) for n in v), hint.message


def test_compare_explains_differences():
    with pytest.raises(core.Failed, match=r"expected shape \(2, 3\), got \(3, 2\)"):
        core.compare("h", np.zeros((3, 2)), np.zeros((2, 3)), core.F64)
    with pytest.raises(core.Failed, match="nan"):
        core.compare("h", np.array([1.0, np.nan]), np.array([1.0, 2.0]), core.F64)
    with pytest.raises(core.Failed, match="1 of 2 entries off"):
        core.compare("h", np.array([1.0, 2.1]), np.array([1.0, 2.0]), core.F64)
    core.compare("h", np.array([1.0, 2.0 + 1e-12]), np.array([1.0, 2.0]), core.F64)


def test_a_property_counts_only_when_the_same_call_is_right():
    """``case(what=...)``: a property that holds (evaluate passes) still fails the check when
    the same call's outputs differ from ``expected``, and says which property."""
    from autograder.checks.numpy_specs import case
    check = case(lambda: {}, lambda d: core.Call(steps=[], returns=["y"]),
                 lambda d, r, c: "holds", "\"the property\"", lambda d: {"y": np.ones(2)},
                 api="a", title="t", points=1.0, module="m")

    def result(y):
        meta = {"kind": "ndarray", "shape": [2], "dtype": "float64"}
        return core.Result(values={"y": core.Value(meta, np.asarray(y, dtype=np.float64))})

    assert check.evaluate([result([1.0, 1.0])], check) == core.Outcome(True, "holds")
    wrong = check.evaluate([result([1.0, 1.5])], check)
    assert not wrong.passed and wrong.message.startswith('"the property" counts only when')
    with pytest.raises(core.Failed, match="could not evaluate your f at perturbed inputs"):
        core.require_numeric_grad(result([1.0, 1.0]), "y", (2,), ["f.x.0"], [np.ones(())],
                                  "your f at perturbed inputs", "")


def test_answer_decoder_never_unpickles_or_trusts_tables():
    good = np.arange(6, dtype=np.float64).reshape(2, 3)
    data = good.tobytes()
    out = wire.unpack_arrays([["a", "<f8", [2, 3], 0, 48]], data)
    assert np.array_equal(out["a"], good)
    assert wire.unpack_arrays([["a", "|O", [6], 0, 48]], data) == {}
    assert wire.unpack_arrays([["a", "<f8", [4, 4], 0, 48]], data) == {}
    assert wire.unpack_arrays([["a", "<f8", [6], 40, 48]], data) == {}
    assert wire.unpack_arrays("garbage", data) == {}
    assert wire.unpack_arrays([["a", "<f8"]], data) == {}


def test_numeric_gradient_from_perturbed_outputs_matches_the_analytic_gradient():
    """The grader's centered differences (worker evaluates f at ``perturbations``, grader takes
    ``numeric_gradient``) against gradients worked out by hand, for two outputs and a scalar."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2))
    W = rng.standard_normal((2, 4))
    d1, d2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 2))
    stack = core.perturbations(x)
    assert stack.shape == (12, 3, 2)
    assert np.count_nonzero(stack - x) == 12            # one entry moved per row
    outs1 = np.stack([np.tanh(p @ W) for p in stack])   # f1(x) = tanh(x W), (3, 4)
    outs2 = np.stack([p ** 3 for p in stack])           # f2(x) = x^3, (3, 2)
    num = core.numeric_gradient(x.shape, [outs1, outs2], [d1, d2])
    t = np.tanh(x @ W)
    analytic = ((1 - t ** 2) * d1) @ W.T + 3 * x ** 2 * d2
    assert np.max(np.abs(num - analytic)) < 1e-8
    # a scalar output with upstream gradient 1: d sum(x^2) / dx = 2x
    scalar = core.numeric_gradient(x.shape, [np.array([np.sum(p ** 2) for p in stack])],
                                   [np.asarray(1.0)])
    assert np.max(np.abs(scalar - 2 * x)) < 1e-8
    with pytest.raises(core.Failed, match="shape"):
        core.numeric_gradient(x.shape, [outs1], [d2])


@pytest.mark.parametrize("cls", ["MultiHeadAttention", "EncoderLayer", "DecoderLayer"])
def test_twins_map_every_parameter_name_both_ways(cls):
    """twins.nn_state_dict gives exactly torch.nn's names (a strict load_state_dict) and
    course_state_dict undoes it, values included."""
    torch = pytest.importorskip("torch")
    from autograder.checks import twins
    from autograder.checks.torch_specs import ref
    args = [8, 2] if cls == "MultiHeadAttention" else [8, 2, 16]
    ours = getattr(ref(), cls)(*args, dropout=0.0).state_dict()
    nn_cls = {"MultiHeadAttention": torch.nn.MultiheadAttention,
              "EncoderLayer": torch.nn.TransformerEncoderLayer,
              "DecoderLayer": torch.nn.TransformerDecoderLayer}[cls]
    theirs = nn_cls(*args, dropout=0.0, batch_first=True)
    theirs.load_state_dict(twins.nn_state_dict(ours))
    back = twins.course_state_dict(theirs.state_dict())
    assert sorted(back) == sorted(ours)
    assert all(torch.equal(back[k], ours[k]) for k in ours)
