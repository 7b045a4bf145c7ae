"""Attention over an image grid, and an LSTM that uses it, in numpy (notebook 03).

The image is a set of P feature vectors ``A`` (N, P, H): a 4x4 CNN grid (P = 16) projected
to the hidden size H. At every timestep the previous hidden state is the query and the grid
vectors are both the keys and the values (scaled dot-product attention):

    scores  = (A @ prev_h) / sqrt(H)          (N, P)
    weights = softmax(scores) over P          (N, P)
    attn    = sum_p weights[:, p] * A[:, p]   (N, H)

The attention LSTM adds ``attn Wattn`` to the gate pre-activations of the LSTM (gate order
i, f, o, g, as in lstm_layers). Its initial hidden and cell states are both the mean of A over
the grid positions. All functions keep the dtype of their inputs and never modify their
arguments.

dtype: every function keeps the dtype of its float inputs, float32 in -> float32 out (the
autograder checks it for every function). Under NumPy 2 a NumPy scalar such as ``np.sqrt(H)``
and an array made with ``np.zeros(shape)`` (float64 by default) turn float32 into float64; a
Python float (``math.sqrt(H)``, ``1.0``), ``np.zeros_like(x)`` and ``np.zeros(shape,
dtype=x.dtype)`` do not.

Large inputs: every output stays finite, in float64 and float32 (the autograder feeds scores and
gate pre-activations in the thousands). exp() overflows to inf once its argument passes about
710 (float64) or 89 (float32): subtract each row's maximum score before the softmax, and use the
given sigmoid and np.tanh rather than formulas with exp().
"""
import math

import numpy as np

from seqlab.lstm_layers import sigmoid


def dot_product_attention_forward(prev_h, A):
    """Forward pass for scaled dot-product attention of a hidden state over an image grid.

    Inputs:
    - prev_h: The query, the LSTM hidden state of the previous timestep, of shape (N, H)
    - A: Projected grid features (keys and values), of shape (N, P, H)

    Returns a tuple of:
    - attn: Attention embedding, the weighted sum of the rows of A, of shape (N, H)
    - attn_weights: Attention weights (softmax over P of the scaled scores), of shape (N, P)
    - cache: Values needed for the backward pass

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    attn, attn_weights, cache = None, None, None
    ### BEGIN SOLUTION
    H = A.shape[2]
    scale = 1.0 / math.sqrt(H)                          # a Python float keeps the dtype
    scores = (A @ prev_h[:, :, None])[:, :, 0] * scale  # (N, P)
    # Stable softmax: shifting each row by its maximum leaves the result unchanged.
    scores -= scores.max(axis=1, keepdims=True)
    attn_weights = np.exp(scores)
    attn_weights /= attn_weights.sum(axis=1, keepdims=True)
    attn = (attn_weights[:, None, :] @ A)[:, 0, :]      # (N, H)
    cache = (prev_h, A, attn_weights, scale)
    ### END SOLUTION
    return attn, attn_weights, cache


def dot_product_attention_backward(dattn, cache):
    """Backward pass for scaled dot-product attention.

    Inputs:
    - dattn: Gradient of the attention embedding, of shape (N, H)
    - cache: Values from the forward pass

    Returns a tuple of:
    - dprev_h: Gradient of the query (previous hidden state), of shape (N, H)
    - dA: Gradient of the grid features, of shape (N, P, H)

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dprev_h, dA = None, None
    ### BEGIN SOLUTION
    prev_h, A, weights, scale = cache
    # attn = weights @ A: both factors receive a gradient.
    dweights = (A @ dattn[:, :, None])[:, :, 0]                       # (N, P)
    dA = weights[:, :, None] * dattn[:, None, :]
    # Softmax backward: dscores = w * (dw - sum_p w * dw), then the 1/sqrt(H) scale.
    dscores = weights * (dweights - np.sum(weights * dweights, axis=1, keepdims=True))
    dscores *= scale
    # scores = A @ prev_h: both factors receive a gradient.
    dprev_h = (dscores[:, None, :] @ A)[:, 0, :]                      # (N, H)
    dA += dscores[:, :, None] * prev_h[:, None, :]
    ### END SOLUTION
    return dprev_h, dA


