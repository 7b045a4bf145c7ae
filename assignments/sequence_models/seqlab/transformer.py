"""The Transformer of "Attention Is All You Need", in PyTorch (notebook 04).

You build every piece by hand from ``torch`` tensors and a few ``nn`` building blocks
(``nn.Linear``, ``nn.Embedding``, ``nn.LayerNorm``, ``nn.Dropout``); autograd does the backward
passes. Do not use ``nn.MultiheadAttention``, ``nn.Transformer*`` or
``torch.nn.functional.scaled_dot_product_attention`` here: the tests compare against them.

Shape letters: N batch, T (Tq, Tk) time steps (of the queries, of the keys), S source length,
d = d_model, h = num_heads, d_k = d / h (the size of one head), L = num_layers, V vocabulary
size, P number of image-grid positions, C image-feature size (``input_dim``).

Masks are bool tensors where **True means "may attend"** (as in
``torch.nn.functional.scaled_dot_product_attention``; ``nn.MultiheadAttention`` uses the opposite
convention). Masked scores are filled with ``-inf`` before the softmax; a query row whose keys are
all masked gets all-zero attention weights (and so an all-zero output), never NaN.

Layers are post-LN, as in the paper: ``x = LayerNorm(x + Dropout(sublayer(x)))``.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "positional_encoding",
    "causal_mask",
    "padding_mask",
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "FeedForward",
    "EncoderLayer",
    "DecoderLayer",
    "Transformer",
    "CaptioningTransformer",
]


# ---------------------------------------------------------------------------------------------
# Input checks (given). They turn a shape mistake into a message that names the argument, the
# expected shape and the shape received, instead of an obscure error deep inside a matmul.
# ---------------------------------------------------------------------------------------------

def _shape_str(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_tensor(where, name, x, ndim=None, dtype=None):
    """Raise a readable error unless ``x`` is a tensor with ``ndim`` dimensions (an int or a
    tuple of allowed ints) and, if ``dtype`` is ``"int"`` / ``"float"`` / ``torch.bool``, of that
    kind."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(f"{k}-D" for k in allowed)
            raise ValueError(f"{where}: {name} must be {want}, got shape {_shape_str(x.shape)}")
    if dtype == "int" and (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool):
        raise TypeError(f"{where}: {name} must hold integer token ids (torch.long), got {x.dtype}")
    if dtype == "float" and not x.is_floating_point():
        raise TypeError(f"{where}: {name} must be a floating-point tensor, got {x.dtype}")
    if dtype is torch.bool and x.dtype != torch.bool:
        raise TypeError(f"{where}: {name} must be a bool tensor (True = may attend), got {x.dtype}")


def _check_last_dim(where, name, x, size, what):
    if x.shape[-1] != size:
        raise ValueError(f"{where}: {name} must have last dimension {what} = {size}, "
                         f"got shape {_shape_str(x.shape)}")


def _check_mask(where, mask, target_shape):
    """``mask`` must be a bool tensor that broadcasts to ``target_shape``."""
    _check_tensor(where, "mask", mask, dtype=torch.bool)
    try:
        torch.broadcast_shapes(mask.shape, tuple(target_shape))
        ok = mask.dim() <= len(target_shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{where}: mask must broadcast to {_shape_str(target_shape)}, "
                         f"got shape {_shape_str(mask.shape)}")


def _check_length(where, name, length, max_len):
    if length > max_len:
        raise ValueError(f"{where}: {name} has length {length}, longer than the model's "
                         f"max length {max_len} (the size of its positional-encoding table)")


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------

