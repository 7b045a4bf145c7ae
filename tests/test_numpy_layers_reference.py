"""lstm_layers, attention_layers and captioning (the references) against independent sources.

- PyTorch autograd of the same math in float64 (forward values and every gradient, < 1e-10);
- torch.nn.LSTM / torch.nn.LSTMCell with copied weights (torch's gate order is i, f, g, o);
- CS231n's published expected values for the LSTM step on linspace inputs;
- a PyTorch autograd twin of the whole CaptioningRNN, for all three cell types.
Also: float32 in -> float32 out, no argument modified, clear errors, greedy sampling rules.
"""
import warnings

import numpy as np
import pytest
import torch

from autograder.checks import twins
from seqlab import attention_layers as AL
from seqlab import lstm_layers as LL
from seqlab.captioning import CaptioningRNN
from seqlab.gradient_check import rel_error

TOL = 1e-10
F64 = torch.float64


def t(a):
    return torch.tensor(a, dtype=F64, requires_grad=True)


def grads_of(*tensors):
    return [x.grad.numpy() for x in tensors]


def assert_close(name, got, expected, tol=TOL):
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{name}: shape {got.shape}, expected {expected.shape}"
    err = rel_error(got, expected)
    assert err < tol, f"{name}: relative error {err:.2e} >= {tol:.0e}"


# ---------------------------------------------------------------------------------------------
# helpers (the PyTorch twins of the same math are autograder/checks/twins.py)

def to_torch_gate_order(W):
    """Our columns i, f, o, g (.., 4H) -> torch.nn.LSTM rows i, f, g, o (4H, ..)."""
    i, f, o, g = np.split(W, 4, axis=-1)
    return torch.tensor(np.concatenate([i, f, g, o], axis=-1).T, dtype=F64)


def lstm_params(rng, D, H, scale=1.0):
    return (scale * rng.standard_normal((D, 4 * H)), scale * rng.standard_normal((H, 4 * H)),
            rng.standard_normal(4 * H))


# ---------------------------------------------------------------------------------------------
# sigmoid and the LSTM

