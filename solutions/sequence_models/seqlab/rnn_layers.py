"""Vanilla RNN layers in numpy (notebook 01).

Every forward pass returns ``(out, cache)``; the matching backward pass takes the upstream
gradient and that cache and returns the gradients of the forward's inputs. A cache is opaque:
only the matching backward reads it. No function modifies its arguments.

Shape letters: N batch, T time steps, D input size (the word-vector size in the captioner),
H hidden size, V vocabulary size, M output size.

dtype: every function keeps the dtype of its float inputs, float32 in -> float32 out (the
autograder checks it for every function). Under NumPy 2 a NumPy scalar such as ``np.sqrt(H)``
and an array made with ``np.zeros(shape)`` (float64 by default) turn float32 into float64; a
Python float (``math.sqrt(H)``, ``1.0``), ``np.zeros_like(x)`` and ``np.zeros(shape,
dtype=x.dtype)`` do not.

Large inputs: tanh saturates at -1 or 1, never NaN, in float64 and float32 (the autograder feeds
pre-activations in the thousands). A tanh written with exp() overflows to inf / inf = NaN once
|a| passes about 710 (float64) or 89 (float32); np.tanh does not.
"""
import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One time step of a vanilla RNN with a tanh nonlinearity.

        next_h = tanh(x @ Wx + prev_h @ Wh + b)

    Inputs:
    - x: input at this step, shape (N, D)
    - prev_h: hidden state of the previous step, shape (N, H)
    - Wx: input-to-hidden weights, shape (D, H)
    - Wh: hidden-to-hidden weights, shape (H, H)
    - b: bias, shape (H,)

    Returns a tuple of:
    - next_h: next hidden state, shape (N, H)
    - cache: values needed by rnn_step_backward

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    next_h, cache = None, None
    ### BEGIN SOLUTION
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    ### END SOLUTION
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward pass of one RNN time step.

    Inputs:
    - dnext_h: gradient of the loss with respect to next_h, shape (N, H)
    - cache: the cache returned by rnn_step_forward

    Returns a tuple of:
    - dx: gradient of the input, shape (N, D)
    - dprev_h: gradient of the previous hidden state, shape (N, H)
    - dWx: gradient of Wx, shape (D, H)
    - dWh: gradient of Wh, shape (H, H)
    - db: gradient of b, shape (H,)

    Hint: d tanh(a) / da = 1 - tanh(a)**2, and tanh(a) is next_h.

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dx, dprev_h, dWx, dWh, db = None, None, None, None, None
    ### BEGIN SOLUTION
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h * next_h)  # (N, H): gradient through tanh
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """Run a vanilla RNN over a whole sequence.

    Inputs:
    - x: input sequence, shape (N, T, D): T time steps for each of N sequences
    - h0: initial hidden state, shape (N, H)
    - Wx: input-to-hidden weights, shape (D, H)
    - Wh: hidden-to-hidden weights, shape (H, H)
    - b: bias, shape (H,)

    Returns a tuple of:
    - h: hidden states of every time step, shape (N, T, H); h[:, t] is the state after step t
    - cache: values needed by rnn_backward

    Loop over time only; every step works on the whole batch at once.

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    h, cache = None, None
    ### BEGIN SOLUTION
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.empty((N, T, H), dtype=np.result_type(x, h0, Wx, Wh, b))
    # The input projection does not depend on the recurrence: do it for all steps at once, as
    # one (N*T, D) @ (D, H) matrix product (much faster than a batch of N small (T, D) ones).
    xWx_b = (x.reshape(N * T, D) @ Wx + b).reshape(N, T, H)
    prev_h = h0
    for t in range(T):
        prev_h = np.tanh(xWx_b[:, t] + prev_h @ Wh)
        h[:, t] = prev_h
    cache = (x, h0, Wx, Wh, h)
    ### END SOLUTION
    return h, cache


def rnn_backward(dh, cache):
    """Backward pass of rnn_forward over the whole sequence.

    Inputs:
    - dh: upstream gradient of every hidden state, shape (N, T, H). This is the gradient
      coming from the layers *above* each h[:, t] only; the gradient that flows into h[:, t]
      from step t + 1 is computed here.
    - cache: the cache returned by rnn_forward

    Returns a tuple of:
    - dx: gradient of the inputs, shape (N, T, D)
    - dh0: gradient of the initial hidden state, shape (N, H)
    - dWx: gradient of Wx, shape (D, H)   (summed over time: the same Wx is used at every step)
    - dWh: gradient of Wh, shape (H, H)
    - db: gradient of b, shape (H,)

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    ### BEGIN SOLUTION
    x, h0, Wx, Wh, h = cache
    N, T, D = x.shape
    H = h0.shape[1]
    da = np.empty_like(h)  # gradient of each step's pre-activation, (N, T, H)
    dprev = np.zeros_like(h0)  # gradient flowing into h[:, t] from step t + 1
    for t in reversed(range(T)):
        da[:, t] = (dh[:, t] + dprev) * (1 - h[:, t] * h[:, t])
        dprev = da[:, t] @ Wh.T
    dh0 = dprev
    # The weights are shared over time: treat the N*T (sequence, step) pairs as one big batch,
    # so that each gradient is a single matrix product that also sums over time.
    da = da.reshape(N * T, H)
    h_prev = np.concatenate([h0[:, None, :], h[:, :-1]], axis=1).reshape(N * T, H)
    dx = (da @ Wx.T).reshape(N, T, D)
    dWx = x.reshape(N * T, D).T @ da
    dWh = h_prev.T @ da
    db = da.sum(axis=0)
    ### END SOLUTION
    return dx, dh0, dWx, dWh, db


