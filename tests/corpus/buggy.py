"""Buggy submissions: the reference student modules with one typical mistake each, written as
text patches (each ``old`` must occur exactly once in the reference file, so a patch that no
longer applies is reported instead of silently testing nothing).

``api``: the API name whose code the mistake is in (it must lose points there);
``hint``: a substring of the hint the autograder should give (None: no hint expected);
``loss``: the points it must lose in all, where they are known exactly.
``DEPENDS``: the API names whose checks may also fail because they call (or their checks run)
the broken function, i.e. "downstream".

Used by tests/test_autograder_buggy.py.
"""
from dataclasses import dataclass

from autograder import course


@dataclass
class Mutation:
    name: str
    module: str
    api: str
    subs: list
    hint: str = None
    loss: float = None   # the points it must lose in all (None: any loss on its own API name)


_CAPTION = {"CaptioningRNN"}
_TR = {"Transformer", "CaptioningTransformer"}
DEPENDS = {
    "rnn_step_forward": {"rnn_step_backward"} | _CAPTION,
    "rnn_step_backward": set(),
    "rnn_forward": {"rnn_backward"} | _CAPTION,
    "rnn_backward": _CAPTION,
    "word_embedding_forward": {"word_embedding_backward"} | _CAPTION,
    "word_embedding_backward": _CAPTION,
    "temporal_affine_forward": {"temporal_affine_backward"} | _CAPTION,
    "temporal_affine_backward": _CAPTION,
    "temporal_softmax_loss": _CAPTION,
    "lstm_step_forward": {"lstm_step_backward"} | _CAPTION,
    "lstm_step_backward": {"lstm_backward"} | _CAPTION,
    "lstm_forward": {"lstm_backward"} | _CAPTION,
    "lstm_backward": _CAPTION,
    "dot_product_attention_forward": {"dot_product_attention_backward", "attention_lstm_forward",
                                      "attention_lstm_backward"} | _CAPTION,
    "dot_product_attention_backward": {"attention_lstm_backward"} | _CAPTION,
    "attention_lstm_step_forward": {"attention_lstm_step_backward", "attention_lstm_forward",
                                    "attention_lstm_backward"} | _CAPTION,
    "attention_lstm_step_backward": {"attention_lstm_backward"} | _CAPTION,
    "attention_lstm_forward": {"attention_lstm_backward"} | _CAPTION,
    "attention_lstm_backward": _CAPTION,
    "CaptioningRNN": set(),
    "positional_encoding": set(_TR),
    # the Transformer's dependents run with library substitutes of these (one bug, one place;
    # autograder/checks/transformer.py SUBSTITUTED): a bug in them costs their own points only
    "causal_mask": set(),
    "padding_mask": set(),
    "scaled_dot_product_attention": set(),
    "MultiHeadAttention": set(),
    "FeedForward": set(),
    "EncoderLayer": set(),
    "DecoderLayer": set(),
    "Transformer": set(),
    "CaptioningTransformer": set(),
}

# The API names of each student module, and the modules that import each one.
MODULE_APIS = {module: list(names) for module, (_, names) in course.API.items()}
IMPORTED_BY = {"rnn_layers": ["captioning"], "lstm_layers": ["attention_layers", "captioning"],
               "attention_layers": ["captioning"], "captioning": [], "transformer": []}