def positional_encoding(max_len, d_model):
    """Sinusoidal positional encodings of the paper (section 3.5).

        PE[p, 2i]   = sin(p / 10000^(2i / d_model))
        PE[p, 2i+1] = cos(p / 10000^(2i / d_model))

    Every pair of columns (2i, 2i+1) is a sine/cosine at one frequency; the wavelengths grow
    geometrically from 2*pi (i = 0) to about 10000 * 2*pi.

    Inputs:
    - max_len: number of positions p = 0 .. max_len-1
    - d_model: size of each encoding (if odd, the last column is a sine)

    Returns pe: tensor of shape (max_len, d_model) in torch's default dtype (float32 unless
    changed with ``torch.set_default_dtype``).
    """
    if max_len < 0 or d_model < 1:
        raise ValueError(f"positional_encoding: need max_len >= 0 and d_model >= 1, "
                         f"got max_len={max_len}, d_model={d_model}")
    pe = None
    raise NotImplementedError("positional_encoding: implement this (see the docstring)")
    return pe


def causal_mask(T, device=None):
    """Mask that lets each position attend to itself and to earlier positions only.

    Inputs:
    - T: sequence length
    - device: torch device of the result (default: the CPU)

    Returns mask: bool tensor of shape (T, T) with mask[i, j] = True where key j <= query i
    (lower triangle and diagonal). It broadcasts against (N, T, T) masks.
    """
    mask = None
    raise NotImplementedError("causal_mask: implement this (see the docstring)")
    return mask


def padding_mask(tokens, pad_idx):
    """Mask that hides padding keys.

    Inputs:
    - tokens: integer tensor of shape (N, T)
    - pad_idx: index of the padding token

    Returns mask: bool tensor of shape (N, 1, T), True where the key is NOT padding. The middle
    dimension of size 1 broadcasts over the queries, so ``padding_mask(x, pad) & causal_mask(T)``
    is an (N, T, T) mask.
    """
    _check_tensor("padding_mask", "tokens", tokens, ndim=2, dtype="int")
    mask = None
    raise NotImplementedError("padding_mask: implement this (see the docstring)")
    return mask


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    """Scaled dot-product attention, ``softmax(q k^T / sqrt(d_k)) v``.

    Inputs:
    - q: queries, shape (..., Tq, d_k)
    - k: keys, shape (..., Tk, d_k)
    - v: values, shape (..., Tk, d_v)
    - mask: optional bool tensor broadcastable to (..., Tq, Tk); True = query i may attend to
      key j. Masked scores are set to -inf before the softmax. A query row with no allowed key
      gets all-zero weights (not NaN).
    - dropout_p: dropout probability on the attention weights (as in
      ``torch.nn.functional.scaled_dot_product_attention``). Pass 0.0 at evaluation time: the
      caller decides (``MultiHeadAttention`` passes 0.0 in eval mode).

    Returns a tuple of:
    - out: shape (..., Tq, d_v); row i is the weighted average of the values
    - weights: shape (..., Tq, Tk); each row sums to 1 (or is all zeros, see above). These are
      the weights before dropout.

    The leading dimensions "..." broadcast (e.g. (N, h) for multi-head attention).
    """
    where = "scaled_dot_product_attention"
    _check_tensor(where, "q", q, dtype="float")
    if q.dim() < 2:
        raise ValueError(f"{where}: q must have shape (..., Tq, d), got {_shape_str(q.shape)}")
    _check_tensor(where, "k", k, ndim=q.dim(), dtype="float")
    _check_tensor(where, "v", v, ndim=q.dim(), dtype="float")
    _check_last_dim(where, "k", k, q.shape[-1], "d (the last dimension of q)")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"{where}: v must have as many rows as k (Tk = {k.shape[-2]}), "
                         f"got k {_shape_str(k.shape)} and v {_shape_str(v.shape)}")
    try:
        batch_shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"{where}: the leading dimensions of q, k and v must broadcast, got "
                         f"q {_shape_str(q.shape)}, k {_shape_str(k.shape)}, "
                         f"v {_shape_str(v.shape)}") from None
    if mask is not None:
        _check_mask(where, mask, batch_shape + (q.shape[-2], k.shape[-2]))
    out, weights = None, None
    raise NotImplementedError("scaled_dot_product_attention: implement this (see the docstring)")
    return out, weights


