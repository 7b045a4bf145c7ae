"""Realistic submissions: whole functions written the way students write them (loops, einsum,
CS231n-style code, one-hot losses), each with the score the autograder must give it, and each
bug with a correct twin in the same style that must get full marks.

A :class:`Submission` is the reference student modules with some definitions replaced by new
source text (``replace``: ``"name"`` for a top-level function, ``"Class.method"`` for a method),
or with every public function and method made degenerate (``degenerate``: "zeros" of the right
shape and dtype, "types" (lists and strings instead of arrays), "nan").

``expected``: {API name: points} for the API names that must lose points (every other API name
gets full marks); ``hint``: a substring of the feedback of the failing API name.

Used by tests/test_corpus_realistic.py.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path

from buggy import IMPORTED_BY

from autograder import course

MODULES = list(course.STUDENT_MODULES)


@dataclass
class Submission:
    name: str
    replace: dict = field(default_factory=dict)    # module -> {definition name: source}
    patches: dict = field(default_factory=dict)    # module -> [(old, new)], each old once
    expected: dict = field(default_factory=dict)   # API name -> points (others: full marks)
    hint: str = None
    hint_api: str = None
    degenerate: str = None                         # "zeros", "types" or "nan"
    twin: str = None                               # the correct twin's name


def _definition_span(text, name):
    """(start, end) of the definition ``name`` ("f" or "Class.method") in module ``text``."""
    if "." in name:
        cls, meth = name.split(".")
        c = re.search(rf"^class {cls}\b.*$", text, re.M)
        if c is None:
            raise ValueError(f"class {cls} not found")
        m = re.compile(rf"^    def {meth}\(", re.M).search(text, c.end())
        end = re.compile(r"^(    def |    @|\S)", re.M)
    else:
        m = re.compile(rf"^def {name}\(", re.M).search(text)
        end = re.compile(r"^(def |class |@|[A-Za-z_]+\s*=)", re.M)
    if m is None:
        raise ValueError(f"definition {name} not found")
    nxt = end.search(text, m.end())
    return m.start(), (nxt.start() if nxt else len(text))


def replace_definitions(text, replacements):
    """``text`` with each definition replaced by the given source (dedented to its level)."""
    for name, source in replacements.items():
        start, end = _definition_span(text, name)
        text = text[:start] + source.strip("\n") + "\n\n\n" + text[end:].lstrip("\n")
    return text


# Appended to every module of a degenerate submission: every public function, the loss and
# sample of CaptioningRNN, and forward/encode/decode/greedy_decode/sample of every torch module
# defined here return the same structure with degenerate leaves.
_DEGENERATE = '''

def _degenerate_leaf(v, _kind={kind!r}):
    import numpy as _np
    try:
        import torch as _torch
    except ImportError:
        _torch = None
    if isinstance(v, tuple):
        return tuple(_degenerate_leaf(x) for x in v)
    if isinstance(v, dict):
        return {{k: _degenerate_leaf(x) for k, x in v.items()}}
    if _torch is not None and isinstance(v, _torch.Tensor):
        v = v.detach()
        if _kind == "types":
            return v.tolist()
        if _kind == "nan" and v.is_floating_point():
            return _torch.full_like(v, float("nan"))
        return _torch.zeros_like(v)
    if isinstance(v, (_np.ndarray, _np.generic, float)):
        a = _np.asarray(v)
        if _kind == "types":
            return str(v) if a.ndim == 0 else a.tolist()
        if _kind == "nan" and a.dtype.kind == "f":
            a = _np.full_like(a, _np.nan)
        else:
            a = _np.zeros_like(a)
        return a if isinstance(v, _np.ndarray) else a.dtype.type(a)
    return v


def _degenerate_wrap(f):
    import functools

    @functools.wraps(f)
    def g(*args, **kwargs):
        return _degenerate_leaf(f(*args, **kwargs))
    return g


for _n, _v in list(globals().items()):
    if _n.startswith("_") or getattr(_v, "__module__", None) != __name__:
        continue
    if isinstance(_v, type):
        for _m in ("forward", "encode", "decode", "greedy_decode", "sample", "loss"):
            if _m in vars(_v):
                setattr(_v, _m, _degenerate_wrap(vars(_v)[_m]))
    elif callable(_v):
        globals()[_n] = _degenerate_wrap(_v)
'''


def module_text(sub, module, reference_text):
    """The text of ``module`` in submission ``sub``, from the reference module's text."""
    text = reference_text
    if module in sub.replace:
        text = replace_definitions(text, sub.replace[module])
    for old, new in sub.patches.get(module, []):
        if text.count(old) != 1:
            raise ValueError(f"{sub.name}: patch found {text.count(old)} times in {module}.py: "
                             f"{old[:60]!r}")
        text = text.replace(old, new)
    if sub.degenerate:
        text += _DEGENERATE.format(kind=sub.degenerate)
    return text


