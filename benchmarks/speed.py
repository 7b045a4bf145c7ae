#!/usr/bin/env python
"""Speed of the reference layers against PyTorch on the CPU.

Rows (each: the reference and its PyTorch counterpart, same sizes, float32, 2 threads):

* ``rnn``            numpy ``rnn_forward`` + ``rnn_backward``            vs ``torch.nn.RNN``
* ``lstm``           numpy ``lstm_forward`` + ``lstm_backward``          vs ``torch.nn.LSTM``
* ``attention_lstm`` numpy ``attention_lstm_forward`` + ``_backward``    vs a PyTorch autograd
                     twin of the same math (``autograder/checks/twins.py``)
* ``mha``            ``seqlab.transformer.MultiHeadAttention`` training step (forward, backward,
                     Adam step) vs ``torch.nn.MultiheadAttention``
* ``transformer``    ``seqlab.transformer.Transformer`` training step (forward, cross-entropy,
                     backward, Adam step) vs ``torch.nn.Transformer`` with the same embeddings,
                     positional encoding and generator around it (its final encoder/decoder
                     LayerNorms removed: the reference, as the paper, has none)

The recurrent rows time a forward pass plus a backward pass from a fixed upstream gradient of
every hidden state; the gradients of the inputs and of every weight are computed on both sides.
Before timing, every pair is checked to compute the same thing (weights copied across; the
largest relative error is printed), and every reference output is checked to be float32.

Timing: both sides of a row are run interleaved (reference, PyTorch, PyTorch, reference, ...)
after a warm-up, and the median of the repeats is reported, so that load from other processes
on the machine hits both sides alike. GFLOP/s counts only the matrix-multiply FLOPs, from the
formulas printed with the table (2 FLOPs per multiply-add; a backward pass costs twice the
forward's matmuls). Ratio = reference time / PyTorch time (lower is better for the reference).
Times are reported, never asserted.

Usage:
    python benchmarks/speed.py                  # full run (a minute or two on 2 idle cores)
    python benchmarks/speed.py --quick          # fewer repeats, same sizes
    python benchmarks/speed.py --threads 1      # steadier figures on a busy machine
    python benchmarks/speed.py --json out.json  # also write every figure as JSON
    python benchmarks/speed.py --only rnn,lstm  # a subset of the rows
"""
import os
import sys