class MultiHeadAttention(nn.Module):
    """Multi-head attention (section 3.2.2 of the paper).

    The inputs are projected by ``q_proj``, ``k_proj``, ``v_proj`` (each ``nn.Linear(d, d)``),
    split into h heads of size d/h, attended independently with scaled dot-product attention,
    concatenated back to size d and projected by ``out_proj`` (``nn.Linear(d, d)``).

    Head i owns the features i*d/h .. (i+1)*d/h - 1 of every position of a projection (N, T, d).
    Bring each projection to shape (N, h, T, d/h), head i at index i of dimension 1, so that the
    attention treats (N, h) as batch dimensions; bring the result (N, h, Tq, d/h) back to
    (N, Tq, d) with the heads side by side, in the same order. A single reshape straight to
    (N, h, T, d/h) has the right shape and the wrong content (notebook 04, section 4).

    Attributes (submodules): q_proj, k_proj, v_proj, out_proj; plus num_heads, head_dim and
    dropout (the dropout probability on the attention weights, used in training mode only).
    """

    def __init__(self, d_model, num_heads, dropout=0.0):
        """Inputs:
        - d_model: model size d; must be divisible by num_heads
        - num_heads: number of heads h
        - dropout: dropout probability on the attention weights (training mode only)
        """
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"MultiHeadAttention: d_model ({d_model}) must be divisible by "
                             f"num_heads ({num_heads})")
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.dropout = dropout
        raise NotImplementedError("MultiHeadAttention.__init__: implement this (see the docstring)")

    def forward(self, query, key, value, mask=None, return_weights=False):
        """Inputs:
        - query: shape (N, Tq, d)
        - key: shape (N, Tk, d)
        - value: shape (N, Tk, d)
        - mask: optional bool tensor broadcastable to (N, Tq, Tk) (for example (Tq, Tk) or
          (N, 1, Tk)); True = may attend. The same mask is used for every head.
        - return_weights: also return the attention weights of every head

        Returns out, shape (N, Tq, d), or (out, weights) with weights of shape (N, h, Tq, Tk).
        """
        where = "MultiHeadAttention.forward"
        for name, x in (("query", query), ("key", key), ("value", value)):
            _check_tensor(where, name, x, ndim=3, dtype="float")
            _check_last_dim(where, name, x, self.d_model, "d_model")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"{where}: key and value must have shape (N, Tk, d) with the N of "
                             f"query; got query {_shape_str(query.shape)}, key "
                             f"{_shape_str(key.shape)}, value {_shape_str(value.shape)}")
        if mask is not None:
            _check_mask(where, mask, (query.shape[0], query.shape[1], key.shape[1]))
        out, weights = None, None
        raise NotImplementedError("MultiHeadAttention.forward: implement this (see the docstring)")
        if return_weights:
            return out, weights
        return out


class FeedForward(nn.Module):
    """Position-wise feed-forward network: ``linear2(dropout(relu(linear1(x))))``.

    Attributes (submodules): linear1 (``nn.Linear(d_model, d_ff)``), linear2
    (``nn.Linear(d_ff, d_model)``), dropout (``nn.Dropout``).
    """

    def __init__(self, d_model, d_ff, dropout=0.1):
        super().__init__()
        raise NotImplementedError("FeedForward.__init__: implement this (see the docstring)")

    def forward(self, x):
        """x: shape (N, T, d_model) -> shape (N, T, d_model), each position independently."""
        out = None
        raise NotImplementedError("FeedForward.forward: implement this (see the docstring)")
        return out


