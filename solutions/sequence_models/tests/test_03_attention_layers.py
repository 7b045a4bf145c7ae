"""Public tests for seqlab/attention_layers.py: shapes, known values, numeric gradients.

Run from the assignment folder: ``pytest tests/test_03_attention_layers.py -q``.
A stub that is not written yet fails with NotImplementedError naming the function.
"""
import numpy as np
import pytest

from seqlab.attention_layers import (
    attention_lstm_backward,
    attention_lstm_forward,
    attention_lstm_step_backward,
    attention_lstm_step_forward,
    dot_product_attention_backward,
    dot_product_attention_forward,
)
from seqlab.gradient_check import eval_numerical_gradient_array, rel_error
from seqlab.lstm_layers import lstm_step_forward

GRAD_TOL = 1e-7


def grad_error(grad, num):
    """Largest |analytic - numeric| difference, relative to the largest |numeric| entry.

    A correct gradient gives about 1e-10 here and a bug 1e-3 or more. (``rel_error`` compares
    entry by entry: an entry that happens to be nearly zero makes it as noisy as the numeric
    gradient itself, up to ~1e-6 for a correct LSTM, so it is not used to pass or fail.)
    """
    return float(np.max(np.abs(grad - num)) / max(1e-8, np.max(np.abs(num))))


def _rng(seed=0):
    return np.random.default_rng(seed)


def _weights(rng, D, H):
    """Wx (D, 4H), Wh (H, 4H), Wattn (H, 4H), b (4H,)."""
    return (rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)),
            rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H))


def _assert_unchanged(before, after, names):
    for b, a, name in zip(before, after, names):
        assert np.array_equal(b, a), f"your function modified its argument {name!r}"


def _check_grads(forward, args, names, grads, dout):
    """Compare each analytic gradient with a numeric one of ``sum(forward(*args) * dout)``.

    forward returns one array, or a list of arrays paired with the list dout.
    """
    douts = dout if isinstance(dout, list) else [dout]
    for i, (name, grad) in enumerate(zip(names, grads)):
        num = 0
        for k, d in enumerate(douts):
            def f(v, i=i, k=k):
                a = list(args)
                a[i] = v
                out = forward(*a)
                return out[k] if isinstance(dout, list) else out
            num = num + eval_numerical_gradient_array(f, args[i], d)
        assert grad.shape == num.shape, f"{name}: expected shape {num.shape}, got {grad.shape}"
        err = grad_error(grad, num)
        assert err < GRAD_TOL, (f"{name}: differs from the numeric gradient by {err:.1e} of its "
                                f"largest entry (rel_error {rel_error(grad, num):.1e})")


def test_dot_product_attention_known_values():
    # H = 4, so scores are divided by sqrt(4) = 2. Query (2, 0, 0, 0); keys e1, e2, e1 + e2.
    prev_h = np.array([[2.0, 0.0, 0.0, 0.0]])
    A = np.array([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 1.0, 0, 0]]])
    attn, w, _ = dot_product_attention_forward(prev_h, A)
    # scores = (1, 0, 1) -> weights = (e, 1, e) / (2e + 1)
    e = np.e
    expected_w = np.array([[e, 1, e]]) / (2 * e + 1)
    assert w.shape == (1, 3), f"attn_weights: expected shape (1, 3), got {w.shape}"
    assert attn.shape == (1, 4), f"attn: expected shape (1, 4), got {attn.shape}"
    assert rel_error(w, expected_w) < 1e-10, \
        f"attn_weights: relative error {rel_error(w, expected_w):.1e} (scaled by 1/sqrt(H)?)"
    assert rel_error(attn, expected_w @ A[0]) < 1e-10, "attn must be the weighted sum of A's rows"


def test_dot_product_attention_large_scores():
    prev_h = np.full((2, 4), 100.0)
    A = np.stack([np.eye(4) * 100, -np.eye(4) * 100])
    attn, w, _ = dot_product_attention_forward(prev_h, A)
    assert np.all(np.isfinite(w)), "softmax overflows: subtract the maximum score first"
    assert np.allclose(w.sum(axis=1), 1), "attention weights must sum to 1 over P"


@pytest.mark.parametrize("N,P,H", [(3, 16, 5), (1, 1, 4)])
def test_dot_product_attention_backward_numeric(N, P, H):
    rng = _rng(1)
    prev_h, A = rng.standard_normal((N, H)), rng.standard_normal((N, P, H))
    args = [prev_h, A]
    before = [a.copy() for a in args]
    attn, w, cache = dot_product_attention_forward(*args)
    _assert_unchanged(before, args, ["prev_h", "A"])
    dattn = rng.standard_normal(attn.shape)
    dattn_before = dattn.copy()
    grads = dot_product_attention_backward(dattn, cache)
    _assert_unchanged([dattn_before], [dattn], ["dattn"])
    _check_grads(lambda *a: dot_product_attention_forward(*a)[0], args, ["dprev_h", "dA"],
                 grads, dattn)


