"""Public tests for seqlab/transformer.py: masks, attention, layers, models.

Run from the assignment folder: ``pytest tests/test_04_transformer.py -q``.

Most checks compare your modules with PyTorch's own (``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer``, ``nn.TransformerDecoderLayer``) after copying the weights across,
in float64 and eval mode, so a correct implementation agrees to ~1e-15. A stub that is not
written yet fails with NotImplementedError.
"""
import inspect
import math

import pytest
import torch
import torch.nn as nn

from seqlab.transformer import (
    CaptioningTransformer,
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    MultiHeadAttention,
    Transformer,
    causal_mask,
    padding_mask,
    positional_encoding,
    scaled_dot_product_attention,
)

TOL = 1e-10  # float64 round-off; a real bug gives errors of 1e-3 .. 1


def assert_close(what, got, expected, tol=TOL):
    """Compare shapes, then values; the message says what was compared and how far apart."""
    assert tuple(got.shape) == tuple(expected.shape), (
        f"{what}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    assert not torch.isnan(got).any(), f"{what}: contains NaN"
    err = (got.double() - expected.double()).abs().max().item() if got.numel() else 0.0
    assert err < tol, f"{what}: max abs error {err:.3g} (tolerance {tol:g})"


def randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


# ------------------------------------------------------------------ copying weights from torch.nn

def copy_attention(mine, ref):
    """nn.MultiheadAttention keeps W_q, W_k, W_v stacked in in_proj_weight (3d, d)."""
    d = ref.embed_dim
    with torch.no_grad():
        for k, lin in enumerate([mine.q_proj, mine.k_proj, mine.v_proj]):
            lin.weight.copy_(ref.in_proj_weight[k * d:(k + 1) * d])
            lin.bias.copy_(ref.in_proj_bias[k * d:(k + 1) * d])
        mine.out_proj.weight.copy_(ref.out_proj.weight)
        mine.out_proj.bias.copy_(ref.out_proj.bias)


def copy_linear_or_norm(mine, ref):
    with torch.no_grad():
        mine.weight.copy_(ref.weight)
        mine.bias.copy_(ref.bias)


def copy_encoder_layer(mine, ref):
    copy_attention(mine.self_attn, ref.self_attn)
    copy_linear_or_norm(mine.feed_forward.linear1, ref.linear1)
    copy_linear_or_norm(mine.feed_forward.linear2, ref.linear2)
    copy_linear_or_norm(mine.norm1, ref.norm1)
    copy_linear_or_norm(mine.norm2, ref.norm2)


def copy_decoder_layer(mine, ref):
    copy_attention(mine.self_attn, ref.self_attn)
    copy_attention(mine.cross_attn, ref.multihead_attn)
    copy_linear_or_norm(mine.feed_forward.linear1, ref.linear1)
    copy_linear_or_norm(mine.feed_forward.linear2, ref.linear2)
    copy_linear_or_norm(mine.norm1, ref.norm1)
    copy_linear_or_norm(mine.norm2, ref.norm2)
    copy_linear_or_norm(mine.norm3, ref.norm3)


def tokens_with_padding(N, T, V, lengths, pad_idx=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, V, (N, T), generator=g)
    for n, L in enumerate(lengths):
        tokens[n, L:] = pad_idx
    return tokens


# ------------------------------------------------------------------ positional encoding, masks

def test_positional_encoding_shape_and_known_values():
    pe = positional_encoding(50, 16)
    assert tuple(pe.shape) == (50, 16), f"expected shape (50, 16), got {tuple(pe.shape)}"
    assert pe.dtype == torch.get_default_dtype(), (
        f"expected torch's default dtype {torch.get_default_dtype()}, got {pe.dtype}")
    assert_close("PE[0] (sin 0 = 0 in even columns, cos 0 = 1 in odd ones)", pe[0],
                 torch.tensor([0.0, 1.0] * 8), tol=1e-6)
    for p, i in [(1, 0), (7, 3), (49, 5), (23, 7)]:
        angle = p / 10000 ** (2 * i / 16)
        assert abs(pe[p, 2 * i].item() - math.sin(angle)) < 1e-6, (
            f"PE[{p}, {2 * i}] = {pe[p, 2 * i].item():.6f}, expected sin({p} / 10000^({2 * i}/16))"
            f" = {math.sin(angle):.6f}")
        assert abs(pe[p, 2 * i + 1].item() - math.cos(angle)) < 1e-6, (
            f"PE[{p}, {2 * i + 1}] = {pe[p, 2 * i + 1].item():.6f}, expected "
            f"cos({p} / 10000^({2 * i}/16)) = {math.cos(angle):.6f}")


def test_positional_encoding_uses_base_10000():
    pe = positional_encoding(200, 8)
    angle = 150 / 10000 ** (6 / 8)   # column 6: i = 3, the slowest frequency
    assert abs(pe[150, 6].item() - math.sin(angle)) < 1e-6, (
        f"PE[150, 6] = {pe[150, 6].item():.6f}, expected sin(150 / 10000^(6/8)) = "
        f"{math.sin(angle):.6f} (with base 1000 it would be {math.sin(150 / 1000 ** 0.75):.6f})")


def test_causal_mask():
    m = causal_mask(5)
    assert m.dtype == torch.bool, f"expected a bool mask, got {m.dtype}"
    expected = torch.tensor([[j <= i for j in range(5)] for i in range(5)])
    assert torch.equal(m, expected), (
        f"causal_mask(5)[i, j] must be True where key j <= query i:\n{expected}\ngot\n{m}")
    assert torch.equal(causal_mask(1), torch.ones(1, 1, dtype=torch.bool))


def test_padding_mask():
    tokens = torch.tensor([[5, 6, 7, 0, 0], [4, 0, 0, 0, 0], [3, 3, 3, 3, 3]])
    m = padding_mask(tokens, pad_idx=0)
    assert tuple(m.shape) == (3, 1, 5), f"expected shape (3, 1, 5), got {tuple(m.shape)}"
    assert m.dtype == torch.bool, f"expected a bool mask, got {m.dtype}"
    assert torch.equal(m[:, 0], tokens != 0), "True where the key is NOT padding"
    both = m & causal_mask(5)
    assert tuple(both.shape) == (3, 5, 5), "padding & causal must broadcast to (N, T, T)"
    assert torch.equal(padding_mask(tokens, pad_idx=3)[2, 0], torch.zeros(5, dtype=torch.bool))


# ------------------------------------------------------------------ scaled dot-product attention

def test_attention_matches_formula():
    q, k, v = randn(2, 3, 4, 5, seed=1), randn(2, 3, 6, 5, seed=2), randn(2, 3, 6, 7, seed=3)
    out, weights = scaled_dot_product_attention(q, k, v)
    expected_w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(5), dim=-1)
    assert_close("weights = softmax(q k^T / sqrt(d))", weights, expected_w)
    assert_close("out = weights @ v", out, expected_w @ v)


