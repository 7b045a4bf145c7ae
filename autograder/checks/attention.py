"""Checks of seqlab/attention_layers.py (notebook 03)."""
import math

import numpy as np

from autograder.checks import twins
from autograder.checks.core import Failed, register, require_array, sizes_str
from autograder.checks.hints import Hint
from autograder.checks.lstm import gated_spec, lstm_cell_np
from autograder.checks.numpy_specs import LayerSpec, check_of, layer_checks, scaled

MODULE = "attention_layers"


def _np_attention(prev_h, A, scale=True, axis=1):
    H = A.shape[2]
    scores = np.einsum("nph,nh->np", A, prev_h) / (math.sqrt(H) if scale else 1.0)
    scores = scores - scores.max(axis=axis, keepdims=True)
    w = np.exp(scores)
    w = w / w.sum(axis=axis, keepdims=True)
    return np.einsum("np,nph->nh", w, A), w


def _np_att_lstm(inp, init):
    """{h, attn_weights} of an independent numpy attention_lstm_forward on the inputs ``inp``
    (for hints), started from h0 = c0 = 0 (``init="zeros"``) or from c0 = 0 ("c0 zero")."""
    x, A, Wx, Wh, Wattn, b = (inp[k] for k in ("x", "A", "Wx", "Wh", "Wattn", "b"))
    N, T, _ = x.shape
    zeros = np.zeros((N, A.shape[2]))
    h, c = (zeros, zeros) if init == "zeros" else (A.mean(axis=1), zeros)
    hs, ws = [], []
    for t in range(T):
        attn, w = _np_attention(h, A)
        h, c = lstm_cell_np(x[:, t] @ Wx + h @ Wh + attn @ Wattn + b, c)
        hs.append(h)
        ws.append(w)
    return {"h": np.stack(hs, 1), "attn_weights": np.stack(ws, 1)}


def _make_attn(rng, N, P, H):
    return dict(prev_h=rng.standard_normal((N, H)), A=rng.standard_normal((N, P, H)))


def _make_step(rng, N, D, H):
    return dict(x=rng.standard_normal((N, D)), prev_h=rng.standard_normal((N, H)),
                prev_c=rng.standard_normal((N, H)), attn=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, 4 * H)) * 0.5, Wh=rng.standard_normal((H, 4 * H)) * 0.5,
                Wattn=rng.standard_normal((H, 4 * H)) * 0.5, b=rng.standard_normal(4 * H) * 0.5)


def _make_seq(rng, N, T, D, P, H):
    return dict(x=rng.standard_normal((N, T, D)), A=rng.standard_normal((N, P, H)),
                Wx=rng.standard_normal((D, 4 * H)) * 0.4, Wh=rng.standard_normal((H, 4 * H)) * 0.4,
                Wattn=rng.standard_normal((H, 4 * H)) * 0.4, b=rng.standard_normal(4 * H) * 0.3)


def _weights_sum_check(spec, size):
    """The attention weights returned (attn_weights) are a probability distribution over the P
    positions."""
    def evaluate(inp, r, check):
        expected = check.memo("expected", lambda: spec.ref_forward(inp)[0])
        w = require_array(r, "attn_weights", shape=expected["attn_weights"].shape,
                          dtype="float64")
        if not np.all(np.isfinite(w)) or np.any(w < -1e-12):
            raise Failed("attn_weights: weights must be finite and non-negative")
        worst = float(np.max(np.abs(w.sum(axis=-1) - 1)))
        if worst > 1e-8:
            hint = ("the softmax is taken over the wrong axis (it sums to one over the batch)"
                    if np.allclose(w.sum(axis=0), 1) else "")
            raise Failed(f"attn_weights: the weights over the P positions must sum to one; "
                         f"a row sums to {1 + worst if worst < 1 else worst:.6g}", hint)
        return "each row of attn_weights sums to one"

    return [check_of(spec, spec.forward, f"attention weights sum to one over P "
                     f"({sizes_str(**size)})", 1.0, lambda: spec.draw(size, 700),
                     spec.forward_call, evaluate, "this property")]


def _attention_spec():
    return LayerSpec(
        module=MODULE, forward="dot_product_attention_forward",
        backward="dot_product_attention_backward", inputs=["prev_h", "A"],
        outs=["attn", "attn_weights", "cache"], upstream=["attn"], make=_make_attn,
        sizes=[dict(N=3, P=16, H=4), dict(N=1, P=1, H=3), dict(N=2, P=5, H=7)],
        torch_forward=twins.attention, large=scaled(A=30.0, prev_h=30.0), saturating=True,
        seed=51, extra_forward_checks=[lambda s: _weights_sum_check(s, dict(N=4, P=16, H=5))],
        forward_hints=[
            Hint(lambda inp, _: dict(zip(("attn", "attn_weights"),
                                         _np_attention(inp["prev_h"], inp["A"], scale=False))),
                 "the scores are not scaled by 1/sqrt(H)"),
            Hint(lambda inp, _: dict(zip(("attn", "attn_weights"),
                                         _np_attention(inp["prev_h"], inp["A"], axis=0))),
                 "the softmax is taken over the wrong axis: normalise over the P positions "
                 "(axis 1), not over the batch")])


def _step_spec():
    return gated_spec(
        module=MODULE, forward="attention_lstm_step_forward",
        backward="attention_lstm_step_backward",
        inputs=["x", "prev_h", "prev_c", "attn", "Wx", "Wh", "Wattn", "b"],
        outs=["next_h", "next_c", "cache"], upstream=["next_h", "next_c"], make=_make_step,
        sizes=[dict(N=3, D=5, H=4), dict(N=1, D=2, H=3), dict(N=2, D=1, H=6)],
        torch_forward=twins.attention_lstm_step, large=scaled(x=400.0, attn=400.0),
        saturating=True, seed=52)


def _seq_spec():
    return gated_spec(
        module=MODULE, forward="attention_lstm_forward", backward="attention_lstm_backward",
        inputs=["x", "A", "Wx", "Wh", "Wattn", "b"], outs=["h", "attn_weights", "cache"],
        upstream=["h"], make=_make_seq,
        sizes=[dict(N=2, T=3, D=4, P=16, H=3), dict(N=1, T=1, D=2, P=4, H=5),
               dict(N=3, T=5, D=3, P=6, H=4)],
        torch_forward=twins.attention_lstm, large=scaled(x=500.0, A=20.0), saturating=True,
        seed=53, numeric_size=dict(N=2, T=3, D=3, P=4, H=3),
        extra_forward_checks=[lambda s: _weights_sum_check(s, dict(N=2, T=4, D=3, P=16, H=4))],
        forward_hints=[
            Hint(lambda inp, _: _np_att_lstm(inp, "zeros"), "h0 and c0 must both be the mean of "
                 "A over the P positions (yours start from zeros)"),
            Hint(lambda inp, _: _np_att_lstm(inp, "c0 zero"),
                 "the initial cell state c0 is also the mean of A (not zero)")])


@register(MODULE)
def build() -> list:
    return (layer_checks(_attention_spec()) + layer_checks(_step_spec())
            + layer_checks(_seq_spec()))
