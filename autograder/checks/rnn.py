"""Checks of seqlab/rnn_layers.py (notebook 01)."""
import numpy as np

from autograder import reference
from autograder.checks import twins
from autograder.checks.core import (
    F32,
    F64,
    Call,
    Failed,
    compare,
    import_torch,
    matches,
    non_finite,
    perturbations,
    register,
    require_array,
    require_numeric_grad,
    require_right,
    seeded,
    sizes_str,
)
from autograder.checks.hints import Hint, require_unchanged
from autograder.checks.numpy_specs import LayerSpec, case, compare_outputs, layer_checks, scaled

MODULE = "rnn_layers"


def _rnn_no_recurrent_grad(inputs, douts):
    """rnn_backward that ignores the gradient flowing back from step t+1."""
    ref = reference.module(MODULE)
    x, h0, Wx, Wh, b = (inputs[k] for k in ("x", "h0", "Wx", "Wh", "b"))
    h, _ = ref.rnn_forward(x, h0, Wx, Wh, b)
    dh = douts["dh"]
    da = dh * (1 - h * h)
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    return {"dx": da @ Wx.T, "dh0": da[:, 0] @ Wh.T,
            "dWx": np.einsum("ntd,nth->dh", x, da), "dWh": np.einsum("ntk,nth->kh", h_prev, da),
            "db": da.sum(axis=(0, 1))}


def _embed_lost_repeats(inputs, douts):
    x, W = inputs["x"], inputs["W"]
    dW = np.zeros_like(W)
    dW[x] += douts["dout"]
    return {"dW": dW}


def _tanh_grad_not_squared(inputs, douts):
    x, prev_h, Wx, Wh, b = (inputs[k] for k in ("x", "prev_h", "Wx", "Wh", "b"))
    nh = np.tanh(x @ Wx + prev_h @ Wh + b)
    da = douts["dnext_h"] * (1 - nh)
    return {"dx": da @ Wx.T, "dprev_h": da @ Wh.T, "dWx": x.T @ da, "dWh": prev_h.T @ da,
            "db": da.sum(0)}


def _make_step(rng, N, D, H):
    return dict(x=rng.standard_normal((N, D)), prev_h=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, H)) * 0.5, Wh=rng.standard_normal((H, H)) * 0.5,
                b=rng.standard_normal(H) * 0.5)


def _make_seq(rng, N, T, D, H):
    return dict(x=rng.standard_normal((N, T, D)), h0=rng.standard_normal((N, H)),
                Wx=rng.standard_normal((D, H)) * 0.4, Wh=rng.standard_normal((H, H)) * 0.4,
                b=rng.standard_normal(H) * 0.3)


def _make_embed(rng, N, T, V, D, int32=False):
    x = rng.integers(0, V, size=(N, T))
    if N * T > V:
        x.reshape(-1)[:2] = x.reshape(-1)[-1]  # make sure an index repeats
    return dict(x=x.astype(np.int32 if int32 else np.int64), W=rng.standard_normal((V, D)))


def _make_affine(rng, N, T, D, M):
    return dict(x=rng.standard_normal((N, T, D)), w=rng.standard_normal((D, M)),
                b=rng.standard_normal(M))


RNN_STEP = LayerSpec(
    module=MODULE, forward="rnn_step_forward", backward="rnn_step_backward",
    inputs=["x", "prev_h", "Wx", "Wh", "b"], outs=["next_h", "cache"], make=_make_step,
    sizes=[dict(N=3, D=5, H=4), dict(N=1, D=3, H=2), dict(N=4, D=1, H=6)],
    upstream=["next_h"], torch_forward=twins.rnn_step,
    large=scaled(x=400.0, prev_h=400.0), saturating=True, seed=11,
    backward_hints=[Hint(_tanh_grad_not_squared,
                         "the derivative of tanh(a) is 1 - tanh(a)**2 (squared)")])

RNN = LayerSpec(
    module=MODULE, forward="rnn_forward", backward="rnn_backward",
    inputs=["x", "h0", "Wx", "Wh", "b"], outs=["h", "cache"], make=_make_seq,
    sizes=[dict(N=2, T=4, D=5, H=3), dict(N=1, T=1, D=2, H=4), dict(N=3, T=6, D=4, H=7)],
    upstream=["h"], torch_forward=twins.rnn, large=scaled(x=600.0, h0=600.0), saturating=True,
    seed=12,
    backward_hints=[Hint(_rnn_no_recurrent_grad,
                         "the gradient reaching h[:, t] is dh[:, t] (from above) plus the "
                         "gradient flowing back from step t+1; yours ignores the second")])