def test_attention_matches_torch_functional():
    q, k, v = randn(3, 4, 8, seed=4), randn(3, 6, 8, seed=5), randn(3, 6, 8, seed=6)
    mask = torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(0)) > 0.4
    mask[..., 0] = True  # every query may attend to at least one key
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close("out vs torch.nn.functional.scaled_dot_product_attention", out, expected)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_attention_large_scores(dtype):
    # scores ~ 800 with gaps ~ 1 between keys: exp(800) overflows (past 710 in float64, 89 in
    # float32), so a softmax written with exp must subtract the row maximum first
    g = torch.Generator().manual_seed(13)
    common = torch.randn(8, generator=g, dtype=torch.float64)
    q = torch.randn(2, 4, 8, generator=g, dtype=torch.float64) * 3 + common * 30
    k = common * 12 + torch.randn(2, 5, 8, generator=g, dtype=torch.float64) * 0.05
    v = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert out.dtype == dtype and weights.dtype == dtype, "keep the dtype of q, k, v"
    assert torch.isfinite(out).all() and torch.isfinite(weights).all(), (
        "NaN or inf for large scores: subtract the row maximum before exp (torch.softmax does)")
    expected = torch.nn.functional.scaled_dot_product_attention(q.double(), k.double(),
                                                                v.double())
    assert_close("out vs torch.nn.functional.scaled_dot_product_attention", out.double(),
                 expected, tol=1e-3 if dtype == torch.float32 else TOL)


def test_attention_mask_true_means_may_attend():
    q, k, v = randn(2, 3, 4, seed=7), randn(2, 5, 4, seed=8), randn(2, 5, 4, seed=9)
    mask = torch.tensor([True, True, False, True, False]).expand(3, 5)
    _, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.all(weights[..., ~mask[0]] == 0), (
        "masked keys (mask False) must get exactly zero weight; is your mask inverted?")
    assert_close("rows sum to 1", weights.sum(-1), torch.ones(2, 3))


