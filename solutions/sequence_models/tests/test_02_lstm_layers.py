"""Public tests for seqlab/lstm_layers.py: shapes, known values, numeric gradients.

Run from the assignment folder: ``pytest tests/test_02_lstm_layers.py -q``.
A stub that is not written yet fails with NotImplementedError naming the function.
"""
import numpy as np
import pytest

from seqlab.gradient_check import eval_numerical_gradient_array, rel_error
from seqlab.lstm_layers import (
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
    sigmoid,
)

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


def test_sigmoid_given():
    x = np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0])
    s = sigmoid(x)
    assert np.all(np.isfinite(s)) and s[2] == 0.5 and s[0] == 0 and s[-1] == 1
    assert rel_error(s[1:4], 1 / (1 + np.exp(-x[1:4]))) < 1e-12


def lstm_step_inputs():
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    return x, prev_h, prev_c, Wx, Wh, b


def test_lstm_step_forward_known_values():
    # CS231n's published values for these linspace inputs (gate order i, f, o, g).
    next_h, next_c, _ = lstm_step_forward(*lstm_step_inputs())
    expected_next_h = np.asarray([
        [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
        [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
        [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])
    expected_next_c = np.asarray([
        [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
        [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
        [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])
    assert next_h.shape == (3, 5), f"next_h: expected shape (3, 5), got {next_h.shape}"
    assert next_c.shape == (3, 5), f"next_c: expected shape (3, 5), got {next_c.shape}"
    assert rel_error(next_h, expected_next_h) < 1e-7, \
        (f"next_h: relative error {rel_error(next_h, expected_next_h):.1e} "
         "(is the gate order i, f, o, g?)")
    assert rel_error(next_c, expected_next_c) < 1e-7, \
        f"next_c: relative error {rel_error(next_c, expected_next_c):.1e}"


@pytest.mark.parametrize("N,D,H", [(4, 5, 6), (1, 3, 2)])
def test_lstm_step_backward_numeric(N, D, H):
    rng = _rng(1)
    x, prev_h, prev_c = (rng.standard_normal(s) for s in ((N, D), (N, H), (N, H)))
    Wx, Wh, b = (rng.standard_normal(s) for s in ((D, 4 * H), (H, 4 * H), (4 * H,)))
    args = [x, prev_h, prev_c, Wx, Wh, b]
    next_h, next_c, cache = lstm_step_forward(*args)
    dnext_h, dnext_c = rng.standard_normal(next_h.shape), rng.standard_normal(next_c.shape)
    before = [dnext_h.copy(), dnext_c.copy()]
    grads = lstm_step_backward(dnext_h, dnext_c, cache)
    _assert_unchanged(before, [dnext_h, dnext_c], ["dnext_h", "dnext_c"])
    _check_grads(lambda *a: list(lstm_step_forward(*a)[:2]), args,
                 ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"], grads, [dnext_h, dnext_c])


def test_lstm_forward_known_values():
    # CS231n's published values for these linspace inputs; the initial cell state is zero.
    N, D, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.2, 0.7, num=4 * H)
    h, _ = lstm_forward(x, h0, Wx, Wh, b)
    expected_h = np.asarray([
        [[0.01764008, 0.01823233, 0.01882671, 0.0194232],
         [0.11287491, 0.12146228, 0.13018446, 0.13902939],
         [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
        [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
         [0.6704845, 0.69350089, 0.71486014, 0.7346449],
         [0.81733511, 0.83677871, 0.85403753, 0.86935314]]])
    assert h.shape == (N, T, H), f"h: expected shape {(N, T, H)}, got {h.shape}"
    assert rel_error(h, expected_h) < 1e-7, f"h: relative error {rel_error(h, expected_h):.1e}"


@pytest.mark.parametrize("N,T,D,H", [(2, 3, 4, 5), (1, 1, 3, 2)])
def test_lstm_forward_backward_numeric(N, T, D, H):
    rng = _rng(2)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = (rng.standard_normal(s) for s in ((D, 4 * H), (H, 4 * H), (4 * H,)))
    args = [x, h0, Wx, Wh, b]
    before = [a.copy() for a in args]
    h, cache = lstm_forward(*args)
    _assert_unchanged(before, args, ["x", "h0", "Wx", "Wh", "b"])
    assert h.shape == (N, T, H), f"h: expected shape {(N, T, H)}, got {h.shape}"
    # the forward over T steps equals T calls of the step function, from a zero cell state
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(T):
        prev_h, prev_c, _ = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        assert rel_error(h[:, t], prev_h) < 1e-10, f"h[:, {t}] differs from lstm_step_forward"
    dh = rng.standard_normal(h.shape)
    dh_before = dh.copy()
    grads = lstm_backward(dh, cache)
    _assert_unchanged([dh_before], [dh], ["dh"])
    _check_grads(lambda *a: lstm_forward(*a)[0], args, ["dx", "dh0", "dWx", "dWh", "db"],
                 grads, dh)


FLOAT32_CAUSE = ("float32 inputs must give float32 outputs. Under NumPy 2 a NumPy scalar such as "
                 "np.sqrt(H), or an array made with np.zeros(shape) (float64 by default), turns "
                 "float32 into float64; a Python float (math.sqrt(H)), np.zeros_like(x) or "
                 "np.zeros(shape, dtype=x.dtype) does not")


def _float32_outputs(name):
    """{output name: array} of function ``name`` called on float32 inputs (a backward function
    on the cache of its forward, called on float32 inputs)."""
    rng = _rng(3)
    N, T, D, H = 2, 3, 4, 5
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    Wx, Wh, b = f32(D, 4 * H), f32(H, 4 * H), f32(4 * H)
    if name.startswith("lstm_step"):
        next_h, next_c, cache = lstm_step_forward(f32(N, D), f32(N, H), f32(N, H), Wx, Wh, b)
        if name == "lstm_step_forward":
            return {"next_h": next_h, "next_c": next_c}
        return dict(zip(["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"],
                        lstm_step_backward(f32(N, H), f32(N, H), cache)))
    h, cache = lstm_forward(f32(N, T, D), f32(N, H), Wx, Wh, b)
    if name == "lstm_forward":
        return {"h": h}
    return dict(zip(["dx", "dh0", "dWx", "dWh", "db"], lstm_backward(f32(N, T, H), cache)))


@pytest.mark.parametrize("name", ["lstm_step_forward", "lstm_step_backward", "lstm_forward",
                                  "lstm_backward"])
def test_float32_in_float32_out(name):
    wrong = {k: str(v.dtype) for k, v in _float32_outputs(name).items()
             if np.asarray(v).dtype != np.float32}
    assert not wrong, f"{name} returned {wrong}: {FLOAT32_CAUSE}"


SATURATION = ("exp() overflows to inf for |z| beyond ~710 in float64 (~89 in float32) and "
              "inf / inf is NaN: use the given sigmoid and np.tanh, not formulas with exp")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_saturation(dtype):
    """Gate pre-activations of +-2000: the gates saturate at 0 and 1, nothing is NaN."""
    rng = _rng(9)
    N, T, D, H = 3, 2, 5, 4
    x = (rng.standard_normal((N, T, D)) * 500).astype(dtype)
    h0 = (rng.standard_normal((N, H)) * 500).astype(dtype)
    c0 = rng.standard_normal((N, H)).astype(dtype)
    Wx, Wh, b = (rng.standard_normal(s).astype(dtype) for s in ((D, 4 * H), (H, 4 * H), (4 * H,)))
    a = x[:, 0].astype(np.float64) @ Wx + h0.astype(np.float64) @ Wh + b
    i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 2 * H:3 * H])
    c = f * c0 + i * np.tanh(a[:, 3 * H:])
    next_h, next_c, _ = lstm_step_forward(x[:, 0], h0, c0, Wx, Wh, b)
    assert np.all(np.isfinite(next_h)) and np.all(np.isfinite(next_c)), \
        f"lstm_step_forward returned NaN or inf: {SATURATION}"
    assert np.allclose(next_c, c, atol=1e-4) and np.allclose(next_h, o * np.tanh(c), atol=1e-4)
    h, _ = lstm_forward(x, h0, Wx, Wh, b)
    assert np.all(np.isfinite(h)), f"lstm_forward returned NaN or inf: {SATURATION}"
