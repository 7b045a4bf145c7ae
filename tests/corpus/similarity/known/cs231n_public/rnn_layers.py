"""A public solution of a CS231n-style RNN assignment (written for this test class): the
kind of file an instructor collects from public repositories into the --corpus folder."""
from __future__ import print_function, division
from builtins import range
import numpy as np


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """Run the forward pass for a single timestep of a vanilla RNN."""
    next_h, cache = None, None
    raw = x.dot(Wx) + prev_h.dot(Wh) + b[np.newaxis, :]
    next_h = np.tanh(raw)
    cache = (next_h, x, Wx, prev_h, Wh)
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward pass for a single timestep of a vanilla RNN."""
    dx, dprev_h, dWx, dWh, db = None, None, None, None, None
    next_h, x, Wx, prev_h, Wh = cache
    draw = (1.0 - next_h * next_h) * dnext_h
    db = draw.sum(axis=0)
    dWh = prev_h.T.dot(draw)
    dprev_h = draw.dot(Wh.T)
    dWx = x.T.dot(draw)
    dx = draw.dot(Wx.T)
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """Run a vanilla RNN forward on an entire sequence of data."""
    h, cache = None, None
    N, T, D = x.shape
    _, H = h0.shape
    h = np.zeros((N, T, H))
    cache = []
    h_t = h0
    for i in range(T):
        h_t, cache_t = rnn_step_forward(x[:, i, :], h_t, Wx, Wh, b)
        h[:, i, :] = h_t
        cache.append(cache_t)
    return h, cache


def rnn_backward(dh, cache):
    """Compute the backward pass for a vanilla RNN over an entire sequence of data."""
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    N, T, H = dh.shape
    D = cache[0][1].shape[1]
    dx = np.zeros((N, T, D))
    dh0 = np.zeros((N, H))
    dWx = np.zeros((D, H))
    dWh = np.zeros((H, H))
    db = np.zeros((H,))
    dh_prev = np.zeros((N, H))
    for i in range(T - 1, -1, -1):
        dh_cur = dh[:, i, :] + dh_prev
        dx_i, dh_prev, dWx_i, dWh_i, db_i = rnn_step_backward(dh_cur, cache[i])
        dx[:, i, :] += dx_i
        dWx += dWx_i
        dWh += dWh_i
        db += db_i
    dh0 = dh_prev
    return dx, dh0, dWx, dWh, db


def word_embedding_forward(x, W):
    """Forward pass for word embeddings."""
    out, cache = None, None
    out = W[x, :]
    cache = (x, W)
    return out, cache


def word_embedding_backward(dout, cache):
    """Backward pass for word embeddings."""
    dW = None
    x, W = cache
    dW = np.zeros(W.shape)
    np.add.at(dW, x, dout)
    return dW


def sigmoid(x):
    """A numerically stable version of the logistic sigmoid function."""
    pos_mask = (x >= 0)
    neg_mask = (x < 0)
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def temporal_affine_forward(x, w, b):
    """Forward pass for a temporal affine layer."""
    N, T, D = x.shape
    M = b.shape[0]
    out = x.reshape(N * T, D).dot(w).reshape(N, T, M) + b
    cache = x, w, b, out
    return out, cache


def temporal_affine_backward(dout, cache):
    """Backward pass for temporal affine layer."""
    x, w, b, out = cache
    N, T, D = x.shape
    M = b.shape[0]
    dx = dout.reshape(N * T, M).dot(w.T).reshape(N, T, D)
    dw = dout.reshape(N * T, M).T.dot(x.reshape(N * T, D)).T
    db = dout.sum(axis=(0, 1))
    return dx, dw, db


def temporal_softmax_loss(x, y, mask, verbose=False):
    """A temporal version of softmax loss for use in RNNs."""
    N, T, V = x.shape
    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)
    probs = np.exp(x_flat - np.max(x_flat, axis=1, keepdims=True))
    probs /= np.sum(probs, axis=1, keepdims=True)
    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat /= N
    dx_flat *= mask_flat[:, None]
    if verbose:
        print('dx_flat: ', dx_flat.shape)
    dx = dx_flat.reshape(N, T, V)
    return loss, dx