def attention_lstm_step_forward(x, prev_h, prev_c, attn, Wx, Wh, Wattn, b):
    """Forward pass for a single timestep of an attention LSTM.

    Inputs:
    - x: Input data, of shape (N, D)
    - prev_h: Previous hidden state, of shape (N, H)
    - prev_c: Previous cell state, of shape (N, H)
    - attn: Attention embedding, of shape (N, H)
    - Wx: Input-to-hidden weights, of shape (D, 4H), gate blocks in the order i, f, o, g
    - Wh: Hidden-to-hidden weights, of shape (H, 4H)
    - Wattn: Weights for the attention embedding, of shape (H, 4H)
    - b: Biases, of shape (4H,)

    Returns a tuple of:
    - next_h: Next hidden state, of shape (N, H)
    - next_c: Next cell state, of shape (N, H)
    - cache: Values needed by attention_lstm_step_backward

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    next_h, next_c, cache = None, None, None
    ### BEGIN SOLUTION
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + attn @ Wattn + b      # (N, 4H): blocks i, f, o, g
    gates = np.empty_like(a)
    gates[:, :3 * H] = sigmoid(a[:, :3 * H])         # i, f, o
    gates[:, 3 * H:] = np.tanh(a[:, 3 * H:])         # g
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, prev_c, attn, Wx, Wh, Wattn, gates, tanh_c)
    ### END SOLUTION
    return next_h, next_c, cache


def attention_lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass for a single timestep of an attention LSTM.

    Inputs:
    - dnext_h: Gradient of the loss with respect to next_h, of shape (N, H)
    - dnext_c: Gradient of the loss with respect to next_c, of shape (N, H)
    - cache: Values from the forward pass

    Returns a tuple of:
    - dx: Gradient of input data, of shape (N, D)
    - dprev_h: Gradient of previous hidden state, of shape (N, H)
    - dprev_c: Gradient of previous cell state, of shape (N, H)
    - dattn: Gradient of the attention embedding, of shape (N, H)
    - dWx: Gradient of input-to-hidden weights, of shape (D, 4H)
    - dWh: Gradient of hidden-to-hidden weights, of shape (H, 4H)
    - dWattn: Gradient of the attention weights, of shape (H, 4H)
    - db: Gradient of biases, of shape (4H,)

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dx, dprev_h, dprev_c, dattn = None, None, None, None
    dWx, dWh, dWattn, db = None, None, None, None
    ### BEGIN SOLUTION
    x, prev_h, prev_c, attn, Wx, Wh, Wattn, gates, tanh_c = cache
    H = prev_h.shape[1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    da = np.empty_like(gates)
    da[:, :H] = dc * g * i * (1 - i)
    da[:, H:2 * H] = dc * prev_c * f * (1 - f)
    da[:, 2 * H:3 * H] = dnext_h * tanh_c * o * (1 - o)
    da[:, 3 * H:] = dc * i * (1 - g * g)
    dprev_c = dc * f
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dattn = da @ Wattn.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    dWattn = attn.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dprev_h, dprev_c, dattn, dWx, dWh, dWattn, db


def attention_lstm_forward(x, A, Wx, Wh, Wattn, b):
    """Forward pass for an attention LSTM over an entire sequence of data.

    The initial hidden state and the initial cell state are both the mean of A over the P grid
    positions. At every timestep the LSTM first attends over A with its previous hidden state,
    then takes a step with the resulting attention embedding.

    Inputs:
    - x: Input data, of shape (N, T, D)
    - A: Projected grid features, of shape (N, P, H)
    - Wx: Weights for input-to-hidden connections, of shape (D, 4H)
    - Wh: Weights for hidden-to-hidden connections, of shape (H, 4H)
    - Wattn: Weights for attention-to-hidden connections, of shape (H, 4H)
    - b: Biases, of shape (4H,)

    Returns a tuple of:
    - h: Hidden states for all timesteps of all sequences, of shape (N, T, H)
    - attn_weights: Attention weights of every timestep, of shape (N, T, P)
    - cache: Values needed for the backward pass.

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    h, attn_weights, cache = None, None, None
    ### BEGIN SOLUTION
    N, T, D = x.shape
    P, H = A.shape[1], A.shape[2]
    dtype = np.result_type(x, A, Wx, Wh, Wattn, b)
    h0 = A.mean(axis=1)                              # initial hidden AND cell state
    xWx = (x.reshape(N * T, D) @ Wx).reshape(N, T, 4 * H) + b
    gates = np.empty((N, T, 4 * H), dtype=dtype)     # activated gates i, f, o, g
    c = np.empty((N, T, H), dtype=dtype)
    tanh_c = np.empty((N, T, H), dtype=dtype)
    h = np.empty((N, T, H), dtype=dtype)
    attn = np.empty((N, T, H), dtype=dtype)          # attention embeddings
    attn_weights = np.empty((N, T, P), dtype=dtype)
    attn_caches = []
    prev_h, prev_c = h0, h0
    for t in range(T):
        attn[:, t], attn_weights[:, t], attn_cache = dot_product_attention_forward(prev_h, A)
        attn_caches.append(attn_cache)
        a = xWx[:, t] + prev_h @ Wh + attn[:, t] @ Wattn
        gates[:, t, :3 * H] = sigmoid(a[:, :3 * H])
        gates[:, t, 3 * H:] = np.tanh(a[:, 3 * H:])
        i, f, o, g = np.split(gates[:, t], 4, axis=1)
        c[:, t] = f * prev_c + i * g
        tanh_c[:, t] = np.tanh(c[:, t])
        h[:, t] = o * tanh_c[:, t]
        prev_h, prev_c = h[:, t], c[:, t]
    cache = (x, A, Wx, Wh, Wattn, h0, gates, c, tanh_c, h, attn, attn_caches)
    ### END SOLUTION
    return h, attn_weights, cache


