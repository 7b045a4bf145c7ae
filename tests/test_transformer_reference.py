"""Project tests for the reference seqlab.transformer, stricter than the public ones.

- the whole Transformer against torch.nn.TransformerEncoder/Decoder with copied weights,
- gradients (inputs and weights) against torch.nn layers, float64,
- dropout behaviour, float32, error messages, solution-marker structure, the training helper.
"""
import ast
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from autograder.checks import twins
from seqlab import transformer as tr
from seqlab.torch_utils import (
    CaptionBatches,
    count_parameters,
    seq2seq_loss,
    train_seq2seq,
    warmup_cosine,
)

SOURCE = Path(tr.__file__)
TOL = 1e-12


def randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def max_err(a, b):
    return (a.double() - b.double()).abs().max().item()


def copy_layer(mine, ref):
    """The weights of a torch.nn layer into ours (autograder/checks/twins.py maps the names)."""
    mine.load_state_dict(twins.course_state_dict(ref.state_dict()))


def padded_tokens(N, T, V, lengths, seed=0):
    tokens = torch.randint(1, V, (N, T), generator=torch.Generator().manual_seed(seed))
    for n, L in enumerate(lengths):
        tokens[n, L:] = 0
    return tokens


# ------------------------------------------------------------------ whole model against torch.nn

@pytest.mark.parametrize("d_model,heads,layers", [(16, 4, 2), (24, 3, 3), (8, 1, 1)])
def test_whole_transformer_matches_torch(d_model, heads, layers):
    torch.manual_seed(0)
    V_src, V_tgt, d_ff = 13, 11, 40
    model = tr.Transformer(V_src, V_tgt, d_model, heads, layers, d_ff, dropout=0.0,
                           max_len=30).double().eval()
    enc_layer = nn.TransformerEncoderLayer(d_model, heads, d_ff, 0.0, batch_first=True)
    dec_layer = nn.TransformerDecoderLayer(d_model, heads, d_ff, 0.0, batch_first=True)
    encoder = nn.TransformerEncoder(enc_layer, layers, enable_nested_tensor=False).double().eval()
    decoder = nn.TransformerDecoder(dec_layer, layers).double().eval()
    for mine, ref in zip(model.encoder_layers, encoder.layers):
        copy_layer(mine, ref)
    for mine, ref in zip(model.decoder_layers, decoder.layers):
        copy_layer(mine, ref)
    src = padded_tokens(4, 9, V_src, [9, 7, 3, 1])
    tgt = padded_tokens(4, 6, V_tgt, [6, 6, 4, 2], seed=1)
    pe = tr.positional_encoding(30, d_model).double()
    scale = math.sqrt(d_model)
    memory = encoder(model.src_embed(src) * scale + pe[:9], src_key_padding_mask=(src == 0))
    out = decoder(model.tgt_embed(tgt) * scale + pe[:6], memory,
                  tgt_mask=~tr.causal_mask(6), tgt_key_padding_mask=(tgt == 0),
                  memory_key_padding_mask=(src == 0))
    expected = model.generator(out)
    got = model(src, tgt)
    err = max_err(got, expected)
    print(f"Transformer(d={d_model}, h={heads}, layers={layers}) vs torch.nn: "
          f"max abs err {err:.2e}")
    assert err < TOL


def test_layer_gradients_match_torch():
    d, heads, d_ff = 12, 3, 20
    torch.manual_seed(1)
    ref = nn.TransformerDecoderLayer(d, heads, d_ff, 0.0, batch_first=True).double()
    mine = tr.DecoderLayer(d, heads, d_ff, dropout=0.0).double()
    copy_layer(mine, ref)
    src = padded_tokens(2, 5, 9, [5, 3])
    tgt = padded_tokens(2, 4, 9, [4, 3], seed=1)
    upstream = randn(2, 4, d, seed=3)
    grads = []
    for _layer, call in [
        (mine, lambda x, m: mine(x, m, tr.padding_mask(tgt, 0) & tr.causal_mask(4),
                                 tr.padding_mask(src, 0))),
        (ref, lambda x, m: ref(x, m, tgt_mask=~tr.causal_mask(4), tgt_key_padding_mask=(tgt == 0),
                               memory_key_padding_mask=(src == 0))),
    ]:
        x = randn(2, 4, d, seed=4).requires_grad_(True)
        m = randn(2, 5, d, seed=5).requires_grad_(True)
        (call(x, m) * upstream).sum().backward()
        grads.append((x.grad, m.grad))
    assert max_err(grads[0][0], grads[1][0]) < TOL, "dx"
    assert max_err(grads[0][1], grads[1][1]) < TOL, "dmemory"
    # every parameter's gradient, ours under torch.nn's names (q, k, v stacked)
    mine_grads = twins.nn_state_dict({k: p.grad for k, p in mine.named_parameters()})
    ref_grads = {k: p.grad for k, p in ref.named_parameters()}
    assert sorted(mine_grads) == sorted(ref_grads)
    for k, g in ref_grads.items():
        assert max_err(mine_grads[k], g) < TOL, f"d {k}"


