"""Checks of seqlab/captioning.py: CaptioningRNN (notebooks 01-03).

The model is built by the student's constructor, then every parameter is overwritten with
arrays drawn here (so nothing depends on the student's initialisation), and ``loss`` and
``sample`` are compared with the reference model holding the same parameters.
"""
import numpy as np

from autograder import course, reference
from autograder.checks import core
from autograder.checks.core import (
    F32,
    F64,
    Call,
    Failed,
    compare,
    register,
    require_array,
    require_right,
    seeded,
)
from autograder.checks.hints import Hint, matching_hint
from autograder.checks.numpy_specs import case

MODULE = "captioning"
API = "CaptioningRNN"
WORDS = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "red", "big", "circle", "left", "square",
         "blue"]
SCALES = {"W_proj": 0.5, "b_proj": 0.2, "W_embed": 0.7, "Wx": 0.5, "Wh": 0.5, "b": 0.2,
          "Wattn": 0.5, "W_vocab": 0.7, "b_vocab": 0.2}


def vocab(shuffled=False):
    # shuffled: <NULL>=5, <START>=9, <END>=0, ...
    order = [5, 9, 0, 2, 10, 1, 3, 4, 6, 7, 8] if shuffled else range(len(WORDS))
    return {w: order[i] for i, w in enumerate(WORDS)}


def _ref_model(w2i, dims, cell, params=None, dtype=np.float64):
    """The reference CaptioningRNN of ``dims``, holding ``params`` (cast to ``dtype``) if given."""
    model = reference.module(MODULE).CaptioningRNN(
        w2i, input_dim=dims["D"], wordvec_dim=dims["W"], hidden_dim=dims["H"], cell_type=cell,
        dtype=dtype)
    if params is not None:
        model.params = {k: np.array(v, dtype=dtype) for k, v in params.items()}
    return model


def draw_params(seed, w2i, dims, cell, end_boost=None):
    rng = seeded(seed)
    shapes = {k: v.shape for k, v in _ref_model(w2i, dims, cell).params.items()}
    params = {k: rng.standard_normal(s) * SCALES.get(k, 0.5) for k, s in sorted(shapes.items())}
    if end_boost is not None:
        params["b_vocab"][w2i["<END>"]] += end_boost
    return params


def draw_data(seed, w2i, N, T, D, cell, P=4):
    rng = seeded(seed)
    features = rng.standard_normal((N, P, D) if cell == "attention" else (N, D))
    ordinary = [i for w, i in w2i.items() if not w.startswith("<")]
    caps = np.full((N, T + 1), w2i["<NULL>"], dtype=np.int64)
    for n in range(N):
        length = T + 1 if n == 0 else int(rng.integers(2, T + 2))  # row 0: no <END>, no pad
        caps[n, 0] = w2i["<START>"]
        caps[n, 1:length] = rng.choice(ordinary, size=length - 1)
        if length <= T:
            caps[n, length] = w2i["<END>"]  # then <NULL>, as filled
    return features, caps


def ref_loss(w2i, dims, cell, params, features, captions, dtype=np.float64):
    model = _ref_model(w2i, dims, cell, params, dtype)
    loss, grads = model.loss(np.array(features, dtype=dtype), captions)
    return float(loss), {k: np.asarray(v) for k, v in grads.items()}


def ref_sample(w2i, dims, cell, params, features, max_length):
    model = _ref_model(w2i, dims, cell, params)
    if cell == "attention":
        caps, attn = model.sample(features, max_length, return_attention=True)
        return np.asarray(caps), np.asarray(attn)
    return np.asarray(model.sample(features, max_length)), None


def _np_sample_variant(w2i, cell, params, features, max_length, mode):
    """Greedy sampling with a known mistake (for hints), built from the reference layers."""
    rnn = reference.module("rnn_layers")
    lstm = reference.module("lstm_layers")
    att = reference.module("attention_layers")
    p = params
    N = features.shape[0]
    null, start, end = w2i["<NULL>"], w2i["<START>"], w2i["<END>"]
    proj = features @ p["W_proj"] + p["b_proj"]
    if cell == "attention":
        A = proj
        h = c = A.mean(axis=1)
    else:
        h, c = proj, np.zeros_like(proj)
    words = np.full(N, start)
    done = np.zeros(N, dtype=bool)
    caps = np.full((N, max_length), null, dtype=np.int64)
    for t in range(max_length):
        x = p["W_embed"][words]
        if cell == "rnn":
            h, _ = rnn.rnn_step_forward(x, h, p["Wx"], p["Wh"], p["b"])
        elif cell == "lstm":
            h, c, _ = lstm.lstm_step_forward(x, h, c, p["Wx"], p["Wh"], p["b"])
        else:
            a, _, _ = att.dot_product_attention_forward(h, A)
            h, c, _ = att.attention_lstm_step_forward(x, h, c, a, p["Wx"], p["Wh"], p["Wattn"],
                                                      p["b"])
        new = (h @ p["W_vocab"] + p["b_vocab"]).argmax(axis=1)
        if mode == "no_null":
            caps[:, t] = new
        else:
            caps[~done, t] = new[~done]
        done |= new == end
        words = np.full(N, start) if mode == "start_every_step" else new
    return caps