M = Mutation
MUTATIONS = [
    # --- rnn_layers -------------------------------------------------------------------------
    M("rnn_step_no_bias", "rnn_layers", "rnn_step_forward",
      [("next_h = np.tanh(x @ Wx + prev_h @ Wh + b)", "next_h = np.tanh(x @ Wx + prev_h @ Wh)")]),
    M("rnn_step_tanh_grad", "rnn_layers", "rnn_step_backward",
      [("da = dnext_h * (1 - next_h * next_h)", "da = dnext_h * (1 - next_h)")], "squared"),
    M("rnn_step_mutates_upstream", "rnn_layers", "rnn_step_backward",
      [("da = dnext_h * (1 - next_h * next_h)",
        "dnext_h *= (1 - next_h * next_h)\n    da = dnext_h")], "in-place"),
    M("rnn_forward_ignores_h0", "rnn_layers", "rnn_forward",
      [("    prev_h = h0\n", "    prev_h = np.zeros_like(h0)\n")]),
    M("rnn_backward_no_recurrence", "rnn_layers", "rnn_backward",
      [("da[:, t] = (dh[:, t] + dprev) * (1 - h[:, t] * h[:, t])",
        "da[:, t] = dh[:, t] * (1 - h[:, t] * h[:, t])")], "flowing back"),
    M("embedding_float64", "rnn_layers", "word_embedding_forward",
      [("out = W[x]", "out = W[x].astype(np.float64)")], None),
    M("embedding_lost_repeats", "rnn_layers", "word_embedding_backward",
      [("np.add.at(dW, x, dout)", "dW[x] += dout")], "np.add.at"),
    M("affine_no_bias", "rnn_layers", "temporal_affine_forward",
      [("out = x @ w + b", "out = x @ w")]),
    M("affine_db_mean", "rnn_layers", "temporal_affine_backward",
      [("db = dout.sum(axis=(0, 1))", "db = dout.mean(axis=(0, 1))")]),
    M("loss_over_NT", "rnn_layers", "temporal_softmax_loss",
      [("loss = float(-np.sum(picked * mask) / N)",
        "loss = float(-np.sum(picked * mask) / (N * T))"),
       ("/ N  # (a bool", "/ (N * T)  # (a bool")], "N*T"),
    M("loss_unstable", "rnn_layers", "temporal_softmax_loss",
      [("shifted = x - x.max(axis=2, keepdims=True)", "shifted = x")]),
    # --- lstm_layers ------------------------------------------------------------------------
    M("lstm_gate_order_ifgo", "lstm_layers", "lstm_step_forward",
      [("gates[:, :3 * H] = sigmoid(a[:, :3 * H])         # i, f, o\n"
        "    gates[:, 3 * H:] = np.tanh(a[:, 3 * H:])         # g\n"
        "    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], "
        "gates[:, 3 * H:]\n    next_c",
        "gates = sigmoid(a)\n"
        "    gates[:, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])\n"
        "    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], "
        "gates[:, 3 * H:]\n    next_c")], "i, f, g, o"),
    M("lstm_step_dprev_c", "lstm_layers", "lstm_step_backward",
      [("    dprev_c = dc * f\n    dx = da @ Wx.T", "    dprev_c = dc\n    dx = da @ Wx.T")]),
    M("lstm_c0_is_h0", "lstm_layers", "lstm_forward",
      [("prev_h, prev_c = h0, np.zeros_like(h0, dtype=dtype)", "prev_h, prev_c = h0, h0")],
      "initial cell state"),
    M("lstm_backward_dh0_zero", "lstm_layers", "lstm_backward",
      [("    dh0 = dprev_h\n", "    dh0 = np.zeros_like(dprev_h)\n")]),
    # --- attention_layers -------------------------------------------------------------------
    M("attention_no_scale", "attention_layers", "dot_product_attention_forward",
      [("scale = 1.0 / math.sqrt(H)", "scale = 1.0")], "1/sqrt(H)"),
    M("attention_softmax_axis", "attention_layers", "dot_product_attention_forward",
      [("scores -= scores.max(axis=1, keepdims=True)\n    attn_weights = np.exp(scores)\n"
        "    attn_weights /= attn_weights.sum(axis=1, keepdims=True)",
        "scores -= scores.max(axis=0, keepdims=True)\n    attn_weights = np.exp(scores)\n"
        "    attn_weights /= attn_weights.sum(axis=0, keepdims=True)")], "wrong axis"),
    M("attention_backward_missing_term", "attention_layers", "dot_product_attention_backward",
      [("    dA += dscores[:, :, None] * prev_h[:, None, :]\n", "")]),
    M("att_step_no_attn_term", "attention_layers", "attention_lstm_step_forward",
      [("a = x @ Wx + prev_h @ Wh + attn @ Wattn + b", "a = x @ Wx + prev_h @ Wh + b")]),
    M("att_step_dattn_wrong", "attention_layers", "attention_lstm_step_backward",
      [("dattn = da @ Wattn.T", "dattn = da @ Wh.T")]),
    M("att_lstm_zero_init", "attention_layers", "attention_lstm_forward",
      [("h0 = A.mean(axis=1)                              # initial",
        "h0 = np.zeros_like(A[:, 0])                              # initial")], "mean of A"),
    M("att_lstm_backward_no_h0_path", "attention_layers", "attention_lstm_backward",
      [("    dA += (dprev_h + dprev_c)[:, None, :] / P\n", "")]),
    # --- captioning -------------------------------------------------------------------------
    M("caption_teacher_forcing_shift", "captioning", "CaptioningRNN",
      [("x, cache_embed = word_embedding_forward(captions_in, p[\"W_embed\"])",
        "x, cache_embed = word_embedding_forward(captions_out, p[\"W_embed\"])")]),
    M("caption_sample_start_every_step", "captioning", "CaptioningRNN",
      [("x = p[\"W_embed\"][words]", "x = p[\"W_embed\"][np.full(N, self._start)]")],
      "feed back"),
    M("caption_sample_no_null", "captioning", "CaptioningRNN",
      [("captions[~done, t] = words[~done]", "captions[:, t] = words")], "<NULL>"),
    M("caption_b_proj_mean", "captioning", "CaptioningRNN",
      [("grads[\"b_proj\"] = dproj.reshape(-1, H).sum(axis=0)",
        "grads[\"b_proj\"] = dproj.reshape(-1, H).mean(axis=0)")]),
    # --- transformer ------------------------------------------------------------------------
    M("pe_base_1000", "transformer", "positional_encoding",
      [("angle = position / 10000.0 **", "angle = position / 1000.0 **")], "10000"),
    M("causal_mask_transposed", "transformer", "causal_mask",
      [("dtype=torch.bool, device=device).tril()", "dtype=torch.bool, device=device).triu()")],
      "transposed"),
    M("causal_mask_strict", "transformer", "causal_mask",
      [("dtype=torch.bool, device=device).tril()", "dtype=torch.bool, device=device).tril(-1)")],
      "off by one"),
    M("padding_mask_inverted", "transformer", "padding_mask",
      [("mask = (tokens != pad_idx).unsqueeze(1)", "mask = (tokens == pad_idx).unsqueeze(1)")],
      "NOT padding"),
    M("sdpa_no_scale", "transformer", "scaled_dot_product_attention",
      [("scores = q @ k.transpose(-2, -1) / math.sqrt(d)", "scores = q @ k.transpose(-2, -1)")],
      "1/sqrt(d)"),
    M("sdpa_softmax_axis", "transformer", "scaled_dot_product_attention",
      [("weights = torch.softmax(scores, dim=-1)", "weights = torch.softmax(scores, dim=-2)")],
      "wrong axis"),
    M("sdpa_nan_rows", "transformer", "scaled_dot_product_attention",
      [("        weights = weights.masked_fill(~mask, 0.0)\n", "        pass\n")], "NaN"),
    M("mha_head_split", "transformer", "MultiHeadAttention",
      [("q = self.q_proj(query).view(N, Tq, h, dh).transpose(1, 2)",
        "q = self.q_proj(query).view(N, h, Tq, dh)"),
       ("k = self.k_proj(key).view(N, Tk, h, dh).transpose(1, 2)",
        "k = self.k_proj(key).view(N, h, Tk, dh)"),
       ("v = self.v_proj(value).view(N, Tk, h, dh).transpose(1, 2)",
        "v = self.v_proj(value).view(N, h, Tk, dh)")], "view(N, T, h, d/h)"),
    M("ff_no_relu", "transformer", "FeedForward",
      [("out = self.linear2(self.dropout(torch.relu(self.linear1(x))))",
        "out = self.linear2(self.dropout(self.linear1(x)))")]),
    M("encoder_pre_ln", "transformer", "EncoderLayer",
      [("x = self.norm1(x + self.dropout(self.self_attn(x, x, x, mask)))\n"
        "        x = self.norm2(x + self.dropout(self.feed_forward(x)))",
        "y = self.norm1(x)\n        x = x + self.dropout(self.self_attn(y, y, y, mask))\n"
        "        x = x + self.dropout(self.feed_forward(self.norm2(x)))")], "post-LN"),
    # dropout after the LayerNorm: right in eval mode (and so with dropout 0); only the
    # train-mode check (rows of mean 0 and variance 1 whatever the dropout mask) sees it
    M("encoder_dropout_after_norm", "transformer", "EncoderLayer",
      [("x = self.norm1(x + self.dropout(self.self_attn(x, x, x, mask)))\n"
        "        x = self.norm2(x + self.dropout(self.feed_forward(x)))",
        "x = self.dropout(self.norm1(x + self.self_attn(x, x, x, mask)))\n"
        "        x = self.dropout(self.norm2(x + self.feed_forward(x)))")],
      "dropout after the LayerNorm", loss=0.5),
    M("decoder_dropout_after_norm", "transformer", "DecoderLayer",
      [("x = self.norm1(x + self.dropout(self.self_attn(x, x, x, tgt_mask)))\n"
        "        x = self.norm2(x + self.dropout(self.cross_attn(x, memory, memory, "
        "memory_mask)))\n"
        "        x = self.norm3(x + self.dropout(self.feed_forward(x)))",
        "x = self.dropout(self.norm1(x + self.self_attn(x, x, x, tgt_mask)))\n"
        "        x = self.dropout(self.norm2(x + self.cross_attn(x, memory, memory, "
        "memory_mask)))\n"
        "        x = self.dropout(self.norm3(x + self.feed_forward(x)))")],
      "dropout after the LayerNorm", loss=0.5),
    M("decoder_cross_keys_from_decoder", "transformer", "DecoderLayer",
      [("self.cross_attn(x, memory, memory, memory_mask)", "self.cross_attn(x, x, x)")],
      "memory"),
    M("transformer_unscaled_embeddings", "transformer", "Transformer",
      [("x = self.src_embed(src) * math.sqrt(self.d_model)", "x = self.src_embed(src)"),
       ("x = self.tgt_embed(tgt_in) * math.sqrt(self.d_model)", "x = self.tgt_embed(tgt_in)")],
      "sqrt(d_model)"),
    M("transformer_no_causal_mask", "transformer", "Transformer",
      [("tgt_mask = padding_mask(tgt_in, self.pad_idx) & causal_mask(T, tgt_in.device)",
        "tgt_mask = padding_mask(tgt_in, self.pad_idx)")], "causal"),
    M("transformer_greedy_no_pad", "transformer", "Transformer",
      [("            next_token = next_token.masked_fill(finished, self.pad_idx)\n", "")]),
    M("captioning_transformer_unscaled", "transformer", "CaptioningTransformer",
      [("self.embed(captions_in) * math.sqrt(self.d_model)", "self.embed(captions_in)")],
      "sqrt(d_model)"),
    M("captioning_transformer_sample_no_null", "transformer", "CaptioningTransformer",
      [("            word = word.masked_fill(finished, self.null_idx)\n", "")]),
]