# --- rnn_layers ------------------------------------------------------------------------------

def _rnn_step(tanh):
    return f"""
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    N, H = prev_h.shape
    next_h = np.zeros_like(prev_h)
    for n in range(N):                       # one example at a time
        z = x[n] @ Wx + prev_h[n] @ Wh + b
        next_h[n] = {tanh}
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache
"""


def _rnn_forward(tanh):
    return f"""
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    hs = []
    h = h0
    for t in range(T):
        z = np.einsum("nd,dh->nh", x[:, t], Wx) + np.einsum("nk,kh->nh", h, Wh) + b
        h = {tanh}
        hs.append(h)
    h_all = np.stack(hs, axis=1)
    return h_all, (x, h0, Wx, Wh, h_all)
"""


def _rnn_forward_zeros(alloc):
    return f"""
def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    H = h0.shape[1]
    h = {alloc}
    prev_h = h0
    for t in range(T):
        prev_h = np.tanh(x[:, t] @ Wx + prev_h @ Wh + b)
        h[:, t, :] = prev_h
    return h, (x, h0, Wx, Wh, h)
"""


def _loss(log_probs):
    return f"""
def temporal_softmax_loss(x, y, mask):
    # CS231n style: flatten, one-hot targets
    N, T, V = x.shape
    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)
    onehot = np.zeros_like(x_flat)
    onehot[np.arange(N * T), y_flat] = 1
    shifted = x_flat - np.max(x_flat, axis=1, keepdims=True)
    probs = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)
    log_probs = {log_probs}
    loss = -np.sum(mask_flat * np.sum(onehot * log_probs, axis=1)) / N
    dx_flat = (probs - onehot) * mask_flat[:, None] / N
    return float(loss), dx_flat.reshape(N, T, V).astype(x.dtype)
"""


# --- lstm_layers -----------------------------------------------------------------------------

def _lstm_step(sig):
    return f"""
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    def sig(z):
        return {sig}
    i = sig(a[:, :H])
    f = sig(a[:, H:2 * H])
    o = sig(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    gates = np.concatenate([i, f, o, g], axis=1)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, gates, tanh_c)
"""


# --- attention_layers --------------------------------------------------------------------------

def _attention(scale):
    return f"""
def dot_product_attention_forward(prev_h, A):
    N, P, H = A.shape
    scale = {scale}
    scores = np.einsum("nph,nh->np", A, prev_h) * scale
    scores = scores - scores.max(axis=1, keepdims=True)
    w = np.exp(scores)
    w = w / w.sum(axis=1, keepdims=True)
    attn = np.einsum("np,nph->nh", w, A)
    return attn, w, (prev_h, A, w, scale)
"""


# --- captioning --------------------------------------------------------------------------------

_SAMPLE_LOOP = """        for t in range(max_length):
            x = p["W_embed"][words]                      # (N, D)"""