SAMPLE_HINTS = [  # variant(w2i, cell, params, features, max_length)
    Hint(lambda *a: {"captions": _np_sample_variant(*a, "start_every_step")},
         "each step must feed back the word chosen at the previous step (yours feeds <START> "
         "every time)"),
    Hint(lambda *a: {"captions": _np_sample_variant(*a, "no_null")},
         "after a caption emits <END>, the rest of its row must be <NULL>"),
]


def _model(w2i, dims, cell, dtype="float64"):
    """The steps that build the student's model and give it the parameters ``p.<name>``."""
    return [{"op": "call", "fn": f"{MODULE}.CaptioningRNN",
             "args": [{"$dict": [[k, v] for k, v in sorted(w2i.items())]}],
             "kwargs": {"input_dim": dims["D"], "wordvec_dim": dims["W"],
                        "hidden_dim": dims["H"], "cell_type": cell, "dtype": {"$np": dtype}},
             "out": "model", "label": "CaptioningRNN(...)"},
            {"op": "set_params", "obj": "model", "prefix": "p."}]


def _loss_program(w2i, dims, cell, params, features, captions, dtype="float64", numeric=False):
    inputs = {"features": features.astype(dtype), "captions": captions,
              **{"p." + k: v.astype(dtype) for k, v in params.items()}}
    steps = [*_model(w2i, dims, cell, dtype),
             {"op": "call", "fn": "$model.loss", "args": ["$features", "$captions"],
              "out": ["loss", "grads"], "label": "CaptioningRNN.loss"},
             {"op": "items", "src": "grads", "out": "g", "label": "grads"}]
    returns = ["loss", "g.*"]
    if numeric:  # the loss at perturbed parameters; the grader takes the differences
        for k in params:
            inputs["stack." + k] = core.perturbations(params[k])
            steps.append({"op": "map_param", "obj": "model", "method": "loss",
                          "args": ["$features", "$captions"], "param": k, "pick": 0,
                          "stack": "stack." + k, "out": "f." + k,
                          "label": "CaptioningRNN.loss"})
            returns.append("f." + k)
    return Call(steps=steps, returns=returns, inputs=inputs)


def _sample_program(w2i, dims, cell, params, features, max_length):
    inputs = {"features": features, **{"p." + k: v for k, v in params.items()}}
    out = ["captions", "attn"] if cell == "attention" else ["captions"]
    call = {"op": "call", "fn": "$model.sample", "args": ["$features", max_length],
            "out": out if len(out) > 1 else out[0], "label": "CaptioningRNN.sample"}
    if cell == "attention":
        call["kwargs"] = {"return_attention": True}
    return Call(steps=[*_model(w2i, dims, cell), call], returns=out, inputs=inputs)


# The student's functions that CaptioningRNN's checks run (their tags): a failure of one of
# them is named in the feedback of the captioning check ("fix it first").
_COMMON = ("word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
           "temporal_affine_backward", "temporal_softmax_loss")
USES = {
    ("loss", "rnn"): ("rnn_forward", "rnn_backward") + _COMMON,
    ("loss", "lstm"): ("lstm_forward", "lstm_backward") + _COMMON,
    ("loss", "attention"): ("attention_lstm_forward", "attention_lstm_backward") + _COMMON,
    ("sample", "rnn"): ("rnn_step_forward",),
    ("sample", "lstm"): ("lstm_step_forward",),
    ("sample", "attention"): ("dot_product_attention_forward", "attention_lstm_step_forward"),
}

DIMS = dict(N=3, T=5, D=6, W=4, H=5)
SMALL = dict(N=2, T=3, D=3, W=3, H=3)


def _loss_hint(loss, expected, captions, w2i):
    N, T1 = captions.shape
    T = T1 - 1
    mask = captions[:, 1:] != w2i["<NULL>"]
    for factor, msg in ((1 / T, "the loss is averaged over N*T (temporal_softmax_loss must "
                                "divide by N only)"),
                        (N / max(mask.sum(), 1), "the loss is divided by the number of words; "
                                                 "divide by N"),
                        (N, "the loss is not divided by the batch size N")):
        if not np.isclose(factor, 1) and np.isclose(loss, expected * factor, rtol=1e-6):
            return msg
    return ""