def test_fully_masked_row_gives_zeros_not_nan():
    q, k, v = randn(1, 3, 4, seed=10), randn(1, 4, 4, seed=11), randn(1, 4, 4, seed=12)
    mask = torch.ones(3, 4, dtype=torch.bool)
    mask[1] = False  # query 1 may attend to nothing
    q.requires_grad_(True)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not torch.isnan(weights).any() and not torch.isnan(out).any(), (
        "a query whose keys are all masked must get zero weights, not NaN")
    assert torch.all(weights[0, 1] == 0) and torch.all(out[0, 1] == 0)
    assert_close("the other rows still sum to 1", weights[0, [0, 2]].sum(-1), torch.ones(2))
    out.sum().backward()
    assert not torch.isnan(q.grad).any(), "the gradient must not be NaN either"


# ------------------------------------------------------------------ multi-head attention

def test_multihead_attention_submodules():
    mha = MultiHeadAttention(16, 4)
    for name in ["q_proj", "k_proj", "v_proj", "out_proj"]:
        lin = getattr(mha, name, None)
        assert isinstance(lin, nn.Linear) and tuple(lin.weight.shape) == (16, 16), (
            f"MultiHeadAttention.{name} must be nn.Linear(d_model, d_model)")
    names = sorted(n for n, _ in mha.named_parameters())
    assert names == sorted(f"{m}.{p}" for m in ["q_proj", "k_proj", "v_proj", "out_proj"]
                           for p in ["weight", "bias"]), f"unexpected parameters {names}"


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("mask_kind", [None, "padding", "causal", "both"])
def test_multihead_attention_matches_torch(heads, mask_kind):
    d, N, T = 16, 3, 6
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(d, heads, batch_first=True).double().eval()
    mine = MultiHeadAttention(d, heads).double().eval()
    copy_attention(mine, ref)
    x = randn(N, T, d, seed=13)
    tokens = tokens_with_padding(N, T, 9, lengths=[6, 4, 2])
    masks = {None: None, "padding": padding_mask(tokens, 0), "causal": causal_mask(T),
             "both": padding_mask(tokens, 0) & causal_mask(T)}
    mask = masks[mask_kind]
    out, weights = mine(x, x, x, mask=mask, return_weights=True)
    # torch.nn.MultiheadAttention: True means "may NOT attend", one mask per (batch * head)
    torch_mask = None if mask is None else (~mask.expand(N, T, T)).repeat_interleave(heads, 0)
    ref_out, ref_w = ref(x, x, x, attn_mask=torch_mask, average_attn_weights=False)
    assert_close(f"out vs nn.MultiheadAttention (heads={heads}, mask={mask_kind})", out, ref_out)
    assert_close(f"weights (N, heads, Tq, Tk) (heads={heads}, mask={mask_kind})", weights, ref_w)


def test_multihead_cross_attention_matches_torch():
    d, heads = 12, 3
    torch.manual_seed(1)
    ref = nn.MultiheadAttention(d, heads, batch_first=True).double().eval()
    mine = MultiHeadAttention(d, heads).double().eval()
    copy_attention(mine, ref)
    query, memory = randn(2, 4, d, seed=14), randn(2, 7, d, seed=15)
    src = tokens_with_padding(2, 7, 9, lengths=[7, 3])
    out = mine(query, memory, memory, mask=padding_mask(src, 0))
    assert tuple(out.shape) == (2, 4, d), (
        f"expected out (N, Tq, d) = (2, 4, {d}), got {tuple(out.shape)}")
    ref_out, _ = ref(query, memory, memory, key_padding_mask=(src == 0))
    assert_close("cross-attention (Tq != Tk, padding mask) vs nn.MultiheadAttention", out, ref_out)


def test_multihead_attention_dropout_is_off_in_eval_mode():
    mha = MultiHeadAttention(8, 2, dropout=0.5).double().eval()
    x = randn(2, 5, 8, seed=16)
    assert torch.equal(mha(x, x, x), mha(x, x, x)), "eval mode must be deterministic"


# ------------------------------------------------------------------ layers