def test_attention_lstm_step_forward_is_lstm_step_plus_attention_term():
    rng = _rng(2)
    N, D, H = 3, 4, 5
    x, prev_h, prev_c, attn = (rng.standard_normal(s) for s in ((N, D), (N, H), (N, H), (N, H)))
    Wx, Wh, Wattn, b = _weights(rng, D, H)
    next_h, next_c, _ = attention_lstm_step_forward(x, prev_h, prev_c, attn, Wx, Wh, Wattn, b)
    # attn @ Wattn is the same as feeding [x, attn] to an LSTM step with stacked weights
    eh, ec, _ = lstm_step_forward(np.hstack([x, attn]), prev_h, prev_c,
                                  np.vstack([Wx, Wattn]), Wh, b)
    assert next_h.shape == (N, H) and next_c.shape == (N, H)
    assert rel_error(next_h, eh) < 1e-10 and rel_error(next_c, ec) < 1e-10


@pytest.mark.parametrize("N,D,H", [(3, 4, 5), (1, 2, 3)])
def test_attention_lstm_step_backward_numeric(N, D, H):
    rng = _rng(3)
    x, prev_h, prev_c, attn = (rng.standard_normal(s) for s in ((N, D), (N, H), (N, H), (N, H)))
    Wx, Wh, Wattn, b = _weights(rng, D, H)
    args = [x, prev_h, prev_c, attn, Wx, Wh, Wattn, b]
    next_h, next_c, cache = attention_lstm_step_forward(*args)
    dnext_h, dnext_c = rng.standard_normal(next_h.shape), rng.standard_normal(next_c.shape)
    before = [dnext_h.copy(), dnext_c.copy()]
    grads = attention_lstm_step_backward(dnext_h, dnext_c, cache)
    _assert_unchanged(before, [dnext_h, dnext_c], ["dnext_h", "dnext_c"])
    names = ["dx", "dprev_h", "dprev_c", "dattn", "dWx", "dWh", "dWattn", "db"]
    _check_grads(lambda *a: list(attention_lstm_step_forward(*a)[:2]), args, names, grads,
                 [dnext_h, dnext_c])


def test_attention_lstm_forward_first_step():
    rng = _rng(4)
    N, T, D, P, H = 2, 3, 4, 16, 5
    x, A = rng.standard_normal((N, T, D)), rng.standard_normal((N, P, H))
    Wx, Wh, Wattn, b = _weights(rng, D, H)
    h, w, _ = attention_lstm_forward(x, A, Wx, Wh, Wattn, b)
    assert h.shape == (N, T, H), f"h: expected shape {(N, T, H)}, got {h.shape}"
    assert w.shape == (N, T, P), f"attn_weights: expected shape {(N, T, P)}, got {w.shape}"
    assert np.allclose(w.sum(axis=2), 1), "attention weights must sum to 1 over P"
    # step 0: h0 = c0 = mean of A over P; attend with h0, then one attention LSTM step
    h0 = A.mean(axis=1)
    attn, w0, _ = dot_product_attention_forward(h0, A)
    h1, _, _ = attention_lstm_step_forward(x[:, 0], h0, h0, attn, Wx, Wh, Wattn, b)
    assert rel_error(w[:, 0], w0) < 1e-10, "step 0 must attend with h0 = mean of A over P"
    assert rel_error(h[:, 0], h1) < 1e-10, "h[:, 0] must be a step from h0 = c0 = mean of A"


@pytest.mark.parametrize("N,T,D,P,H", [(2, 3, 4, 5, 3), (1, 1, 2, 3, 2)])
def test_attention_lstm_backward_numeric(N, T, D, P, H):
    rng = _rng(5)
    x, A = rng.standard_normal((N, T, D)), rng.standard_normal((N, P, H))
    Wx, Wh, Wattn, b = _weights(rng, D, H)
    args = [x, A, Wx, Wh, Wattn, b]
    before = [a.copy() for a in args]
    h, w, cache = attention_lstm_forward(*args)
    _assert_unchanged(before, args, ["x", "A", "Wx", "Wh", "Wattn", "b"])
    dh = rng.standard_normal(h.shape)
    dh_before = dh.copy()
    grads = attention_lstm_backward(dh, cache)
    _assert_unchanged([dh_before], [dh], ["dh"])
    # dA must include the paths through the attention at every step and through h0 and c0
    _check_grads(lambda *a: attention_lstm_forward(*a)[0], args,
                 ["dx", "dA", "dWx", "dWh", "dWattn", "db"], grads, dh)


