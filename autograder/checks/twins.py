"""PyTorch twins of the course's layers: the same math written independently with torch
operations, for the checks (gradients against autograd), the project's tests and the benchmarks.

Each twin takes and returns torch tensors (float64 in the checks); the numpy layers' caches are
left out. torch is imported on first use and its settings are left alone (the grader imports
it first, with ``core.import_torch``), so importing this module costs nothing. Also the one
mapping between the API's Transformer parameter names and those of
``torch.nn.MultiheadAttention`` / ``TransformerEncoderLayer`` / ``TransformerDecoderLayer``.

Grader-side code: like the rest of ``autograder/``, a sandboxed worker can neither import nor
read it.
"""
import math


def import_torch():
    import torch
    return torch

# --- rnn_layers ------------------------------------------------------------------------------


def rnn_step(x, prev_h, Wx, Wh, b):
    """next_h = tanh(x Wx + prev_h Wh + b); x (N, D), prev_h (N, H) -> (N, H)."""
    return import_torch().tanh(x @ Wx + prev_h @ Wh + b)


def rnn(x, h0, Wx, Wh, b):
    """x (N, T, D), h0 (N, H) -> hidden states (N, T, H)."""
    hs, h = [], h0
    for t in range(x.shape[1]):
        h = rnn_step(x[:, t], h, Wx, Wh, b)
        hs.append(h)
    return import_torch().stack(hs, dim=1)


def embed(x, W):
    """Integer x (N, T), W (V, D) -> W[x] (N, T, D)."""
    return W[x]


def affine(x, w, b):
    """x (N, T, D), w (D, M), b (M,) -> (N, T, M)."""
    return x @ w + b


def softmax_loss(x, y, mask):
    """Scores x (N, T, V), targets y (N, T), bool mask (N, T) -> the summed negative log
    likelihood of the unmasked targets divided by N (a scalar)."""
    torch = import_torch()
    logp = torch.log_softmax(x, dim=-1).gather(-1, y[..., None])[..., 0]
    return -(logp * mask).sum() / x.shape[0]


# --- lstm_layers, attention_layers -----------------------------------------------------------


def lstm_gates(a, prev_c):
    """Pre-activations a (N, 4H) in the API's gate order i, f, o, g and prev_c (N, H) ->
    (next_h, next_c), each (N, H)."""
    torch = import_torch()
    H = prev_c.shape[1]
    i, f, o = (torch.sigmoid(a[:, k * H:(k + 1) * H]) for k in range(3))
    g = torch.tanh(a[:, 3 * H:])
    c = f * prev_c + i * g
    return o * torch.tanh(c), c


def lstm_step(x, prev_h, prev_c, Wx, Wh, b):
    """x (N, D), prev_h, prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,) -> (next_h, next_c)."""
    return lstm_gates(x @ Wx + prev_h @ Wh + b, prev_c)


def lstm(x, h0, Wx, Wh, b):
    """x (N, T, D), h0 (N, H); the initial cell state is zero -> hidden states (N, T, H)."""
    torch = import_torch()
    xa = x @ Wx + b                                    # (N, T, 4H), all steps at once
    h, c, hs = h0, torch.zeros_like(h0), []
    for t in range(x.shape[1]):
        h, c = lstm_gates(xa[:, t] + h @ Wh, c)
        hs.append(h)
    return torch.stack(hs, dim=1)


def attention(prev_h, A):
    """Scaled dot-product attention of prev_h (N, H) over A (N, P, H) -> (attn (N, H),
    weights (N, P))."""
    torch = import_torch()
    scores = (A @ prev_h[:, :, None])[:, :, 0] / math.sqrt(A.shape[2])
    weights = torch.softmax(scores, dim=1)
    return (weights[:, None, :] @ A)[:, 0], weights


def attention_lstm_step(x, prev_h, prev_c, attn, Wx, Wh, Wattn, b):
    """lstm_step with the attention term attn (N, H) @ Wattn (H, 4H) -> (next_h, next_c)."""
    return lstm_gates(x @ Wx + prev_h @ Wh + attn @ Wattn + b, prev_c)


def attention_lstm(x, A, Wx, Wh, Wattn, b):
    """x (N, T, D), A (N, P, H); h0 = c0 = the mean of A over P -> (hidden states (N, T, H),
    attention weights (N, T, P))."""
    torch = import_torch()
    xa = x @ Wx + b                                    # (N, T, 4H), all steps at once
    h = c = A.mean(dim=1)
    hs, ws = [], []
    for t in range(x.shape[1]):
        attn, w = attention(h, A)
        h, c = lstm_gates(xa[:, t] + h @ Wh + attn @ Wattn, c)
        hs.append(h)
        ws.append(w)
    return torch.stack(hs, dim=1), torch.stack(ws, dim=1)


def caption_loss(cell_type, p, features, captions, null_idx):
    """CaptioningRNN.loss: ``p`` the model's params as tensors, features (N, D) or (N, P, D)
    (attention), integer captions (N, T + 1) -> the loss (a scalar tensor)."""
    cin, cout = captions[:, :-1], captions[:, 1:]
    proj = features @ p["W_proj"] + p["b_proj"]
    x = embed(cin, p["W_embed"])
    if cell_type == "attention":
        h, _ = attention_lstm(x, proj, p["Wx"], p["Wh"], p["Wattn"], p["b"])
    else:
        h = {"rnn": rnn, "lstm": lstm}[cell_type](x, proj, p["Wx"], p["Wh"], p["b"])
    return softmax_loss(affine(h, p["W_vocab"], p["b_vocab"]), cout, cout != null_idx)


# --- transformer: the API's parameter names <-> torch.nn's -----------------------------------

_PROJ = ("q_proj", "k_proj", "v_proj")
_RENAME = (("cross_attn.", "multihead_attn."), ("feed_forward.", ""))


def nn_state_dict(state):
    """A state_dict with the API's names (MultiHeadAttention, EncoderLayer, DecoderLayer: its
    ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``, ``cross_attn``, ``feed_forward``, ``norm*``;
    tensors or numpy arrays) -> the state_dict of the matching torch.nn module
    (MultiheadAttention's ``in_proj_weight`` / ``in_proj_bias`` hold q, k, v stacked)."""
    torch = import_torch()
    out, packed = {}, {}
    for name, value in state.items():
        value = torch.as_tensor(value)
        for ours, theirs in _RENAME:
            name = name.replace(ours, theirs)
        prefix, _, rest = name.rpartition(".")
        head, _, proj = prefix.rpartition(".")
        if proj in _PROJ:
            key = (head + "." if head else "") + "in_proj_" + rest
            packed.setdefault(key, {})[proj] = value
        else:
            out[name] = value
    for key, parts in packed.items():
        out[key] = torch.cat([parts[p] for p in _PROJ])
    return out


def course_state_dict(nn_state):
    """The inverse of :func:`nn_state_dict`: a torch.nn module's state_dict -> the API's names."""
    out = {}
    for name, value in nn_state.items():
        if name.startswith("multihead_attn."):
            name = "cross_attn." + name[len("multihead_attn."):]
        elif name.startswith(("linear1.", "linear2.")):
            name = "feed_forward." + name
        head, _, rest = name.rpartition(".")
        if rest.startswith("in_proj_"):
            for proj, part in zip(_PROJ, value.chunk(3), strict=True):
                out[f"{head}.{proj}.{rest[8:]}".lstrip(".")] = part
        else:
            out[name] = value
    return out