def test_feed_forward():
    ff = FeedForward(6, 10, dropout=0.0).double().eval()
    assert isinstance(ff.linear1, nn.Linear) and tuple(ff.linear1.weight.shape) == (10, 6)
    assert isinstance(ff.linear2, nn.Linear) and tuple(ff.linear2.weight.shape) == (6, 10)
    x = randn(2, 3, 6, seed=17)
    expected = ff.linear2(torch.relu(ff.linear1(x)))
    assert_close("linear2(relu(linear1(x)))", ff(x), expected)


@pytest.mark.parametrize("heads", [1, 4])
def test_encoder_layer_matches_torch(heads):
    d, d_ff = 16, 24
    torch.manual_seed(2)
    ref = nn.TransformerEncoderLayer(d, heads, d_ff, dropout=0.0, batch_first=True,
                                     norm_first=False).double().eval()
    mine = EncoderLayer(d, heads, d_ff, dropout=0.0).double().eval()
    copy_encoder_layer(mine, ref)
    x = randn(3, 7, d, seed=18)
    src = tokens_with_padding(3, 7, 9, lengths=[7, 5, 1])
    assert_close("EncoderLayer (no mask) vs nn.TransformerEncoderLayer", mine(x), ref(x))
    got = mine(x, mask=padding_mask(src, 0))
    expected = ref(x, src_key_padding_mask=(src == 0))
    # torch may zero padded query positions (its fast path): compare the real positions only
    real = src != 0
    assert_close("EncoderLayer (padding mask) vs nn.TransformerEncoderLayer, real positions",
                 got[real], expected[real])


@pytest.mark.parametrize("heads", [1, 4])
def test_decoder_layer_matches_torch(heads):
    d, d_ff, T, S = 16, 24, 5, 7
    torch.manual_seed(3)
    ref = nn.TransformerDecoderLayer(d, heads, d_ff, dropout=0.0, batch_first=True,
                                     norm_first=False).double().eval()
    mine = DecoderLayer(d, heads, d_ff, dropout=0.0).double().eval()
    copy_decoder_layer(mine, ref)
    x, memory = randn(3, T, d, seed=19), randn(3, S, d, seed=20)
    src = tokens_with_padding(3, S, 9, lengths=[7, 4, 2])
    tgt = tokens_with_padding(3, T, 9, lengths=[5, 5, 3])
    got = mine(x, memory, tgt_mask=padding_mask(tgt, 0) & causal_mask(T),
               memory_mask=padding_mask(src, 0))
    expected = ref(x, memory, tgt_mask=~causal_mask(T), tgt_key_padding_mask=(tgt == 0),
                   memory_key_padding_mask=(src == 0))
    assert_close("DecoderLayer vs nn.TransformerDecoderLayer (causal + padding masks)",
                 got, expected)


def test_decoder_cross_attention_reads_keys_and_values_from_memory():
    d = 8
    layer = DecoderLayer(d, 2, 16, dropout=0.0).double().eval()
    x, memory = randn(2, 3, d, seed=21), randn(2, 4, d, seed=22)
    calls = []
    layer.cross_attn.register_forward_hook(lambda m, args, out: calls.append(args))
    layer(x, memory)
    assert calls, "DecoderLayer.forward must call self.cross_attn"
    _, key, value = calls[0][:3]
    assert key is memory and value is memory, (
        "cross-attention: queries come from the decoder, keys AND values from the memory")


# ------------------------------------------------------------------ properties of a layer

def test_encoder_layer_norm_is_per_token():
    """LayerNorm normalises each token over its own d features: the formula per token, and
    neither another token nor appended padding changes a token's output."""
    d = 16
    layer = EncoderLayer(d, 4, 24, dropout=0.0).double().eval()
    with torch.no_grad():
        layer.norm1.weight.copy_(randn(d, seed=31))
        layer.norm1.bias.copy_(randn(d, seed=32))
    x = randn(3, 7, d, seed=30) * 3 + 1
    out = layer.norm1(x)
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)          # biased, as in the paper
    norm = layer.norm1
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    assert_close("norm1(x) vs the per-token formula", out, expected, tol=1e-12)
    other = x.clone()
    other[:, 0] = randn(3, d, seed=33)
    assert_close("norm1: tokens 1.. after changing token 0", layer.norm1(other)[:, 1:], out[:, 1:],
                 tol=1e-12)
    padded = torch.cat([x, torch.zeros(3, 4, d, dtype=x.dtype)], dim=1)
    assert_close("norm1: the real tokens after appending padding", layer.norm1(padded)[:, :7], out,
                 tol=1e-12)