def _loss_data(seed, w2i, dims, cell, P=4):
    """() -> (params, features, captions) drawn with ``seed``."""
    return lambda: (draw_params(seed, w2i, dims, cell),
                    *draw_data(seed + 1, w2i, dims["N"], dims["T"], dims["D"], cell, P))


def _check(kind, cell, title, points, data, call, evaluate):
    """A :func:`case` of CaptioningRNN's ``kind`` ("loss" or "sample") with the ``cell``
    captioner, in the notebook check cell of that captioner."""
    return case(data, call, evaluate, api=API, title=title, points=points, module=MODULE,
                tags=USES[kind, cell], cell="check_" + course.cell_name(API, cell))


def _check_loss(cell, seed, shuffled=False, dtype="float64", title=None, points=2.0):
    w2i = vocab(shuffled)
    name = title or f"loss and gradients vs reference (cell_type={cell!r})"

    def evaluate(data, r, check):
        params, features, captions = data
        loss_ref, grads_ref = check.memo("expected", lambda: ref_loss(
            w2i, DIMS, cell, params, features.astype(dtype), captions, np.dtype(dtype).type))
        tol = F64 if dtype == "float64" else F32
        ctx = f" (cell_type={cell!r}, {dtype}{', shuffled vocabulary' if shuffled else ''})"
        loss = require_array(r, "loss", allow_scalar=True)
        if loss.size != 1:
            raise Failed(f"loss: expected a scalar, got {r.value('loss').describe()}")
        try:
            compare("loss", loss.reshape(()), loss_ref, tol, ctx)
        except Failed as f:
            hint = _loss_hint(float(loss.reshape(-1)[0]), loss_ref, captions, w2i)
            if not hint and shuffled:
                hint = "read <NULL>, <START> and <END> from word_to_idx; do not hard-code 0, 1, 2"
            raise Failed(f.message, hint, f.detail) from None
        missing = sorted(set(grads_ref) - set(r.json.get("g.keys", [])))
        if missing:
            raise Failed(f"grads has no {', '.join(missing)} (it must have the keys of params)")
        for k in sorted(grads_ref):
            arr = require_array(r, "g." + k, label=f"grads[{k!r}]", shape=grads_ref[k].shape,
                                dtype=dtype)
            compare(f"grads[{k!r}]", arr, grads_ref[k], tol, ctx)
        return f"loss and every gradient match{ctx}"

    return _check("loss", cell, name, points, _loss_data(seed, w2i, DIMS, cell),
                  lambda data: _loss_program(w2i, DIMS, cell, *data, dtype=dtype), evaluate)


def _check_numeric(cell, seed):
    w2i = vocab()

    def evaluate(data, r, check):
        params, features, captions = data
        for k in sorted(params):
            core.require_numeric_grad(
                r, "g." + k, params[k].shape, ["f." + k], [np.asarray(1.0)],
                "your loss at perturbed parameters",
                f" (cell_type={cell!r}; compared with centered differences of your loss)",
                label=f"grads[{k!r}]")
        loss_ref, grads_ref = check.memo("expected", lambda: ref_loss(
            w2i, SMALL, cell, params, features, captions))
        expected = {"loss": np.asarray(loss_ref), **{"g." + k: v for k, v in grads_ref.items()}}
        require_right(r, sorted(expected), expected, F64, "agreeing with numeric gradients")
        return "every gradient agrees with numeric gradients of your loss"

    return _check("loss", cell, f"gradients vs numeric gradients of your loss "
                  f"(cell_type={cell!r})", 1.0, _loss_data(seed, w2i, SMALL, cell, P=3),
                  lambda data: _loss_program(w2i, SMALL, cell, *data, numeric=True), evaluate)


def _end_config(seed, w2i, dims, cell, N, max_length):
    """Parameters and features with which some captions end early and some do not (so that
    <NULL> after <END> is tested): the <END> score is boosted just enough."""
    features, _ = draw_data(seed + 1, w2i, N, 2, dims["D"], cell)
    best = None
    for boost in np.linspace(0.0, 6.0, 61):
        params = draw_params(seed, w2i, dims, cell, end_boost=boost)
        caps, _ = ref_sample(w2i, dims, cell, params, features, max_length)
        ended = (caps == w2i["<END>"]).any(axis=1)
        first = np.where(ended, (caps == w2i["<END>"]).argmax(axis=1), -1)
        if 0 < ended.sum() < N and (first[ended] < max_length - 2).any() \
                and (first[ended] > 0).any():
            return params, features
        if best is None and ended.any():
            best = (params, features)
    return best or (draw_params(seed, w2i, dims, cell), features)