class EncoderLayer(nn.Module):
    """One encoder layer, post-LN as in the paper:

        x = norm1(x + dropout(self_attn(x, x, x, mask)))
        x = norm2(x + dropout(feed_forward(x)))

    Attributes (submodules): self_attn (``MultiHeadAttention``, with attention dropout
    ``dropout``), feed_forward (``FeedForward``), norm1, norm2 (``nn.LayerNorm(d_model)``),
    dropout (``nn.Dropout``, on each sublayer's output before the residual sum).
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.1):
        super().__init__()
        raise NotImplementedError("EncoderLayer.__init__: implement this (see the docstring)")

    def forward(self, x, mask=None):
        """Inputs:
        - x: shape (N, S, d_model)
        - mask: optional bool mask broadcastable to (N, S, S), usually a padding mask (N, 1, S)

        Returns shape (N, S, d_model).
        """
        raise NotImplementedError("EncoderLayer.forward: implement this (see the docstring)")
        return x


class DecoderLayer(nn.Module):
    """One decoder layer, post-LN as in the paper:

        x = norm1(x + dropout(self_attn(x, x, x, tgt_mask)))               masked self-attention
        x = norm2(x + dropout(cross_attn(x, memory, memory, memory_mask)))  cross-attention
        x = norm3(x + dropout(feed_forward(x)))

    In the cross-attention the **queries come from the decoder** (x) and the **keys and the
    values from the encoder output** (memory): each target position looks up the source.

    Attributes (submodules): self_attn, cross_attn (``MultiHeadAttention``), feed_forward
    (``FeedForward``), norm1, norm2, norm3 (``nn.LayerNorm(d_model)``), dropout (``nn.Dropout``).
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.1):
        super().__init__()
        raise NotImplementedError("DecoderLayer.__init__: implement this (see the docstring)")

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        """Inputs:
        - x: decoder input, shape (N, T, d_model)
        - memory: encoder output, shape (N, S, d_model)
        - tgt_mask: optional bool mask broadcastable to (N, T, T), usually causal & padding
        - memory_mask: optional bool mask broadcastable to (N, T, S), usually the source
          padding mask (N, 1, S)

        Returns shape (N, T, d_model).
        """
        raise NotImplementedError("DecoderLayer.forward: implement this (see the docstring)")
        return x


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

