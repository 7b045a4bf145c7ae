# carol: np.dot and explicit intermediate names; plain Python loops where they read well.
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    a = np.dot(x, Wx) + np.dot(prev_h, Wh) + b
    next_h = np.tanh(a)
    cache = (x, prev_h, Wx, Wh, a)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, a = cache
    da = dnext_h / np.cosh(a) ** 2
    dx = np.dot(da, Wx.T)
    dprev_h = np.dot(da, Wh.T)
    dWx = np.dot(x.T, da)
    dWh = np.dot(prev_h.T, da)
    db = da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    hidden = h0.shape[1]
    h = np.empty((N, T, hidden))
    activations = np.empty((N, T, hidden))
    current = h0
    for t in range(T):
        activations[:, t] = np.dot(x[:, t], Wx) + np.dot(current, Wh) + b
        current = np.tanh(activations[:, t])
        h[:, t] = current
    cache = (x, h0, Wx, Wh, activations)


def rnn_backward(dh, cache):
    x, h0, Wx, Wh, activations = cache
    N, T, D = x.shape
    dx = np.empty_like(x)
    dWx = np.zeros_like(Wx)
    dWh = np.zeros_like(Wh)
    db = np.zeros(Wh.shape[0])
    running = np.zeros_like(h0)
    t = T - 1
    while t >= 0:
        da = (dh[:, t] + running) * (1 - np.tanh(activations[:, t]) ** 2)
        before = np.tanh(activations[:, t - 1]) if t > 0 else h0
        dWx += np.dot(x[:, t].T, da)
        dWh += np.dot(before.T, da)
        db += da.sum(axis=0)
        dx[:, t] = np.dot(da, Wx.T)
        running = np.dot(da, Wh.T)
        t -= 1
    dh0 = running


def word_embedding_forward(x, W):
    N, T = x.shape
    out = np.empty((N, T, W.shape[1]))
    for n in range(N):
        for t in range(T):
            out[n, t] = W[x[n, t]]
    cache = (x, W.shape)


def word_embedding_backward(dout, cache):
    x, shape = cache
    dW = np.zeros(shape)
    N, T = x.shape
    for n in range(N):
        for t in range(T):
            dW[x[n, t]] += dout[n, t]


def temporal_affine_forward(x, w, b):
    out = np.dot(x, w) + b
    cache = (x, w)


def temporal_affine_backward(dout, cache):
    x, w = cache
    dx = np.dot(dout, w.T)
    dw = np.tensordot(x, dout, axes=([0, 1], [0, 1]))
    db = dout.sum(axis=(0, 1))


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    loss = 0.0
    dx = np.zeros_like(x)
    for n in range(N):
        for t in range(T):
            if not mask[n, t]:
                continue
            scores = x[n, t] - x[n, t].max()
            p = np.exp(scores) / np.exp(scores).sum()
            loss -= np.log(p[y[n, t]])
            p[y[n, t]] -= 1
            dx[n, t] = p
    loss = float(loss / N)
    dx /= N