def _word(index, w2i):
    """"8 = left": a word index and its word."""
    names = {i: w for w, i in w2i.items()}
    return f"{int(index)} = {names.get(int(index), 'not in the vocabulary')}"


def _shift_hint(caps, caps_ref, w2i):
    """The hint for captions one step late (<START> or <NULL> written into column 0)."""
    first = caps[:, 0] if caps.ndim == 2 and caps.shape[1] else np.zeros(0)
    for token in ("<START>", "<NULL>"):
        idx = w2i[token]
        if first.size and np.all(first == idx) and not np.all(caps_ref[:, 0] == idx):
            return (f"column 0 of your captions holds {token}: they are one step late. The "
                    f"captions hold the sampled words only: the word chosen at step t goes to "
                    f"column t (the first sampled word to column 0); <START> is only fed in")
    return ""


def _check_sample(cell, seed, with_end=False, shuffled=False, points=1.5, title=None):
    w2i = vocab(shuffled)
    N, max_length = 6, 9
    name = title or (f"sample: <NULL> after <END> (cell_type={cell!r})" if with_end
                     else f"sample vs reference (cell_type={cell!r})")

    def data():
        if with_end:
            return _end_config(seed, w2i, DIMS, cell, N, max_length)
        params = draw_params(seed, w2i, DIMS, cell)
        features, _ = draw_data(seed + 1, w2i, N, 2, DIMS["D"], cell)
        return params, features

    def evaluate(data, r, check):
        params, features = data
        caps_ref, attn_ref = check.memo("expected", lambda: ref_sample(
            w2i, DIMS, cell, params, features, max_length))
        ctx = f" (cell_type={cell!r}, N={N}, max_length={max_length})"
        caps = require_array(r, "captions", shape=caps_ref.shape, dtype="integer")
        if with_end:
            end, null = w2i["<END>"], w2i["<NULL>"]
            for n in range(N):
                row = caps[n]
                hits = np.flatnonzero(row == end)
                if hits.size and np.any(row[hits[0] + 1:] != null):
                    raise Failed(f"captions[{n}] has words after its <END> (at step {hits[0]}); "
                                 f"the rest of the row must be <NULL>{ctx}",
                                 SAMPLE_HINTS[1].message)
        if not np.array_equal(caps, caps_ref):
            bad = np.argwhere(caps != caps_ref)[0]
            hint = _shift_hint(caps, caps_ref, w2i) or matching_hint(
                check, "sample", SAMPLE_HINTS, (w2i, cell, params, features, max_length), r,
                ["captions"], {"captions": caps_ref})
            if not hint and shuffled:
                hint = "read <NULL>, <START> and <END> from word_to_idx; do not hard-code them"
            head = (f"captions differ from the expected ones: first at row {bad[0]}, step "
                    f"{bad[1]} (you returned word {_word(caps[tuple(bad)], w2i)}")
            expected = f"expected {_word(caps_ref[tuple(bad)], w2i)}"
            raise Failed(f"{head}){ctx}", hint, f"{head}, {expected}){ctx}")
        if cell == "attention":
            attn = require_array(r, "attn", label="attn_weights", shape=attn_ref.shape,
                                 dtype="floating")
            compare("attn_weights", attn, attn_ref, F64,
                    ctx + "; zero where the caption is <NULL> after its <END>")
        return f"captions match{ctx}"

    return _check("sample", cell, name, points, data,
                  lambda data: _sample_program(w2i, DIMS, cell, *data, max_length), evaluate)


@register(MODULE)
def build() -> list:
    checks = []
    for k, cell in enumerate(("rnn", "lstm", "attention")):
        checks.append(_check_loss(cell, 600 + 10 * k))
        checks.append(_check_numeric(cell, 650 + 10 * k))
        checks.append(_check_sample(cell, 700 + 10 * k))
        checks.append(_check_sample(cell, 750 + 10 * k, with_end=True, points=1.0))
    checks.append(_check_loss("rnn", 800, shuffled=True, points=1.0,
                              title="loss reads <NULL> from word_to_idx (shuffled vocabulary, "
                                    "cell_type='rnn')"))
    checks.append(_check_sample("rnn", 810, shuffled=True, with_end=True, points=1.0,
                                title="sample reads <START>, <END>, <NULL> from word_to_idx "
                                      "(shuffled vocabulary, cell_type='rnn')"))
    checks.append(_check_loss("rnn", 820, dtype="float32", points=0.5,
                              title="float32 model: float32 loss gradients (cell_type='rnn')"))
    return checks
