"""Public tests for seqlab/captioning.py (CaptioningRNN): shapes, loss, numeric gradients, sampling.

Run from the assignment folder: ``pytest tests/test_01_to_03_captioning.py -q``.
CaptioningRNN uses your layers from rnn_layers, lstm_layers and attention_layers: make their
tests pass first. A stub that is not written yet fails with NotImplementedError.
"""
import numpy as np
import pytest

from seqlab.captioning import CaptioningRNN
from seqlab.gradient_check import eval_numerical_gradient, rel_error

GRAD_TOL = 1e-7


def grad_error(grad, num):
    """Largest |analytic - numeric| difference, relative to the largest |numeric| entry.

    A correct gradient gives about 1e-10 here and a bug 1e-3 or more. (``rel_error`` compares
    entry by entry: an entry that happens to be nearly zero makes it as noisy as the numeric
    gradient itself, up to ~1e-6 for a correct LSTM, so it is not used to pass or fail.)
    """
    return float(np.max(np.abs(grad - num)) / max(1e-8, np.max(np.abs(num))))

WORDS = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "red", "blue", "circle", "square", "left"]
WORD_TO_IDX = {w: i for i, w in enumerate(WORDS)}
NULL, START, END = 0, 1, 2


def _batch(rng, N, T, D, P=None):
    """Features and captions <START> w1 ... <END> <NULL> ... of shape (N, T + 1)."""
    features = rng.standard_normal((N, D) if P is None else (N, P, D))
    captions = rng.integers(3, len(WORDS), size=(N, T + 1))
    captions[:, 0] = START
    for n, L in enumerate(rng.integers(1, T + 1, size=N)):
        captions[n, L] = END
        captions[n, L + 1:] = NULL
    return features, captions


@pytest.mark.parametrize("cell_type,k", [("rnn", 1), ("lstm", 4), ("attention", 4)])
def test_param_shapes(cell_type, k):
    D, W, H, V = 7, 5, 6, len(WORDS)
    model = CaptioningRNN(WORD_TO_IDX, D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type)
    expected = {"W_proj": (D, H), "b_proj": (H,), "W_embed": (V, W), "Wx": (W, k * H),
                "Wh": (H, k * H), "b": (k * H,), "W_vocab": (H, V), "b_vocab": (V,)}
    if cell_type == "attention":
        expected["Wattn"] = (H, 4 * H)
    assert {n: p.shape for n, p in model.params.items()} == expected


def test_bad_cell_type():
    with pytest.raises(ValueError, match="cell_type"):
        CaptioningRNN(WORD_TO_IDX, 7, cell_type="gru")


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_loss_at_init_is_about_log_V_per_word(cell_type):
    rng = np.random.default_rng(0)
    P = 16 if cell_type == "attention" else None
    features, captions = _batch(rng, N=40, T=10, D=32, P=P)
    model = CaptioningRNN(WORD_TO_IDX, 32, cell_type=cell_type, dtype=np.float64)
    loss, grads = model.loss(features, captions)
    assert sorted(grads) == sorted(model.params), "grads must have the keys of params"
    words_per_caption = np.sum(captions[:, 1:] != NULL) / len(captions)
    per_word = loss / words_per_caption
    V = len(WORDS)
    assert abs(per_word - np.log(V)) < 0.1 * np.log(V), \
        f"loss per word at init: expected about log(V) = {np.log(V):.2f}, got {per_word:.2f}"


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_loss_gradients_numeric(cell_type):
    rng = np.random.default_rng(1)
    P = 3 if cell_type == "attention" else None
    features, captions = _batch(rng, N=2, T=4, D=4, P=P)
    model = CaptioningRNN(WORD_TO_IDX, 4, wordvec_dim=3, hidden_dim=5, cell_type=cell_type,
                          dtype=np.float64, seed=1)
    for name in model.params:  # move away from the zero biases of the initialization
        model.params[name] += 0.3 * rng.standard_normal(model.params[name].shape)
    caps_before, feats_before = captions.copy(), features.copy()
    loss, grads = model.loss(features, captions)
    assert np.array_equal(captions, caps_before) and np.array_equal(features, feats_before), \
        "loss modified its arguments"
    for name in sorted(model.params):
        num = eval_numerical_gradient(lambda _: model.loss(features, captions)[0],
                                      model.params[name])
        err = grad_error(grads[name], num)
        assert err < GRAD_TOL, (f"{cell_type}: d{name} differs from the numeric gradient by "
                                f"{err:.1e} of its largest entry "
                                f"(rel_error {rel_error(grads[name], num):.1e})")


def test_null_targets_are_masked():
    rng = np.random.default_rng(2)
    features, captions = _batch(rng, N=3, T=6, D=4)
    model = CaptioningRNN(WORD_TO_IDX, 4, wordvec_dim=3, hidden_dim=5, cell_type="lstm",
                          dtype=np.float64)
    captions[:, 4:] = NULL
    loss, _ = model.loss(features, captions)
    # the last 3 positions have <NULL> targets: dropping them must not change the loss
    loss_short, _ = model.loss(features, captions[:, :4])
    assert np.isclose(loss, loss_short), "positions whose target is <NULL> must not count"


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_sample(cell_type):
    rng = np.random.default_rng(3)
    P = 5 if cell_type == "attention" else None
    features, _ = _batch(rng, N=8, T=3, D=4, P=P)
    model = CaptioningRNN(WORD_TO_IDX, 4, wordvec_dim=3, hidden_dim=5, cell_type=cell_type)
    model.params["b_vocab"][END] = 0.5  # make <END> a likely word
    model.params["b_vocab"][5] = 0.5
    out = model.sample(features, max_length=9, return_attention=(cell_type == "attention"))
    captions, weights = out if cell_type == "attention" else (out, None)
    assert captions.shape == (8, 9), f"captions: expected shape (8, 9), got {captions.shape}"
    assert np.issubdtype(captions.dtype, np.integer), f"captions must be ints, got {captions.dtype}"
    assert np.all((captions >= 0) & (captions < len(WORDS)))
    for row in captions:
        ends = np.flatnonzero(row == END)
        if len(ends):
            assert np.all(row[ends[0] + 1:] == NULL), f"after <END> a row must be <NULL>: {row}"
    if weights is not None:
        assert weights.shape == (8, 9, P), \
            f"attn_weights: expected shape (8, 9, {P}), got {weights.shape}"
        assert np.allclose(weights[:, 0].sum(axis=1), 1)
    # greedy decoding is deterministic
    again = model.sample(features, max_length=9, return_attention=(cell_type == "attention"))
    again = again[0] if cell_type == "attention" else again
    assert np.array_equal(captions, again)


def test_wrong_feature_shape_is_a_clear_error():
    model = CaptioningRNN(WORD_TO_IDX, 7, cell_type="attention")
    with pytest.raises(ValueError, match="features"):
        model.loss(np.zeros((2, 7)), np.ones((2, 4), dtype=np.int64))