def test_sigmoid_stable_and_accurate():
    x = np.concatenate([np.linspace(-800, 800, 2001), [-1e308, 1e308, -np.inf, np.inf, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = LL.sigmoid(x)
        s32 = LL.sigmoid(x[:2001].astype(np.float32))
    assert s32.dtype == np.float32
    assert np.all(np.isfinite(s)) and s[-5] == 0 and s[-4] == 1 and s[-1] == 0.5
    expected = torch.sigmoid(torch.tensor(x)).numpy()
    # relative to the value itself, so tiny sigmoids must be accurate too
    ok = expected > 0
    assert np.max(np.abs(s[ok] - expected[ok]) / expected[ok]) < 1e-14


def cs231n_step_inputs():
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    return x, prev_h, prev_c, Wx, Wh, b


CS231N_NEXT_H = np.asarray([
    [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
    [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
    [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])
CS231N_NEXT_C = np.asarray([
    [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
    [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
    [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])


def test_lstm_step_forward_cs231n_values_and_torch():
    args = cs231n_step_inputs()
    # The published values are themselves checked with torch (8 printed digits -> ~1e-8).
    th, tc = twins.lstm_step(*map(t, args))
    assert_close("torch next_h vs CS231n", th.detach().numpy(), CS231N_NEXT_H, 1e-7)
    assert_close("torch next_c vs CS231n", tc.detach().numpy(), CS231N_NEXT_C, 1e-7)
    next_h, next_c, _ = LL.lstm_step_forward(*args)
    assert_close("next_h vs CS231n", next_h, CS231N_NEXT_H, 1e-7)
    assert_close("next_c vs CS231n", next_c, CS231N_NEXT_C, 1e-7)
    assert_close("next_h vs torch", next_h, th.detach().numpy())
    assert_close("next_c vs torch", next_c, tc.detach().numpy())


@pytest.mark.parametrize("N,D,H", [(3, 4, 5), (1, 2, 3), (6, 7, 7)])
def test_lstm_step_vs_torch(N, D, H):
    rng = np.random.default_rng(N * 10 + H)
    x, prev_h, prev_c = (rng.standard_normal(s) for s in ((N, D), (N, H), (N, H)))
    Wx, Wh, b = lstm_params(rng, D, H)
    dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    next_h, next_c, cache = LL.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    grads = LL.lstm_step_backward(dnext_h, dnext_c, cache)

    targs = list(map(t, (x, prev_h, prev_c, Wx, Wh, b)))
    th, tc = twins.lstm_step(*targs)
    (th * torch.tensor(dnext_h) + tc * torch.tensor(dnext_c)).sum().backward()
    assert_close("next_h", next_h, th.detach().numpy())
    assert_close("next_c", next_c, tc.detach().numpy())
    names = ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"]
    for name, g, tg in zip(names, grads, grads_of(*targs)):
        assert_close(name, g, tg)

    # and against torch.nn.LSTMCell with copied weights (its own kernel and gate layout)
    cell = torch.nn.LSTMCell(D, H).double()
    with torch.no_grad():
        cell.weight_ih.copy_(to_torch_gate_order(Wx))
        cell.weight_hh.copy_(to_torch_gate_order(Wh))
        cell.bias_ih.copy_(to_torch_gate_order(b[None])[:, 0])
        cell.bias_hh.zero_()
        nh, nc = cell(torch.tensor(x), (torch.tensor(prev_h), torch.tensor(prev_c)))
    assert_close("next_h vs nn.LSTMCell", next_h, nh.numpy())
    assert_close("next_c vs nn.LSTMCell", next_c, nc.numpy())


@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (1, 1, 2, 3), (4, 7, 8, 8), (2, 3, 5, 2)])
def test_lstm_forward_backward_vs_torch(N, T, D, H):
    rng = np.random.default_rng(N * 100 + T * 10 + H)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = lstm_params(rng, D, H, scale=0.5)
    dh = rng.standard_normal((N, T, H))
    h, cache = LL.lstm_forward(x, h0, Wx, Wh, b)
    grads = LL.lstm_backward(dh, cache)

    targs = list(map(t, (x, h0, Wx, Wh, b)))
    th = twins.lstm(*targs)
    th.backward(torch.tensor(dh))
    assert_close("h", h, th.detach().numpy())
    for name, g, tg in zip(["dx", "dh0", "dWx", "dWh", "db"], grads, grads_of(*targs)):
        assert_close(name, g, tg)

    # torch.nn.LSTM with copied weights, zero initial cell state
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(to_torch_gate_order(Wx))
        lstm.weight_hh_l0.copy_(to_torch_gate_order(Wh))
        lstm.bias_ih_l0.copy_(to_torch_gate_order(b[None])[:, 0])
        lstm.bias_hh_l0.zero_()
    tx, th0 = t(x), t(h0[None])
    out, _ = lstm(tx, (th0, torch.zeros(1, N, H, dtype=F64)))
    out.backward(torch.tensor(dh))
    assert_close("h vs nn.LSTM", h, out.detach().numpy())
    assert_close("dx vs nn.LSTM", grads[0], tx.grad.numpy())
    assert_close("dh0 vs nn.LSTM", grads[1], th0.grad.numpy()[0])
    assert_close("dWh vs nn.LSTM", to_torch_gate_order(grads[3]).numpy(),
                 lstm.weight_hh_l0.grad.numpy())


def test_lstm_forward_equals_repeated_steps():
    rng = np.random.default_rng(3)
    N, T, D, H = 2, 4, 3, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = lstm_params(rng, D, H)
    h, _ = LL.lstm_forward(x, h0, Wx, Wh, b)
    prev_h, prev_c = h0, np.zeros_like(h0)
    for k in range(T):
        prev_h, prev_c, _ = LL.lstm_step_forward(x[:, k], prev_h, prev_c, Wx, Wh, b)
        assert_close(f"h[:, {k}]", h[:, k], prev_h, 1e-14)


# ---------------------------------------------------------------------------------------------
# attention

@pytest.mark.parametrize("N,P,H", [(3, 16, 5), (1, 1, 4), (4, 5, 8)])
def test_dot_product_attention_vs_torch(N, P, H):
    rng = np.random.default_rng(P * 10 + H)
    prev_h, A = rng.standard_normal((N, H)), rng.standard_normal((N, P, H))
    dattn = rng.standard_normal((N, H))
    attn, w, cache = AL.dot_product_attention_forward(prev_h, A)
    grads = AL.dot_product_attention_backward(dattn, cache)
    th, tA = t(prev_h), t(A)
    tattn, tw = twins.attention(th, tA)
    tattn.backward(torch.tensor(dattn))
    assert_close("attn", attn, tattn.detach().numpy())
    assert_close("attn_weights", w, tw.detach().numpy())
    assert_close("dprev_h", grads[0], th.grad.numpy())
    assert_close("dA", grads[1], tA.grad.numpy())


def test_dot_product_attention_large_scores_stable():
    prev_h = np.full((2, 4), 1e3)
    A = np.stack([np.eye(4) * 1e3, -np.eye(4) * 1e3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        attn, w, _ = AL.dot_product_attention_forward(prev_h, A)
    assert np.all(np.isfinite(w)) and np.allclose(w.sum(axis=1), 1)


@pytest.mark.parametrize("N,D,H", [(3, 4, 5), (1, 6, 2)])
def test_attention_lstm_step_vs_torch(N, D, H):
    rng = np.random.default_rng(D * 10 + H)
    x, prev_h, prev_c, attn = (rng.standard_normal(s) for s in ((N, D), (N, H), (N, H), (N, H)))
    Wx, Wh, b = lstm_params(rng, D, H)
    Wattn = rng.standard_normal((H, 4 * H))
    dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    next_h, next_c, cache = AL.attention_lstm_step_forward(x, prev_h, prev_c, attn,
                                                           Wx, Wh, Wattn, b)
    grads = AL.attention_lstm_step_backward(dnext_h, dnext_c, cache)

    targs = list(map(t, (x, prev_h, prev_c, attn, Wx, Wh, Wattn, b)))
    tx, tph, tpc, tat, tWx, tWh, tWa, tb = targs
    th, tc = twins.lstm_gates(tx @ tWx + tph @ tWh + tat @ tWa + tb, tpc)
    (th * torch.tensor(dnext_h) + tc * torch.tensor(dnext_c)).sum().backward()
    assert_close("next_h", next_h, th.detach().numpy())
    assert_close("next_c", next_c, tc.detach().numpy())
    tgrads = grads_of(tx, tph, tpc, tat, tWx, tWh, tWa, tb)
    names = ["dx", "dprev_h", "dprev_c", "dattn", "dWx", "dWh", "dWattn", "db"]
    for name, g, tg in zip(names, grads, tgrads):
        assert_close(name, g, tg)


@pytest.mark.parametrize("N,T,D,P,H", [(3, 5, 4, 16, 6), (1, 1, 2, 3, 3), (2, 4, 7, 5, 4)])
def test_attention_lstm_forward_backward_vs_torch(N, T, D, P, H):
    rng = np.random.default_rng(N * 1000 + T * 100 + P)
    x, A = rng.standard_normal((N, T, D)), rng.standard_normal((N, P, H))
    Wx, Wh, b = lstm_params(rng, D, H, scale=0.5)
    Wattn = 0.5 * rng.standard_normal((H, 4 * H))
    dh = rng.standard_normal((N, T, H))
    h, w, cache = AL.attention_lstm_forward(x, A, Wx, Wh, Wattn, b)
    grads = AL.attention_lstm_backward(dh, cache)

    targs = list(map(t, (x, A, Wx, Wh, Wattn, b)))
    th, tw = twins.attention_lstm(*targs)
    th.backward(torch.tensor(dh))
    assert_close("h", h, th.detach().numpy())
    assert_close("attn_weights", w, tw.detach().numpy())
    for name, g, tg in zip(["dx", "dA", "dWx", "dWh", "dWattn", "db"], grads, grads_of(*targs)):
        assert_close(name, g, tg)


# ---------------------------------------------------------------------------------------------
# dtype and arguments left alone, for every function

def _all_calls(dtype, rng):
    """(name, function, args) for every forward and backward, in dtype."""
    N, T, D, P, H = 2, 3, 4, 5, 6

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x1, xs, ph, pc, at, A = r(N, D), r(N, T, D), r(N, H), r(N, H), r(N, H), r(N, P, H)
    Wx, Wh, Wa, b = r(D, 4 * H), r(H, 4 * H), r(H, 4 * H), r(4 * H)
    calls = []
    _, _, c = LL.lstm_step_forward(x1, ph, pc, Wx, Wh, b)
    calls += [("lstm_step_forward", LL.lstm_step_forward, (x1, ph, pc, Wx, Wh, b)),
              ("lstm_step_backward", LL.lstm_step_backward, (r(N, H), r(N, H), c))]
    _, c = LL.lstm_forward(xs, ph, Wx, Wh, b)
    calls += [("lstm_forward", LL.lstm_forward, (xs, ph, Wx, Wh, b)),
              ("lstm_backward", LL.lstm_backward, (r(N, T, H), c))]
    _, _, c = AL.dot_product_attention_forward(ph, A)
    calls += [("dot_product_attention_forward", AL.dot_product_attention_forward, (ph, A)),
              ("dot_product_attention_backward", AL.dot_product_attention_backward, (r(N, H), c))]
    _, _, c = AL.attention_lstm_step_forward(x1, ph, pc, at, Wx, Wh, Wa, b)
    calls += [("attention_lstm_step_forward", AL.attention_lstm_step_forward,
               (x1, ph, pc, at, Wx, Wh, Wa, b)),
              ("attention_lstm_step_backward", AL.attention_lstm_step_backward,
               (r(N, H), r(N, H), c))]
    _, _, c = AL.attention_lstm_forward(xs, A, Wx, Wh, Wa, b)
    calls += [("attention_lstm_forward", AL.attention_lstm_forward, (xs, A, Wx, Wh, Wa, b)),
              ("attention_lstm_backward", AL.attention_lstm_backward, (r(N, T, H), c))]
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_arguments_not_modified(dtype):
    for name, fn, args in _all_calls(dtype, np.random.default_rng(0)):
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        before = [a.copy() for a in arrays]
        out = fn(*args)
        for a, bfr in zip(arrays, before):
            assert np.array_equal(a, bfr), f"{name} modified an argument"
        again = fn(*args)  # a backward must not overwrite its cache: same result twice
        for o, o2 in zip(out, again):
            if isinstance(o, np.ndarray):
                assert np.array_equal(o, o2), f"{name}: a second call gives another result"
        for k, o in enumerate(out):
            if isinstance(o, np.ndarray):
                assert o.dtype == dtype, f"{name}: output {k} is {o.dtype}, expected {dtype}"


def test_float32_matches_float64():
    rng = np.random.default_rng(1)
    N, T, D, P, H = 4, 5, 6, 16, 8
    x, A = rng.standard_normal((N, T, D)), rng.standard_normal((N, P, H))
    Wx, Wh, b = lstm_params(rng, D, H, scale=0.3)
    Wa = 0.3 * rng.standard_normal((H, 4 * H))
    h64, w64, _ = AL.attention_lstm_forward(x, A, Wx, Wh, Wa, b)
    h32, w32, _ = AL.attention_lstm_forward(*(a.astype(np.float32) for a in (x, A, Wx, Wh, Wa, b)))
    assert np.max(np.abs(h32 - h64)) < 1e-5 and np.max(np.abs(w32 - w64)) < 1e-5


# ---------------------------------------------------------------------------------------------
# CaptioningRNN against a PyTorch autograd twin of the whole model

WORDS = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "red", "blue", "circle", "square", "left"]
WORD_TO_IDX = {w: i for i, w in enumerate(WORDS)}


def torch_caption_loss(model, features, captions):
    p = {k: t(v) for k, v in model.params.items()}
    loss = twins.caption_loss(model.cell_type, p, torch.tensor(features, dtype=F64),
                              torch.tensor(captions), WORD_TO_IDX["<NULL>"])
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}


def caption_batch(rng, N, T, P=None, D=7):
    features = rng.standard_normal((N, D) if P is None else (N, P, D))
    captions = rng.integers(3, len(WORDS), size=(N, T + 1))
    captions[:, 0] = WORD_TO_IDX["<START>"]
    lengths = rng.integers(1, T + 1, size=N)
    for n, L in enumerate(lengths):  # <END> then <NULL> padding
        captions[n, L] = WORD_TO_IDX["<END>"]
        captions[n, L + 1:] = WORD_TO_IDX["<NULL>"]
    return features, captions


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_captioning_loss_and_grads_vs_torch(cell_type):
    rng = np.random.default_rng(5)
    model = CaptioningRNN(WORD_TO_IDX, input_dim=7, wordvec_dim=5, hidden_dim=6,
                          cell_type=cell_type, dtype=np.float64, seed=3)
    # larger weights than at init, so that the gradients are not tiny
    for k, v in model.params.items():
        model.params[k] = v + 0.3 * rng.standard_normal(v.shape)
    features, captions = caption_batch(rng, N=4, T=6, P=5 if cell_type == "attention" else None)
    params_before = {k: v.copy() for k, v in model.params.items()}
    feats_before, caps_before = features.copy(), captions.copy()
    loss, grads = model.loss(features, captions)
    tloss, tgrads = torch_caption_loss(model, features, captions)
    assert abs(loss - tloss) < TOL * abs(tloss)
    assert sorted(grads) == sorted(model.params)
    for k in model.params:
        assert_close(f"{cell_type} d{k}", grads[k], tgrads[k])
        assert np.array_equal(model.params[k], params_before[k])
    assert np.array_equal(features, feats_before) and np.array_equal(captions, caps_before)


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_captioning_float32_and_init(cell_type):
    rng = np.random.default_rng(6)
    V = len(WORDS)
    P = 16 if cell_type == "attention" else None
    features, captions = caption_batch(rng, N=20, T=8, P=P, D=32)
    m32 = CaptioningRNN(WORD_TO_IDX, input_dim=32, cell_type=cell_type, seed=0)
    m64 = CaptioningRNN(WORD_TO_IDX, input_dim=32, cell_type=cell_type, dtype=np.float64, seed=0)
    assert all(v.dtype == np.float32 for v in m32.params.values())
    assert all(np.allclose(m32.params[k], m64.params[k], atol=1e-6) for k in m64.params)
    loss32, grads32 = m32.loss(features, captions)
    loss64, grads64 = m64.loss(features, captions)
    assert all(g.dtype == np.float32 for g in grads32.values())
    assert abs(loss32 - loss64) < 1e-4 * loss64
    # at init the scores are small: the loss is about log V per (unmasked) word
    words_per_caption = np.sum(captions[:, 1:] != 0) / captions.shape[0]
    per_word = loss64 / words_per_caption
    assert abs(per_word - np.log(V)) < 0.1 * np.log(V), (per_word, np.log(V))
    # same seed, same weights; another seed, other weights
    again = CaptioningRNN(WORD_TO_IDX, input_dim=32, cell_type=cell_type, seed=0)
    other = CaptioningRNN(WORD_TO_IDX, input_dim=32, cell_type=cell_type, seed=1)
    assert all(np.array_equal(again.params[k], m32.params[k]) for k in m32.params)
    assert not np.array_equal(other.params["Wx"], m32.params["Wx"])


def test_captioning_param_shapes():
    D, W, H, V = 7, 5, 6, len(WORDS)
    for cell_type, k in [("rnn", 1), ("lstm", 4), ("attention", 4)]:
        m = CaptioningRNN(WORD_TO_IDX, D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type)
        expected = {"W_proj": (D, H), "b_proj": (H,), "W_embed": (V, W), "Wx": (W, k * H),
                    "Wh": (H, k * H), "b": (k * H,), "W_vocab": (H, V), "b_vocab": (V,)}
        if cell_type == "attention":
            expected["Wattn"] = (H, 4 * H)
        assert {n: p.shape for n, p in m.params.items()} == expected


def torch_greedy(model, features, max_length):
    """Greedy decoding written independently (no masking), for comparing the words."""
    p = {k: torch.tensor(v, dtype=F64) for k, v in model.params.items()}
    proj = torch.tensor(features, dtype=F64) @ p["W_proj"] + p["b_proj"]
    h = c = proj.mean(dim=1) if model.cell_type == "attention" else proj
    if model.cell_type == "lstm":
        c = torch.zeros_like(h)
    word = torch.full((features.shape[0],), WORD_TO_IDX["<START>"])
    words, weights = [], []
    for _ in range(max_length):
        x = p["W_embed"][word]
        if model.cell_type == "rnn":
            h = twins.rnn_step(x, h, p["Wx"], p["Wh"], p["b"])
        elif model.cell_type == "lstm":
            h, c = twins.lstm_step(x, h, c, p["Wx"], p["Wh"], p["b"])
        else:
            attn, w = twins.attention(h, proj)
            h, c = twins.lstm_gates(x @ p["Wx"] + h @ p["Wh"] + attn @ p["Wattn"] + p["b"], c)
            weights.append(w)
        word = (h @ p["W_vocab"] + p["b_vocab"]).argmax(dim=1)
        words.append(word)
    w = torch.stack(weights, dim=1).numpy() if weights else None
    return torch.stack(words, dim=1).numpy(), w


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "attention"])
def test_captioning_sample_greedy(cell_type):
    rng = np.random.default_rng(8)
    model = CaptioningRNN(WORD_TO_IDX, input_dim=7, wordvec_dim=5, hidden_dim=6,
                          cell_type=cell_type, dtype=np.float64, seed=2)
    for k, v in model.params.items():
        model.params[k] = v + rng.standard_normal(v.shape)
    P = 5 if cell_type == "attention" else None
    features, _ = caption_batch(rng, N=20, T=3, P=P)
    L, END, NULL = 12, WORD_TO_IDX["<END>"], WORD_TO_IDX["<NULL>"]
    # raise the score of <END> until some captions (not all) finish early
    for _ in range(40):
        expected, expected_w = torch_greedy(model, features, L)
        if 0 < np.sum(np.any(expected == END, axis=1)) < 20:
            break
        model.params["b_vocab"][END] += 0.25
    out = model.sample(features, max_length=L, return_attention=(cell_type == "attention"))
    captions, weights = out if cell_type == "attention" else (out, None)
    assert captions.shape == (20, L) and np.issubdtype(captions.dtype, np.integer)
    finished = 0
    for n in range(20):
        ends = np.flatnonzero(expected[n] == END)
        stop = ends[0] + 1 if len(ends) else L
        finished += stop < L
        assert np.array_equal(captions[n, :stop], expected[n, :stop])
        assert np.all(captions[n, stop:] == NULL)
        if weights is not None:
            assert_close("attn_weights", weights[n, :stop], expected_w[n, :stop], 1e-12)
            assert np.all(weights[n, stop:] == 0)
    assert 0 < finished < 20, "test data should mix finished and unfinished captions"
    if weights is not None:
        assert weights.shape == (20, L, P) and weights.dtype == np.float64


def test_captioning_errors():
    with pytest.raises(ValueError, match="cell_type"):
        CaptioningRNN(WORD_TO_IDX, 7, cell_type="gru")
    m = CaptioningRNN(WORD_TO_IDX, 7, cell_type="lstm")
    captions = np.ones((2, 4), dtype=np.int64)
    with pytest.raises(ValueError, match=r"features.*\(N, 7\).*\(2, 8\)"):
        m.loss(np.zeros((2, 8)), captions)
    with pytest.raises(ValueError, match=r"features.*\(N, 7\).*\(2, 5, 7\)"):
        m.sample(np.zeros((2, 5, 7)))
    a = CaptioningRNN(WORD_TO_IDX, 7, cell_type="attention")
    with pytest.raises(ValueError, match=r"features.*\(N, P, 7\).*\(2, 7\)"):
        a.loss(np.zeros((2, 7)), captions)
    with pytest.raises(ValueError, match="captions"):
        m.loss(np.zeros((2, 7)), np.ones((3, 4), dtype=np.int64))
