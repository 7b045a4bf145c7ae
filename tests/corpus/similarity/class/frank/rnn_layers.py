# frank: honest, in his own style, but with the canonical one-liners written exactly as alice
# wrote them (the step forward, the embedding, np.add.at, the bias gradients).
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    cache = (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    local = 1 - next_h ** 2
    grad = dnext_h * local
    dx, dprev_h = grad @ Wx.T, grad @ Wh.T
    dWx, dWh = x.T @ grad, prev_h.T @ grad
    db = grad.sum(0)


def rnn_forward(x, h0, Wx, Wh, b):
    length = x.shape[1]
    outputs = [h0]
    for t in range(length):
        outputs.append(np.tanh(x[:, t] @ Wx + outputs[-1] @ Wh + b))
    h = np.transpose(np.array(outputs[1:]), (1, 0, 2))
    cache = (x, np.array(outputs), Wx, Wh)


def rnn_backward(dh, cache):
    x, states, Wx, Wh = cache
    length = x.shape[1]
    dx = np.zeros_like(x)
    dWx, dWh = np.zeros_like(Wx), np.zeros_like(Wh)
    db = np.zeros(Wh.shape[1])
    upstream = np.zeros_like(states[0])
    for t in range(length - 1, -1, -1):
        grad = (dh[:, t] + upstream) * (1 - states[t + 1] ** 2)
        dx[:, t] = grad @ Wx.T
        dWx += x[:, t].T @ grad
        dWh += states[t].T @ grad
        db += grad.sum(0)
        upstream = grad @ Wh.T
    dh0 = upstream


def word_embedding_forward(x, W):
    out = W[x]
    cache = (x, W)


def word_embedding_backward(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)


def temporal_affine_forward(x, w, b):
    out = np.matmul(x, w) + b
    cache = (x, w)


def temporal_affine_backward(dout, cache):
    x, w = cache
    dx = np.matmul(dout, w.T)
    dw = np.einsum("ntd,ntm->dm", x, dout)
    db = dout.sum(axis=(0, 1))


def temporal_softmax_loss(x, y, mask):
    N = x.shape[0]
    z = x - x.max(axis=2, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=2, keepdims=True)
    onehot = np.eye(x.shape[2])[y]
    loss = float(-(np.log((p * onehot).sum(axis=2)) * mask).sum() / N)
    dx = (p - onehot) * mask[:, :, None] / N