EMBED = LayerSpec(
    module=MODULE, forward="word_embedding_forward", backward="word_embedding_backward",
    inputs=["x", "W"], outs=["out", "cache"], make=_make_embed,
    sizes=[dict(N=2, T=5, V=4, D=3), dict(N=1, T=1, V=3, D=2),
           dict(N=3, T=4, V=10, D=6, int32=True)],
    upstream=["out"], torch_forward=twins.embed, int_inputs=("x",), seed=13,
    backward_hints=[Hint(_embed_lost_repeats,
                         "`dW[x] += dout` keeps only one of the updates of a word that appears "
                         "several times; accumulate with np.add.at (see the docstring)")])

AFFINE = LayerSpec(
    module=MODULE, forward="temporal_affine_forward", backward="temporal_affine_backward",
    inputs=["x", "w", "b"], outs=["out", "cache"], make=_make_affine,
    sizes=[dict(N=2, T=3, D=4, M=5), dict(N=1, T=1, D=3, M=2), dict(N=3, T=2, D=6, M=1)],
    upstream=["out"], torch_forward=twins.affine, large=scaled(x=1e3), seed=14)


# temporal_softmax_loss (a forward that returns its own gradient)
LOSS_API = "temporal_softmax_loss"


def _make_loss(rng, N, T, V, scale=1.0, offset=0.0, all_masked=False):
    x = rng.standard_normal((N, T, V)) * scale + offset
    y = rng.integers(0, V, size=(N, T))
    if all_masked:
        return dict(x=x, y=y, mask=np.zeros((N, T), dtype=bool))
    m = rng.random((N, T)) < 0.7
    m[0, 0] = True
    if N * T > 2:
        m.reshape(-1)[-1] = False
    return dict(x=x, y=y, mask=m)


def _ref_loss(inp):
    loss, dx = reference.module(MODULE).temporal_softmax_loss(
        np.array(inp["x"], dtype=np.float64), inp["y"], inp["mask"])
    return {"loss": np.asarray(float(loss)), "dx": np.asarray(dx)}


def _torch_loss(inp):
    torch = import_torch()
    x = torch.tensor(np.asarray(inp["x"], dtype=np.float64), requires_grad=True)
    y = torch.from_numpy(np.asarray(inp["y"], dtype=np.int64))
    m = torch.from_numpy(np.asarray(inp["mask"], dtype=bool))
    loss = twins.softmax_loss(x, y, m)
    loss.backward()
    return {"loss": np.asarray(loss.item()), "dx": x.grad.numpy()}


def _normalised(factors):
    """A mistaken normalisation: the loss and dx times mul / div, ``factors(N, T, k) -> (mul,
    div)`` (k: the number of unmasked positions, at least 1)."""
    def variant(inp, _):
        r = _ref_loss(inp)
        mul, div = factors(*inp["y"].shape, max(int(np.sum(inp["mask"])), 1))
        return {"loss": r["loss"] * mul / div, "dx": r["dx"] * mul / div}
    return variant


LOSS_HINTS = [
    Hint(_normalised(lambda N, T, k: (1, T)),
         "the loss is averaged over N*T; it must be summed over time and averaged over the batch "
         "only (divide by N)"),
    Hint(_normalised(lambda N, T, k: (N, k)),
         "the loss is divided by the number of unmasked positions; divide by N"),
    Hint(lambda inp, _: _ref_loss(dict(inp, mask=np.ones_like(inp["mask"]))),
         "masked positions count: multiply the loss and dx by the mask"),
    Hint(_normalised(lambda N, T, k: (N, 1)), "the loss is not divided by the batch size N"),
]


# scores ~ N(1e4, 1000^2): the label's probability underflows to 0 in float64 (a gap > 745)
LARGE_SCORES = 1000.0
MASKED_SIZE, NUMERIC_SIZE = dict(N=3, T=5, V=6), dict(N=2, T=3, V=4)


