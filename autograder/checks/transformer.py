"""Checks of seqlab/transformer.py (notebook 04, PyTorch): the cases of each API name.

Functions are called on tensors made from seeded numpy draws. Modules are built by the
student's constructor (dropout 0, eval mode), moved to float64, and loaded with parameters drawn
here with numpy (so nothing depends on torch's random streams); they are compared with

- ``torch.nn`` (MultiheadAttention, TransformerEncoderLayer, TransformerDecoderLayer,
  F.scaled_dot_product_attention) with the same weights, and
- the reference module with the same state_dict (API.md fixes the parameter names),

and checked for properties that need no reference: attention weights sum to one over the keys,
causality (changing future tokens changes no earlier output), padding (extra padding changes
nothing), masked rows give zeros and never NaN, greedy decoding semantics, and post-LN rows of
mean 0 and variance 1 in train mode whatever the dropout mask. The framework: torch_specs.py.
"""
import math

import numpy as np

from autograder.checks import twins
from autograder.checks.core import (
    F32,
    F64,
    LOOSE,
    Failed,
    import_torch,
    register,
    require_array,
    require_right,
    seeded,
)
from autograder.checks.hints import Hint
from autograder.checks.torch_specs import (
    MODULE,
    TorchSpec,
    call,
    draw_state,
    grad,
    module,
    np_,
    ref,
    ref_module,
    t_,
    tensor,
)

# The checks of an API name run with these student functions and classes replaced by PyTorch
# library calls (autograder/substitutes.py; a step sends the source of the names it replaces
# only), so that a bug costs the points of the function it is in, not those of every function
# built on it.
_LAYERS = ("MultiHeadAttention", "FeedForward", "scaled_dot_product_attention")
_MODELS = _LAYERS + ("DecoderLayer", "causal_mask", "padding_mask")
SUBSTITUTED = {
    "MultiHeadAttention": ("scaled_dot_product_attention",),
    "EncoderLayer": _LAYERS,
    "DecoderLayer": _LAYERS,
    "Transformer": _MODELS + ("EncoderLayer",),
    "CaptioningTransformer": _MODELS,
}
# Dependencies no library call replaces: the student's own code runs, and a failure of it is
# named in the dependent's feedback ("depends on X, which fails its own checks: fix it first").
NOT_SUBSTITUTED = {
    "Transformer": ("positional_encoding",),
    "CaptioningTransformer": ("positional_encoding",),
}


def spec(api: str, **fields) -> TorchSpec:
    """The TorchSpec of ``api``, with its substitutes and its not substituted dependencies."""
    return TorchSpec(api=api, substituted=SUBSTITUTED.get(api, ()),
                     uses=NOT_SUBSTITUTED.get(api, ()), **fields)


# --- positional_encoding, causal_mask, padding_mask ------------------------------------------