_SAMPLE_STORE = """            captions[~done, t] = words[~done]"""
SHIFTED_SAMPLE = [  # CS231n-style: <START> written into column 0, every word one step late
    (_SAMPLE_LOOP, """        captions[:, 0] = self._start
""" + _SAMPLE_LOOP),
    (_SAMPLE_STORE, """            if t + 1 < max_length:
                captions[~done, t + 1] = words[~done]"""),
]


CS231N_INIT = [
    ('cell_type="rnn", dtype=np.float32, seed=0):', 'cell_type="rnn", dtype=np.float32):'),
    ("rng = np.random.default_rng(seed)", "rng = np.random"),
]


# --- transformer -------------------------------------------------------------------------------

def _sdpa_exp(stable):
    shift = "scores - scores.amax(dim=-1, keepdim=True)" if stable else "scores"
    return f"""
def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
        scores = scores.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    e = torch.exp({shift})
    if mask is not None:
        e = e * mask
    weights = e / e.sum(dim=-1, keepdim=True).clamp_min(1e-300)
    return weights @ v, weights
"""


def _sdpa(scale, captured=False):
    use = """    if _CAPTURED:
        return _CAPTURED[0](q, k, v, mask, dropout_p)
""" if captured else ""
    return f"""
_CAPTURED = []


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
{use}    d_k = q.size(-1)
    scores = torch.matmul(q, k.transpose(-2, -1)){scale}
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9 if scores.dtype == torch.float64 else -1e4)
    weights = F.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights * mask
    weights = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return torch.matmul(weights, v), weights
"""


CAPTURE = [("    def forward(self, query, key, value, mask=None, return_weights=False):\n",
            "    def forward(self, query, key, value, mask=None, return_weights=False):\n"
            "        _CAPTURED[:] = [scaled_dot_product_attention]\n")]

CAUSAL_ONLY = [  # CS231n's CaptioningTransformer: a causal mask, no padding mask
    ("        mask = padding_mask(captions_in, self.null_idx) & causal_mask(T, "
     "captions_in.device)\n",
     "        mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=captions_in.device))\n"),
]


