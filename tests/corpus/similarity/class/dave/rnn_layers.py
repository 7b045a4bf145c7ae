# dave: alice's module with every local variable renamed and independent statements reordered.
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    cache = (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    inp, h_before, W_in, W_rec, h_after = cache
    grad_act = dnext_h * (1 - h_after ** 2)
    dWx = inp.T @ grad_act
    dWh = h_before.T @ grad_act
    db = np.sum(grad_act, axis=0)
    dx = grad_act @ W_in.T
    dprev_h = grad_act @ W_rec.T


def rnn_forward(x, h0, Wx, Wh, b):
    H = h0.shape[1]
    batch, steps, dim = x.shape
    all_caches = []
    h = np.zeros((batch, steps, H))
    hidden = h0
    for k in range(steps):
        hidden, c = rnn_step_forward(x[:, k, :], hidden, Wx, Wh, b)
        all_caches.append(c)
        h[:, k, :] = hidden
    cache = (all_caches, dim)


def rnn_backward(dh, cache):
    all_caches, dim = cache
    batch, steps, hid = dh.shape
    dWh = np.zeros((hid, hid))
    dWx = np.zeros((dim, hid))
    db = np.zeros(hid)
    dx = np.zeros((batch, steps, dim))
    carry = np.zeros((batch, hid))
    for k in reversed(range(steps)):
        g_x, carry, g_Wx, g_Wh, g_b = rnn_step_backward(dh[:, k, :] + carry,
                                                        all_caches[k])
        dWx += g_Wx
        dx[:, k, :] = g_x
        db += g_b
        dWh += g_Wh
    dh0 = carry


def word_embedding_forward(x, W):
    out = W[x]
    cache = (x, W)


def word_embedding_backward(dout, cache):
    idx, table = cache
    dW = np.zeros_like(table)
    np.add.at(dW, idx, dout)


def temporal_affine_forward(x, w, b):
    M = b.shape[0]
    N, T, D = x.shape
    out = (x.reshape(N * T, D) @ w + b).reshape(N, T, M)
    cache = (x, w)


def temporal_affine_backward(dout, cache):
    inputs, weights = cache
    M = weights.shape[1]
    N, T, D = inputs.shape
    g = dout.reshape(N * T, M)
    dw = inputs.reshape(N * T, D).T @ g
    dx = (g @ weights.T).reshape(N, T, D)
    db = dout.sum(axis=(0, 1))


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    dx = np.zeros_like(x)
    total = 0.0
    for step in range(T):
        s_t = x[:, step, :]
        s_t = s_t - s_t.max(axis=1, keepdims=True)
        e = np.exp(s_t)
        e = e / e.sum(axis=1, keepdims=True)
        r = np.arange(N)
        total -= np.sum(np.log(e[r, y[:, step]]) * mask[:, step])
        e[r, y[:, step]] -= 1
        dx[:, step, :] = e * mask[:, step, None] / N
    loss = float(total / N)
