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
    ### BEGIN SOLUTION
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b                     # (N, 4H): blocks i, f, o, g
    gates = np.empty_like(a)
    gates[:, :3 * H] = sigmoid(a[:, :3 * H])         # i, f, o
    gates[:, 3 * H:] = np.tanh(a[:, 3 * H:])         # g
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, prev_c, Wx, Wh, gates, tanh_c)
    ### END SOLUTION
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
    ### BEGIN SOLUTION
    x, prev_h, prev_c, Wx, Wh, gates, tanh_c = cache
    H = prev_h.shape[1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    # Total gradient reaching next_c: directly, and through next_h = o * tanh(next_c).
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    # Gradient of each gate's pre-activation (block of a); sigmoid' = s(1 - s), tanh' = 1 - t^2.
    da = np.empty_like(gates)
    da[:, :H] = dc * g * i * (1 - i)
    da[:, H:2 * H] = dc * prev_c * f * (1 - f)
    da[:, 2 * H:3 * H] = dnext_h * tanh_c * o * (1 - o)
    da[:, 3 * H:] = dc * i * (1 - g * g)
    dprev_c = dc * f
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
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
    ### BEGIN SOLUTION
    N, T, D = x.shape
    H = h0.shape[1]
    dtype = np.result_type(x, h0, Wx, Wh, b)
    # The input term does not depend on the recurrence: one matrix product for all timesteps.
    xWx = (x.reshape(N * T, D) @ Wx).reshape(N, T, 4 * H) + b
    gates = np.empty((N, T, 4 * H), dtype=dtype)     # activated gates i, f, o, g
    c = np.empty((N, T, H), dtype=dtype)             # cell states
    tanh_c = np.empty((N, T, H), dtype=dtype)
    h = np.empty((N, T, H), dtype=dtype)
    prev_h, prev_c = h0, np.zeros_like(h0, dtype=dtype)
    for t in range(T):
        a = xWx[:, t] + prev_h @ Wh
        gates[:, t, :3 * H] = sigmoid(a[:, :3 * H])
        gates[:, t, 3 * H:] = np.tanh(a[:, 3 * H:])
        i, f, o, g = np.split(gates[:, t], 4, axis=1)
        c[:, t] = f * prev_c + i * g
        tanh_c[:, t] = np.tanh(c[:, t])
        h[:, t] = o * tanh_c[:, t]
        prev_h, prev_c = h[:, t], c[:, t]
    cache = (x, h0, Wx, Wh, gates, c, tanh_c, h)
    ### END SOLUTION
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
    ### BEGIN SOLUTION
    x, h0, Wx, Wh, gates, c, tanh_c, h = cache
    N, T, D = x.shape
    H = h0.shape[1]
    da = np.empty_like(gates)                        # gradient of the gate pre-activations
    dprev_h = np.zeros_like(h0, dtype=gates.dtype)
    dprev_c = np.zeros_like(h0, dtype=gates.dtype)
    for t in reversed(range(T)):
        i, f, o, g = np.split(gates[:, t], 4, axis=1)
        prev_c = c[:, t - 1] if t > 0 else 0         # the initial cell state is zero
        dnext_h = dh[:, t] + dprev_h                 # from the output and from step t + 1
        dc = dprev_c + dnext_h * o * (1 - tanh_c[:, t] * tanh_c[:, t])
        da[:, t, :H] = dc * g * i * (1 - i)
        da[:, t, H:2 * H] = dc * prev_c * f * (1 - f)
        da[:, t, 2 * H:3 * H] = dnext_h * tanh_c[:, t] * o * (1 - o)
        da[:, t, 3 * H:] = dc * i * (1 - g * g)
        dprev_c = dc * f
        dprev_h = da[:, t] @ Wh.T
    dh0 = dprev_h
    # The weights are shared over time: sum their gradients over all timesteps at once.
    da = da.reshape(N * T, 4 * H)
    prev_hs = np.concatenate([h0[:, None, :], h[:, :-1]], axis=1).reshape(N * T, H)
    dx = (da @ Wx.T).reshape(N, T, D)
    dWx = x.reshape(N * T, D).T @ da
    dWh = prev_hs.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dh0, dWx, dWh, db