@pytest.mark.parametrize("heads", [1, 4])
def test_encoder_layer_is_permutation_equivariant(heads):
    """Without positional encoding a layer is blind to order: permuting the tokens (and the
    padding mask with them) permutes the outputs, layer(x[:, p]) == layer(x)[:, p]."""
    d, S = 16, 7
    torch.manual_seed(4)
    layer = EncoderLayer(d, heads, 24, dropout=0.0).double().eval()
    x = randn(3, S, d, seed=34)
    src = tokens_with_padding(3, S, 9, lengths=[7, 5, 2])
    perm = torch.tensor([3, 0, 6, 2, 5, 1, 4])
    assert_close("layer(x[:, perm]) vs layer(x)[:, perm]", layer(x[:, perm]), layer(x)[:, perm])
    masked = layer(x, mask=padding_mask(src, 0))
    assert_close("layer(x[:, perm], permuted padding mask) vs layer(x, mask)[:, perm]",
                 layer(x[:, perm], mask=padding_mask(src[:, perm], 0)), masked[:, perm])
    # and the property is not trivial: the outputs of a layer do depend on the other tokens
    other = x.clone()
    other[:, 0] = randn(3, d, seed=35)
    assert (layer(other)[:, 1:] - layer(x)[:, 1:]).abs().max() > 1e-3, (
        "EncoderLayer: the output of a token must depend on the other tokens (self-attention)")


# ------------------------------------------------------------------ dropout order (training mode)

def assert_post_ln_rows(what, rows, eps):
    """``rows`` (..., d) is the result of an Add & Norm whose LayerNorm has gain 1 and bias 0:
    every row (one token) has mean 0 and biased variance var / (var + eps), within 100 eps of 1,
    whatever the dropout before the LayerNorm did. Dropout *after* the LayerNorm zeroes entries
    and scales the others by 1 / (1 - p): the rows lose mean 0 and variance 1."""
    mean_err = rows.mean(dim=-1).abs().max().item()
    var_err = (rows.var(dim=-1, unbiased=False) - 1).abs().max().item()
    assert mean_err < 1e-8 and var_err < 100 * eps, (
        f"{what}: in training mode (dropout 0.5) every row must have mean 0 and variance 1 "
        f"(post-LN, LayerNorm gain 1, bias 0), whatever the dropout mask; got max |mean| "
        f"{mean_err:.2g}, max |variance - 1| {var_err:.2g}. Likely cause: dropout after the "
        f"LayerNorm; the order is LayerNorm(x + Dropout(sublayer(x))).")


