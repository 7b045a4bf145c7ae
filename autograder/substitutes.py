"""Library substitutes: what the checks of a dependent Transformer class run instead of the
student's own dependencies (one bug, one place; ``checks/transformer.py`` ``SUBSTITUTED``).

Each is built from PyTorch library calls a student could make anyway, never course code, and
keeps the API's parameter names, so the grader loads the same state_dict:

- scaled_dot_product_attention: F.scaled_dot_product_attention; the weights are the same call
  with the identity as values (a row with no allowed key: zeros, as the API says);
- MultiHeadAttention: F.multi_head_attention_forward (what nn.MultiheadAttention calls), with
  the API's separate projections; a query with no allowed key gets zero weights, so out_proj's
  bias alone (the library would give NaN);
- FeedForward: nn.Linear, F.relu, nn.Dropout;
- EncoderLayer / DecoderLayer: nn.TransformerEncoderLayer / nn.TransformerDecoderLayer (post-LN,
  ReLU) called with torch.func.functional_call on the API's parameters, their attention blocks
  being the MultiHeadAttention above;
- causal_mask / padding_mask: torch.tril / a comparison.

This file never lies in a worker's folder. A ``substitute`` step carries the imports, the
private helpers and the definitions of the names it replaces only
(``checks.torch_specs.substitutes_source``), and the checks of a function run before those of
its dependents, so a submission cannot borrow a substitute for its own checks. Once sent, student
code in that worker can read it: it teaches nothing but how to call PyTorch.
``tests/test_autograder_substitutes.py`` checks each against the reference and tries the borrow.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    S = k.shape[-2]
    eye = torch.eye(S, dtype=q.dtype, device=q.device).expand(*k.shape[:-2], S, S)
    weights = F.scaled_dot_product_attention(q, k, eye, attn_mask=mask).nan_to_num(0.0)
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights

def causal_mask(T, device=None):
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()

def padding_mask(tokens, pad_idx):
    return (tokens != pad_idx).unsqueeze(1)

class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        self.d_model, self.num_heads, self.dropout = d_model, num_heads, dropout
        self.head_dim = d_model // num_heads
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self, name, nn.Linear(d_model, d_model))

    def forward(self, query, key, value, mask=None, return_weights=False):
        N, Tq, Tk = query.shape[0], query.shape[1], key.shape[1]
        blocked, seen = None, None
        if mask is not None:  # the library's convention: True = may NOT attend
            allowed = mask.expand(N, Tq, Tk)
            seen = allowed.any(-1, keepdim=True)              # (N, Tq, 1)
            blocked = ~(allowed | ~seen)   # a row with no allowed key: computed, then zeroed
            blocked = blocked.repeat_interleave(self.num_heads, dim=0)
        out, weights = F.multi_head_attention_forward(
            query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1),
            self.d_model, self.num_heads, None,
            torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            None, None, False, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, need_weights=True, attn_mask=blocked,
            use_separate_proj_weight=True, q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
            average_attn_weights=False)
        out = out.transpose(0, 1)
        if seen is not None:
            out = torch.where(seen, out, self.out_proj.bias)
            weights = weights * seen.unsqueeze(1)
        return (out, weights) if return_weights else out

class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.1):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.linear2(self.dropout(F.relu(self.linear1(x))))

class _AttentionBlock(nn.Module):
    """nn.MultiheadAttention's call signature (batch first) over the MultiHeadAttention
    above; the library layer hands it the mask it was given (True = may NOT attend, bool,
    or 0 / -inf float)."""
    batch_first, in_proj_bias = True, None   # (no fused fast path)

    def __init__(self, attention):
        super().__init__()
        self.attention = [attention]   # not a submodule: its parameters are the API's

    def forward(self, q, k, v, attn_mask=None, key_padding_mask=None, need_weights=False,
                is_causal=False):
        allowed = None
        if attn_mask is not None:
            allowed = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask == 0
        return self.attention[0](q, k, v, allowed), None

class _LibraryLayer(nn.Module):
    """The API's parameters of an EncoderLayer (``cross`` False) or a DecoderLayer (a
    cross-attention and norm3 more), computed by ``library``'s layer."""

    def __init__(self, library, d_model, num_heads, d_ff, dropout, cross):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        if cross:
            self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.feed_forward = FeedForward(d_model, d_ff, dropout)
        for i in range(1, 4 if cross else 3):
            setattr(self, f"norm{i}", nn.LayerNorm(d_model))
        self.dropout = nn.Dropout(dropout)
        library = library(d_model, num_heads, d_ff, dropout, batch_first=True)
        library.self_attn = _AttentionBlock(self.self_attn)
        if cross:
            library.multihead_attn = _AttentionBlock(self.cross_attn)
        self._library = [library]        # a list: not a submodule, no state_dict entries

    def _call(self, args, masks):
        """The library layer on ``args``, the masks (True = may attend) as its keywords."""
        params = {name.removeprefix("feed_forward."): p for name, p in self.named_parameters()
                  if not name.startswith(("self_attn.", "cross_attn."))}
        masks = {k: None if m is None else ~m for k, m in masks.items()}
        return functional_call(self._library[0].train(self.training), params, args, masks,
                               strict=False)

class EncoderLayer(_LibraryLayer):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.1):
        super().__init__(nn.TransformerEncoderLayer, d_model, num_heads, d_ff, dropout, False)

    def forward(self, x, mask=None):
        return self._call((x,), {"src_mask": mask})

class DecoderLayer(_LibraryLayer):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.1):
        super().__init__(nn.TransformerDecoderLayer, d_model, num_heads, d_ff, dropout, True)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None):
        return self._call((x, memory), {"tgt_mask": tgt_mask, "memory_mask": memory_mask})


def library_substitutes(names):
    """{name: substitute} for ``names``, executed from the source a worker receives
    (``checks.torch_specs.substitutes_source``), as a worker does."""
    from autograder.checks.torch_specs import substitutes_source
    namespace = {}
    exec(compile(substitutes_source(names), "<library substitutes>", "exec"), namespace)
    return {name: namespace[name] for name in names}