def _loss_step(args=("$x", "$y", "$mask"), out=("loss", "dx")):
    return {"op": "call", "fn": f"{MODULE}.{LOSS_API}", "args": list(args), "out": list(out),
            "label": LOSS_API}


def _loss_check(title, inputs, evaluate, steps=(), returns=("loss", "dx"), points=1.0,
                what=""):
    """A :func:`case` of the loss on ``inputs()`` (x, y, mask and the arrays of ``steps``): the
    call runs the loss on x, y and mask, then ``steps``, and sends back ``returns``. ``what``:
    for a property check, the property: it counts only when the same call's loss and dx are
    right."""
    def call(inp):
        return Call(steps=[_loss_step(), *steps], returns=list(returns), inputs=inp)

    return case(inputs, call, evaluate, what, _ref_loss, api=LOSS_API, title=title,
                points=points, module=MODULE)


LOGSUMEXP_HINT = ("exp() of a large score overflows to inf, and the log of a probability that "
                  "underflowed to 0 is -inf (even after subtracting the maximum): compute the "
                  "log-probabilities directly with log-sum-exp, log_probs = shifted - "
                  "log(sum(exp(shifted))) with shifted = x - max(x), instead of log(softmax)")


def _loss_value_check(title, size, seed, dtype=np.float64, against="reference", points=1.0,
                      gate=False, **kw):
    """``gate``: the inputs are degenerate (every position masked: the right answer is zero),
    so the same call also computes the loss with an ordinary mask, which must be right too."""
    dname = np.dtype(dtype).name
    ctx = f" ({sizes_str(**size)}, {dname})"

    def inputs():
        inp = _make_loss(seeded(seed), **size, **kw)
        inp["x"] = inp["x"].astype(dtype)
        if gate:
            inp["mask_g"] = _make_loss(seeded(seed + 100), **size)["mask"]
        return inp

    def evaluate(inp, r, check):
        expected = check.memo("expected", lambda: (_torch_loss if against == "torch"
                                                   else _ref_loss)(inp))
        tol = F64 if dtype == np.float64 else F32
        try:
            loss = require_array(r, "loss", kinds=("ndarray",), allow_scalar=True, shape=())
            if loss.dtype.kind != "f":
                raise Failed(f"loss: expected a float, got {r.value('loss').describe()}")
            compare("loss", loss, expected["loss"], tol, ctx)
        except Failed as f:
            raise Failed(f.message, f.hint or _loss_hint(check, inp, r), f.detail) from None
        compare_outputs(check, "loss", r, ["dx"], expected, tol, dname, ctx, LOSS_HINTS,
                        inp, None, LOGSUMEXP_HINT)
        if gate:
            ordinary = check.memo("gate", lambda: _ref_loss(dict(inp, mask=inp["mask_g"])))
            require_right(r, ["loss", "dx"], ordinary, tol, "this check",
                          names_as=("loss_g", "dx_g"))
        return f"loss and dx match{ctx}"

    steps = [_loss_step(("$x", "$y", "$mask_g"), ("loss_g", "dx_g"))] if gate else []
    return _loss_check(f"{title} ({sizes_str(**size)}, {dname})", inputs, evaluate, steps,
                       ("loss", "dx", "loss_g", "dx_g") if gate else ("loss", "dx"), points)


def _loss_hint(check, inp, r):
    if non_finite(r.array("loss")):
        return LOGSUMEXP_HINT
    expected = _ref_loss(inp)
    for i, hint in enumerate(LOSS_HINTS):
        v = check.memo(("loss-hint", i), lambda h=hint: h.variant(inp, None))
        if matches(v["loss"], expected["loss"]):
            continue
        if r.array("loss") is not None and matches(r.array("loss").reshape(-1)[:1].reshape(()),
                                                   v["loss"]):
            return hint.message
    return ""


def _masked_inputs():
    inp = _make_loss(seeded(28), **MASKED_SIZE)
    x2 = inp["x"].copy()
    x2[~inp["mask"]] += seeded(29).standard_normal(x2[~inp["mask"]].shape) * 5
    inp["x2"] = x2
    return inp


