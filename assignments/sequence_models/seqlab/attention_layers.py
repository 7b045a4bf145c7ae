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
    raise NotImplementedError("dot_product_attention_forward: implement this (see the docstring)")
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
    raise NotImplementedError("dot_product_attention_backward: implement this (see the docstring)")
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
    raise NotImplementedError("attention_lstm_step_forward: implement this (see the docstring)")
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
    raise NotImplementedError("attention_lstm_step_backward: implement this (see the docstring)")
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
    raise NotImplementedError("attention_lstm_forward: implement this (see the docstring)")
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
    raise NotImplementedError("attention_lstm_backward: implement this (see the docstring)")
    return dx, dA, dWx, dWh, dWattn, db