def _pe_np(max_len, d, base=10000.0, swap=False, use_i=False):
    two_i = np.arange(0, d, 2)
    angle = np.arange(max_len)[:, None] / base ** ((two_i / 2 if use_i else two_i) / d)
    s, c = (np.cos, np.sin) if swap else (np.sin, np.cos)
    pe = np.zeros((max_len, d))
    pe[:, 0::2] = s(angle)
    pe[:, 1::2] = c(angle[:, : d // 2])
    return pe


# A float32 computation of p * w at p = 200 is off by ~eps32 * 200 ~ 2e-5: accepted; every
# real mistake (base, sin/cos, exponent) is off by more than 0.01 somewhere.
PE_TOL = dict(rtol=0.0, atol=1e-4)

PE = spec(
    "positional_encoding",
    steps=lambda d: [call(f"{MODULE}.positional_encoding", [d["max_len"], d["d_model"]], "pe")],
    expect=lambda d: {"pe": np_(ref().positional_encoding(d["max_len"], d["d_model"]))
                      .astype(np.float64)},
    outputs=[("pe", PE_TOL, "floating")],
    hints=[Hint(lambda d: {"pe": _pe_np(d["max_len"], d["d_model"], base=1000.0)},
                "the base is 10000, not 1000: PE[p, 2i] = sin(p / 10000^(2i/d_model))"),
           Hint(lambda d: {"pe": _pe_np(d["max_len"], d["d_model"], swap=True)},
                "sin goes to the even columns 2i and cos to the odd columns 2i+1"),
           Hint(lambda d: {"pe": _pe_np(d["max_len"], d["d_model"], use_i=True)},
                "the exponent is 2i/d_model, where 2i is the even column index (not "
                "i/d_model)")])


def _pe_checks():
    return [PE.check(f"values vs reference (max_len={n}, d_model={dm})", pts,
                     lambda n=n, dm=dm: {"max_len": n, "d_model": dm,
                                         "_ctx": f" (max_len={n}, d_model={dm})"})
            for n, dm, pts in ((50, 16, 1.5), (7, 5, 1.0), (1, 2, 0.5), (200, 64, 1.0))]


def _tri(d, k=0, upper=False):
    ones = np.ones((d["T"], d["T"]), bool)
    return {"mask": np.triu(ones, k) if upper else np.tril(ones, k)}


CAUSAL = spec(
    "causal_mask",
    steps=lambda d: [call(f"{MODULE}.causal_mask", [d["T"]], "mask", kwargs=d["kwargs"])],
    expect=lambda d: {"mask": np_(ref().causal_mask(d["T"]))}, outputs=[("mask", F64, "bool")],
    hints=[Hint(lambda d: _tri(d, upper=True),
                "the mask is transposed: query i may attend to keys j <= i (lower triangle)"),
           Hint(lambda d: _tri(d, -1),
                "off by one: a position may attend to itself (the diagonal is True)"),
           Hint(lambda d: _tri(d, 1),
                "off by one: query i may see key i+1 (only keys j <= i are allowed)"),
           Hint(lambda d: {"mask": ~_tri(d)["mask"]},
                "True means \"may attend\" (the convention of F.scaled_dot_product_attention), "
                "not \"masked out\"")])

PADDING = spec(
    "padding_mask",
    steps=lambda d: [tensor("tokens"),
                     call(f"{MODULE}.padding_mask", ["$t.tokens", d["pad"]], "mask")],
    expect=lambda d: {"mask": np_(ref().padding_mask(t_(d["tokens"]), d["pad"]))},
    outputs=[("mask", F64, "bool")],
    hints=[Hint(lambda d: {"mask": (d["tokens"] == d["pad"])[:, None, :]},
                "True must mark the keys that are NOT padding (True = may attend)")])


def _mask_checks():
    out = [CAUSAL.check(f"values and dtype bool (T={T}"
                        f"{', device=' + repr(kw['device']) if kw else ''})", pts,
                        lambda T=T, kw=kw: {"T": T, "kwargs": kw, "_ctx": f" (T={T})"})
           for T, kw, pts in ((5, {}, 1.5), (1, {}, 0.5), (8, {"device": "cpu"}, 1.0))]
    for (N, T, pad, pts) in ((3, 6, 0, 1.5), (1, 1, 0, 0.5), (4, 5, 2, 1.0)):
        def data(N=N, T=T, pad=pad):
            rng = seeded(900 + N * 10 + T)
            tok = rng.integers(1, 9, size=(N, T))
            tok[tok == pad] = pad + 1
            for n in range(N):
                k = int(rng.integers(0, T))
                if n > 0 and T > 1:
                    tok[n, T - k:] = pad
            return {"tokens": tok.astype(np.int64), "pad": pad,
                    "_ctx": f" (N={N}, T={T}, pad_idx={pad})"}

        out.append(PADDING.check(f"shape (N, 1, T), dtype bool, values (N={N}, T={T}, "
                                 f"pad_idx={pad})", pts, data))
    return out


# --- scaled_dot_product_attention ------------------------------------------------------------

def _sdpa_np(q, k, v, mask=None, scale=True, axis=-1, invert=False):
    scores = q @ np.swapaxes(k, -1, -2) / (math.sqrt(q.shape[-1]) if scale else 1.0)
    if mask is not None:
        m = ~mask if invert else mask
        scores = np.where(m, scores, -np.inf)
    mx = np.max(scores, axis=axis, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0)
    e = np.exp(scores - mx)
    s = e.sum(axis=axis, keepdims=True)
    w = np.where(s > 0, e / np.where(s > 0, s, 1), 0)
    return w @ v, w


def _sdpa_variant(**kw):
    def f(d):
        o, w = _sdpa_np(d["q"], d["k"], d["v"], d.get("mask"), **kw)
        return {"out": o, "weights": w}
    return f


def _sdpa_data(seed, qshape, kshape, vshape, mask=None, ctx=""):
    def data():
        rng = seeded(seed)
        d = {"q": rng.standard_normal(qshape), "k": rng.standard_normal(kshape),
             "v": rng.standard_normal(vshape), "_ctx": ctx}
        if mask is not None:
            d["mask"] = mask(rng)
        return d
    return data


NAN_HINT = ("a row whose keys are all masked is softmax(-inf, ..., -inf) = NaN: give it zero "
            "weights (e.g. weights.masked_fill(~mask, 0.0) after the softmax)")
SOFTMAX_HINT = ("exp() overflows to inf once a score passes ~710 in float64 (~89 in float32) "
                "and inf / inf is NaN: use torch.softmax, or subtract each row's maximum score "
                "before exp")


def _sdpa_large_data(seed, dtype):
    """Scores ~ 1e3 (exp overflows in float64 past 710) whose gaps between keys are ~ 1, so
    that the softmax is not one-hot and a missing 1/sqrt(d) still shows."""
    def data():
        rng = seeded(seed)
        common = rng.standard_normal(8)
        q = rng.standard_normal((2, 4, 8)) * 3 + common * 30
        k = common * 12 + rng.standard_normal((2, 5, 8)) * 0.05
        d = {"q": q, "k": k, "v": rng.standard_normal((2, 5, 3)),
             "_ctx": f" (scores ~ 1e3, {dtype})"}
        return {n: (a.astype(dtype) if isinstance(a, np.ndarray) else a) for n, a in d.items()}
    return data


def _sdpa_args(d):
    """The names of d's inputs of scaled_dot_product_attention: q, k, v and the mask if any."""
    return [n for n in ("q", "k", "v", "mask") if n in d]


def _sdpa_steps(d, grad=False):
    return ([tensor(n, grad=grad and n != "mask") for n in _sdpa_args(d)]
            + [call(f"{MODULE}.scaled_dot_product_attention",
                    ["$t." + n for n in _sdpa_args(d)], ["out", "weights"])])


def _sdpa_expect(d):
    o, w = ref().scaled_dot_product_attention(*(t_(d[n]) for n in _sdpa_args(d)))
    return {"out": np_(o), "weights": np_(w)}


def _sdpa_properties(d, r, expected):
    # (runs once out and weights matched the reference, which is finite: so are they)
    w = r.array("weights")
    if "mask" in d:
        m = np.broadcast_to(d["mask"], w.shape)
        if np.any(w[~m] != 0):
            raise Failed("masked keys get non-zero weight" + d["_ctx"])
        rows = m.any(axis=-1)
        sums = w.sum(axis=-1)
        if not np.allclose(sums[rows], 1, atol=1e-10) or np.any(sums[~rows] != 0):
            raise Failed("each query's weights must sum to one over the allowed keys "
                         "(zero for a row with no allowed key)" + d["_ctx"])
    elif not np.allclose(w.sum(axis=-1), 1, atol=1e-10):
        raise Failed("each query's weights must sum to one over the keys (last axis)"
                     + d["_ctx"])


SDPA = spec(
    "scaled_dot_product_attention", steps=_sdpa_steps, expect=_sdpa_expect,
    outputs=[("out", F64, "floating"), ("weights", F64, "floating")],
    hints=[Hint(_sdpa_variant(scale=False), "the scores are not scaled by 1/sqrt(d)"),
           Hint(_sdpa_variant(axis=-2), "the softmax is taken over the wrong axis: each "
                "query's weights must sum to one over the keys (the last axis)"),
           Hint(_sdpa_variant(invert=True), "True in the mask means \"may attend\": fill the "
                "scores where the mask is False with -inf")])


def _key_padding(N, Tk, *last):
    """An (N, 1, Tk) key mask (True = may attend) whose row n ends with ``last[n]`` padded
    keys."""
    m = np.ones((N, 1, Tk), bool)
    for n, k in enumerate(last[:N]):
        m[n, 0, Tk - k:] = False
    return m


def _pad_mask(N, Tq, Tk, full_row=False):
    def f(rng):
        m = np.broadcast_to(_key_padding(N, Tk, 2, 1), (N, Tq, Tk)).copy()
        if full_row:
            m[0, 1, :] = False
        return m
    return f


def _scaled(d, f, *names):
    """d with the parameters ``names`` of its state multiplied by ``f`` (a known mistake that
    leaves out a scale factor)."""
    return dict(d, state=dict(d["state"], **{n: d["state"][n] * f for n in names}))


def _with(data, **more):
    """The case data ``data()`` with the entries ``more[name](d)`` added or replaced."""
    def with_more():
        d = data()
        d.update((name, f(d)) for name, f in more.items())
        return d
    return with_more


def _ref_grads(d, names, forward, params=None):
    """The gradients of the reference ``forward({name: tensor})`` with upstream ``d["dout"]``:
    "g.t.<name>" for d's arrays ``names``, "g.param.<name>" for module ``params``' parameters."""
    xs = {n: t_(d[n]).requires_grad_(True) for n in names}
    forward(xs).backward(t_(d["dout"]))
    out = {"g.t." + n: np_(x.grad) for n, x in xs.items()}
    if params is not None:
        out.update({"g.param." + k: np_(p.grad) for k, p in params.named_parameters()})
    return out


def _sdpa_checks():
    out = [SDPA.check(title, pts, data, extra=_sdpa_properties, nan_hint=NAN_HINT)
           for title, pts, data in [
        ("values vs reference, no mask (N=2, Tq=5, Tk=6, d=4, dv=3)", 1.0,
         _sdpa_data(1001, (2, 5, 4), (2, 6, 4), (2, 6, 3), ctx=" (no mask)")),
        ("values vs reference, batch dims (N=2, h=3, Tq=4, Tk=4, d=5), causal (Tq, Tk) mask", 1.0,
         _sdpa_data(1002, (2, 3, 4, 5), (2, 3, 4, 5), (2, 3, 4, 5),
                    mask=lambda rng: np.tril(np.ones((4, 4), bool)), ctx=" (causal mask)")),
        ("padding: masked keys get zero weight (N=3, Tq=4, Tk=5)", 1.0,
         _sdpa_data(1003, (3, 4, 6), (3, 5, 6), (3, 5, 2), mask=_pad_mask(3, 4, 5),
                    ctx=" (padding mask)")),
        ("a query row with no allowed key gives zeros, never NaN", 1.0,
         _sdpa_data(1004, (2, 3, 4), (2, 5, 4), (2, 5, 4), mask=_pad_mask(2, 3, 5, True),
                    ctx=" (a fully masked row)")),
        ("N=1, Tq=Tk=1", 0.5, _sdpa_data(1006, (1, 1, 3), (1, 1, 3), (1, 1, 2))),
    ]]
    for dtype, tol in (("float64", F64), ("float32", F32)):
        out.append(SDPA.check(
            f"saturation: scores ~ 1e3 with gaps ~ 1, {dtype} (N=2, Tq=4, Tk=5, d=8)", 0.25,
            _sdpa_large_data(1005, dtype), outputs=[("out", tol, dtype), ("weights", tol, dtype)],
            nan_hint=SOFTMAX_HINT))

    out.append(SDPA.check(
        "out vs torch.nn.functional.scaled_dot_product_attention (with a bool mask)", 1.0,
        _sdpa_data(1007, (2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 3),
                   mask=lambda rng: np.concatenate([np.ones((5, 1), bool),
                                                    rng.random((5, 5)) < 0.6], axis=1),
                   ctx=" (vs F.scaled_dot_product_attention)"),
        expect=lambda d: {"out": np_(import_torch().nn.functional.scaled_dot_product_attention(
            t_(d["q"]), t_(d["k"]), t_(d["v"]), attn_mask=t_(d["mask"])))},
        outputs=[("out", F64, "floating")]))
    out.append(SDPA.unchanged(_sdpa_data(1010, (2, 3, 4), (2, 5, 4), (2, 5, 2),
                                         mask=_pad_mask(2, 3, 5)),
                              ["q", "k", "v", "mask"], ["out", "weights"]))
    out.append(SDPA.check(
        "gradients (autograd) vs reference", 1.0,
        _with(_sdpa_data(1008, (2, 4, 5), (2, 6, 5), (2, 6, 3), mask=_pad_mask(2, 4, 6),
                         ctx=" (gradients)"),
              dout=lambda d: seeded(1009).standard_normal((2, 4, 3))),
        expect=lambda d: _ref_grads(d, "qkv", lambda x: ref().scaled_dot_product_attention(
            x["q"], x["k"], x["v"], t_(d["mask"]))[0]), hints=[],
        steps=lambda d: _sdpa_steps(d, grad=True) + [grad("out", "dout",
                                                          ["t.q", "t.k", "t.v"])],
        outputs=[(n, F64, "floating") for n in ("g.t.q", "g.t.k", "g.t.v")]))
    return out


# --- MultiHeadAttention and FeedForward ------------------------------------------------------

def _method(cls, name, args, out, obj="$m", **kwargs):
    """The call of the student module ``obj``'s method ``name`` ("forward": the module
    itself), labelled ``cls.name``."""
    fn = obj if name == "forward" else f"{obj}.{name}"
    return call(fn, args, out, label=f"{cls}.{name}", **kwargs)


def _mha_variant_split(d, merge_transpose):
    """Heads split with view(N, h, T, dh) (no transpose) instead of (N, T, h, dh).transpose;
    merged back with a plain reshape or with transpose(1, 2).reshape."""
    torch, st = import_torch(), d["state"]
    N, Tq, D = d["query"].shape

    def lin(x, n):
        return x @ torch.from_numpy(st[n + ".weight"]).T + torch.from_numpy(st[n + ".bias"])

    q, k, v = (lin(t_(d[x]), x[0] + "_proj").reshape(N, d["h"], -1, D // d["h"])
               for x in ("query", "key", "value"))
    mask = t_(d["mask"]).unsqueeze(-3) if "mask" in d else None
    o, w = ref().scaled_dot_product_attention(q, k, v, mask)
    o = (o.transpose(1, 2) if merge_transpose else o).reshape(N, Tq, D)
    return {"out.output": np_(lin(o, "out_proj")), "out.weights": np_(w)}


def _mha_ref(d):
    return ref_module("MultiHeadAttention", [d["d_model"], d["h"]], {"dropout": 0.0}, d["state"])


def _mha_expect(d):
    args = [t_(d["query"]), t_(d["key"]), t_(d["value"])]
    mask = t_(d["mask"]) if "mask" in d else None
    o, w = _mha_ref(d)(*args, mask=mask, return_weights=True)
    return {"out.output": np_(o), "out.weights": np_(w)}


def _mha_vs_nn(d):
    torch = import_torch()
    mha = torch.nn.MultiheadAttention(d["d_model"], d["h"], dropout=0.0, batch_first=True,
                                      dtype=torch.float64)
    mha.load_state_dict(twins.nn_state_dict(d["state"]))
    mha.eval()
    kw = {}
    if "mask" in d:
        m = d["mask"]
        if m.ndim == 3 and m.shape[1] == 1:
            kw["key_padding_mask"] = t_(~m[:, 0, :])
        else:
            kw["attn_mask"] = t_(~m)
    o, w = mha(t_(d["query"]), t_(d["key"]), t_(d["value"]), need_weights=True,
               average_attn_weights=False, **kw)
    return {"out.output": np_(o), "out.weights": np_(w)}


def _mha_data(seed, N, Tq, Tk, d_model, h, mask=None, self_attn=False, dtype="float64"):
    def data():
        rng = seeded(seed)
        d = {"d_model": d_model, "h": h, "dtype": dtype,
             "state": draw_state(seed + 1, "MultiHeadAttention", [d_model, h]),
             "_ctx": f" (N={N}, Tq={Tq}, Tk={Tk}, d_model={d_model}, heads={h}"
                     f"{', ' + mask if mask else ''})"}
        q = rng.standard_normal((N, Tq, d_model))
        d["query"], d["key"], d["value"] = (q, q, q) if self_attn else (
            q, rng.standard_normal((N, Tk, d_model)), rng.standard_normal((N, Tk, d_model)))
        if mask == "causal":
            d["mask"] = np.tril(np.ones((Tq, Tk), bool))
        elif mask == "padding":
            d["mask"] = _key_padding(N, Tk, 2)
        elif mask == "empty row":
            d["mask"] = np.ones((N, Tq, Tk), bool)
            d["mask"][0, 0, :] = False
        return d
    return data


def _mha_steps(d, grad=False):
    dt = d["dtype"]
    steps = [module("MultiHeadAttention", [d["d_model"], d["h"]], {"dropout": 0.0}, dtype=dt),
             tensor("query", dt, grad), tensor("key", dt, grad), tensor("value", dt, grad)]
    kwargs = {"return_weights": True}
    if "mask" in d:
        steps.append(tensor("mask"))
        kwargs["mask"] = "$t.mask"
    return steps + [_method("MultiHeadAttention", "forward", ["$t.query", "$t.key", "$t.value"],
                            ["out.output", "out.weights"], kwargs=kwargs)]


SPLIT_HINT = ("split the heads with view(N, T, h, d/h).transpose(1, 2); view(N, h, T, d/h) "
              "mixes positions and features")

MHA = spec(
    "MultiHeadAttention", steps=_mha_steps, expect=_mha_vs_nn, nan_hint=NAN_HINT,
    outputs=[("out.output", F64, "floating"), ("out.weights", F64, "floating")],
    hints=[Hint(lambda d: _mha_expect(_scaled(d, math.sqrt(d["d_model"] // d["h"]),
                                              "q_proj.weight", "q_proj.bias")),
                "the scores are not scaled by 1/sqrt(head_dim)"),
           Hint(lambda d: _mha_variant_split(d, False), SPLIT_HINT),
           Hint(lambda d: _mha_variant_split(d, True), SPLIT_HINT)])
# (API.md fixes these names; listed here so that building the checks needs no torch)
MHA_PARAMS = [f"{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj")
              for w in ("weight", "bias")]


def _mha_grads(d):
    m = _mha_ref(d)
    return _ref_grads(d, ["query", "key", "value"], lambda x: m(
        x["query"], x["key"], x["value"], mask=t_(d["mask"])), m)


def _mha_checks():
    names = ["t.query", "t.key", "t.value"]
    return [
        MHA.check("self-attention vs torch.nn.MultiheadAttention (N=2, T=5, d=8, heads=2)", 1.5,
                  _mha_data(1100, 2, 5, 5, 8, 2, self_attn=True)),
        MHA.check("cross-attention, padding mask, vs torch.nn.MultiheadAttention "
                  "(N=3, Tq=4, Tk=6, d=12, heads=3)", 1.5,
                  _mha_data(1110, 3, 4, 6, 12, 3, mask="padding")),
        MHA.check("causal (T, T) mask vs torch.nn.MultiheadAttention (N=1, T=5, d=8, heads=4)",
                  1.0, _mha_data(1120, 1, 5, 5, 8, 4, mask="causal", self_attn=True)),
        MHA.check("one head vs reference (N=2, Tq=3, Tk=4, d=6, heads=1)", 0.5,
                  _mha_data(1130, 2, 3, 4, 6, 1), expect=_mha_expect),
        MHA.check("a query with no allowed key: no NaN, as the reference (N=2, Tq=3, Tk=4)", 0.5,
                  _mha_data(1140, 2, 3, 4, 8, 2, mask="empty row"), expect=_mha_expect),
        MHA.unchanged(_mha_data(1170, 2, 3, 4, 8, 2, mask="padding"),
                      ["query", "key", "value", "mask"], ["out.output", "out.weights"]),
        MHA.check("float32 module: float32 output (N=2, T=4, d=8, heads=2)", 0.5,
                  _mha_data(1150, 2, 4, 4, 8, 2, dtype="float32"), expect=_mha_expect,
                  outputs=[("out.output", F32, "float32")], hints=[], nan_hint=""),
        MHA.check("gradients (autograd) of inputs and parameters vs reference", 1.0,
                  _with(_mha_data(1160, 2, 3, 5, 8, 2, mask="padding"),
                        dout=lambda d: seeded(1161).standard_normal((2, 3, 8))),
                  steps=lambda d: _mha_steps(d, grad=True) + [grad("out.output", "dout", names,
                                                                   params="m")],
                  expect=_mha_grads, hints=[], nan_hint="",
                  outputs=[("g." + n, F64, "floating") for n in names]
                  + [("g.param." + k, F64, "floating") for k in MHA_PARAMS]),
    ]


def _ff_data(seed=1200, N=2, T=5, d=6, dff=10):
    def data():
        st = draw_state(seed, "FeedForward", [d, dff], {"dropout": 0.0})
        return {"x": seeded(seed + 1).standard_normal((N, T, d)), "d": d, "dff": dff,
                "state": st, "_ctx": f" (N={N}, T={T}, d_model={d}, d_ff={dff})"}
    return data


def _ff_expect(d):
    torch = import_torch()
    st = {k: torch.from_numpy(v) for k, v in d["state"].items()}
    x = t_(d["x"])
    y = torch.relu(x @ st["linear1.weight"].T + st["linear1.bias"]) @ st["linear2.weight"].T \
        + st["linear2.bias"]
    return {"out.y": np_(y)}


FF = spec(
    "FeedForward", expect=_ff_expect, outputs=[("out.y", F64, "floating")],
    steps=lambda d: [module("FeedForward", [d["d"], d["dff"]], {"dropout": 0.0}), tensor("x"),
                     _method("FeedForward", "forward", ["$t.x"], "out.y")])


def _ff_checks():
    return [FF.check("linear2(relu(linear1(x))) with the given weights "
                     "(N=2, T=5, d_model=6, d_ff=10)", 1.5, _ff_data()),
            FF.check("N=1, T=1 (d_model=4, d_ff=3)", 0.5, _ff_data(1210, 1, 1, 4, 3))]


# --- EncoderLayer, DecoderLayer --------------------------------------------------------------

def _nn_layer(d, norm_first=False):
    """The same layer as torch.nn.TransformerEncoderLayer / DecoderLayer, d's weights."""
    torch = import_torch()
    decoder = "memory" in d
    cls = torch.nn.TransformerDecoderLayer if decoder else torch.nn.TransformerEncoderLayer
    layer = cls(d["d"], d["h"], d["dff"], dropout=0.0, batch_first=True,
                norm_first=norm_first, dtype=torch.float64)
    layer.load_state_dict(twins.nn_state_dict(d["state"]))
    layer.eval()
    kw = {}
    if "mask" in d:
        kw["src_key_padding_mask"] = t_(~d["mask"][:, 0, :])
    if "tgt_mask" in d:
        kw["tgt_mask"] = t_(~d["tgt_mask"])
    if "memory_mask" in d:
        kw["memory_key_padding_mask"] = t_(~d["memory_mask"][:, 0, :])
    return {"out.y": np_(layer(*(t_(d[n]) for n in ("x", "memory") if n in d), **kw))}


def _decoder_keys_from_decoder(d):
    """DecoderLayer whose cross-attention takes its keys and values from the decoder."""
    m = ref_module("DecoderLayer", [d["d"], d["h"], d["dff"]], {"dropout": 0.0}, d["state"])
    x = t_(d["x"])
    tm = t_(d["tgt_mask"]) if "tgt_mask" in d else None
    x = m.norm1(x + m.self_attn(x, x, x, tm))
    x = m.norm2(x + m.cross_attn(x, x, x))
    x = m.norm3(x + m.feed_forward(x))
    return {"out.y": np_(x)}


def _layer_data(cls, seed, N, T, d, h, dff, S=None, mask=True):
    def data():
        rng = seeded(seed)
        st = draw_state(seed + 1, cls, [d, h, dff], {"dropout": 0.0})
        dd = {"d": d, "h": h, "dff": dff, "state": st, "x": rng.standard_normal((N, T, d)),
              "_ctx": f" (N={N}, T={T}{', S=' + str(S) if S else ''}, d_model={d}, heads={h}, "
                      f"d_ff={dff})"}
        if cls == "EncoderLayer" and mask:
            dd["mask"] = _key_padding(N, T, 2)
        elif cls == "DecoderLayer":
            dd["memory"] = rng.standard_normal((N, S, d))
            if mask:
                dd["tgt_mask"] = np.tril(np.ones((T, T), bool))
                dd["memory_mask"] = np.ones((N, 1, S), bool)
                dd["memory_mask"][-1, 0, -1:] = False
        return dd
    return data


def _layer_steps(cls, dropout=0.0, train=False, out="out.y"):
    """The steps of ``cls`` (EncoderLayer or DecoderLayer), built with ``dropout``, called in
    eval mode (``train``: train mode) on d's tensors."""
    m = "mt" if train else "m"

    def steps(d):
        names = [n for n in ("x", "mask", "memory") if n in d]
        kwargs = {k: "$t." + k for k in ("tgt_mask", "memory_mask") if k in d}
        return ([module(cls, [d["d"], d["h"], d["dff"]], {"dropout": dropout}, out=m,
                        train=train)]
                + [tensor(n) for n in names + list(kwargs)]
                + [_method(cls, "forward", ["$t." + n for n in names], out, obj="$" + m,
                           kwargs=kwargs)])
    return steps


PRE_LN = Hint(lambda d: _nn_layer(d, norm_first=True),
              "post-LN as in the paper: x = norm(x + sublayer(x)), not x + sublayer(norm(x))")
ENCODER = spec("EncoderLayer", steps=_layer_steps("EncoderLayer"), expect=_nn_layer,
               outputs=[("out.y", F64, "floating")], hints=[PRE_LN])
DECODER = spec("DecoderLayer", steps=_layer_steps("DecoderLayer"), expect=_nn_layer,
               outputs=[("out.y", F64, "floating")], hints=[PRE_LN])

# Post-LN with LayerNorm gain 1 and bias 0 (their initial values): whatever the dropout mask,
# the layer's output is a LayerNorm output, so every row (token) has mean 0 and biased variance
# v / (v + eps) ~ 1. Dropout after the LayerNorm (x = dropout(norm(x + sublayer(x)))) zeroes
# entries and scales the others by 1 / (1 - p): the rows' moments move far from 0 and 1.
DROPOUT_P = 0.5
ROW_MEAN_TOL, ROW_VAR_TOL = 1e-6, 1e-3


def _dropout_order_check(layer, seed, points, S=None):
    cls = layer.api
    data = _with(_layer_data(cls, seed, 3, 6, 8, 2, 16, S=S),
                 state=lambda d: {k: np.full_like(v, k.endswith(".weight"))
                                  if k.startswith("norm") else v for k, v in d["state"].items()},
                 _ctx=lambda d: d["_ctx"][:-1] + f", dropout={DROPOUT_P}, train mode)")

    eval_steps, train_steps = (_layer_steps(cls, DROPOUT_P),
                               _layer_steps(cls, DROPOUT_P, train=True, out="out.train"))

    def rows(d, r, expected):
        require_right(r, ["out.y"], expected, F64, "the train-mode property (the same layer "
                      "in eval mode)", kinds=("tensor",))
        y = require_array(r, "out.train", kinds=("tensor",), shape=expected["out.y"].shape)
        mean, var = y.mean(axis=-1), y.var(axis=-1)
        bad = (np.abs(mean) > ROW_MEAN_TOL) | (np.abs(var - 1) > ROW_VAR_TOL)
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise Failed(f"in train mode (dropout={DROPOUT_P}) the output row {list(idx)} has "
                         f"mean {mean[idx]:.3g} and variance {var[idx]:.3g}; with LayerNorm "
                         f"gain 1 and bias 0 a post-LN layer's rows have mean 0 and variance 1 "
                         f"whatever the dropout mask{d['_ctx']}",
                         "the likely cause: dropout after the LayerNorm; post-LN applies "
                         "dropout to the sublayer's output, before the residual sum: "
                         "x = norm(x + dropout(sublayer(x)))")

    return layer.check(f"train mode, dropout={DROPOUT_P}: every output row has mean 0 and "
                       f"variance 1 (LayerNorm gain 1, bias 0)", points, data,
                       steps=lambda d: eval_steps(d) + train_steps(d),
                       outputs=[], hints=[], returns=["out.y", "out.train"], extra=rows)


def _layer_checks():
    return [
        ENCODER.check("vs torch.nn.TransformerEncoderLayer, padding mask "
                      "(N=2, S=6, d=8, heads=2, d_ff=16)", 2.0,
                      _layer_data("EncoderLayer", 1300, 2, 6, 8, 2, 16)),
        ENCODER.check("vs torch.nn.TransformerEncoderLayer, no mask "
                      "(N=1, S=3, d=12, heads=4, d_ff=8)", 0.5,
                      _layer_data("EncoderLayer", 1310, 1, 3, 12, 4, 8, mask=False)),
        _dropout_order_check(ENCODER, 1320, 0.5),
        DECODER.check("vs torch.nn.TransformerDecoderLayer, causal and memory padding masks "
                      "(N=2, T=5, S=7, d=8, heads=2, d_ff=16)", 2.0,
                      _layer_data("DecoderLayer", 1400, 2, 5, 8, 2, 16, S=7)),
        DECODER.check("cross-attention: queries from the decoder, keys and values from the "
                      "memory (N=2, T=S=4, no masks)", 1.0,
                      _layer_data("DecoderLayer", 1410, 2, 4, 8, 2, 16, S=4, mask=False),
                      hints=[Hint(_decoder_keys_from_decoder,
                                  "in the cross-attention the keys and values are the encoder "
                                  "output (memory), the queries the decoder's x"), PRE_LN]),
        DECODER.check("vs torch.nn.TransformerDecoderLayer (N=1, T=1, S=2, d=4, heads=1)", 0.5,
                      _layer_data("DecoderLayer", 1420, 1, 1, 4, 1, 6, S=2), hints=[]),
        _dropout_order_check(DECODER, 1430, 0.5, S=5),
    ]


# --- Transformer -----------------------------------------------------------------------------

TCFG = dict(src_vocab_size=11, tgt_vocab_size=13, d_model=16, num_heads=4, num_layers=2,
            d_ff=32, dropout=0.0, max_len=32)


def _tr_data(seed, N=3, S=7, T=6, pad=0, cfg=None, end_boost=None):
    cfg = dict(TCFG, **(cfg or {}), pad_idx=pad)

    def data():
        rng = seeded(seed)
        st = draw_state(seed + 1, "Transformer", [], cfg)
        if end_boost is not None:
            st["generator.bias"][3] += end_boost
        src = rng.integers(0, cfg["src_vocab_size"], size=(N, S))
        tgt = rng.integers(0, cfg["tgt_vocab_size"], size=(N, T))
        src[src == pad] = (pad + 1) % cfg["src_vocab_size"]
        tgt[tgt == pad] = (pad + 1) % cfg["tgt_vocab_size"]
        if N > 1:
            src[1, S - 2:] = pad
            tgt[1, T - 2:] = pad
        if N > 2:
            src[2, S - 1:] = pad
        return {"cfg": cfg, "model": ("Transformer", [], cfg), "inputs": ("src", "tgt"),
                "state": st, "src": src.astype(np.int64), "tgt": tgt.astype(np.int64),
                "_ctx": f" (N={N}, S={S}, T={T}, pad_idx={pad})"}
    return data


def _model_ref(d, pe_base=None):
    """The reference model of d's ``model`` (class, args, kwargs) holding d's parameters, its
    positional encodings made with base ``pe_base`` if given."""
    m = ref_module(*d["model"], d["state"])
    if pe_base is not None:
        m.pe = import_torch().from_numpy(_pe_np(m.pe.shape[0], m.pe.shape[1], base=pe_base))
    return m


def _logits(d, **ref_kw):
    """{"out.logits": the reference model's logits on d's ``inputs``}; ``ref_kw``: of
    _model_ref."""
    return {"out.logits": np_(_model_ref(d, **ref_kw)(*(t_(d[n]) for n in d["inputs"])))}


def _tr_variants():
    def masks(causal=lambda ones: ones.tril(), src_pad=True):
        """The reference forward with the target self-attention mask padding & causal(a
        (T, T) mask of ones) (padding only if ``causal`` is None), and no source padding mask
        unless ``src_pad``."""
        def f(d):
            torch, m = import_torch(), _model_ref(d)
            src, tgt = t_(d["src"]), t_(d["tgt"])
            pad, T = d["cfg"]["pad_idx"], tgt.shape[1]
            sm = ref().padding_mask(src, pad) if src_pad else None
            tm = ref().padding_mask(tgt, pad)
            if causal is not None:
                tm = tm & causal(torch.ones(T, T, dtype=torch.bool))
            x = m.src_embed(src) * math.sqrt(m.d_model) + m.pe[: src.shape[1]]
            for layer in m.encoder_layers:
                x = layer(x, sm)
            y = m.tgt_embed(tgt) * math.sqrt(m.d_model) + m.pe[:T]
            for layer in m.decoder_layers:
                y = layer(y, x, tm, sm)
            return {"out.logits": np_(m.generator(y))}
        return f

    return [
        Hint(lambda d: _logits(_scaled(d, 1 / math.sqrt(d["cfg"]["d_model"]),
                                       "src_embed.weight", "tgt_embed.weight")),
             "the embeddings must be multiplied by sqrt(d_model) before the positional encoding "
             "is added"),
        Hint(lambda d: _logits(d, pe_base=1000.0),
             "the positional encoding base is 10000, not 1000"),
        Hint(masks(lambda ones: ones.triu()),
             "the causal mask is transposed (query i may attend to keys j <= i)"),
        Hint(masks(None),
             "the decoder self-attention needs a causal mask (combined with the padding mask)"),
        Hint(masks(src_pad=False),
             "the encoder self-attention and the cross-attention must mask the source padding"),
    ]


def _model_steps(*more, inputs=None, forward=True):
    """Build d's model in the student's code (a dict argument sent as its sorted items), make
    the tensors of d's ``inputs`` (or ``inputs``), run the forward on them into ``out.logits``
    (unless not ``forward``), then ``more``: steps, or (method, args, out) of the model."""
    def steps(d):
        cls, args, kwargs = d["model"]
        names = inputs or d["inputs"]
        run = [("forward", ["$t." + n for n in names], "out.logits")] if forward else []
        return ([module(cls, [{"$dict": [[k, v] for k, v in sorted(a.items())]}
                              if isinstance(a, dict) else a for a in args], kwargs)]
                + [tensor(n) for n in names]
                + [_method(cls, *s) if isinstance(s, tuple) else s for s in run + list(more)])
    return steps


def _no_change(what, where, message, hint, positions):
    """The case fields of the property ``what``: ``out.logits2`` (changed inputs) equals
    ``out.logits`` at ``where``; gated on ``out.logits`` at ``positions(d)``."""
    def extra(d, r, expected):
        a = require_array(r, "out.logits", kinds=("tensor",))
        b = require_array(r, "out.logits2", kinds=("tensor",), shape=a.shape)
        diff = float(np.max(np.abs(a[where] - b[where])))
        if diff > 1e-9:
            raise Failed(message.format(diff=diff), hint)
        require_right(r, ["out.logits"], expected, LOOSE, what, kinds=("tensor",),
                      positions=positions(d))
    return dict(outputs=[], hints=[], returns=["out.logits", "out.logits2"], extra=extra)


def _causality(words, hint, positions):
    """``_no_change`` for causality: the inputs ``words`` changed from position 4 on."""
    return _no_change("causality", np.s_[:, :4], f"changing {words} 4.. changed the logits of "
                      "positions 0..3 (by up to {diff:.3g}): the decoder sees the future",
                      hint, positions)


def _changed_from_4(name, f):
    """The array d[name] with its entries from position 4 on replaced by ``f(entries, d)``."""
    def changed(d):
        a = d[name].copy()
        a[:, 4:] = f(a[:, 4:], d)
        return a
    return changed


# logits at target padding positions are read by nothing (no loss, no decoding): compared
# only where the target token is not padding
def _tgt_tokens(d):
    return d["tgt"] != d["cfg"]["pad_idx"]


TRANSFORMER = spec("Transformer", steps=_model_steps(), expect=_logits, hints=_tr_variants(),
                   outputs=[("out.logits", LOOSE, "floating", _tgt_tokens)])


def _tr_checks():
    T = TRANSFORMER
    out = [
        T.check("forward: logits vs reference with the same state_dict (N=3, S=7, T=6, padding "
                "in src and tgt)", 2.0, _tr_data(1500)),
        T.check("encode: memory vs reference", 1.0, _tr_data(1510),
                steps=_model_steps(("encode", ["$t.src"], "out.memory"), forward=False),
                expect=lambda d: {"out.memory": np_(_model_ref(d).encode(t_(d["src"])))},
                outputs=[("out.memory", LOOSE, "floating")], hints=[]),
        T.check("encode + decode: logits vs reference", 1.0, _tr_data(1520),
                steps=_model_steps(("encode", ["$t.src"], "memory"), ("decode", [
                    "$t.tgt", "$memory", "$t.src"], "out.logits"), forward=False)),
        T.check("pad_idx=3 is read from the constructor (N=3, S=5, T=4)", 1.0,
                _tr_data(1530, S=5, T=4, pad=3)),
        T.check("N=1, S=1, T=1, one layer", 0.5,
                _tr_data(1540, N=1, S=1, T=1, cfg=dict(num_layers=1)), hints=[]),
        T.check("causality: later target tokens do not change earlier logits", 1.0,
                _with(_tr_data(1550, N=2, S=5, T=7), tgt2=_changed_from_4(
                    "tgt", lambda t, d: np.maximum((t + 3) % d["cfg"]["tgt_vocab_size"], 1))),
                steps=_model_steps(tensor("tgt2"), ("forward", ["$t.src", "$t.tgt2"],
                                                    "out.logits2")),
                **_causality("target tokens", "combine causal_mask(T) with the target padding "
                             "mask in decode", _tgt_tokens)),
        T.check("padding: extra source padding changes nothing", 1.0,
                _with(_tr_data(1560, N=2, S=5, T=4), src2=lambda d: np.concatenate(
                    [d["src"], np.zeros((2, 3), np.int64)], axis=1)),
                steps=_model_steps(tensor("src2"), ("forward", ["$t.src2", "$t.tgt"],
                                                    "out.logits2")),
                **_no_change("this property", np.s_[:], "appending padding tokens to the source "
                             "changed the logits (by up to {diff:.3g}): padded source keys "
                             "must get zero weight", "pass padding_mask(src, pad_idx) to the "
                             "encoder layers and as the memory mask of the decoder layers",
                             _tgt_tokens)),
    ]

    def greedy(end_idx):
        return lambda d: {"out.ys": np_(_model_ref(d).greedy_decode(t_(d["src"]), 8, 1, end_idx))}

    # the known mistake decodes as the reference would with an end_idx no row ever produces
    out.append(T.check(
        "greedy_decode vs reference (start, end, padding after end)", 1.5,
        _tr_data(GREEDY_CONFIG[0], N=5, S=6, T=2, end_boost=GREEDY_CONFIG[1]),
        steps=_model_steps(("greedy_decode", ["$t.src", 8, 1, 3], "out.ys"), inputs=("src",),
                           forward=False),
        expect=greedy(3), outputs=[("out.ys", F64, "integer")],
        hints=[Hint(greedy(-1), "after a row has produced end_idx the rest of it is "
                                "pad_idx, and decoding stops when every row has ended")]))
    return out


# Configurations (seed, <END> boost) found once with a search over the reference so that some
# rows end early, at different steps, and some never do; tests/test_autograder_checks.py asserts
# that they still do.
GREEDY_CONFIG = (1575, 2.5)


# --- CaptioningTransformer -------------------------------------------------------------------

CWORDS = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "red", "big", "circle", "left"]
CCFG = dict(input_dim=6, d_model=16, num_heads=2, num_layers=2, d_ff=24, dropout=0.0,
            max_length=16)


def _ct_data(seed, N=3, P=4, T=6, shuffled=False, end_boost=None):
    w2i = dict(zip(CWORDS, [4, 8, 0, 2, 1, 3, 5, 6, 7] if shuffled else range(len(CWORDS))))

    def data():
        rng = seeded(seed)
        st = draw_state(seed + 1, "CaptioningTransformer", [w2i], CCFG)
        if end_boost is not None:
            st["generator.bias"][w2i["<END>"]] += end_boost
        caps = rng.choice([i for w, i in w2i.items() if not w.startswith("<")], size=(N, T))
        caps[:, 0] = w2i["<START>"]
        if N > 1:
            caps[1, T - 2:] = w2i["<NULL>"]
        return {"w2i": w2i, "model": ("CaptioningTransformer", [w2i], CCFG),
                "inputs": ("features", "captions"), "state": st,
                "features": rng.standard_normal((N, P, CCFG["input_dim"])),
                "captions": caps.astype(np.int64),
                "_ctx": f" (N={N}, P={P}, T={T}{', shuffled vocabulary' if shuffled else ''})"}
    return data


# logits at <NULL> positions of the caption are read by nothing (the loss masks them, sampling
# never feeds <NULL>): a model that masks causally only is right
def _words(d):
    return d["captions"] != d["w2i"]["<NULL>"]


CAPTIONER = spec(
    "CaptioningTransformer", steps=_model_steps(), expect=_logits,
    outputs=[("out.logits", LOOSE, "floating", _words)],
    hints=[Hint(lambda d: _logits(_scaled(d, 1 / math.sqrt(CCFG["d_model"]), "embed.weight")),
                "the word embeddings must be multiplied by sqrt(d_model)"),
           Hint(lambda d: _logits(d, pe_base=1000.0),
                "the positional encoding base is 10000, not 1000")])


def _ct_checks():
    C = CAPTIONER
    out = [C.check("forward: logits vs reference with the same state_dict (N=3, P=4, T=6)", 2.0,
                   _ct_data(1600)),
           C.check("forward: N=1, P=1, T=1", 0.5, _ct_data(1610, N=1, P=1, T=1)),
           C.check("causality: later words do not change earlier logits", 1.0,
                   _with(_ct_data(1620, N=2, T=7),
                         captions2=_changed_from_4("captions", lambda c, d: 4 + (c + 1) % 5)),
                   steps=_model_steps(tensor("captions2"), (
                       "forward", ["$t.features", "$t.captions2"], "out.logits2")),
                   **_causality("caption words", "use padding_mask(captions_in, null) & "
                                "causal_mask(T)", _words))]

    for shuffled, title, pts in ((False, "sample vs reference (<NULL> after <END>)", 1.5),
                                 (True, "sample reads <START>, <END>, <NULL> from word_to_idx "
                                        "(shuffled vocabulary)", 1.0)):
        seed, boost = SAMPLE_CONFIGS[shuffled]
        out.append(C.check(
            title, pts, _ct_data(seed, N=5, shuffled=shuffled, end_boost=boost),
            steps=_model_steps(("sample", ["$t.features", 8], "out.captions"),
                               inputs=("features",), forward=False),
            expect=lambda d: {"out.captions": np_(_model_ref(d).sample(t_(d["features"]), 8))},
            outputs=[("out.captions", F64, "integer")], hints=[]))
    return out


SAMPLE_CONFIGS = {False: (1630, 0.75), True: (1631, 0.75)}


@register(MODULE)
def build() -> list:
    return (_pe_checks() + _mask_checks() + _sdpa_checks() + _mha_checks() + _ff_checks()
            + _layer_checks() + _tr_checks() + _ct_checks())
