"""Public tests for seqlab/rnn_layers.py: shapes, a known value, numeric gradients.

Run from the assignment folder: ``pytest tests/test_01_rnn_layers.py -q``.
A stub that is not written yet fails with NotImplementedError naming the function.
"""
import numpy as np
import pytest

from seqlab.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from seqlab.rnn_layers import (
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)

GRAD_TOL = 1e-7  # centered differences in float64 agree with a correct gradient to ~1e-9


def _rng(seed=0):
    return np.random.default_rng(seed)


def _copies(*arrays):
    return [a.copy() for a in arrays]


def _assert_unchanged(before, after, names):
    for b, a, name in zip(before, after, names):
        assert np.array_equal(b, a), f"your function modified its argument {name!r}"


def test_rnn_step_forward_known_values():
    # CS231n's published values for these linspace inputs.
    N, D, H = 3, 10, 4
    x = np.linspace(-0.4, 0.7, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.2, 0.5, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.1, 0.9, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.3, 0.7, num=H * H).reshape(H, H)
    b = np.linspace(-0.2, 0.4, num=H)
    next_h, _ = rnn_step_forward(x, prev_h, Wx, Wh, b)
    expected = np.asarray([
        [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
        [0.66854692, 0.79562378, 0.87755553, 0.92795967],
        [0.97934501, 0.99144213, 0.99646691, 0.99854353]])
    assert next_h.shape == (N, H), f"next_h: expected shape {(N, H)}, got {next_h.shape}"
    assert rel_error(next_h, expected) < 1e-7


@pytest.mark.parametrize("N,D,H", [(4, 5, 6), (1, 3, 2)])
def test_rnn_step_backward_numeric(N, D, H):
    rng = _rng(1)
    x, prev_h = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    out, cache = rnn_step_forward(x, prev_h, Wx, Wh, b)
    dnext_h = rng.standard_normal(out.shape)
    before = _copies(dnext_h)
    dx, dprev_h, dWx, dWh, db = rnn_step_backward(dnext_h, cache)
    _assert_unchanged(before, [dnext_h], ["dnext_h"])
    args = [x, prev_h, Wx, Wh, b]
    for i, (name, grad) in enumerate(zip(["dx", "dprev_h", "dWx", "dWh", "db"],
                                         [dx, dprev_h, dWx, dWh, db])):
        def f(v, i=i):
            a = list(args)
            a[i] = v
            return rnn_step_forward(*a)[0]
        num = eval_numerical_gradient_array(f, args[i], dnext_h)
        assert grad.shape == num.shape, f"{name}: expected shape {num.shape}, got {grad.shape}"
        assert rel_error(grad, num) < GRAD_TOL, f"{name}: relative error {rel_error(grad, num):.1e}"


@pytest.mark.parametrize("N,T,D,H", [(2, 3, 4, 5), (1, 1, 3, 2)])
def test_rnn_forward_backward(N, T, D, H):
    rng = _rng(2)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    before = _copies(x, h0, Wx, Wh, b)
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    _assert_unchanged(before, [x, h0, Wx, Wh, b], ["x", "h0", "Wx", "Wh", "b"])
    assert h.shape == (N, T, H), f"h: expected shape {(N, T, H)}, got {h.shape}"
    # the forward over T steps equals T calls of the step function
    prev = h0
    for t in range(T):
        prev, _ = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        assert rel_error(h[:, t], prev) < 1e-10, f"h[:, {t}] differs from rnn_step_forward"
    dh = rng.standard_normal(h.shape)
    dh_before = dh.copy()
    grads = rnn_backward(dh, cache)
    _assert_unchanged([dh_before], [dh], ["dh"])
    args = [x, h0, Wx, Wh, b]
    for i, name in enumerate(["dx", "dh0", "dWx", "dWh", "db"]):
        def f(v, i=i):
            a = list(args)
            a[i] = v
            return rnn_forward(*a)[0]
        num = eval_numerical_gradient_array(f, args[i], dh)
        assert grads[i].shape == num.shape, f"{name}: expected {num.shape}, got {grads[i].shape}"
        err = rel_error(grads[i], num)
        assert err < GRAD_TOL, f"{name}: rel error {err:.1e}"


def test_word_embedding():
    V, D = 5, 3
    x = np.array([[0, 3, 1, 2], [2, 1, 0, 3], [3, 3, 3, 3]])  # repeated words
    W = np.linspace(0, 1, num=V * D).reshape(V, D)
    out, cache = word_embedding_forward(x, W)
    assert out.shape == (3, 4, D), f"out: expected shape {(3, 4, D)}, got {out.shape}"
    assert np.array_equal(out[1, 2], W[0]) and np.array_equal(out[2, 0], W[3])
    dout = _rng(3).standard_normal(out.shape)
    dW = word_embedding_backward(dout, cache)
    num = eval_numerical_gradient_array(lambda w: word_embedding_forward(x, w)[0], W, dout)
    assert dW.shape == W.shape
    assert rel_error(dW, num) < GRAD_TOL, "dW is wrong (do repeated words accumulate?)"


def test_temporal_affine():
    rng = _rng(4)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5)), rng.standard_normal(5)
    out, cache = temporal_affine_forward(x, w, b)
    assert out.shape == (2, 3, 5)
    assert rel_error(out, np.einsum("ntd,dm->ntm", x, w) + b) < 1e-10
    dout = rng.standard_normal(out.shape)
    dx, dw, db = temporal_affine_backward(dout, cache)
    for name, grad, arg, f in [
        ("dx", dx, x, lambda v: temporal_affine_forward(v, w, b)[0]),
        ("dw", dw, w, lambda v: temporal_affine_forward(x, v, b)[0]),
        ("db", db, b, lambda v: temporal_affine_forward(x, w, v)[0]),
    ]:
        num = eval_numerical_gradient_array(f, arg, dout)
        assert rel_error(grad, num) < GRAD_TOL, f"{name}: rel error {rel_error(grad, num):.1e}"


