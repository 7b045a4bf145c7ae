"""Train, score and compare the captioners of notebooks 02-03 (given code).

These helpers only call the public API of your ``CaptioningRNN`` (``params``, ``loss``,
``sample``) and the given ``Solver``, so they work with your own implementation. They are used
by notebooks 02 and 03 and by the project's quality benchmark, so that every model is trained
and measured the same way:

    model, solver = train_captioner(data, "lstm")              # TRAIN_SETTINGS, seeded
    scores = evaluate_captioner(model, data, "test")           # BLEU-1..4, CIDEr-D, ROUGE-L
    loc = localisation(model, data, "test")                    # attention captioners only
    unfinished_function(data, "lstm")                          # "lstm_forward" until written
    print(format_table({"lstm": {**scores, "train time (s)": solver.train_time}}))
"""
import numpy as np

from seqlab.captioning import CaptioningRNN
from seqlab.data import decode_captions, references
from seqlab.metrics import attention_on_objects, evaluate_captions
from seqlab.solver import Solver

TRAIN_SETTINGS = {
    "wordvec_dim": 64,
    "hidden_dim": 128,
    "batch_size": 50,
    "num_iterations": 600,
    "learning_rate": 5e-3,
    "lr_decay": 0.9,
    "lr_decay_every": 100,
    "grad_clip": 5.0,
}
"""The settings shared by every captioner the notebooks compare (the same for rnn, lstm and
attention, so that the table compares the cells and nothing else). ``lr_decay`` multiplies the
learning rate every ``lr_decay_every`` iterations."""


def features_for(data, split, cell_type):
    """The image features a captioner of this cell type reads: the (Ni, P, C) grids for
    ``"attention"``, the (Ni, C) pooled vectors otherwise."""
    key = "grid_features" if cell_type == "attention" else "features"
    return data[f"{split}_{key}"]


NOTEBOOK_OF_CELL = {"rnn": "01_rnn_captioning", "lstm": "02_lstm_captioning",
                    "attention": "03_attention_captioning"}
"""The notebook in which each cell type of ``CaptioningRNN`` is written."""


def unfinished_function(data, cell_type):
    """The first function a captioner of this cell type needs that is not written yet, or None.

    Runs one loss (forward and backward) and one short sample of a tiny ``CaptioningRNN``
    (hidden size 4) on two training images, which takes milliseconds; used to skip a captioner
    before its training starts rather than crash inside it.

    Inputs:
    - data: the dict of ``seqlab.data.load_captioning_data``.
    - cell_type: ``"rnn"``, ``"lstm"`` or ``"attention"``.

    Returns the name a stub's ``NotImplementedError`` gives (e.g. ``"lstm_forward"``), or None
    when loss and sample run. Any other error (a bug) is raised as usual.
    """
    feats = features_for(data, "train", cell_type)[:2]
    model = CaptioningRNN(data["word_to_idx"], input_dim=feats.shape[-1], wordvec_dim=4,
                          hidden_dim=4, cell_type=cell_type, dtype=np.float32, seed=0)
    try:
        model.loss(feats, data["train_captions"][:2])
        model.sample(feats, max_length=2)
    except NotImplementedError as err:
        return str(err).split(":", 1)[0]
    return None


FORGET_BIAS = 1.0
"""The forget-gate bias of the recommended LSTM initialisation (Gers et al., 2000; Jozefowicz et
al., 2015): sigmoid(1) = 0.73, the gate starts mostly open."""


