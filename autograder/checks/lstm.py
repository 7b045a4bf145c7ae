"""Checks of seqlab/lstm_layers.py (notebook 02) and the gate-order hints shared with
attention_layers."""
import numpy as np

from autograder.checks import twins
from autograder.checks.core import register
from autograder.checks.hints import Hint
from autograder.checks.numpy_specs import LayerSpec, layer_checks, scaled

MODULE = "lstm_layers"

# Wrong gate orders students use, as the permutation of the four H-blocks that turns the
# student's layout into the reference's (i, f, o, g). Each is its own inverse.
WRONG_ORDERS = {
    "i, f, g, o": [0, 1, 3, 2],
    "f, i, o, g": [1, 0, 2, 3],
    "g, f, o, i": [3, 1, 2, 0],
}
GATE_KEYS = ("Wx", "Wh", "Wattn", "b")


def permute_blocks(arr, perm):
    H = arr.shape[-1] // 4
    return np.concatenate([arr[..., k * H:(k + 1) * H] for k in perm], axis=-1)


def gated_spec(**fields) -> LayerSpec:
    """The LayerSpec of a layer whose weights hold the four gates, the gate-order hints first:
    the student's result with weights W equals the reference's with permuted gate blocks (and
    permuted weight gradients)."""
    spec = LayerSpec(**fields)
    fwd_hints, bwd_hints = [], []
    for name, perm in WRONG_ORDERS.items():
        msg = (f"your result is what the gates give in the order {name}; API.md fixes the order "
               f"i, f, o, g (input, forget, output gates, then the candidate g = tanh)")

        def permuted(inp, perm=perm):
            return {k: permute_blocks(v, perm) if k in GATE_KEYS else v for k, v in inp.items()}

        def bwd(inp, douts, perm=perm):
            grads = spec.ref_backward(permuted(inp, perm), douts)
            return {g: permute_blocks(grads[g], perm) if k in GATE_KEYS else grads[g]
                    for g, k in zip(spec.grads, spec.grad_of)}

        fwd_hints.append(Hint(lambda inp, _, perm=perm: spec.ref_forward(permuted(inp, perm))[0],
                              msg))
        bwd_hints.append(Hint(bwd, msg))
    spec.forward_hints[:0], spec.backward_hints[:0] = fwd_hints, bwd_hints
    return spec


def lstm_cell_np(a: np.ndarray, prev_c: np.ndarray, tanh_c: bool = True) -> tuple:
    """(next_h, next_c) of an LSTM cell from its pre-activations ``a`` (N, 4H), gates in the
    order i, f, o, g (independent numpy, for hints). ``tanh_c=False``: the tanh is missing."""
    H = prev_c.shape[1]
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    i, f, o = sig(a[:, :H]), sig(a[:, H:2 * H]), sig(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    c = f * prev_c + i * g
    return o * (np.tanh(c) if tanh_c else c), c


def _lstm_np(x, h0, c0, Wx, Wh, b, tanh_c=True):
    """Independent numpy LSTM forward (for hints)."""
    h, c, hs = h0, c0, []
    for t in range(x.shape[1]):
        h, c = lstm_cell_np(x[:, t] @ Wx + h @ Wh + b, c, tanh_c)
        hs.append(h)
    return np.stack(hs, axis=1)


def _make_step(rng, N, D, H):
    return dict(x=rng.standard_normal((N, D)), prev_h=rng.standard_normal((N, H)),
                prev_c=rng.standard_normal((N, H)), Wx=rng.standard_normal((D, 4 * H)) * 0.5,
                Wh=rng.standard_normal((H, 4 * H)) * 0.5, b=rng.standard_normal(4 * H) * 0.5)


def _make_seq(rng, N, T, D, H):
    return dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, 4 * H)) * 0.4, Wh=rng.standard_normal((H, 4 * H)) * 0.4,
                b=rng.standard_normal(4 * H) * 0.3)


def _step_spec():
    return gated_spec(
        module=MODULE, forward="lstm_step_forward", backward="lstm_step_backward",
        inputs=["x", "prev_h", "prev_c", "Wx", "Wh", "b"], outs=["next_h", "next_c", "cache"],
        upstream=["next_h", "next_c"], make=_make_step,
        sizes=[dict(N=3, D=5, H=4), dict(N=1, D=2, H=3), dict(N=4, D=1, H=6)],
        torch_forward=twins.lstm_step, large=scaled(x=500.0, prev_h=500.0), saturating=True,
        seed=41)


def _seq_spec():
    return gated_spec(
        module=MODULE, forward="lstm_forward", backward="lstm_backward",
        inputs=["x", "h0", "Wx", "Wh", "b"], outs=["h", "cache"], upstream=["h"], make=_make_seq,
        sizes=[dict(N=2, T=4, D=5, H=3), dict(N=1, T=1, D=2, H=4), dict(N=3, T=6, D=4, H=2)],
        torch_forward=twins.lstm, large=scaled(x=500.0, h0=500.0), saturating=True, seed=42,
        forward_hints=[
            Hint(lambda inp, _: {"h": _lstm_np(inp["x"], inp["h0"], inp["h0"], inp["Wx"],
                                               inp["Wh"], inp["b"])},
                 "the initial cell state must be zero (not h0)"),
            Hint(lambda inp, _: {"h": _lstm_np(inp["x"], inp["h0"], np.zeros_like(inp["h0"]),
                                               inp["Wx"], inp["Wh"], inp["b"], tanh_c=False)},
                 "next_h = o * tanh(next_c): the tanh is missing")])


@register(MODULE)
def build() -> list:
    return layer_checks(_step_spec()) + layer_checks(_seq_spec())