def test_temporal_softmax_loss():
    rng = _rng(5)
    N, T, V = 100, 1, 10
    # loss at random small scores is about log V per unmasked word
    x = 0.001 * rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    loss, _ = temporal_softmax_loss(x, y, np.ones((N, T), dtype=bool))
    assert abs(loss - np.log(V)) < 0.01, f"expected about log(V) = {np.log(V):.3f}, got {loss}"
    # masked positions do not count
    N, T, V = 7, 8, 9
    x = rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) > 0.5
    loss, dx = temporal_softmax_loss(x, y, mask)
    num = eval_numerical_gradient(lambda v: temporal_softmax_loss(v, y, mask)[0], x)
    assert rel_error(dx, num) < GRAD_TOL, f"dx: rel error {rel_error(dx, num):.1e}"
    assert np.all(dx[~mask] == 0), "masked positions must get zero gradient"

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_temporal_softmax_loss_large_scores(dtype):
    # score gaps of ~1000: the target's probability underflows to 0 (exp(-1000) = 0), so
    # log(softmax) is -inf even after subtracting the maximum; log-sum-exp is finite
    rng = _rng(8)
    N, T, V = 3, 4, 5
    x = (rng.standard_normal((N, T, V)) * 1000 + 1e4).astype(dtype)
    y = rng.integers(V, size=(N, T))
    mask = np.ones((N, T), dtype=bool)
    loss, dx = temporal_softmax_loss(x, y, mask)
    assert np.isfinite(loss) and np.all(np.isfinite(dx)), (
        "loss or dx is not finite for large scores: exp() of a large score overflows, and the "
        "log of a probability that underflowed to 0 is -inf; compute log-probabilities with "
        "log-sum-exp: shifted - log(sum(exp(shifted))), shifted = x - max(x)")
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=2, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))
    expected = -np.take_along_axis(log_probs, y[..., None], axis=2).sum() / N
    assert abs(loss - expected) <= 1e-4 * abs(expected), f"loss {loss}, expected {expected}"


# ---------------------------------------------------------------------------------------------
# float32 in -> float32 out, function by function (the autograder grades it for each)
# ---------------------------------------------------------------------------------------------