def recommended_init(model):
    """Give a ``CaptioningRNN`` the initialisation recommended for its cell, in place.

    - ``"rnn"``: the recurrent weights start at the identity, ``Wh = I`` (H, H) (Le, Jaitly &
      Hinton, 2015; notebook 01).
    - ``"lstm"``: the forget-gate block of the bias, ``b[H:2H]`` (gate order i, f, o, g), starts
      at ``FORGET_BIAS``; everything else keeps the constructor's values.

    Inputs:
    - model: a ``CaptioningRNN`` with cell type ``"rnn"`` or ``"lstm"``.

    Returns the model. Raises ValueError for any other cell type.
    """
    H = model.params["Wh"].shape[0]
    if model.cell_type == "rnn":
        model.params["Wh"][...] = np.eye(H)
    elif model.cell_type == "lstm":
        model.params["b"][H:2 * H] = FORGET_BIAS
    else:
        raise ValueError(f"recommended_init: no recommendation for cell_type="
                         f"{model.cell_type!r} (rnn and lstm only)")
    return model


def train_captioner(data, cell_type, num_iterations=None, seed=0, progress=True,
                    init="default", **settings):
    """Build a ``CaptioningRNN`` of this cell type and train it on the training split.

    Inputs:
    - data: the dict of ``seqlab.data.load_captioning_data``.
    - cell_type: ``"rnn"``, ``"lstm"`` or ``"attention"``.
    - num_iterations: overrides ``TRAIN_SETTINGS["num_iterations"]``.
    - seed: seeds the initial weights and the minibatch order.
    - progress: show the solver's progress bar.
    - init: ``"default"`` (the constructor's weights) or ``"recommended"``
      (``recommended_init``: identity ``Wh`` for rnn, forget-gate bias for lstm).
    - settings: override any other entry of ``TRAIN_SETTINGS``.

    Returns ``(model, solver)``; ``solver.loss_history`` and ``solver.train_time`` (seconds)
    describe the run.
    """
    s = dict(TRAIN_SETTINGS)
    unknown = set(settings) - set(s)
    if unknown:
        raise TypeError(f"train_captioner: unknown settings {sorted(unknown)}; "
                        f"known: {sorted(s)}")
    if init not in ("default", "recommended"):
        raise ValueError(f"train_captioner: init must be 'default' or 'recommended', got {init!r}")
    s.update(settings)
    if num_iterations is not None:
        s["num_iterations"] = num_iterations
    feats = features_for(data, "train", cell_type)
    model = CaptioningRNN(data["word_to_idx"], input_dim=feats.shape[-1],
                          wordvec_dim=s["wordvec_dim"], hidden_dim=s["hidden_dim"],
                          cell_type=cell_type, dtype=np.float32, seed=seed)
    if init == "recommended":
        recommended_init(model)
    solver = Solver(model, feats, data["train_captions"], data["train_image_idxs"],
                    batch_size=s["batch_size"], num_iterations=s["num_iterations"],
                    learning_rate=s["learning_rate"], grad_clip=s["grad_clip"], seed=seed,
                    progress=progress)
    # Step decay every lr_decay_every iterations (the Solver decays once per "epoch").
    solver.iterations_per_epoch = max(1, int(s["lr_decay_every"]))
    solver.lr_decay = s["lr_decay"]
    solver.train()
    return model, solver


def sample_captions(model, data, split, max_length=None, batch_size=500):
    """Greedy captions of every image of a split.

    Returns ``captions`` (Ni, max_length) ints and, for an attention model, ``attn_weights``
    (Ni, max_length, P) (else None). ``max_length`` defaults to the caption length of the data
    minus one (the <START> token).
    """
    feats = features_for(data, split, model.cell_type)
    if max_length is None:
        max_length = data[f"{split}_captions"].shape[1] - 1
    caps, attn = [], []
    for start in range(0, len(feats), batch_size):
        f = feats[start:start + batch_size]
        if model.cell_type == "attention":
            c, a = model.sample(f, max_length, return_attention=True)
            attn.append(a)
        else:
            c = model.sample(f, max_length)
        caps.append(c)
    captions = np.concatenate(caps)
    return captions, (np.concatenate(attn) if attn else None)