def _threads_from_argv(argv, default=2):
    """``--threads K`` must act before numpy is imported (OpenBLAS reads its thread count once)."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return int(os.environ.get("SEQLAB_BENCH_THREADS", default))


# numpy (OpenBLAS) and torch get the same number of threads: the course machine has 2 cores.
THREADS = _threads_from_argv(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# the reference seqlab, found by its folder: it is never installed (see pyproject.toml)
sys.path.insert(0, str(ROOT / "solutions" / "sequence_models"))

from autograder.checks import twins  # noqa: E402
from seqlab import attention_layers as AL  # noqa: E402
from seqlab import lstm_layers as LL  # noqa: E402
from seqlab import rnn_layers as RL  # noqa: E402
from seqlab import transformer as TR  # noqa: E402

# Sizes of the recurrent rows (the issue's): batch, steps, input, hidden, grid positions.
N, T, D, H, P = 128, 16, 256, 512, 16
# Sizes of the Transformer rows.
TF = dict(d_model=128, num_heads=4, num_layers=2, d_ff=512, dropout=0.1,
          batch=64, src_len=24, tgt_len=12, src_vocab=48, tgt_vocab=16, pad_idx=0)

TARGETS = {"rnn": 1.0, "lstm": 1.3, "attention_lstm": 1.5, "transformer": 1.2}


# ---------------------------------------------------------------------------------------------
# Timing and checks
# ---------------------------------------------------------------------------------------------

def time_interleaved(fns, warmup, repeats):
    """Median, min and all wall times (s) of each callable in ``fns`` (a dict name -> fn).

    The callables are run in turn inside every repeat, in alternating order, so that a burst
    of load from elsewhere hits all of them alike.
    """
    items = list(fns.items())
    for _ in range(warmup):
        for _, fn in items:
            fn()
    times = {name: [] for name in fns}
    for r in range(repeats):
        for name, fn in (items if r % 2 == 0 else items[::-1]):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: {"median_s": statistics.median(ts), "min_s": min(ts), "times_s": ts}
            for name, ts in times.items()}


def rel_err(a, b):
    """Largest relative error, max |a - b| / max |b| (robust for float32 near zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def check_pair(name, ours, theirs):
    """Max relative error over matching lists of arrays; every reference array must be float32."""
    worst = 0.0
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a.dtype != np.float32:
            raise AssertionError(f"{name}: reference output #{i} is {a.dtype}, not float32")
        if a.shape != tuple(b.shape):
            raise AssertionError(f"{name}: output #{i} shape {a.shape} vs {tuple(b.shape)}")
        worst = max(worst, rel_err(a, b))
    return worst


def np_t(a, grad=False):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.requires_grad_(grad)


def _zero_grads(*tensors):
    for t in tensors:
        t.grad = None


# ---------------------------------------------------------------------------------------------
# Recurrent rows
# ---------------------------------------------------------------------------------------------

def _recurrent_inputs(rng, k):
    """x, h0, Wx (D, kH), Wh (H, kH), b (kH,), dh, all float32."""
    f32 = np.float32
    x = rng.standard_normal((N, T, D), dtype=f32)
    h0 = rng.standard_normal((N, H), dtype=f32)
    Wx = rng.standard_normal((D, k * H), dtype=f32) / np.float32(math.sqrt(D))
    Wh = rng.standard_normal((H, k * H), dtype=f32) / np.float32(math.sqrt(H))
    b = rng.standard_normal(k * H, dtype=f32) * np.float32(0.1)
    dh = rng.standard_normal((N, T, H), dtype=f32)
    return x, h0, Wx, Wh, b, dh


def rnn_case(rng):
    x, h0, Wx, Wh, b, dh = _recurrent_inputs(rng, 1)

    def reference():
        h, cache = RL.rnn_forward(x, h0, Wx, Wh, b)
        return [h, *RL.rnn_backward(dh, cache)]           # h, dx, dh0, dWx, dWh, db

    rnn = nn.RNN(D, H, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(Wx.T))
        rnn.weight_hh_l0.copy_(torch.from_numpy(Wh.T))
        rnn.bias_ih_l0.copy_(torch.from_numpy(b))
        rnn.bias_hh_l0.zero_()
    xt, h0t, dht = np_t(x, True), np_t(h0[None], True), np_t(dh)

    def pytorch():
        _zero_grads(xt, h0t, *rnn.parameters())
        h, _ = rnn(xt, h0t)
        h.backward(dht)
        return [h.detach(), xt.grad, h0t.grad[0], rnn.weight_ih_l0.grad.T,
                rnn.weight_hh_l0.grad.T, rnn.bias_ih_l0.grad]

    flops = 6 * N * T * H * (D + H)
    formula = "3 * 2*N*T*H*(D + H)   [fwd x@Wx, h@Wh; bwd dx, dWx, dh, dWh]"
    return reference, pytorch, flops, formula


def _ifog_to_ifgo(w):
    """numpy gate blocks (i, f, o, g) along the last axis -> torch's order (i, f, g, o)."""
    i, f, o, g = np.split(w, 4, axis=-1)
    return np.concatenate([i, f, g, o], axis=-1)


def _ifgo_to_ifog(w):
    i, f, g, o = np.split(np.asarray(w), 4, axis=-1)
    return np.concatenate([i, f, o, g], axis=-1)


def lstm_case(rng):
    x, h0, Wx, Wh, b, dh = _recurrent_inputs(rng, 4)

    def reference():
        h, cache = LL.lstm_forward(x, h0, Wx, Wh, b)
        return [h, *LL.lstm_backward(dh, cache)]

    lstm = nn.LSTM(D, H, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(_ifog_to_ifgo(Wx).T))
        lstm.weight_hh_l0.copy_(torch.from_numpy(_ifog_to_ifgo(Wh).T))
        lstm.bias_ih_l0.copy_(torch.from_numpy(_ifog_to_ifgo(b)))
        lstm.bias_hh_l0.zero_()
    xt, h0t, dht = np_t(x, True), np_t(h0[None], True), np_t(dh)
    c0t = torch.zeros_like(h0t)                            # the reference's c0 is zero

    def pytorch():
        _zero_grads(xt, h0t, *lstm.parameters())
        h, _ = lstm(xt, (h0t, c0t))
        h.backward(dht)
        return [h.detach(), xt.grad, h0t.grad[0], _ifgo_to_ifog(lstm.weight_ih_l0.grad.T),
                _ifgo_to_ifog(lstm.weight_hh_l0.grad.T), _ifgo_to_ifog(lstm.bias_ih_l0.grad)]

    flops = 24 * N * T * H * (D + H)
    formula = "3 * 2*N*T*4H*(D + H)"
    return reference, pytorch, flops, formula


def attention_lstm_case(rng):
    x, _, Wx, Wh, b, dh = _recurrent_inputs(rng, 4)
    A = rng.standard_normal((N, P, H), dtype=np.float32)
    Wattn = rng.standard_normal((H, 4 * H), dtype=np.float32) / np.float32(math.sqrt(H))

    def reference():
        h, _, cache = AL.attention_lstm_forward(x, A, Wx, Wh, Wattn, b)
        return [h, *AL.attention_lstm_backward(dh, cache)]  # h, dx, dA, dWx, dWh, dWattn, db

    ts = [np_t(a, True) for a in (x, A, Wx, Wh, Wattn, b)]
    dht = np_t(dh)

    def pytorch():
        _zero_grads(*ts)
        h, _ = twins.attention_lstm(*ts)
        h.backward(dht)
        return [h.detach()] + [t.grad for t in ts]

    flops = 24 * N * T * H * (D + 2 * H) + 12 * N * T * P * H
    formula = ("3 * 2*N*T*4H*(D + 2H)  [gates: x, h, attn]"
               " + 3 * 2*2*N*T*P*H  [attention: scores, weighted sum]")
    return reference, pytorch, flops, formula


# ---------------------------------------------------------------------------------------------
# Transformer rows
# ---------------------------------------------------------------------------------------------

def _tokens(gen, n, length, vocab, pad):
    """Random tokens in [1, vocab) with each row padded (pad) after a random length >= 1/2."""
    tok = torch.randint(4, vocab, (n, length), generator=gen)
    tok[:, 0] = 1                                          # a start token, never padding
    lengths = torch.randint(length // 2, length + 1, (n,), generator=gen)
    tok[torch.arange(length)[None, :] >= lengths[:, None]] = pad
    return tok


def _copy_mha(ours, theirs):
    """Reference MultiHeadAttention weights -> nn.MultiheadAttention."""
    theirs.load_state_dict(twins.nn_state_dict(ours.state_dict()))


def mha_case(rng):
    d, h, p = TF["d_model"], TF["num_heads"], TF["dropout"]
    n, t = TF["batch"], TF["src_len"]
    torch.manual_seed(0)
    ours = TR.MultiHeadAttention(d, h, dropout=p)
    theirs = nn.MultiheadAttention(d, h, dropout=p, batch_first=True)
    _copy_mha(ours, theirs)
    x = torch.randn(n, t, d)
    dout = torch.randn(n, t, d)
    may_attend = TR.causal_mask(t)                         # True = may attend (reference)
    blocked = ~may_attend                                  # True = may not (nn.MultiheadAttention)
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-4)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-4)

    def reference():
        out = ours(x, x, x, may_attend)
        opt_ours.zero_grad()
        out.backward(dout)
        opt_ours.step()
        return out

    def pytorch():
        out, _ = theirs(x, x, x, attn_mask=blocked, need_weights=False)
        opt_theirs.zero_grad()
        out.backward(dout)
        opt_theirs.step()
        return out

    def check():
        ours.eval(), theirs.eval()
        with torch.no_grad():
            a = ours(x, x, x, may_attend)
            b, _ = theirs(x, x, x, attn_mask=blocked, need_weights=False)
        ours.train(), theirs.train()
        return rel_err(a.numpy(), b.numpy())

    flops = 3 * (8 * n * t * d * d + 4 * n * t * t * d)
    formula = "3 * (4 * 2*N*T*d^2 [q, k, v, out proj] + 2 * 2*N*T^2*d [scores, weighted sum])"
    return reference, pytorch, flops, formula, check


