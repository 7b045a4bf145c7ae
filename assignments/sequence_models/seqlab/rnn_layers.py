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
    raise NotImplementedError("rnn_step_forward: implement this (see the docstring)")
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
    raise NotImplementedError("rnn_step_backward: implement this (see the docstring)")
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
    raise NotImplementedError("rnn_forward: implement this (see the docstring)")
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
    raise NotImplementedError("rnn_backward: implement this (see the docstring)")
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
    raise NotImplementedError("word_embedding_forward: implement this (see the docstring)")
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
    raise NotImplementedError("word_embedding_backward: implement this (see the docstring)")
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
    raise NotImplementedError("temporal_affine_forward: implement this (see the docstring)")
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
    raise NotImplementedError("temporal_affine_backward: implement this (see the docstring)")
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
    raise NotImplementedError("temporal_softmax_loss: implement this (see the docstring)")
    return loss, dx