def evaluate_captioner(model, data, split="test", captions=None):
    """BLEU-1..4, CIDEr-D and ROUGE-L of the greedy captions of a split against its references.

    ``captions``: already sampled captions of the split (else they are sampled here)."""
    if captions is None:
        captions, _ = sample_captions(model, data, split)
    predictions = decode_captions(captions, data["idx_to_word"])
    return evaluate_captions(predictions, references(data, split))


def localisation(model, data, split="test", captions=None, attn_weights=None, shift=0):
    """Where an attention captioner looks while it names an object.

    For every colour or shape word of the greedy captions that names an object of the image,
    the share of the attention mass on the 4x4 grid cells that object covers, averaged over
    those words (``seqlab.metrics.attention_on_objects``). The weights of step t are computed
    from h_{t-1} and feed the LSTM step whose output scores word t: they are the weights *used
    to produce* word t, and ``sample(..., return_attention=True)`` stores them in column t.

    Inputs:
    - model: an attention ``CaptioningRNN``; data, split: which images.
    - captions, attn_weights: already sampled (else sampled here).
    - shift: pair word t with the weights of step t + shift instead (shift=1: the weights
      computed from h_t, after the word was chosen: a control that should score lower).

    Returns the dict of ``attention_on_objects``: ``mass`` (mean share on the object),
    ``uniform`` (the chance level: cells covered / 16, averaged), ``hit_rate``, ``words``,
    plus ``ratio`` = mass / uniform.
    """
    if model.cell_type != "attention":
        raise ValueError(f"localisation needs an attention model, got cell_type="
                         f"{model.cell_type!r}")
    if captions is None or attn_weights is None:
        captions, attn_weights = sample_captions(model, data, split)
    attn = np.asarray(attn_weights)
    if shift:
        shifted = np.zeros_like(attn)
        if shift > 0:
            shifted[:, :-shift] = attn[:, shift:]
        else:
            shifted[:, -shift:] = attn[:, :shift]
        attn = shifted
    out = attention_on_objects(captions, attn, data[f"{split}_objects"], data["idx_to_word"])
    out["ratio"] = out["mass"] / out["uniform"] if out["words"] else float("nan")
    return out


def compare_captioners(data, cell_types=("rnn", "lstm", "attention"), split="test",
                       num_iterations=None, seed=0, progress=True, **settings):
    """Train one captioner per cell type with the same settings and score it on a split.

    Returns ``(rows, models)``: ``rows[cell_type]`` is the dict of ``evaluate_captioner`` plus
    ``"train time (s)"`` and ``"final loss"`` (mean of the last 20 iterations), and
    ``models[cell_type]`` the trained model.
    """
    rows, models = {}, {}
    for cell_type in cell_types:
        model, solver = train_captioner(data, cell_type, num_iterations=num_iterations,
                                        seed=seed, progress=progress, **settings)
        row = evaluate_captioner(model, data, split)
        row["final loss"] = float(np.mean(solver.loss_history[-20:]))
        row["train time (s)"] = solver.train_time
        rows[cell_type], models[cell_type] = row, model
    return rows, models


def format_table(rows, columns=("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D",
                                "train time (s)")):
    """A plain-text table: one line per model (the keys of ``rows``), one column per metric
    (columns a row lacks are left blank)."""
    columns = list(columns)
    widths = [max(7, len(c)) + 2 for c in columns]
    name_w = max(10, max((len(str(k)) for k in rows), default=0))
    lines = ["model".ljust(name_w) + "".join(c.rjust(w) for c, w in zip(columns, widths))]
    for name, row in rows.items():
        cells = []
        for c, w in zip(columns, widths):
            v = row.get(c)
            if v is None:
                text = ""
            elif c == "train time (s)":
                text = f"{v:.1f}"
            elif c == "exact match":
                text = f"{v:.1%}"
            else:
                text = f"{v:.3f}"
            cells.append(text.rjust(w))
        lines.append(str(name).ljust(name_w) + "".join(cells))
    return "\n".join(lines)

