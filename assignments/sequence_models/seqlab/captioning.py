"""An image-captioning model built from the numpy layers (notebooks 01-03).

CaptioningRNN turns image features into a caption one word at a time. Three recurrent cells:

- ``"rnn"`` and ``"lstm"`` read a pooled image vector (N, input_dim); its projection
  ``features @ W_proj + b_proj`` is the initial hidden state h0 (the LSTM's initial cell state
  is zero).
- ``"attention"`` reads a grid of P image vectors (N, P, input_dim); its projection A (N, P, H)
  is attended over at every step by an attention LSTM, whose initial states are the mean of A.

The model has no regularization and does not train itself: ``seqlab.solver.Solver`` trains it
from ``loss``.
"""
import numpy as np

from seqlab.attention_layers import (
    attention_lstm_backward,
    attention_lstm_forward,
    attention_lstm_step_forward,
    dot_product_attention_forward,
)
from seqlab.lstm_layers import lstm_backward, lstm_forward, lstm_step_forward
from seqlab.rnn_layers import (
    rnn_backward,
    rnn_forward,
    rnn_step_forward,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)

CELL_TYPES = ("rnn", "lstm", "attention")


class CaptioningRNN:
    """A recurrent captioning model: image features in, word scores at every step out.

    Vocabulary size V, word-vector size D (wordvec_dim), hidden size H (hidden_dim), image
    feature size C (input_dim);
    sequences of length T; minibatches of N images.

    Parameters (in ``self.params``, all of dtype ``dtype``):
    - W_proj (C, H), b_proj (H,): image features -> h0 (rnn, lstm) or A (attention)
    - W_embed (V, D): word vectors
    - Wx (D, kH), Wh (H, kH), b (kH,): the recurrent cell, k = 1 for rnn and 4 for the LSTMs
      (gate order i, f, o, g)
    - Wattn (H, 4H): attention embedding -> gates (attention only)
    - W_vocab (H, V), b_vocab (V,): hidden state -> word scores
    """

    def __init__(self, word_to_idx, input_dim, wordvec_dim=128, hidden_dim=128,
                 cell_type="rnn", dtype=np.float32, seed=0):
        """Construct a new CaptioningRNN instance.

        Inputs:
        - word_to_idx: A dictionary giving the vocabulary. It contains V entries, and maps each
          string to a unique integer in the range [0, V). <NULL> is needed by ``loss``,
          <START> and <END> by ``sample``.
        - input_dim: Dimension C of the input image feature vectors.
        - wordvec_dim: Dimension D of word vectors.
        - hidden_dim: Dimension H for the hidden state of the RNN.
        - cell_type: What type of RNN to use; either "rnn", "lstm" or "attention".
        - dtype: numpy datatype to use; float32 for training, float64 for gradient checks.
        - seed: seed of the random initialization (np.random.default_rng).
        """
        if cell_type not in CELL_TYPES:
            raise ValueError(f"cell_type: expected one of {CELL_TYPES}, got {cell_type!r}")
        self.cell_type = cell_type
        self.dtype = dtype
        self.input_dim = input_dim
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self.params = {}

        self._null = word_to_idx.get("<NULL>")
        self._start = word_to_idx.get("<START>")
        self._end = word_to_idx.get("<END>")

        V, D, H, C = len(word_to_idx), wordvec_dim, hidden_dim, input_dim
        k = 1 if cell_type == "rnn" else 4
        rng = np.random.default_rng(seed)
        # Drawn in float64 and then cast, so float32 and float64 models start from the same
        # weights (up to rounding).
        self.params["W_proj"] = rng.standard_normal((C, H)) / np.sqrt(C)
        self.params["b_proj"] = np.zeros(H)
        self.params["W_embed"] = rng.standard_normal((V, D)) / 100
        self.params["Wx"] = rng.standard_normal((D, k * H)) / np.sqrt(D)
        self.params["Wh"] = rng.standard_normal((H, k * H)) / np.sqrt(H)
        self.params["b"] = np.zeros(k * H)
        if cell_type == "attention":
            self.params["Wattn"] = rng.standard_normal((H, k * H)) / np.sqrt(H)
        self.params["W_vocab"] = rng.standard_normal((H, V)) / np.sqrt(H)
        self.params["b_vocab"] = np.zeros(V)
        for name, value in self.params.items():
            self.params[name] = value.astype(dtype)

    def _check_features(self, features):
        """Return features as an array of the model's dtype, or raise a clear ValueError."""
        features = np.asarray(features)
        if self.cell_type == "attention":
            ndim, expected = 3, f"(N, P, {self.input_dim})"
        else:
            ndim, expected = 2, f"(N, {self.input_dim})"
        if features.ndim != ndim or features.shape[-1] != self.input_dim:
            raise ValueError(f"features: expected shape {expected} for cell_type="
                             f"{self.cell_type!r}, got {features.shape}")
        return features.astype(self.dtype, copy=False)

    def _check_token(self, token, value):
        if value is None:
            raise ValueError(f"word_to_idx has no {token!r} token")

    def loss(self, features, captions):
        """Compute training-time loss for the RNN, with teacher forcing.

        We input image features and ground-truth captions for those images, and use an RNN
        (or LSTM) to compute loss and gradients on all parameters. The input at step t is the
        ground-truth word t (``captions[:, :-1]``) and the target is word t + 1
        (``captions[:, 1:]``); positions whose target is <NULL> do not count.

        Inputs:
        - features: Input image features, of shape (N, C) for "rnn" and "lstm", or image
          grids of shape (N, P, C) for "attention"
        - captions: Ground-truth captions; an integer array of shape (N, T + 1) where each
          element is in the range 0 <= y[i, t] < V

        Returns a tuple of:
        - loss: Scalar loss (summed over time, averaged over the batch)
        - grads: Dictionary of gradients parallel to self.params
        """
        features = self._check_features(features)
        captions = np.asarray(captions)
        if captions.ndim != 2 or captions.shape[0] != features.shape[0] or captions.shape[1] < 2:
            raise ValueError(f"captions: expected shape (N, T + 1) with N = {features.shape[0]} "
                             f"and T >= 1, got {captions.shape}")
        self._check_token("<NULL>", self._null)
        captions_in = captions[:, :-1]
        captions_out = captions[:, 1:]
        mask = captions_out != self._null
        loss, grads = 0.0, {}
        raise NotImplementedError("CaptioningRNN.loss: implement this (see the docstring)")
        return loss, grads

    def sample(self, features, max_length=30, return_attention=False):
        """Run a test-time forward pass for the model, sampling captions for input features.

        At each timestep, we embed the current word, pass it and the previous hidden state to
        the RNN to get the next hidden state, use the hidden state to get scores for all vocab
        words, and choose the word with the highest score as the next word (greedy decoding).
        The first input word is <START>; each later input is the previous step's choice.
        After a caption emits <END>, the rest of its row is <NULL>.

        Inputs:
        - features: Array of input image features, of shape (N, C), or (N, P, C) grids for
          "attention"
        - max_length: Maximum length T of generated captions
        - return_attention: also return the attention weights ("attention" only)

        Returns:
        - captions: Array of shape (N, max_length) giving sampled captions, where each element
          is an integer in the range [0, V). The first element of captions is the first sampled
          word, not the <START> token.
        - attn_weights (only with return_attention=True): shape (N, max_length, P), the
          attention weights used to produce each word; zero where the caption is <NULL> after
          its <END>.
        """
        features = self._check_features(features)
        if return_attention and self.cell_type != "attention":
            raise ValueError(f"return_attention=True needs cell_type='attention', "
                             f"got {self.cell_type!r}")
        self._check_token("<START>", self._start)
        self._check_token("<END>", self._end)
        self._check_token("<NULL>", self._null)
        N = features.shape[0]
        captions = np.full((N, max_length), self._null, dtype=np.int64)
        P = features.shape[1] if self.cell_type == "attention" else 0
        attn_weights = np.zeros((N, max_length, P), dtype=self.dtype)
        raise NotImplementedError("CaptioningRNN.sample: implement this (see the docstring)")
        if return_attention:
            return captions, attn_weights
        return captions