def word_embedding_forward(x, W):
    """Look up word vectors: each integer word index becomes a row of W.

    Inputs:
    - x: integer array of word indices, shape (N, T), each in [0, V)
    - W: the embedding table, shape (V, D): one D-dimensional vector per vocabulary word

    Returns a tuple of:
    - out: word vectors, shape (N, T, D); out[n, t] = W[x[n, t]]
    - cache: values needed by word_embedding_backward

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    out, cache = None, None
    ### BEGIN SOLUTION
    out = W[x]
    cache = (x, W.shape, W.dtype)
    ### END SOLUTION
    return out, cache


def word_embedding_backward(dout, cache):
    """Backward pass of word_embedding_forward.

    Inputs:
    - dout: upstream gradient, shape (N, T, D)
    - cache: the cache returned by word_embedding_forward

    Returns:
    - dW: gradient of the embedding table, shape (V, D). A word that appears several times
      receives the sum of the gradients of all its positions (hint: np.add.at; ``dW[x] += dout``
      loses repeated indices).

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dW = None
    ### BEGIN SOLUTION
    x, W_shape, W_dtype = cache
    dW = np.zeros(W_shape, dtype=W_dtype)
    np.add.at(dW, x, dout)
    ### END SOLUTION
    return dW


def temporal_affine_forward(x, w, b):
    """An affine layer applied at every time step: out[n, t] = x[n, t] @ w + b.

    Inputs:
    - x: inputs, shape (N, T, D)
    - w: weights, shape (D, M)
    - b: biases, shape (M,)

    Returns a tuple of:
    - out: outputs, shape (N, T, M)
    - cache: values needed by temporal_affine_backward

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    out, cache = None, None
    ### BEGIN SOLUTION
    out = x @ w + b
    cache = (x, w)
    ### END SOLUTION
    return out, cache


def temporal_affine_backward(dout, cache):
    """Backward pass of temporal_affine_forward.

    Inputs:
    - dout: upstream gradient, shape (N, T, M)
    - cache: the cache returned by temporal_affine_forward

    Returns a tuple of:
    - dx: gradient of the inputs, shape (N, T, D)
    - dw: gradient of the weights, shape (D, M)
    - db: gradient of the biases, shape (M,)

    float32 in -> float32 out: the outputs have the dtype of the float inputs.
    """
    dx, dw, db = None, None, None
    ### BEGIN SOLUTION
    x, w = cache
    dx = dout @ w.T
    dw = np.tensordot(x, dout, axes=([0, 1], [0, 1]))
    db = dout.sum(axis=(0, 1))
    ### END SOLUTION
    return dx, dw, db


def temporal_softmax_loss(x, y, mask):
    """Softmax cross-entropy summed over time and averaged over the batch, with a mask.

    At every time step the model scores each of the V vocabulary words; the loss is
    ``-log softmax(x[n, t])[y[n, t]]`` summed over the positions where mask[n, t] is True,
    then divided by N (not by the number of unmasked positions). Masked positions (the
    <NULL> padding after a caption ends) contribute nothing to the loss or the gradient.

    Inputs:
    - x: scores, shape (N, T, V)
    - y: target word indices, shape (N, T), each in [0, V)
    - mask: boolean array, shape (N, T); True where the position counts

    Returns a tuple of:
    - loss: a Python float
    - dx: gradient of the loss with respect to the scores, shape (N, T, V)

    Large scores (gaps of hundreds between words, float32 included) must give a finite loss.
    Subtracting the row maximum keeps exp() from overflowing, but the probability of a word far
    below the maximum still underflows to 0, and log(0) = -inf: compute the log-probabilities
    directly, log p = (x - max) - log(sum(exp(x - max))) (log-sum-exp), not as log(softmax).
    With every position masked the loss is 0 and dx is zero.

    float32 in -> float32 out: dx has the dtype of x (loss is a Python float).
    """
    loss, dx = None, None
    ### BEGIN SOLUTION
    N, T, V = x.shape
    shifted = x - x.max(axis=2, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))  # (N, T, V)
    n_idx, t_idx = np.arange(N)[:, None], np.arange(T)[None, :]
    picked = log_probs[n_idx, t_idx, y]  # (N, T): log-probability of each target
    loss = float(-np.sum(picked * mask) / N)
    dx = np.exp(log_probs)  # softmax probabilities
    dx[n_idx, t_idx, y] -= 1
    dx *= mask[:, :, None].astype(dx.dtype) / N  # (a bool / int array would be float64)
    dx = dx.astype(x.dtype, copy=False)
    ### END SOLUTION
    return loss, dx