def attention_lstm_backward(dh, cache):
    """Backward pass for an attention LSTM over an entire sequence of data.

    Inputs:
    - dh: Upstream gradients of hidden states, of shape (N, T, H)
    - cache: Values from the forward pass

    Returns a tuple of:
    - dx: Gradient of input data, of shape (N, T, D)
    - dA: Gradient of the grid features, of shape (N, P, H): through the attention at every
      timestep and through the initial hidden and cell states
    - dWx: Gradient of input-to-hidden weight matrix, of shape (D, 4H)
    - dWh: Gradient of hidden-to-hidden weight matrix, of shape (H, 4H)
    - dWattn: Gradient of attention weight matrix, of shape (H, 4H)
    - db: Gradient of biases, of shape (4H,)

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dx, dA, dWx, dWh, dWattn, db = None, None, None, None, None, None
    ### BEGIN SOLUTION
    x, A, Wx, Wh, Wattn, h0, gates, c, tanh_c, h, attn, attn_caches = cache
    N, T, D = x.shape
    P, H = A.shape[1], A.shape[2]
    da = np.empty_like(gates)                        # gradient of the gate pre-activations
    dA = np.zeros_like(A, dtype=gates.dtype)
    dprev_h = np.zeros_like(h0, dtype=gates.dtype)
    dprev_c = np.zeros_like(h0, dtype=gates.dtype)
    for t in reversed(range(T)):
        i, f, o, g = np.split(gates[:, t], 4, axis=1)
        prev_c = c[:, t - 1] if t > 0 else h0        # c0 is the mean of A
        dnext_h = dh[:, t] + dprev_h
        dc = dprev_c + dnext_h * o * (1 - tanh_c[:, t] * tanh_c[:, t])
        da[:, t, :H] = dc * g * i * (1 - i)
        da[:, t, H:2 * H] = dc * prev_c * f * (1 - f)
        da[:, t, 2 * H:3 * H] = dnext_h * tanh_c[:, t] * o * (1 - o)
        da[:, t, 3 * H:] = dc * i * (1 - g * g)
        dprev_c = dc * f
        # prev_h reaches a through Wh and, as the query, through the attention embedding.
        dattn = da[:, t] @ Wattn.T
        dprev_h_attn, dA_t = dot_product_attention_backward(dattn, attn_caches[t])
        dprev_h = da[:, t] @ Wh.T + dprev_h_attn
        dA += dA_t
    # h0 = c0 = mean of A over the P positions.
    dA += (dprev_h + dprev_c)[:, None, :] / P
    # The weights are shared over time: sum their gradients over all timesteps at once.
    da = da.reshape(N * T, 4 * H)
    prev_hs = np.concatenate([h0[:, None, :], h[:, :-1]], axis=1).reshape(N * T, H)
    dx = (da @ Wx.T).reshape(N, T, D)
    dWx = x.reshape(N * T, D).T @ da
    dWh = prev_hs.T @ da
    dWattn = attn.reshape(N * T, H).T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dA, dWx, dWh, dWattn, db
