"""LSTM layers in numpy (notebook 02).

Every forward function returns its output(s) and a ``cache``; the matching backward function
takes the upstream gradient(s) and that cache and returns the gradient of every input.

The four gates share one matrix product. With Wx (D, 4H), Wh (H, 4H) and b (4H,),
``a = x Wx + prev_h Wh + b`` (N, 4H) is split into four blocks of H columns, in the order
**i, f, o, g**::

    i = sigmoid(a[:, 0H:1H])      input gate
    f = sigmoid(a[:, 1H:2H])      forget gate
    o = sigmoid(a[:, 2H:3H])      output gate
    g = tanh(a[:, 3H:4H])         candidate cell values
    next_c = f * prev_c + i * g
    next_h = o * tanh(next_c)

The initial cell state of a sequence is zero. No function modifies its arguments.

dtype: every function keeps the dtype of its float inputs, float32 in -> float32 out (the
autograder checks it for every function). Under NumPy 2 a NumPy scalar such as ``np.sqrt(H)``
and an array made with ``np.zeros(shape)`` (float64 by default) turn float32 into float64; a
Python float (``math.sqrt(H)``, ``1.0``), ``np.zeros_like(x)`` and ``np.zeros(shape,
dtype=x.dtype)`` do not.

Large inputs: gate pre-activations may be in the thousands. The given ``sigmoid`` and
``np.tanh`` saturate there (at 0 or 1, and -1 or 1); a formula with ``exp`` overflows (beyond
about 710 in float64, 89 in float32) and returns NaN.
"""
import numpy as np


def sigmoid(x):
    """Numerically stable logistic sigmoid, ``1 / (1 + exp(-x))`` (given code).

    The textbook formula overflows in ``exp(-x)`` for very negative x. Writing
    ``sigmoid(x) = exp(min(x, 0)) / (1 + exp(-|x|))`` only ever exponentiates numbers <= 0,
    so nothing overflows, and it is accurate to round-off for every x.

    Inputs:
    - x: array of any shape (float32 or float64).

    Returns an array of the same shape and dtype with values in [0, 1].
    """
    return np.exp(np.minimum(x, 0)) / (1 + np.exp(-np.abs(x)))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """Forward pass for a single timestep of an LSTM.

    Inputs:
    - x: Input data, of shape (N, D)
    - prev_h: Previous hidden state, of shape (N, H)
    - prev_c: Previous cell state, of shape (N, H)
    - Wx: Input-to-hidden weights, of shape (D, 4H), gate blocks in the order i, f, o, g
    - Wh: Hidden-to-hidden weights, of shape (H, 4H)
    - b: Biases, of shape (4H,)

    Returns a tuple of:
    - next_h: Next hidden state, of shape (N, H)
    - next_c: Next cell state, of shape (N, H)
    - cache: Values needed by lstm_step_backward

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    next_h, next_c, cache = None, None, None
    raise NotImplementedError("lstm_step_forward: implement this (see the docstring)")
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass for a single timestep of an LSTM.

    Inputs:
    - dnext_h: Gradient of the loss with respect to next_h, of shape (N, H)
    - dnext_c: Gradient of the loss with respect to next_c, of shape (N, H)
    - cache: Values from the forward pass

    Returns a tuple of:
    - dx: Gradient of input data, of shape (N, D)
    - dprev_h: Gradient of previous hidden state, of shape (N, H)
    - dprev_c: Gradient of previous cell state, of shape (N, H)
    - dWx: Gradient of input-to-hidden weights, of shape (D, 4H)
    - dWh: Gradient of hidden-to-hidden weights, of shape (H, 4H)
    - db: Gradient of biases, of shape (4H,)

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dx, dprev_h, dprev_c, dWx, dWh, db = None, None, None, None, None, None
    raise NotImplementedError("lstm_step_backward: implement this (see the docstring)")
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """Forward pass for an LSTM over an entire sequence of data.

    We assume an input sequence composed of T vectors, each of dimension D. The LSTM uses a
    hidden size of H, and we work over a minibatch containing N sequences. After running the
    LSTM forward, we return the hidden states for all timesteps.

    Note that the initial hidden state is passed as input, but the initial cell state is set to
    zero. Also note that the cell state is not returned; it is an internal variable to the LSTM
    and is not accessed from outside.

    Inputs:
    - x: Input data, of shape (N, T, D)
    - h0: Initial hidden state, of shape (N, H)
    - Wx: Weights for input-to-hidden connections, of shape (D, 4H)
    - Wh: Weights for hidden-to-hidden connections, of shape (H, 4H)
    - b: Biases, of shape (4H,)

    Returns a tuple of:
    - h: Hidden states for all timesteps of all sequences, of shape (N, T, H)
    - cache: Values needed for the backward pass.

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    h, cache = None, None
    raise NotImplementedError("lstm_forward: implement this (see the docstring)")
    return h, cache


def lstm_backward(dh, cache):
    """Backward pass for an LSTM over an entire sequence of data.

    Inputs:
    - dh: Upstream gradients of hidden states, of shape (N, T, H)
    - cache: Values from the forward pass

    Returns a tuple of:
    - dx: Gradient of input data of shape (N, T, D)
    - dh0: Gradient of initial hidden state of shape (N, H)
    - dWx: Gradient of input-to-hidden weight matrix of shape (D, 4H)
    - dWh: Gradient of hidden-to-hidden weight matrix of shape (H, 4H)
    - db: Gradient of biases, of shape (4H,)

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    raise NotImplementedError("lstm_backward: implement this (see the docstring)")
    return dx, dh0, dWx, dWh, db