def _masked(inp, r, check):
    """Masked positions contribute nothing: changing their scores (x2) changes neither the
    loss nor dx (a property of the student's own function)."""
    loss = require_array(r, "loss", allow_scalar=True)
    loss2 = require_array(r, "loss2", allow_scalar=True)
    dx = require_array(r, "dx", shape=inp["x"].shape)
    require_array(r, "dx2", shape=inp["x"].shape)
    if loss.size != 1 or loss2.size != 1:  # never broadcast two student arrays together
        raise Failed(f"{LOSS_API} must return a scalar loss; got shapes "
                     f"{tuple(loss.shape)} and {tuple(loss2.shape)}")
    if not np.allclose(loss, loss2, rtol=1e-9, atol=1e-12):
        raise Failed("changing the scores at masked positions changed the loss "
                     f"({float(loss):.6g} -> {float(loss2):.6g}); masked positions must not "
                     "count", hint="multiply each position's loss by the mask")
    masked = ~inp["mask"]
    if np.any(dx[masked] != 0):
        raise Failed(f"dx is not zero at masked positions (max |dx| there: "
                     f"{float(np.max(np.abs(dx[masked]))):.3g})",
                     hint="multiply dx by mask[:, :, None]")
    return "masked positions contribute nothing"


def _numeric_inputs():
    inp = _make_loss(seeded(30), **NUMERIC_SIZE)
    inp["stack.x"] = perturbations(inp["x"])
    return inp


# the loss at each perturbation of x (stack.x), sent back as f.x.0
_PERTURBED_LOSS = {"op": "map_inputs", "fn": f"{MODULE}.{LOSS_API}", "args": ["$x", "$y", "$mask"],
                   "wrt": "x", "stack": "stack.x", "picks": [0], "out": "f.x", "label": LOSS_API}


def _numeric(inp, r, check):
    """dx agrees with centered differences of the student's own loss."""
    require_numeric_grad(r, "dx", inp["x"].shape, ["f.x.0"], [np.asarray(1.0)],
                         "your loss at perturbed scores",
                         " (compared with centered differences of your loss)")
    return "dx agrees with numeric gradients of your loss"


def _unchanged(inp, r, check):
    require_unchanged(r, LOSS_API, {k: inp[k] for k in ("x", "y", "mask")},
                      f"{LOSS_API} modified its argument(s) {{names}}",
                      "e.g. `x -= x.max(...)` shifts the caller's scores in place; write "
                      "`shifted = x - x.max(...)`", prefix="")
    return "inputs unchanged"


@register(MODULE)
def build() -> list:
    return [c for spec in (RNN_STEP, RNN, EMBED, AFFINE) for c in layer_checks(spec)] + [
        _loss_value_check("values vs reference", dict(N=3, T=4, V=5), 21, points=1.0),
        _loss_value_check("values vs reference", dict(N=1, T=1, V=3), 22, points=0.5),
        _loss_value_check("values vs reference", dict(N=4, T=6, V=10), 23, points=0.5),
        _loss_value_check("values vs PyTorch autograd", dict(N=2, T=5, V=6), 24,
                          against="torch", points=1.0),
        _loss_value_check("float32 in -> float32 dx", dict(N=3, T=4, V=5), 25,
                          dtype=np.float32, points=1.0),
        _loss_value_check("numerically stable for large scores", dict(N=2, T=3, V=4), 26,
                          scale=LARGE_SCORES, offset=1e4, points=0.5),
        _loss_value_check("numerically stable for large scores", dict(N=2, T=3, V=4), 26,
                          dtype=np.float32, scale=LARGE_SCORES, offset=1e4, points=0.5),
        _loss_value_check("every position masked", dict(N=2, T=3, V=4), 27, all_masked=True,
                          points=0.5, gate=True),
        _loss_check(f"masked positions contribute nothing ({sizes_str(**MASKED_SIZE)})",
                    _masked_inputs, _masked, [_loss_step(("$x2", "$y", "$mask"), ("loss2", "dx2"))],
                    ("loss", "dx", "loss2", "dx2"), what="\"masked positions contribute nothing\""),
        _loss_check(f"dx vs numeric gradient of your loss ({sizes_str(**NUMERIC_SIZE)})",
                    _numeric_inputs, _numeric, [_PERTURBED_LOSS], ("loss", "dx", "f.x.0"),
                    what="agreeing with numeric gradients"),
        _loss_check("does not modify its inputs", lambda: _make_loss(seeded(31), N=2, T=4, V=5),
                    _unchanged, returns=("x", "y", "mask", "loss", "dx"),
                    what="\"does not modify its inputs\""),
    ]