class Transformer(nn.Module):
    """Encoder-decoder Transformer for sequence-to-sequence tasks (figure 1 of the paper).

    Attributes (submodules, and no other parameters):
    - src_embed: ``nn.Embedding(src_vocab_size, d_model)``
    - tgt_embed: ``nn.Embedding(tgt_vocab_size, d_model)``
    - encoder_layers: ``nn.ModuleList`` of num_layers ``EncoderLayer``
    - decoder_layers: ``nn.ModuleList`` of num_layers ``DecoderLayer``
    - generator: ``nn.Linear(d_model, tgt_vocab_size)``, decoder output -> logits
    - dropout: ``nn.Dropout`` applied to the (scaled) embeddings plus positional encodings
    - pe: buffer (not a parameter) with ``positional_encoding(max_len, d_model)``

    Embeddings are multiplied by sqrt(d_model) before the positional encoding is added.
    Initialisation: every parameter with more than one dimension (the embeddings and the weight
    matrices of every submodule) is drawn by ``nn.init.xavier_uniform_``, uniform on [-a, a] with
    a = sqrt(6 / (fan_in + fan_out)); biases and LayerNorm gains keep PyTorch's defaults. The
    sqrt(d_model) scale relies on it: Xavier embeddings times sqrt(d_model) have entries of the
    size of the positional encoding's, where PyTorch's default N(0, 1) embeddings would drown it.
    ``encode`` and ``decode`` build the masks themselves: a padding mask on the source keys
    (self- and cross-attention) and a causal & padding mask on the target self-attention.
    Tokens are LongTensors of shape (N, S) (source) and (N, T) (target), padded with pad_idx.
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=128, num_heads=4, num_layers=2,
                 d_ff=512, dropout=0.1, max_len=256, pad_idx=0):
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.pad_idx = pad_idx
        self.register_buffer("pe", positional_encoding(max_len, d_model), persistent=False)
        raise NotImplementedError("Transformer.__init__: implement this (see the docstring)")

    def encode(self, src):
        """Inputs:
        - src: source tokens, LongTensor of shape (N, S)

        Returns memory: the encoder output, shape (N, S, d_model).
        """
        _check_tensor("Transformer.encode", "src", src, ndim=2, dtype="int")
        _check_length("Transformer.encode", "src", src.shape[1], self.max_len)
        memory = None
        raise NotImplementedError("Transformer.encode: implement this (see the docstring)")
        return memory

    def decode(self, tgt_in, memory, src):
        """Inputs:
        - tgt_in: decoder input tokens, LongTensor of shape (N, T) (starting with the start token)
        - memory: encoder output, shape (N, S, d_model)
        - src: the source tokens (N, S), needed for the padding mask on the memory

        Returns logits: shape (N, T, tgt_vocab_size); logits[:, t] predicts token t+1.
        """
        where = "Transformer.decode"
        _check_tensor(where, "tgt_in", tgt_in, ndim=2, dtype="int")
        _check_tensor(where, "src", src, ndim=2, dtype="int")
        _check_tensor(where, "memory", memory, ndim=3, dtype="float")
        if memory.shape[:2] != src.shape or memory.shape[-1] != self.d_model:
            raise ValueError(f"{where}: memory must have shape (N, S, d_model) = "
                             f"{_shape_str(tuple(src.shape) + (self.d_model,))} to match src, "
                             f"got {_shape_str(memory.shape)}")
        _check_length(where, "tgt_in", tgt_in.shape[1], self.max_len)
        logits = None
        raise NotImplementedError("Transformer.decode: implement this (see the docstring)")
        return logits

    def forward(self, src, tgt_in):
        """Teacher forcing: src (N, S), tgt_in (N, T) -> logits (N, T, tgt_vocab_size)."""
        logits = None
        raise NotImplementedError("Transformer.forward: implement this (see the docstring)")
        return logits

    @torch.no_grad()
    def greedy_decode(self, src, max_len, start_idx, end_idx):
        """Greedy decoding: feed back the most likely token, one step at a time.

        Inputs:
        - src: source tokens, LongTensor of shape (N, S)
        - max_len: maximum length of the output, start token included (>= 1)
        - start_idx, end_idx: indices of the start and end tokens

        Returns ys: LongTensor of shape (N, T) with T <= max_len. Every row starts with start_idx;
        after a row has produced end_idx the rest of it is pad_idx. Decoding stops as soon as
        every row has produced end_idx (so T can be smaller than max_len).

        Call ``model.eval()`` first (dropout off). Encode the source once; at each step decode the
        whole prefix and keep the logits of its last position.
        """
        _check_tensor("Transformer.greedy_decode", "src", src, ndim=2, dtype="int")
        if max_len < 1:
            raise ValueError(f"Transformer.greedy_decode: max_len must be >= 1, got {max_len}")
        _check_length("Transformer.greedy_decode", "max_len", max_len, self.max_len)
        ys = None
        raise NotImplementedError("Transformer.greedy_decode: implement this (see the docstring)")
        return ys


class CaptioningTransformer(nn.Module):
    """A Transformer decoder that writes captions about an image grid.

    The image is a set of P feature vectors, features (N, P, input_dim) (the 4x4 grid, P = 16);
    ``visual_proj`` maps them to d_model and the result is the memory that the decoder layers
    cross-attend to (there is no encoder). Pooled features (N, input_dim) are accepted too and
    treated as a grid with a single position (P = 1).

    The captions use the vocabulary ``word_to_idx`` with the special tokens ``<NULL>`` (padding),
    ``<START>`` and ``<END>``. Words are embedded by ``embed``, scaled by sqrt(d_model), plus the
    positional encoding; then the decoder layers (causal & padding mask on the captions) and
    ``generator``.

    Attributes (submodules, and no other parameters): visual_proj (``nn.Linear(input_dim,
    d_model)``), embed (``nn.Embedding(V, d_model)``), decoder_layers
    (``nn.ModuleList`` of num_layers ``DecoderLayer``), generator (``nn.Linear(d_model, V)``),
    dropout (``nn.Dropout``); pe is a buffer with ``positional_encoding(max_length, d_model)``.
    Initialisation as in ``Transformer``: every parameter with more than one dimension is drawn by
    ``nn.init.xavier_uniform_``.
    Features and captions may be numpy arrays or tensors.
    """

    def __init__(self, word_to_idx, input_dim, d_model=128, num_heads=4, num_layers=2, d_ff=512,
                 dropout=0.1, max_length=32):
        super().__init__()
        for token in ("<NULL>", "<START>", "<END>"):
            if token not in word_to_idx:
                raise ValueError(f"CaptioningTransformer: word_to_idx has no {token!r} token")
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self.null_idx = word_to_idx["<NULL>"]
        self.start_idx = word_to_idx["<START>"]
        self.end_idx = word_to_idx["<END>"]
        self.vocab_size = len(word_to_idx)
        self.input_dim = input_dim
        self.d_model = d_model
        self.max_length = max_length
        self.register_buffer("pe", positional_encoding(max_length, d_model), persistent=False)
        raise NotImplementedError("CaptioningTransformer.__init__: implement this (see the docstring)")

    def _features(self, where, features):
        """Given: features as a tensor of shape (N, P, input_dim) in the dtype of the model's
        parameters (the pe buffer's before there are any); (N, input_dim) -> P = 1."""
        dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), self.pe.dtype)
        features = torch.as_tensor(features, device=self.pe.device)
        _check_tensor(where, "features", features, ndim=(2, 3))
        _check_last_dim(where, "features", features, self.input_dim, "input_dim")
        if features.dim() == 2:
            features = features.unsqueeze(1)
        return features.to(dtype)

    def _captions(self, where, captions):
        captions = torch.as_tensor(captions, device=self.pe.device)
        _check_tensor(where, "captions_in", captions, ndim=2, dtype="int")
        _check_length(where, "captions_in", captions.shape[1], self.max_length)
        return captions.long()

    def forward(self, features, captions_in):
        """Teacher forcing.

        Inputs:
        - features: image features, shape (N, P, input_dim) (or (N, input_dim), P = 1)
        - captions_in: input words, integer tensor of shape (N, T), usually captions[:, :-1]
          (starting with <START>, padded with <NULL>)

        Returns logits: shape (N, T, V); logits[:, t] predicts the word after captions_in[:, t].
        """
        features = self._features("CaptioningTransformer.forward", features)
        captions_in = self._captions("CaptioningTransformer.forward", captions_in)
        if captions_in.shape[0] != features.shape[0]:
            raise ValueError(f"CaptioningTransformer.forward: features and captions_in must have "
                             f"the same batch size N, got {features.shape[0]} and "
                             f"{captions_in.shape[0]}")
        logits = None
        raise NotImplementedError("CaptioningTransformer.forward: implement this (see the docstring)")
        return logits

    @torch.no_grad()
    def sample(self, features, max_length=30):
        """Greedy captioning, as ``CaptioningRNN.sample``.

        Inputs:
        - features: image features, shape (N, P, input_dim) (or (N, input_dim), P = 1)
        - max_length: number of words to produce (at most the model's max_length)

        Returns captions: LongTensor of shape (N, max_length). The first input is <START>
        (not part of the output); captions[:, t] is the argmax word of step t, fed back as the
        next input. After a caption has produced <END> (which is kept), the rest of its row is
        <NULL>. Call ``model.eval()`` first.
        """
        features = self._features("CaptioningTransformer.sample", features)
        _check_length("CaptioningTransformer.sample", "max_length", max_length, self.max_length)
        captions = None
        raise NotImplementedError("CaptioningTransformer.sample: implement this (see the docstring)")
        return captions