def inputs_of(module, argument, calls):
    """Forward pre-hook that appends ``module``'s argument ``argument`` to ``calls``."""
    def hook(mod, args, kwargs):
        calls.append(inspect.signature(mod.forward).bind(*args, **kwargs).arguments[argument])
    return module.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_encoder_layer_dropout_before_the_residual_sum(seed):
    """Training mode, dropout 0.5: the output of each Add & Norm (the input of feed_forward and
    the layer's output) has rows of mean 0 and variance 1, for any dropout mask."""
    d = 16
    torch.manual_seed(seed)
    layer = EncoderLayer(d, 4, 24, dropout=0.5).double().train()
    x = randn(3, 7, d, seed=40 + seed) * 2 + 0.5
    src = tokens_with_padding(3, 7, 9, lengths=[7, 5, 2])
    ff_inputs = []
    handle = inputs_of(layer.feed_forward, "x", ff_inputs)
    out = layer(x, mask=padding_mask(src, 0))
    handle.remove()
    eps = layer.norm2.eps
    if ff_inputs:
        assert_post_ln_rows("EncoderLayer: the input of feed_forward (after Add & Norm 1)",
                            ff_inputs[0], eps)
    assert_post_ln_rows("EncoderLayer output (after Add & Norm 2)", out, eps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_decoder_layer_dropout_before_the_residual_sum(seed):
    """Training mode, dropout 0.5: the query of cross_attn, the input of feed_forward and the
    layer's output (the three Add & Norm results) have rows of mean 0 and variance 1."""
    d, T, S = 16, 5, 7
    torch.manual_seed(seed)
    layer = DecoderLayer(d, 4, 24, dropout=0.5).double().train()
    x, memory = randn(3, T, d, seed=50 + seed) * 2 + 0.5, randn(3, S, d, seed=60 + seed)
    src = tokens_with_padding(3, S, 9, lengths=[7, 4, 2])
    tgt = tokens_with_padding(3, T, 9, lengths=[5, 5, 3])
    queries, ff_inputs = [], []
    handles = [inputs_of(layer.cross_attn, "query", queries),
               inputs_of(layer.feed_forward, "x", ff_inputs)]
    out = layer(x, memory, tgt_mask=padding_mask(tgt, 0) & causal_mask(T),
                memory_mask=padding_mask(src, 0))
    for handle in handles:
        handle.remove()
    eps = layer.norm3.eps
    if queries:
        assert_post_ln_rows("DecoderLayer: the query of cross_attn (after Add & Norm 1)",
                            queries[0], eps)
    if ff_inputs:
        assert_post_ln_rows("DecoderLayer: the input of feed_forward (after Add & Norm 2)",
                            ff_inputs[0], eps)
    assert_post_ln_rows("DecoderLayer output (after Add & Norm 3)", out, eps)


# ------------------------------------------------------------------ Transformer

def small_transformer(dropout=0.0, **kw):
    torch.manual_seed(0)
    args = dict(d_model=16, num_heads=2, num_layers=2, d_ff=32, dropout=dropout, max_len=40)
    args.update(kw)
    return Transformer(11, 13, **args).eval()


def test_transformer_submodules_and_shapes():
    model = small_transformer()
    assert isinstance(model.src_embed, nn.Embedding) and isinstance(model.tgt_embed, nn.Embedding)
    assert isinstance(model.encoder_layers, nn.ModuleList) and len(model.encoder_layers) == 2
    assert isinstance(model.decoder_layers, nn.ModuleList) and len(model.decoder_layers) == 2
    assert all(isinstance(m, EncoderLayer) for m in model.encoder_layers)
    assert all(isinstance(m, DecoderLayer) for m in model.decoder_layers)
    assert isinstance(model.generator, nn.Linear)
    assert tuple(model.generator.weight.shape) == (13, 16)
    tops = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert tops == {"src_embed", "tgt_embed", "encoder_layers", "decoder_layers", "generator"}, (
        f"Transformer must have no parameters outside its submodules, found {sorted(tops)}")
    src = tokens_with_padding(3, 9, 11, lengths=[9, 6, 2])
    tgt = tokens_with_padding(3, 5, 13, lengths=[5, 4, 3])
    memory = model.encode(src)
    assert tuple(memory.shape) == (3, 9, 16), (
        f"encode: expected (3, 9, 16), got {tuple(memory.shape)}")
    logits = model(src, tgt)
    assert tuple(logits.shape) == (3, 5, 13), (
        f"forward: expected (3, 5, 13), got {tuple(logits.shape)}")
    assert_close("forward(src, tgt) == decode(tgt, encode(src), src)", logits,
                 model.decode(tgt, memory, src))


def assert_xavier_uniform(what, model):
    """Every parameter with more than one dimension looks drawn from U(-a, a), the Xavier bound
    a = sqrt(6 / (fan_in + fan_out)): no entry beyond a, standard deviation a / sqrt(3) within 20 %
    (PyTorch's default nn.Linear gives a / 3, nn.Embedding N(0, 1))."""
    matrices = [(name, p.detach().double()) for name, p in model.named_parameters() if p.dim() > 1]
    assert matrices, f"{what}: no weight matrices"
    for name, w in matrices:
        a = math.sqrt(6.0 / (w.shape[0] + w[0].numel()))
        assert w.abs().max().item() <= a * (1 + 1e-6), (
            f"{what}.{name}: entries up to {w.abs().max().item():.3f}, beyond the Xavier bound "
            f"{a:.3f}")
        ratio = w.std().item() / (a / math.sqrt(3))
        assert 0.8 < ratio < 1.2, (
            f"{what}.{name}: std is {ratio:.2f} times the Xavier-uniform std a / sqrt(3) "
            f"(use nn.init.xavier_uniform_ on every parameter with more than one dimension)")


def test_transformer_is_xavier_initialised():
    assert_xavier_uniform("Transformer", small_transformer())


def test_transformer_is_causal():
    model = small_transformer()
    src = tokens_with_padding(2, 6, 11, lengths=[6, 4])
    tgt = tokens_with_padding(2, 7, 13, lengths=[7, 7], seed=1)
    changed = tgt.clone()
    changed[:, 4:] = (changed[:, 4:] % 12) + 1   # change the future tokens, no padding
    a, b = model(src, tgt), model(src, changed)
    assert_close("logits of positions 0..3 must not depend on target tokens 4..", a[:, :4],
                 b[:, :4], tol=1e-5)


def test_transformer_ignores_source_padding():
    model = small_transformer()
    src = tokens_with_padding(2, 5, 11, lengths=[5, 3])
    tgt = tokens_with_padding(2, 4, 13, lengths=[4, 4], seed=1)
    longer = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)  # more padding
    assert_close("extra source padding must not change the logits", model(longer, tgt),
                 model(src, tgt), tol=1e-5)