def test_encoder_layer_gradients_match_torch():
    d, heads, d_ff = 8, 2, 16
    torch.manual_seed(2)
    ref = nn.TransformerEncoderLayer(d, heads, d_ff, 0.0, batch_first=True).double()
    mine = tr.EncoderLayer(d, heads, d_ff, dropout=0.0).double()
    copy_layer(mine, ref)
    src = padded_tokens(3, 6, 9, [6, 4, 2])
    upstream = randn(3, 6, d, seed=6) * (src != 0).unsqueeze(-1)
    xs = [randn(3, 6, d, seed=7).requires_grad_(True) for _ in range(2)]
    (mine(xs[0], tr.padding_mask(src, 0)) * upstream).sum().backward()
    (ref(xs[1], src_key_padding_mask=(src == 0)) * upstream).sum().backward()
    assert max_err(xs[0].grad, xs[1].grad) < TOL
    assert max_err(mine.self_attn.out_proj.weight.grad, ref.self_attn.out_proj.weight.grad) < TOL


# ------------------------------------------------------------------ attention details

def test_weights_returned_are_before_dropout_and_eval_is_exact():
    torch.manual_seed(3)
    mha = tr.MultiHeadAttention(16, 4, dropout=0.5).double()
    x = randn(2, 5, 16, seed=8)
    mha.train()
    out1, w = mha(x, x, x, return_weights=True)
    out2 = mha(x, x, x)
    assert not torch.allclose(out1, out2), "dropout is active in training mode"
    assert torch.allclose(w.sum(-1), torch.ones(2, 4, 5, dtype=torch.float64))
    mha.eval()
    ref = tr.MultiHeadAttention(16, 4, dropout=0.0).double().eval()
    ref.load_state_dict(mha.state_dict())
    assert torch.equal(mha(x, x, x), ref(x, x, x)), "dropout must be a no-op in eval mode"
    zero = tr.MultiHeadAttention(16, 4, dropout=0.0).double().train()
    zero.load_state_dict(mha.state_dict())
    assert torch.equal(zero(x, x, x), ref(x, x, x)), "dropout=0 must be a no-op in training mode"


def test_attention_float32_keeps_dtype_and_matches_float64():
    q, k, v = randn(2, 3, 8, seed=9), randn(2, 5, 8, seed=10), randn(2, 5, 4, seed=11)
    mask = tr.causal_mask(5)[:3]
    out64, w64 = tr.scaled_dot_product_attention(q, k, v, mask)
    out32, w32 = tr.scaled_dot_product_attention(q.float(), k.float(), v.float(), mask)
    assert out32.dtype == torch.float32 and w32.dtype == torch.float32
    assert max_err(out32, out64) < 1e-5 and max_err(w32, w64) < 1e-6


def test_all_masked_rows_in_multihead_attention():
    mha = tr.MultiHeadAttention(8, 2).double().eval()
    x = randn(2, 3, 8, seed=12)
    mask = torch.zeros(2, 3, 3, dtype=torch.bool)
    mask[0] = True
    x.requires_grad_(True)
    out, w = mha(x, x, x, mask=mask, return_weights=True)
    assert torch.all(w[1] == 0) and not torch.isnan(out).any()
    # a query that sees nothing gets a zero attention vector, so out = out_proj bias
    assert torch.allclose(out[1], mha.out_proj.bias.expand(3, 8))
    out.sum().backward()
    assert not torch.isnan(x.grad).any()