FLOAT32_CAUSE = ("float32 inputs must give float32 outputs. Under NumPy 2 a NumPy scalar such as "
                 "np.sqrt(H), or an array made with np.zeros(shape) (float64 by default), turns "
                 "float32 into float64; a Python float (math.sqrt(H)), np.zeros_like(x) or "
                 "np.zeros(shape, dtype=x.dtype) does not")


def _float32_outputs(name):
    """{output name: array} of function ``name`` called on float32 inputs (a backward function
    on the cache of its forward, called on float32 inputs)."""
    rng = _rng(6)
    N, T, D, P, H = 2, 3, 4, 5, 6
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    A = f32(N, P, H)
    Wx, Wh, Wattn, b = f32(D, 4 * H), f32(H, 4 * H), f32(H, 4 * H), f32(4 * H)
    if name.startswith("dot_product"):
        attn, w, cache = dot_product_attention_forward(f32(N, H), A)
        if name == "dot_product_attention_forward":
            return {"attn": attn, "attn_weights": w}
        return dict(zip(["dprev_h", "dA"], dot_product_attention_backward(f32(N, H), cache)))
    if name.startswith("attention_lstm_step"):
        next_h, next_c, cache = attention_lstm_step_forward(f32(N, D), f32(N, H), f32(N, H),
                                                            f32(N, H), Wx, Wh, Wattn, b)
        if name == "attention_lstm_step_forward":
            return {"next_h": next_h, "next_c": next_c}
        return dict(zip(["dx", "dprev_h", "dprev_c", "dattn", "dWx", "dWh", "dWattn", "db"],
                        attention_lstm_step_backward(f32(N, H), f32(N, H), cache)))
    h, w, cache = attention_lstm_forward(f32(N, T, D), A, Wx, Wh, Wattn, b)
    if name == "attention_lstm_forward":
        return {"h": h, "attn_weights": w}
    return dict(zip(["dx", "dA", "dWx", "dWh", "dWattn", "db"],
                    attention_lstm_backward(f32(N, T, H), cache)))


@pytest.mark.parametrize("name", [
    "dot_product_attention_forward", "dot_product_attention_backward",
    "attention_lstm_step_forward", "attention_lstm_step_backward", "attention_lstm_forward",
    "attention_lstm_backward"])
def test_float32_in_float32_out(name):
    wrong = {k: str(v.dtype) for k, v in _float32_outputs(name).items()
             if np.asarray(v).dtype != np.float32}
    assert not wrong, f"{name} returned {wrong}: {FLOAT32_CAUSE}"


SATURATION = ("exp() overflows to inf for |z| beyond ~710 in float64 (~89 in float32) and "
              "inf / inf is NaN: subtract the maximum score before the softmax, and use the "
              "given sigmoid and np.tanh, not formulas with exp")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_attention_saturation(dtype):
    """Scores and gate pre-activations of +-1000 and more: finite outputs, weights sum to 1."""
    rng = _rng(9)
    N, T, D, P, H = 2, 3, 4, 5, 3
    A = (rng.standard_normal((N, P, H)) * 30).astype(dtype)
    attn, w, _ = dot_product_attention_forward(A[:, 0] * 2, A)
    assert np.all(np.isfinite(attn)) and np.all(np.isfinite(w)), \
        f"dot_product_attention_forward returned NaN or inf: {SATURATION}"
    assert np.allclose(w.sum(axis=1), 1, atol=1e-5)
    x = (rng.standard_normal((N, T, D)) * 500).astype(dtype)
    Wx, Wh, Wattn, b = (rng.standard_normal(s).astype(dtype)
                        for s in ((D, 4 * H), (H, 4 * H), (H, 4 * H), (4 * H,)))
    next_h, next_c, _ = attention_lstm_step_forward(x[:, 0], A[:, 0], A[:, 1], A[:, 2],
                                                    Wx, Wh, Wattn, b)
    assert np.all(np.isfinite(next_h)) and np.all(np.isfinite(next_c)), \
        f"attention_lstm_step_forward returned NaN or inf: {SATURATION}"
    h, w, _ = attention_lstm_forward(x, A, Wx, Wh, Wattn, b)
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(w)), \
        f"attention_lstm_forward returned NaN or inf: {SATURATION}"