def test_transformer_embeddings_are_scaled_and_positioned():
    model = small_transformer()
    src = torch.tensor([[3, 3, 3]])
    memory_direct = model.encode(src)
    x = model.src_embed(src) * math.sqrt(16) + positional_encoding(40, 16)[:3]
    for layer in model.encoder_layers:
        x = layer(x, padding_mask(src, 0))
    assert_close("encode = layers(embed(src) * sqrt(d_model) + PE)", memory_direct, x, tol=1e-5)


class ScriptedTransformer(Transformer):
    """A Transformer whose decode() returns fixed next tokens: row n emits script[n][t] at
    step t."""

    def __init__(self, script, vocab):
        super().__init__(5, vocab, d_model=8, num_heads=2, num_layers=1, d_ff=8, dropout=0.0,
                         max_len=32)
        self.script = torch.tensor(script)
        self.vocab = vocab

    def decode(self, tgt_in, memory, src):
        N, T = tgt_in.shape
        logits = torch.zeros(N, T, self.vocab)
        logits[torch.arange(N), T - 1, self.script[:, T - 1]] = 1.0
        return logits


def test_greedy_decode_semantics():
    START, END, PAD, A, B = 1, 2, 0, 3, 4
    script = [[A, END, A, B, A, B, A],   # ends at step 2
              [A, B, A, END, B, B, B],   # ends at step 4
              [B, B, B, B, B, B, B]]     # never ends
    model = ScriptedTransformer(script, vocab=5).eval()
    src = torch.ones(3, 4, dtype=torch.long)
    ys = model.greedy_decode(src, max_len=6, start_idx=START, end_idx=END)
    expected = torch.tensor([[START, A, END, PAD, PAD, PAD],
                             [START, A, B, A, END, PAD],
                             [START, B, B, B, B, B]])
    assert torch.equal(ys, expected), (
        "greedy_decode: each row starts with start_idx, feeds back its argmax, and is pad_idx "
        f"after end_idx; max_len counts the start token.\nexpected\n{expected}\ngot\n{ys}")
    ys = model.greedy_decode(src[:1], max_len=6, start_idx=START, end_idx=END)
    assert torch.equal(ys, torch.tensor([[START, A, END]])), (
        f"stop as soon as every row has produced end_idx: expected [[1, 3, 2]], got {ys.tolist()}")


def test_greedy_decode_real_model():
    model = small_transformer()
    src = tokens_with_padding(4, 6, 11, lengths=[6, 5, 4, 3])
    ys = model.greedy_decode(src, max_len=9, start_idx=1, end_idx=2)
    assert ys.dtype == torch.long and ys.shape[0] == 4 and 1 <= ys.shape[1] <= 9, (
        f"expected a LongTensor (4, L) with L <= 9, got {ys.dtype} {tuple(ys.shape)}")
    assert torch.all(ys[:, 0] == 1), "every row starts with start_idx"
    tgt_in = ys[:, :-1]
    logits = model(src, tgt_in)
    for n in range(4):
        for t in range(1, ys.shape[1]):
            if 2 in ys[n, :t].tolist():
                assert ys[n, t] == 0, f"row {n}: after end_idx everything must be pad_idx"
            else:
                assert ys[n, t] == logits[n, t - 1].argmax(), (
                    f"row {n}, step {t}: expected the argmax of the model's logits")


# ------------------------------------------------------------------ CaptioningTransformer

WORDS = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "red", "circle", "left"]
WORD_TO_IDX = {w: i for i, w in enumerate(WORDS)}


def small_captioner(**kw):
    torch.manual_seed(0)
    args = dict(d_model=16, num_heads=2, num_layers=2, d_ff=32, dropout=0.0, max_length=20)
    args.update(kw)
    return CaptioningTransformer(WORD_TO_IDX, 10, **args).eval()