class TorchTransformer(nn.Module):
    """``torch.nn.Transformer`` with the reference's embeddings, positional encoding, dropout and
    generator around it, so that both models have the same parameters and the same math."""

    def __init__(self, src_vocab, tgt_vocab, d_model, num_heads, num_layers, d_ff, dropout,
                 max_len=256, pad_idx=0):
        super().__init__()
        self.d_model, self.pad_idx = d_model, pad_idx
        self.register_buffer("pe", TR.positional_encoding(max_len, d_model), persistent=False)
        self.src_embed = nn.Embedding(src_vocab, d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab, d_model)
        self.core = nn.Transformer(d_model, num_heads, num_layers, num_layers, d_ff, dropout,
                                   batch_first=True)
        # nn.Transformer ends both stacks with a LayerNorm; the post-LN reference does not.
        self.core.encoder.norm = None
        self.core.decoder.norm = None
        # No nested-tensor fast path in eval mode (only used by the correctness check; it warns).
        self.core.encoder.enable_nested_tensor = self.core.encoder.use_nested_tensor = False
        self.generator = nn.Linear(d_model, tgt_vocab)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src, tgt_in):
        S, Tt = src.shape[1], tgt_in.shape[1]
        scale = math.sqrt(self.d_model)
        x = self.dropout(self.src_embed(src) * scale + self.pe[:S])
        y = self.dropout(self.tgt_embed(tgt_in) * scale + self.pe[:Tt])
        src_pad, tgt_pad = src == self.pad_idx, tgt_in == self.pad_idx   # True = padding
        future = torch.ones(Tt, Tt, dtype=torch.bool).triu(1)            # True = may not attend
        out = self.core(x, y, tgt_mask=future, src_key_padding_mask=src_pad,
                        tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
        return self.generator(out)


def _copy_transformer(ours, theirs):
    with torch.no_grad():
        theirs.src_embed.weight.copy_(ours.src_embed.weight)
        theirs.tgt_embed.weight.copy_(ours.tgt_embed.weight)
        theirs.generator.load_state_dict(ours.generator.state_dict())
        layers = list(zip(ours.encoder_layers, theirs.core.encoder.layers))
        layers += list(zip(ours.decoder_layers, theirs.core.decoder.layers))
        for o, t in layers:
            t.load_state_dict(twins.nn_state_dict(o.state_dict()))


def transformer_case(rng):
    c = TF
    torch.manual_seed(0)
    args = (c["src_vocab"], c["tgt_vocab"], c["d_model"], c["num_heads"], c["num_layers"],
            c["d_ff"], c["dropout"])
    ours = TR.Transformer(*args, pad_idx=c["pad_idx"])
    theirs = TorchTransformer(*args, pad_idx=c["pad_idx"])
    n_ours = sum(p.numel() for p in ours.parameters())
    n_theirs = sum(p.numel() for p in theirs.parameters())
    if n_ours != n_theirs:
        raise AssertionError(f"transformer: {n_ours} parameters vs {n_theirs} in nn.Transformer")
    _copy_transformer(ours, theirs)
    gen = torch.Generator().manual_seed(0)
    src = _tokens(gen, c["batch"], c["src_len"], c["src_vocab"], c["pad_idx"])
    tgt = _tokens(gen, c["batch"], c["tgt_len"] + 1, c["tgt_vocab"], c["pad_idx"])
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-4)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-4)

    def step(model, opt):
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                               ignore_index=c["pad_idx"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    def check():
        ours.eval(), theirs.eval()
        with torch.no_grad():
            a, b = ours(src, tgt_in), theirs(src, tgt_in)
        ours.train(), theirs.train()
        return rel_err(a.numpy(), b.numpy())

    n, S, Tt, d, dff, V, L = (c["batch"], c["src_len"], c["tgt_len"], c["d_model"], c["d_ff"],
                              c["tgt_vocab"], c["num_layers"])
    enc = 8 * n * S * d * d + 4 * n * S * S * d + 4 * n * S * d * dff
    dec = (8 * n * Tt * d * d + 4 * n * Tt * Tt * d                 # self-attention
           + 4 * n * Tt * d * d + 4 * n * S * d * d + 4 * n * Tt * S * d   # cross-attention
           + 4 * n * Tt * d * dff)                                  # feed-forward
    flops = 3 * (L * enc + L * dec + 2 * n * Tt * d * V)
    formula = ("3 * (L*[8NSd^2 + 4NS^2d + 4NSd*dff] + L*[8NTd^2 + 4NT^2d + 4NTd^2 + 4NSd^2 "
               "+ 4NTSd + 4NTd*dff] + 2NTdV)")
    return (lambda: step(ours, opt_ours)), (lambda: step(theirs, opt_theirs)), flops, formula, check


# ---------------------------------------------------------------------------------------------

ROWS = {
    "rnn": ("rnn_forward+rnn_backward", "nn.RNN fwd+bwd", rnn_case),
    "lstm": ("lstm_forward+lstm_backward", "nn.LSTM fwd+bwd", lstm_case),
    "attention_lstm": ("attention_lstm_forward+backward", "autograd twin fwd+bwd",
                       attention_lstm_case),
    "mha": ("MultiHeadAttention train step", "nn.MultiheadAttention", mha_case),
    "transformer": ("Transformer train step", "nn.Transformer", transformer_case),
}


def run_row(key, warmup, repeats):
    ref_label, torch_label, make = ROWS[key]
    rng = np.random.default_rng(0)
    case = make(rng)
    reference, pytorch, flops, formula = case[:4]
    if len(case) == 5:
        err = case[4]()
    else:
        err = check_pair(key, reference(), [np.asarray(t.detach()) if torch.is_tensor(t) else t
                                            for t in pytorch()])
    timing = time_interleaved({"reference": reference, "pytorch": pytorch}, warmup, repeats)
    ref_s, torch_s = timing["reference"]["median_s"], timing["pytorch"]["median_s"]
    ratio = ref_s / torch_s
    target = TARGETS.get(key)
    return {
        "row": key, "reference": ref_label, "pytorch": torch_label,
        "reference_s": ref_s, "pytorch_s": torch_s,
        "reference_min_s": timing["reference"]["min_s"],
        "pytorch_min_s": timing["pytorch"]["min_s"],
        "reference_times_s": timing["reference"]["times_s"],
        "pytorch_times_s": timing["pytorch"]["times_s"],
        "flops": flops, "flops_formula": formula,
        "reference_gflops": flops / ref_s / 1e9, "pytorch_gflops": flops / torch_s / 1e9,
        "ratio": ratio,
        "ratio_of_minima": timing["reference"]["min_s"] / timing["pytorch"]["min_s"],
        "target": target, "target_met": None if target is None else ratio <= target,
        "max_rel_error": err,
    }


def print_table(rows):
    head = (f"{'row':<15} {'reference':>10} {'GFLOP/s':>8} {'pytorch':>10} {'GFLOP/s':>8} "
            f"{'ratio':>6} {'target':>9} {'min-ratio':>9}  check")
    print(head)
    print("-" * len(head))
    for r in rows:
        target = "" if r["target"] is None else (f"<={r['target']:.1f}"
                                                 + (" ok" if r["target_met"] else " !!"))
        print(f"{r['row']:<15} {r['reference_s'] * 1e3:8.1f}ms {r['reference_gflops']:8.1f} "
              f"{r['pytorch_s'] * 1e3:8.1f}ms {r['pytorch_gflops']:8.1f} {r['ratio']:5.2f}x "
              f"{target:>9} {r['ratio_of_minima']:8.2f}x  err {r['max_rel_error']:.1e}")
    print("(times: medians; ratio = reference / PyTorch median time; min-ratio: the same with the "
          "fastest repeat of each side; err: largest relative difference of the outputs and "
          "gradients)")
    print()
    print("Matmul FLOPs per timed call (2 per multiply-add; backward = 2x forward):")
    for r in rows:
        print(f"  {r['row']:<15} {r['flops'] / 1e9:7.3f} GFLOP = {r['flops_formula']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (same sizes)")
    parser.add_argument("--repeats", type=int, help="timed repeats per side (default 15, quick 5)")
    parser.add_argument("--warmup", type=int, help="untimed calls per side first (default 2)")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="threads for numpy (OpenBLAS) and torch (default 2, or "
                             "$SEQLAB_BENCH_THREADS)")
    parser.add_argument("--only", help=f"comma-separated rows out of {','.join(ROWS)}")
    parser.add_argument("--json", metavar="OUT", help="write the results to this JSON file")
    args = parser.parse_args(argv)

    repeats = args.repeats or (5 if args.quick else 15)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    keys = args.only.split(",") if args.only else list(ROWS)
    unknown = [k for k in keys if k not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")

    torch.set_num_threads(THREADS)
    print(f"seqlab speed benchmark: torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"numpy {np.__version__} (OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}), "
          f"{os.cpu_count()} CPUs; warm-up {warmup}, median of {repeats} interleaved repeats")
    print(f"recurrent rows: N={N} T={T} D={D} H={H} P={P} float32; transformer rows: "
          + " ".join(f"{k}={v}" for k, v in TF.items()))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at start: {load:.2f}\n")

    rows = []
    for key in keys:
        print(f"  {key} ...", flush=True)
        rows.append(run_row(key, warmup, repeats))
    print()
    print_table(rows)

    if args.json:
        result = {
            "config": {"N": N, "T": T, "D": D, "H": H, "P": P, "dtype": "float32",
                       "transformer": TF, "threads": THREADS, "warmup": warmup,
                       "repeats": repeats, "quick": args.quick},
            "environment": {"torch": torch.__version__, "numpy": np.__version__,
                            "python": platform.python_version(), "cpus": os.cpu_count(),
                            "machine": platform.machine(), "load_average_start": load},
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
