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


def _batch(rng, N, T, C, P=None):
    """Features (N, C) or (N, P, C) and captions <START> w1 ... <END> <NULL> ... (N, T + 1)."""
    features = rng.standard_normal((N, C) if P is None else (N, P, C))
    captions = rng.integers(3, len(WORDS), size=(N, T + 1))
    captions[:, 0] = START
    for n, length in enumerate(rng.integers(1, T + 1, size=N)):
        captions[n, length] = END
        captions[n, length + 1:] = NULL
    return features, captions


@pytest.mark.parametrize("cell_type,k", [("rnn", 1), ("lstm", 4), ("attention", 4)])
def test_param_shapes(cell_type, k):
    C, D, H, V = 7, 5, 6, len(WORDS)   # image features, word vectors, hidden, vocabulary
    model = CaptioningRNN(WORD_TO_IDX, C, wordvec_dim=D, hidden_dim=H, cell_type=cell_type)
    expected = {"W_proj": (C, H), "b_proj": (H,), "W_embed": (V, D), "Wx": (D, k * H),
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
    features, captions = _batch(rng, N=40, T=10, C=32, P=P)
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
    features, captions = _batch(rng, N=2, T=4, C=4, P=P)
    model = CaptioningRNN(WORD_TO_IDX, 4, wordvec_dim=3, hidden_dim=5, cell_type=cell_type,
                          dtype=np.float64)
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
    features, captions = _batch(rng, N=3, T=6, C=4)
    model = CaptioningRNN(WORD_TO_IDX, 4, wordvec_dim=3, hidden_dim=5, cell_type="lstm",
                          dtype=np.float64)
    captions[:, 4:] = NULL
    loss, _ = model.loss(features, captions)
    # the last 3 positions have <NULL> targets: dropping them must not change the loss
    loss_short, _ = model.loss(features, captions[:, :4])
    assert np.isclose(loss, loss_short), "positions whose target is <NULL> must not count"


# An independent model, written here from the parameters (not from seqlab), for the tests of
# teacher forcing and greedy sampling.

def _start(params, cell_type, features):
    """(float64 params, h0, c0, A or None): the initial state from the image features."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    h0 = np.dot(features, p["W_proj"]) + p["b_proj"]
    if cell_type == "attention":
        return p, h0.mean(axis=1), h0.mean(axis=1), h0
    return p, h0, np.zeros_like(h0), None


def _step(p, cell_type, words, h, c, A):
    """One step fed ``words`` (N,): (h, c, attention weights or None)."""
    sigmoid = lambda z: 0.5 * (1 + np.tanh(0.5 * z))  # noqa: E731
    H = h.shape[1]
    a = p["W_embed"][words] @ p["Wx"] + h @ p["Wh"] + p["b"]
    if cell_type == "rnn":
        return np.tanh(a), c, None
    w = None
    if cell_type == "attention":
        scores = np.einsum("nph,nh->np", A, h) / np.sqrt(H)
        w = np.exp(scores - scores.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        a = a + np.einsum("np,nph->nh", w, A) @ p["Wattn"]
    i, f, o = (sigmoid(a[:, k * H:(k + 1) * H]) for k in range(3))
    c = f * c + i * np.tanh(a[:, 3 * H:])
    return o * np.tanh(c), c, w


def _teacher_forcing_loss(params, cell_type, features, captions):
    """The loss: input captions[:, :-1] (teacher forcing), targets captions[:, 1:], <NULL>
    targets masked, summed over time, averaged over the batch."""
    p, h, c, A = _start(params, cell_type, features)
    words_in, targets = captions[:, :-1], captions[:, 1:]
    loss = 0.0
    for t in range(words_in.shape[1]):
        h, c, _ = _step(p, cell_type, words_in[:, t], h, c, A)
        scores = h @ p["W_vocab"] + p["b_vocab"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        picked = log_probs[np.arange(len(targets)), targets[:, t]]
        loss -= np.sum(picked * (targets[:, t] != NULL))
    return loss / len(captions)


def _greedy(params, cell_type, features, max_length):
    """Greedy decoding: (captions (N, max_length), attention weights (N, max_length, P) or
    None)."""
    p, h, c, A = _start(params, cell_type, features)
    N = features.shape[0]
    weights = np.zeros((N, max_length, A.shape[1])) if A is not None else None
    word = np.full(N, START)
    done = np.zeros(N, dtype=bool)
    captions = np.full((N, max_length), NULL)
    for t in range(max_length):
        h, c, w = _step(p, cell_type, word, h, c, A)
        if w is not None:
            weights[~done, t] = w[~done]
        word = (h @ p["W_vocab"] + p["b_vocab"]).argmax(axis=1)
        captions[~done, t] = word[~done]
        done |= word == END
    return captions, weights


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_loss_is_teacher_forcing(cell_type):
    """The input at step t is captions[:, t] (the true previous word), the target
    captions[:, t + 1]; compared with a loss written in this test."""
    rng = np.random.default_rng(4)
    P = 3 if cell_type == "attention" else None
    features, captions = _batch(rng, N=3, T=5, C=4, P=P)
    model = CaptioningRNN(WORD_TO_IDX, 4, wordvec_dim=3, hidden_dim=5, cell_type=cell_type,
                          dtype=np.float64)
    for name in sorted(model.params):
        model.params[name] = 0.5 * rng.standard_normal(model.params[name].shape)
    loss, _ = model.loss(features, captions)
    expected = _teacher_forcing_loss(model.params, cell_type, features, captions)
    assert abs(loss - expected) < 1e-8 * abs(expected), (
        f"loss {loss:.8f}, teacher forcing gives {expected:.8f}: the input at step t is "
        "captions[:, t], the target captions[:, t + 1]; <NULL> targets do not count")


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_sample_is_greedy_decoding(cell_type):
    """sample = greedy decoding: feed back the chosen word; the captions hold the sampled words
    only (no <START>), <NULL> after <END>. Compared with a greedy decode written in this test,
    with parameters for which some captions end early and some never do."""
    rng = np.random.default_rng(3)
    P = 5 if cell_type == "attention" else None
    features, _ = _batch(rng, N=8, T=3, C=4, P=P)
    model = CaptioningRNN(WORD_TO_IDX, 4, wordvec_dim=3, hidden_dim=5, cell_type=cell_type,
                          dtype=np.float64)
    for name in sorted(model.params):
        model.params[name] = 0.7 * rng.standard_normal(model.params[name].shape)
    base = model.params["b_vocab"][END]
    for boost in np.linspace(0, 6, 61):  # some rows end, some do not (never by chance)
        model.params["b_vocab"][END] = base + boost
        expected, expected_w = _greedy(model.params, cell_type, features, 9)
        ends = (expected == END).any(axis=1)
        if 0 < ends.sum() < len(ends) and (expected[ends] == END).argmax(axis=1).min() < 7:
            break
    else:
        pytest.fail("test set-up: no <END> boost gives captions that end early")
    if cell_type == "attention":
        captions, weights = model.sample(features, max_length=9, return_attention=True)
    else:
        captions, weights = model.sample(features, max_length=9), None
    assert captions.shape == (8, 9), f"captions: expected shape (8, 9), got {captions.shape}"
    assert np.issubdtype(captions.dtype, np.integer), f"captions must be ints, got {captions.dtype}"
    words = {i: w for w, i in WORD_TO_IDX.items()}
    if not np.array_equal(captions, expected):
        n, t = np.argwhere(captions != expected)[0]
        got, want = words.get(int(captions[n, t]), "?"), words[int(expected[n, t])]
        hint = (" Column 0 holds <START>: the captions hold the sampled words only, the first "
                "one in column 0." if captions[n, 0] == START else "")
        pytest.fail(f"sample differs from greedy decoding at row {n}, step {t}: you returned "
                    f"{got!r}, greedy decoding gives {want!r}.{hint}\nexpected\n{expected}\n"
                    f"got\n{captions}")
    if weights is not None:
        assert weights.shape == (8, 9, P), \
            f"attn_weights: expected shape (8, 9, {P}), got {weights.shape}"
        assert np.allclose(weights, expected_w, atol=1e-8), \
            "attn_weights differ from those of greedy decoding (zero after <END>)"


def test_wrong_feature_shape_is_a_clear_error():
    model = CaptioningRNN(WORD_TO_IDX, 7, cell_type="attention")
    with pytest.raises(ValueError, match="features"):
        model.loss(np.zeros((2, 7)), np.ones((2, 4), dtype=np.int64))


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_float32_model_gives_float32_gradients(cell_type):
    """A model built with dtype=np.float32 (as the notebooks train it) keeps every gradient in
    float32."""
    from seqlab.gradient_check import FLOAT32_CAUSE
    rng = np.random.default_rng(6)
    P = 3 if cell_type == "attention" else None
    features, captions = _batch(rng, N=2, T=4, C=4, P=P)
    model = CaptioningRNN(WORD_TO_IDX, 4, wordvec_dim=3, hidden_dim=5, cell_type=cell_type,
                          dtype=np.float32)
    _, grads = model.loss(features.astype(np.float32), captions)
    wrong = {k: str(np.asarray(v).dtype) for k, v in sorted(grads.items())
             if np.asarray(v).dtype != np.float32}
    assert not wrong, f"{cell_type}: a float32 model gave gradients {wrong}. {FLOAT32_CAUSE}"


# <NULL>, <START> and <END> at other indices than 0, 1, 2
SHUFFLED = {w: i for i, w in enumerate(WORDS[3:] + WORDS[:3])}


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_special_tokens_are_read_from_word_to_idx(cell_type):
    """With <NULL>, <START>, <END> at other indices: more <NULL> padding leaves the loss
    unchanged, and sampled captions never hold <START> and hold only <NULL> after <END>."""
    rng = np.random.default_rng(7)
    P = 3 if cell_type == "attention" else None
    features = rng.standard_normal((4, 4) if P is None else (4, P, 4))
    model = CaptioningRNN(SHUFFLED, 4, wordvec_dim=3, hidden_dim=5, cell_type=cell_type,
                          dtype=np.float64)
    for name in sorted(model.params):
        model.params[name] = 0.7 * rng.standard_normal(model.params[name].shape)
    null, start, end = SHUFFLED["<NULL>"], SHUFFLED["<START>"], SHUFFLED["<END>"]
    words = [SHUFFLED[w] for w in ("a", "red", "circle")]
    captions = np.array([[start, *words, end, null]] * 4)
    padded = np.concatenate([captions, np.full((4, 3), null)], axis=1)
    loss, _ = model.loss(features, captions)
    loss_padded, _ = model.loss(features, padded)
    assert np.isclose(loss, loss_padded, rtol=1e-12), (
        f"more <NULL> padding changed the loss ({loss:.6f} -> {loss_padded:.6f}): read <NULL> "
        "from word_to_idx, do not assume index 0")
    # never <NULL> or <START>; an <END> bias with which some captions end and others do not
    model.params["b_vocab"][end] += {"rnn": 0.5, "lstm": 1.22, "attention": -0.25}[cell_type]
    model.params["b_vocab"][[null, start]] -= 50.0
    sampled = model.sample(features, max_length=8)
    assert not np.any(sampled == start), "sampled captions hold <START>: read it from word_to_idx"
    ended = int((sampled == end).any(axis=1).sum())
    expected = {"rnn": 2, "lstm": 1, "attention": 3}[cell_type]
    assert ended == expected, (f"{ended} of 4 captions contain <END> (index {end}), greedy "
                               f"decoding ends {expected}: read <END> from word_to_idx\n{sampled}")
    for row in sampled:
        ends = np.flatnonzero(row == end)
        if ends.size:
            assert np.all(row[ends[0] + 1:] == null), (
                f"after <END> (index {end}) a caption must hold <NULL> (index {null}), got {row}")