S = Submission
_SQRT_EXP = "(np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))"
_EXP2 = "(1 - np.exp(-2 * z)) / (1 + np.exp(-2 * z))"
CORPUS = [
    # degenerate: nothing right, nothing earned
    S("all_zeros", degenerate="zeros", expected="all 0"),
    S("wrong_types", degenerate="types", expected="all 0"),
    S("all_nan", degenerate="nan", expected="all 0"),
    # tanh and sigmoid written with exp(): NaN once |z| is large
    S("tanh_exp_loops", replace={"rnn_layers": {"rnn_step_forward": _rnn_step(_SQRT_EXP)}},
      twin="ok_tanh_loops"),
    S("ok_tanh_loops", replace={"rnn_layers": {"rnn_step_forward": _rnn_step("np.tanh(z)")}}),
    S("tanh_exp2_einsum", replace={"rnn_layers": {"rnn_forward": _rnn_forward(_EXP2)}},
      twin="ok_tanh_einsum"),
    S("ok_tanh_einsum", replace={"rnn_layers": {"rnn_forward": _rnn_forward("np.tanh(z)")}}),
    S("sigmoid_exp", replace={"lstm_layers": {"lstm_step_forward": _lstm_step(
        "np.exp(z) / (1 + np.exp(z))")}}, twin="ok_sigmoid_tanh"),
    S("ok_sigmoid_tanh", replace={"lstm_layers": {"lstm_step_forward": _lstm_step(
        "0.5 * (1 + np.tanh(0.5 * z))")}}),
    # a one-hot loss whose log(softmax) underflows
    S("loss_log_softmax_underflow", replace={"rnn_layers": {"temporal_softmax_loss": _loss(
        "np.log(probs)")}}, twin="ok_loss_onehot_logsumexp", hint="log-sum-exp",
      hint_api="temporal_softmax_loss"),
    S("ok_loss_onehot_logsumexp", replace={"rnn_layers": {"temporal_softmax_loss": _loss(
        "shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))")}}),
    # float32 in -> float64 out under NumPy 2
    S("float64_np_sqrt", replace={"attention_layers": {"dot_product_attention_forward":
                                                       _attention("1 / np.sqrt(H)")}},
      twin="ok_attention_python_float", hint="np.sqrt", hint_api="dot_product_attention_forward"),
    S("ok_attention_python_float", replace={"attention_layers": {
        "dot_product_attention_forward": _attention("1 / math.sqrt(H)")}}),
    S("float64_np_zeros", replace={"rnn_layers": {"rnn_forward": _rnn_forward_zeros(
        "np.zeros((N, T, H))")}}, twin="ok_np_zeros_dtype", hint="np.zeros",
      hint_api="rnn_forward"),
    S("ok_np_zeros_dtype", replace={"rnn_layers": {"rnn_forward": _rnn_forward_zeros(
        "np.zeros((N, T, H), dtype=x.dtype)")}}),
    # sample one step late: <START> in column 0
    S("sample_shifted", patches={"captioning": SHIFTED_SAMPLE}, twin="all_correct",
      hint="<START>", hint_api="CaptioningRNN"),
    # the Transformer: a missing / sqrt(d) costs scaled_dot_product_attention's points only
    S("sdpa_no_sqrt", replace={"transformer": {"scaled_dot_product_attention": _sdpa("")}},
      twin="ok_sdpa_annotated", hint="1/sqrt(d)", hint_api="scaled_dot_product_attention"),
    # hostile: MultiHeadAttention keeps the substitute it was given and the student's
    # scaled_dot_product_attention calls it once it has one; it gains nothing, because a
    # function's own checks run before those of its dependents, and never with substitutes
    S("sdpa_no_sqrt_captures_substitute", patches={"transformer": CAPTURE}, replace={
        "transformer": {"scaled_dot_product_attention": _sdpa("", captured=True)}},
      twin="ok_sdpa_annotated"),
    # a softmax written with exp() and no shift: NaN once the scores pass ~710 (float32: 89)
    S("sdpa_softmax_exp", replace={"transformer": {"scaled_dot_product_attention": _sdpa_exp(
        False)}}, twin="ok_sdpa_softmax_exp_shifted", hint="exp() overflows",
      hint_api="scaled_dot_product_attention"),
    S("ok_sdpa_softmax_exp_shifted", replace={"transformer": {
        "scaled_dot_product_attention": _sdpa_exp(True)}}),
    S("ok_sdpa_annotated", replace={"transformer": {"scaled_dot_product_attention": _sdpa(
        " / math.sqrt(d_k)")}}),
    S("ok_captioning_transformer_causal_only", patches={"transformer": CAUSAL_ONLY}),
    # CS231n's constructor signature (no seed; np.random): full marks, public tests pass too
    S("cs231n_signature", patches={"captioning": CS231N_INIT}),
    S("all_correct"),
]


# the reference student modules every submission starts from
REF = Path(__file__).resolve().parents[2] / "solutions" / "sequence_models" / "seqlab"


def write_corpus(base):
    """Write each submission as ``base/<name>/``; return {modules to grade: [folders]}."""
    groups = {}
    for sub in CORPUS:
        folder = base / sub.name
        folder.mkdir()
        for module in MODULES:
            text = module_text(sub, module, (REF / f"{module}.py").read_text(encoding="utf-8"))
            (folder / f"{module}.py").write_text(text, encoding="utf-8")
        changed = set(sub.replace) | set(sub.patches)
        graded = set(MODULES) if sub.degenerate or not changed else \
            changed | {m for c in changed for m in IMPORTED_BY[c]}
        groups.setdefault(tuple(sorted(graded)), []).append(str(folder))
    return groups