FLOAT32_CAUSE = ("float32 inputs must give float32 outputs. Under NumPy 2 a NumPy scalar such as "
                 "np.sqrt(H), or an array made with np.zeros(shape) (float64 by default), turns "
                 "float32 into float64; a Python float (math.sqrt(H)), np.zeros_like(x) or "
                 "np.zeros(shape, dtype=x.dtype) does not")


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _float32_outputs(name):
    """{output name: array} of function ``name`` called on float32 inputs (a backward function
    on the cache of its forward, called on float32 inputs)."""
    rng = _rng(6)
    N, T, D, H, V = 2, 3, 4, 5, 6
    if name.startswith("rnn_step"):
        next_h, cache = rnn_step_forward(_f32(rng, N, D), _f32(rng, N, H), _f32(rng, D, H),
                                         _f32(rng, H, H), _f32(rng, H))
        if name == "rnn_step_forward":
            return {"next_h": next_h}
        return dict(zip(["dx", "dprev_h", "dWx", "dWh", "db"],
                        rnn_step_backward(_f32(rng, N, H), cache)))
    if name.startswith("rnn_"):
        h, cache = rnn_forward(_f32(rng, N, T, D), _f32(rng, N, H), _f32(rng, D, H),
                               _f32(rng, H, H), _f32(rng, H))
        if name == "rnn_forward":
            return {"h": h}
        return dict(zip(["dx", "dh0", "dWx", "dWh", "db"], rnn_backward(_f32(rng, N, T, H), cache)))
    if name.startswith("word_embedding"):
        out, cache = word_embedding_forward(rng.integers(V, size=(N, T)), _f32(rng, V, D))
        if name == "word_embedding_forward":
            return {"out": out}
        return {"dW": word_embedding_backward(_f32(rng, N, T, D), cache)}
    if name.startswith("temporal_affine"):
        out, cache = temporal_affine_forward(_f32(rng, N, T, D), _f32(rng, D, V), _f32(rng, V))
        if name == "temporal_affine_forward":
            return {"out": out}
        return dict(zip(["dx", "dw", "db"], temporal_affine_backward(_f32(rng, N, T, V), cache)))
    loss, dx = temporal_softmax_loss(_f32(rng, N, T, V), rng.integers(V, size=(N, T)),
                                     rng.random((N, T)) < 0.7)
    return {"dx": dx}


@pytest.mark.parametrize("name", [
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
    "word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
    "temporal_affine_backward", "temporal_softmax_loss"])
def test_float32_in_float32_out(name):
    wrong = {k: str(v.dtype) for k, v in _float32_outputs(name).items()
             if np.asarray(v).dtype != np.float32}
    assert not wrong, f"{name} returned {wrong}: {FLOAT32_CAUSE}"


# ---------------------------------------------------------------------------------------------
# saturation: tanh of large pre-activations is +-1, never NaN
# ---------------------------------------------------------------------------------------------

SATURATION = ("exp() overflows to inf for |z| beyond ~710 in float64 (~89 in float32) and "
              "inf / inf is NaN: use np.tanh, not a formula with exp")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rnn_saturation(dtype):
    rng = _rng(9)
    N, T, D, H = 3, 2, 5, 4
    x = (rng.standard_normal((N, T, D)) * 500).astype(dtype)
    h0 = (rng.standard_normal((N, H)) * 500).astype(dtype)
    Wx, Wh, b = (rng.standard_normal(s).astype(dtype) for s in ((D, H), (H, H), (H,)))
    z = x[:, 0].astype(np.float64) @ Wx + h0.astype(np.float64) @ Wh + b  # |z| up to ~2000
    next_h, _ = rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    assert np.all(np.isfinite(next_h)), f"rnn_step_forward returned NaN or inf: {SATURATION}"
    assert np.allclose(next_h, np.tanh(z), atol=1e-4), "rnn_step_forward: next_h != tanh(z)"
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    assert np.all(np.isfinite(h)), f"rnn_forward returned NaN or inf: {SATURATION}"
    assert np.allclose(h[:, 0], np.tanh(z), atol=1e-4), "rnn_forward: h[:, 0] != tanh(z)"