# ------------------------------------------------------------------ error messages

@pytest.mark.parametrize("call,pattern", [
    (lambda: tr.scaled_dot_product_attention(randn(2, 3, 4), randn(2, 5, 6), randn(2, 5, 4)),
     r"k must have last dimension .* = 4, got shape \(2, 5, 6\)"),
    (lambda: tr.scaled_dot_product_attention(randn(2, 3, 4), randn(2, 5, 4), randn(2, 6, 4)),
     r"v must have as many rows as k"),
    (lambda: tr.scaled_dot_product_attention(randn(3, 4), randn(5, 4), randn(5, 4),
                                             torch.ones(4, 5, dtype=torch.bool)),
     r"mask must broadcast to \(3, 5\), got shape \(4, 5\)"),
    (lambda: tr.scaled_dot_product_attention(randn(3, 4), randn(5, 4), randn(5, 4),
                                             torch.ones(3, 5)),
     r"mask must be a bool tensor"),
    (lambda: tr.MultiHeadAttention(8, 2)(randn(2, 3, 8).float(), randn(2, 4, 6).float(),
                                         randn(2, 4, 8).float()),
     r"key must have last dimension d_model = 8, got shape \(2, 4, 6\)"),
    (lambda: tr.MultiHeadAttention(8, 2)(randn(2, 3, 8).float(), randn(2, 4, 8).float(),
                                         randn(2, 4, 8).float(),
                                         torch.ones(2, 4, 3, dtype=torch.bool)),
     r"mask must broadcast to \(2, 3, 4\), got shape \(2, 4, 3\)"),
    (lambda: tr.MultiHeadAttention(10, 4), r"d_model \(10\) must be divisible by num_heads \(4\)"),
    (lambda: tr.padding_mask(torch.zeros(2, 3, 4, dtype=torch.long), 0),
     r"tokens must be 2-D, got shape \(2, 3, 4\)"),
    (lambda: tr.Transformer(5, 5, 8, 2, 1, 8, max_len=4).encode(torch.ones(2, 6, dtype=torch.long)),
     r"src has length 6, longer than the model's max length 4"),
    (lambda: tr.Transformer(5, 5, 8, 2, 1, 8).encode(torch.ones(2, 6)), r"src must hold integer"),
    (lambda: tr.CaptioningTransformer({"<NULL>": 0, "<START>": 1, "<END>": 2}, 7, 8, 2, 1, 8)(
        torch.zeros(2, 16, 6), torch.ones(2, 3, dtype=torch.long)),
     r"features must have last dimension input_dim = 7, got shape \(2, 16, 6\)"),
    (lambda: tr.CaptioningTransformer({"<NULL>": 0, "<END>": 2}, 7), r"no '<START>' token"),
])
def test_clear_errors(call, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        call()


# ------------------------------------------------------------------ models

def test_greedy_decode_is_consistent_with_teacher_forcing():
    torch.manual_seed(4)
    model = tr.Transformer(9, 7, 16, 2, 2, 32, dropout=0.0, max_len=20).eval()
    with torch.no_grad():
        model.generator.bias[2] += 1.0  # the end token is likely: rows end at different steps
    src = padded_tokens(6, 8, 9, [8, 7, 6, 5, 4, 3])
    ys = model.greedy_decode(src, max_len=12, start_idx=1, end_idx=2)
    with torch.no_grad():
        logits = model(src, ys[:, :-1])
    for n in range(6):
        row = ys[n].tolist()
        end = row.index(2) if 2 in row else len(row)
        assert row[1:end + 1] == logits[n, :end].argmax(-1).tolist()[:len(row[1:end + 1])]
        assert all(t == 0 for t in row[end + 1:])


def test_transformer_has_only_the_listed_parameters_and_a_nonpersistent_pe():
    model = tr.Transformer(10, 12, d_model=32, num_heads=4, num_layers=2, d_ff=64)
    d, ff = 32, 64
    attn = 4 * (d * d + d)
    enc = attn + (d * ff + ff + ff * d + d) + 2 * 2 * d
    dec = 2 * attn + (d * ff + ff + ff * d + d) + 3 * 2 * d
    expected = 10 * d + 12 * d + 2 * enc + 2 * dec + d * 12 + 12
    assert count_parameters(model) == expected
    assert "pe" not in model.state_dict(), "the positional encoding is not a parameter to save"


def test_captioning_transformer_accepts_numpy_and_float64():
    import numpy as np

    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3}
    model = tr.CaptioningTransformer(w2i, 5, d_model=8, num_heads=2, num_layers=1, d_ff=8,
                                     max_length=10).eval()
    features = np.random.default_rng(0).standard_normal((3, 16, 5))  # float64 numpy
    captions = np.array([[1, 3, 2], [1, 3, 3], [1, 2, 0]])
    assert model(features, captions).shape == (3, 3, 4)
    assert model.sample(features[:, 0], max_length=4).shape == (3, 4)
    with pytest.raises(ValueError, match="max_length"):
        model.sample(features, max_length=11)