def test_captioning_transformer_submodules_and_shapes():
    model = small_captioner()
    assert isinstance(model.visual_proj, nn.Linear)
    assert tuple(model.visual_proj.weight.shape) == (16, 10)
    assert isinstance(model.embed, nn.Embedding) and tuple(model.embed.weight.shape) == (8, 16)
    assert isinstance(model.decoder_layers, nn.ModuleList) and len(model.decoder_layers) == 2
    assert isinstance(model.generator, nn.Linear) and tuple(model.generator.weight.shape) == (8, 16)
    tops = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert tops == {"visual_proj", "embed", "decoder_layers", "generator"}, (
        f"CaptioningTransformer must have no other parameters, found {sorted(tops)}")
    features = randn(3, 16, 10, seed=23).float()
    captions = tokens_with_padding(3, 6, 8, lengths=[6, 4, 2])
    logits = model(features, captions)
    assert tuple(logits.shape) == (3, 6, 8), (
        f"forward: expected (3, 6, 8), got {tuple(logits.shape)}")
    pooled = model(features[:, 0], captions)
    assert_close("pooled features (N, D) are a grid with P = 1", pooled,
                 model(features[:, :1], captions), tol=1e-6)


def test_captioning_transformer_embeddings_are_scaled_and_positioned():
    model = small_captioner()
    features = randn(2, 16, 10, seed=26).float()
    captions = tokens_with_padding(2, 5, 8, lengths=[5, 5])
    memory = model.visual_proj(features)
    x = model.embed(captions) * math.sqrt(16) + positional_encoding(20, 16)[:5]
    for layer in model.decoder_layers:
        x = layer(x, memory, tgt_mask=causal_mask(5))
    assert_close("forward = generator(layers(embed(captions) * sqrt(d_model) + PE, "
                 "memory = visual_proj(features)))", model(features, captions),
                 model.generator(x), tol=1e-5)


def test_captioning_transformer_is_xavier_initialised():
    assert_xavier_uniform("CaptioningTransformer", small_captioner())


def test_captioning_transformer_is_causal():
    model = small_captioner()
    features = randn(2, 16, 10, seed=24).float()
    captions = tokens_with_padding(2, 6, 8, lengths=[6, 6])
    changed = captions.clone()
    changed[:, 3:] = 4 + (changed[:, 3:] % 4)
    assert_close("logits at positions 0..2 must not depend on later words",
                 model(features, captions)[:, :3], model(features, changed)[:, :3], tol=1e-5)


class ScriptedCaptioner(CaptioningTransformer):
    """forward() returns fixed next words: row n emits script[n][t] at step t."""

    def __init__(self, script):
        super().__init__(WORD_TO_IDX, 10, d_model=8, num_heads=2, num_layers=1, d_ff=8,
                         dropout=0.0, max_length=20)
        self.script = torch.tensor(script)

    def forward(self, features, captions_in):
        N, T = captions_in.shape
        logits = torch.zeros(N, T, len(WORDS))
        logits[torch.arange(N), T - 1, self.script[:, T - 1]] = 1.0
        return logits


def test_captioning_transformer_sample_semantics():
    NULL, END, A, RED = 0, 2, 4, 5
    model = ScriptedCaptioner([[A, RED, END, A, A, A], [A, A, A, A, A, A]]).eval()
    captions = model.sample(torch.zeros(2, 16, 10), max_length=5)
    expected = torch.tensor([[A, RED, END, NULL, NULL], [A, A, A, A, A]])
    assert torch.equal(torch.as_tensor(captions), expected), (
        "sample: (N, max_length) words, without <START>; <END> is kept and the rest of the row "
        f"is <NULL>.\nexpected\n{expected}\ngot\n{captions}")


def test_captioning_transformer_sample_real_model():
    model = small_captioner()
    captions = torch.as_tensor(model.sample(randn(4, 16, 10, seed=25).float(), max_length=7))
    assert tuple(captions.shape) == (4, 7), f"expected (4, 7), got {tuple(captions.shape)}"
    assert torch.all((captions >= 0) & (captions < len(WORDS)))
    for row in captions.tolist():
        if 2 in row:
            assert all(w == 0 for w in row[row.index(2) + 1:]), f"<NULL> after <END>: {row}"