# Correct implementations written differently from the reference (operation order, einsum,
# loops, float32 positional encodings...): they must get full marks.
CORRECT = [
    M("ok_rnn_forward_einsum_order", "rnn_layers", "rnn_forward",
      [("        prev_h = np.tanh(xWx_b[:, t] + prev_h @ Wh)",
        "        prev_h = np.tanh(np.einsum('nk,kh->nh', prev_h, Wh) + b\n"
        "                         + np.einsum('nd,dh->nh', x[:, t], Wx))")]),
    M("ok_embedding_backward_loops", "rnn_layers", "word_embedding_backward",
      [("np.add.at(dW, x, dout)",
        "for n in range(x.shape[0]):\n        for t in range(x.shape[1]):\n"
        "            dW[x[n, t]] += dout[n, t]")]),
    M("ok_loss_logsumexp", "rnn_layers", "temporal_softmax_loss",
      [("log_probs = shifted - np.log(np.exp(shifted).sum(axis=2, keepdims=True))",
        "log_probs = x - (x.max(axis=2, keepdims=True)\n"
        "                     + np.log(np.sum(np.exp(shifted), axis=2, keepdims=True)))")]),
    M("ok_lstm_plain_sigmoid", "lstm_layers", "lstm_step_forward",
      [("gates[:, :3 * H] = sigmoid(a[:, :3 * H])         # i, f, o",
        "gates[:, :3 * H] = 0.5 * (1 + np.tanh(0.5 * a[:, :3 * H]))")]),
    M("ok_attention_einsum", "attention_layers", "dot_product_attention_forward",
      [("scores = (A @ prev_h[:, :, None])[:, :, 0] * scale",
        "scores = np.einsum('nph,nh->np', A, prev_h) / math.sqrt(H)")]),
    M("ok_pe_float32_exp_log", "transformer", "positional_encoding",
      [("    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)",
        "    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)"),
       ("    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)",
        "    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)"),
       ("    angle = position / 10000.0 ** (two_i / d_model)",
        "    angle = position * torch.exp(two_i * (-math.log(10000.0) / d_model))"),
       ("    pe = torch.zeros(max_len, d_model, dtype=torch.float64)",
        "    pe = torch.zeros(max_len, d_model)")]),
    M("ok_causal_mask_compare", "transformer", "causal_mask",
      [("    mask = torch.ones(T, T, dtype=torch.bool, device=device).tril()",
        "    idx = torch.arange(T, device=device)\n    mask = idx[None, :] <= idx[:, None]")]),
    M("ok_mha_einsum", "transformer", "MultiHeadAttention",
      [("        out = out.transpose(1, 2).reshape(N, Tq, h * dh)",
        "        out = torch.einsum('nhtd->nthd', out).reshape(N, Tq, h * dh)")]),
]


def apply(mutation, text):
    """The reference text with the mutation's patches; raises ValueError if one does not apply
    exactly once."""
    for old, new in mutation.subs:
        n = text.count(old)
        if n != 1:
            raise ValueError(f"{mutation.name}: patch found {n} times (expected once) in "
                             f"{mutation.module}.py: {old[:60]!r}; update tests/corpus/buggy.py")
        text = text.replace(old, new)
    return text
