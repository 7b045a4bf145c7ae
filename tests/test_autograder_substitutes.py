"""The library-built substitutes that dependents are graded with (one bug, one place) compute
what the API says: each is compared here with the reference implementation on the same inputs
and parameters, masks included (padding, causal, a query with no allowed key)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autograder import reference, worker_boot  # noqa: E402
from autograder.checks import transformer as checks  # noqa: E402

SUBS = worker_boot._library_substitutes(torch)


def ref():
    return reference.module("transformer")


def _close(a, b):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def _masks(N, Tq, Tk):
    pad = torch.ones(N, 1, Tk, dtype=torch.bool)
    pad[0, 0, -2:] = False
    empty = torch.ones(N, Tq, Tk, dtype=torch.bool)
    empty[0, 1, :] = False
    return [None, pad, torch.ones(Tq, Tk, dtype=torch.bool).tril(), empty]


def test_every_substituted_name_has_a_substitute():
    names = {n for group in checks.SUBSTITUTED.values() for n in group}
    assert names <= set(SUBS)
    assert not set(checks.SUBSTITUTED) & names - {"MultiHeadAttention", "EncoderLayer",
                                                  "DecoderLayer"}


@pytest.mark.parametrize("k", range(4))
def test_scaled_dot_product_attention(k):
    g = torch.Generator().manual_seed(k)
    q, kk, v = (torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64) for _ in range(3))
    mask = _masks(2, 4, 4)[k]
    mask = mask.unsqueeze(1) if mask is not None and mask.dim() == 3 else mask
    out, w = SUBS["scaled_dot_product_attention"](q, kk, v, mask)
    out_r, w_r = ref().scaled_dot_product_attention(q, kk, v, mask)
    _close(out, out_r)
    _close(w, w_r)


def _pair(cls, *args):
    torch.manual_seed(0)
    r = getattr(ref(), cls)(*args, dropout=0.0).double().eval()
    s = SUBS[cls](*args, dropout=0.0).double().eval()
    assert [n for n, _ in s.named_parameters()] == [n for n, _ in r.named_parameters()]
    with torch.no_grad():  # random, non-trivial parameters (LayerNorm weights != 1)
        for p in r.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0) * 0.3)
    s.load_state_dict(r.state_dict())
    return r, s


@pytest.mark.parametrize("k", range(4))
def test_multi_head_attention(k):
    r, s = _pair("MultiHeadAttention", 12, 3)
    x, m = torch.randn(2, 4, 12, dtype=torch.float64), torch.randn(2, 5, 12, dtype=torch.float64)
    mask = _masks(2, 4, 5)[k] if k != 2 else None
    out_r, w_r = r(x, m, m, mask=mask, return_weights=True)
    out_s, w_s = s(x, m, m, mask=mask, return_weights=True)
    _close(out_s, out_r)
    _close(w_s, w_r)
    _close(s(x, m, m, mask), r(x, m, m, mask))


def test_feed_forward_and_layers():
    r, s = _pair("FeedForward", 6, 10)
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    _close(s(x), r(x))
    r, s = _pair("EncoderLayer", 8, 2, 16)
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    pad = torch.ones(2, 1, 6, dtype=torch.bool)
    pad[1, 0, -2:] = False
    _close(s(x, pad), r(x, pad))
    r, s = _pair("DecoderLayer", 8, 2, 16)
    y, memory = torch.randn(2, 5, 8, dtype=torch.float64), x
    tgt = torch.ones(5, 5, dtype=torch.bool).tril()
    _close(s(y, memory, tgt, pad), r(y, memory, tgt, pad))


def test_masks():
    for T in (1, 5):
        assert torch.equal(SUBS["causal_mask"](T), ref().causal_mask(T))
    tokens = torch.tensor([[3, 4, 0, 0], [1, 2, 3, 4]])
    assert torch.equal(SUBS["padding_mask"](tokens, 0), ref().padding_mask(tokens, 0))