@pytest.fixture
def default_float64():
    """torch.set_default_dtype(torch.float64) for one test (common when checking gradients)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def test_models_follow_torch_default_dtype_float64(default_float64, monkeypatch):
    """Under torch.set_default_dtype(torch.float64) the positional encoding is float64 and both
    models run in float64 end to end (float64 numpy features included); a model cast back with
    .float() takes its dtype from its parameters, not from the default."""
    import numpy as np

    pe = tr.positional_encoding(30, 6)
    assert pe.dtype == torch.float64
    # the exact formula, computed independently in float64: sin/cos(p / 10000^(2i/d))
    p, i = 17, 2
    assert pe[p, 2 * i].item() == pytest.approx(math.sin(p / 10000 ** (2 * i / 6)), abs=1e-15)
    assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(p / 10000 ** (2 * i / 6)), abs=1e-15)

    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3}
    torch.manual_seed(0)
    cap = tr.CaptioningTransformer(w2i, 5, d_model=8, num_heads=2, num_layers=1, d_ff=8,
                                   dropout=0.0, max_length=10).eval()
    assert {p.dtype for p in cap.parameters()} == {torch.float64} and cap.pe.dtype == torch.float64
    features = np.random.default_rng(0).standard_normal((3, 16, 5))     # float64 numpy
    captions = torch.tensor([[1, 3, 2], [1, 3, 3], [1, 2, 0]])
    logits = cap(features, captions)
    assert logits.dtype == torch.float64 and logits.shape == (3, 3, 4)
    assert cap.sample(features, max_length=4).shape == (3, 4)
    # the float64 model and its float32 copy agree to float32 round-off
    cap32 = tr.CaptioningTransformer(w2i, 5, d_model=8, num_heads=2, num_layers=1, d_ff=8,
                                     dropout=0.0, max_length=10).eval()
    cap32.load_state_dict(cap.state_dict())
    cap32 = cap32.float()
    logits32 = cap32(features, captions)
    assert logits32.dtype == torch.float32 and max_err(logits32, logits) < 1e-4

    # a positional encoding that returns float32 whatever the default: the features still take
    # the dtype of the parameters (float64), not the buffer's
    float32_pe = tr.positional_encoding
    monkeypatch.setattr(tr, "positional_encoding", lambda n, d: float32_pe(n, d).float())
    mixed = tr.CaptioningTransformer(w2i, 5, d_model=8, num_heads=2, num_layers=1, d_ff=8,
                                     dropout=0.0, max_length=10).eval()
    assert mixed.pe.dtype == torch.float32
    assert mixed(features, captions).dtype == torch.float64
    monkeypatch.undo()

    torch.manual_seed(0)
    model = tr.Transformer(7, 9, d_model=8, num_heads=2, num_layers=1, d_ff=8, dropout=0.0,
                           max_len=12).eval()
    src, tgt = torch.tensor([[3, 4, 5, 0]]), torch.tensor([[1, 6, 2]])
    out = model(src, tgt)
    assert out.dtype == torch.float64 and out.shape == (1, 3, 9)
    assert model.greedy_decode(src, max_len=5, start_idx=1, end_idx=2).dtype == torch.long


# ------------------------------------------------------------------ solution markers

def test_every_public_function_and_method_has_one_solution_region():
    tree = ast.parse(SOURCE.read_text())
    lines = SOURCE.read_text().splitlines()
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef,)) and not node.name.startswith("_") or (
                isinstance(node, ast.FunctionDef) and node.name == "__init__"):
            body = lines[node.lineno - 1:node.end_lineno]
            found[node.name + f"@{node.lineno}"] = sum("### BEGIN SOLUTION" in x for x in body)
    expected_defs = {"positional_encoding", "causal_mask", "padding_mask",
                     "scaled_dot_product_attention", "__init__", "forward", "encode", "decode",
                     "greedy_decode", "sample"}
    assert {k.split("@")[0] for k in found} == expected_defs
    assert all(n == 1 for n in found.values()), found


def test_stubs_raise_not_implemented():
    import importlib.util

    from autograder.release import stub_source
    spec = importlib.util.spec_from_loader("transformer_stub", loader=None)
    stub = importlib.util.module_from_spec(spec)
    exec(compile(stub_source(SOURCE.read_text()), "transformer_stub", "exec"), stub.__dict__)
    for call in [lambda: stub.positional_encoding(4, 4), lambda: stub.causal_mask(3),
                 lambda: stub.MultiHeadAttention(8, 2),
                 lambda: stub.Transformer(5, 5, 8, 2, 1, 8),
                 lambda: stub.CaptioningTransformer({"<NULL>": 0, "<START>": 1, "<END>": 2}, 4)]:
        with pytest.raises(NotImplementedError, match="implement this"):
            call()


# ------------------------------------------------------------------ training helper

def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100) == pytest.approx(0.5)
    assert warmup_cosine(100, 10, 100) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.e2e  # a whole training run (150 steps, 4 s)
def test_train_seq2seq_learns_to_copy():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    body = torch.randint(3, 8, (512, 5), generator=g)
    seqs = torch.cat([torch.ones(512, 1, dtype=torch.long), body,
                      torch.full((512, 1), 2, dtype=torch.long)], 1)
    batches = [(seqs[i:i + 64], seqs[i:i + 64]) for i in range(0, 512, 64)]
    model = tr.Transformer(8, 8, d_model=32, num_heads=4, num_layers=1, d_ff=64, dropout=0.0,
                           max_len=16)
    before = seq2seq_loss(model, batches[0]).item()
    hist = train_seq2seq(model, batches, num_steps=150, lr=3e-3, warmup_steps=20,
                         label_smoothing=0.0, progress=False, log_every=25)
    assert hist["num_steps"] == 150 and len(hist["loss"]) == 6 and not model.training
    assert hist["loss"][-1] < 0.1 < before
    out = model.greedy_decode(seqs[:64], max_len=7, start_idx=1, end_idx=2)
    assert (out == seqs[:64]).all(dim=1).float().mean() > 0.9


def test_caption_batches_cover_every_caption_once_per_epoch_and_trim_null_columns():
    import numpy as np
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((4, 3, 2))                       # 4 images, P=3, C=2
    caps = np.zeros((10, 6), dtype=np.int64)                    # <NULL> = 0
    lengths = rng.integers(2, 5, size=10)
    for i, n in enumerate(lengths):
        caps[i, :n] = np.arange(1, n + 1) + 10 * i              # unique words per caption
    image_idxs = np.arange(10) % 4
    batches = CaptionBatches(feats, caps, image_idxs, batch_size=5, null_idx=0, seed=1)
    for epoch in range(2):
        seen = []
        for f, c in batches:
            assert f.shape == (5, 3, 2) and c.dtype == torch.long
            assert c.shape[1] == max(int((row != 0).sum()) for row in c)   # no all-<NULL> column
            for fi, ci in zip(f, c):
                i = int(ci[0]) // 10
                assert torch.equal(fi, torch.from_numpy(feats[image_idxs[i]]))
                seen.append(i)
        assert sorted(seen) == list(range(10)), epoch
    again = CaptionBatches(feats, caps, image_idxs, batch_size=5, null_idx=0, seed=1)
    first = [c for _, c in again]
    assert [c.tolist() for c in first] == [c.tolist() for _, c in CaptionBatches(
        feats, caps, image_idxs, batch_size=5, null_idx=0, seed=1)]  # same seed, same order
    with pytest.raises(ValueError, match="image_idxs"):
        CaptionBatches(feats, caps, image_idxs[:3], batch_size=5, null_idx=0)
    with pytest.raises(ValueError, match="batch_size"):
        CaptionBatches(feats, caps, image_idxs, batch_size=11, null_idx=0)
