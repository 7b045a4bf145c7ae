"""The library-built substitutes that dependents are graded with (one bug, one place) compute
what the API says: each is compared here with the reference implementation on the same inputs
and parameters, masks included (padding, causal, a query with no allowed key)."""
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autograder import reference, substitutes  # noqa: E402
from autograder.checks import transformer as checks  # noqa: E402

SUBS = substitutes.library_substitutes(
    ["scaled_dot_product_attention", "causal_mask", "padding_mask", "MultiHeadAttention",
     "FeedForward", "EncoderLayer", "DecoderLayer"])


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


# ------------------------------------------------------------------ borrowing a substitute

_BORROW = '''


def _borrowed(name):
    """The grader's library substitute called ``name``, if this worker has been sent one."""
    import gc
    for obj in gc.get_objects():
        code = getattr(obj, "__code__", None) or getattr(getattr(obj, "forward", None),
                                                          "__code__", None)
        if getattr(obj, "__name__", None) == name and \\
                getattr(code, "co_filename", "") == "<library substitutes>":
            return obj
    raise RuntimeError("no substitute to borrow for " + name)


def _borrowing(name):
    def call(*args, **kwargs):
        return _borrowed(name)(*args, **kwargs)
    return call


for _name in ("scaled_dot_product_attention", "causal_mask", "padding_mask",
              "MultiHeadAttention", "FeedForward", "EncoderLayer", "DecoderLayer"):
    globals()[_name] = _borrowing(_name)
'''


def test_a_submission_cannot_borrow_a_substitute_for_its_own_checks(tmp_path):
    """Attack: the reference's transformer.py whose seven substituted names delegate to the
    grader's substitutes found in the worker's memory. Positive control: the dependents graded
    with substitutes (Transformer, CaptioningTransformer) get full marks, so the substitutes
    did reach the worker; the seven names themselves score 0, because a step sends only the
    substitutes of the names it replaces and a function's own checks run before its
    dependents'."""
    import json
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    text = (root / "solutions" / "sequence_models" / "seqlab" / "transformer.py").read_text()
    (tmp_path / "transformer.py").write_text(text + _BORROW)
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path),
                           "--only", "transformer", "--json", str(out)], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores, maxima = {}, {}
    for t in json.loads(out.read_text())["tests"]:
        api = t["tags"][0]
        scores[api] = scores.get(api, 0) + t["score"]
        maxima[api] = maxima.get(api, 0) + t["max_score"]
    assert scores, proc.stdout
    for api in ("Transformer", "CaptioningTransformer", "positional_encoding"):
        assert scores[api] == maxima[api] > 0, (api, scores)
    for api in ("scaled_dot_product_attention", "causal_mask", "padding_mask",
                "MultiHeadAttention", "FeedForward", "EncoderLayer", "DecoderLayer"):
        assert scores[api] == 0 < maxima[api], (api, scores)
