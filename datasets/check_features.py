"""Check that the shapes features make captioning learnable (a development check, not a test).

    python datasets/check_features.py [--steps 800] [--numpy "rnn lstm attention"]

1. A small PyTorch GRU captioner on the pooled features (h0 = a projection of the feature),
   trained for --steps minibatches of 128 on the training split, greedy decoding on the test
   split: BLEU-4, CIDEr-D and the fraction of exactly right captions.
2. Linear probes (softmax regression, trained on the training grid vectors, scored on the test
   ones) on each grid vector: colour and shape of the object covering the cell (or none), the
   object's 3x3 layout position, and the cell's own index (0..15).
3. A small attention GRU captioner on the grid features (dot-product attention over the 16
   vectors, as in notebook 03): BLEU-4 and ``seqlab.metrics.attention_on_objects``.
4. The course's own numpy ``CaptioningRNN`` (reference solution) with ``Solver``, cell types
   given by --numpy (default "rnn lstm attention"), --iters iterations each.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
# the reference seqlab, found by its folder: it is never installed (see pyproject.toml)
sys.path.insert(0, str(ROOT / "solutions" / "sequence_models"))
from seqlab.data import decode_captions, load_captioning_data, references  # noqa: E402
from seqlab.metrics import attention_on_objects, evaluate_captions  # noqa: E402


class Captioner(nn.Module):
    def __init__(self, vocab, feat_dim, hidden=128, embed=32, attention=False):
        super().__init__()
        self.attention = attention
        self.proj = nn.Linear(feat_dim, hidden)
        self.embed = nn.Embedding(vocab, embed)
        self.cell = nn.GRUCell(embed + (hidden if attention else 0), hidden)
        self.out = nn.Linear(hidden, vocab)

    def init(self, feats):
        if self.attention:
            A = self.proj(feats)                                     # (N, 16, H)
            return A.mean(1), A
        return self.proj(feats), None

    def step(self, word, h, A):
        x = self.embed(word)
        w = None
        if self.attention:
            w = torch.softmax((A @ h[:, :, None]).squeeze(2) / A.shape[-1] ** 0.5, dim=1)
            x = torch.cat([x, (w[:, :, None] * A).sum(1)], dim=1)
        h = self.cell(x, h)
        return h, self.out(h), w

    def loss(self, feats, caps):
        h, A = self.init(feats)
        total, count = 0.0, 0
        for t in range(caps.shape[1] - 1):
            h, logits, _ = self.step(caps[:, t], h, A)
            mask = caps[:, t + 1] != 0
            total = total + F.cross_entropy(logits, caps[:, t + 1], reduction="none")[mask].sum()
            count += int(mask.sum())
        return total / count

    @torch.no_grad()
    def sample(self, feats, T, start=1):
        h, A = self.init(feats)
        word = torch.full((len(feats),), start, dtype=torch.long)
        out, attn = [], []
        for _ in range(T):
            h, logits, w = self.step(word, h, A)
            word = logits.argmax(1)
            out.append(word)
            attn.append(w if w is not None else torch.zeros(len(feats), 16))
        return torch.stack(out, 1).numpy(), torch.stack(attn, 1).numpy()


def train_captioner(data, key, steps, attention=False, seed=0):
    torch.manual_seed(seed)
    rows = torch.from_numpy(data["train_image_idxs"]).long()
    feats = torch.from_numpy(data[f"train_{key}"])[rows]
    caps = torch.from_numpy(data["train_captions"]).long()
    model = Captioner(len(data["idx_to_word"]), feats.shape[-1], attention=attention)
    opt = torch.optim.Adam(model.parameters(), lr=4e-3)
    t0 = time.time()
    gen = torch.Generator().manual_seed(seed)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        idx = torch.randint(len(caps), (128,), generator=gen)
        c = caps[idx]
        L = int((c != 0).sum(1).max())
        loss = model.loss(feats[idx], c[:, :L])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    print(f"  trained {steps} steps in {time.time() - t0:.0f}s, last loss {loss.item():.3f}")
    return model


def score(model, data, key, split="test"):
    preds, attn = model.sample(torch.from_numpy(data[f"{split}_{key}"]), 30)
    texts = decode_captions(preds, data["idx_to_word"])
    refs = references(data, split)
    m = evaluate_captions(texts, refs)
    exact = np.mean([t == r[0] for t, r in zip(texts, refs)])
    any_order = np.mean([t in r for t, r in zip(texts, refs)])
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in m.items())
          + f"  exact {exact:.3f}  (any reference {any_order:.3f})")
    for t, r in list(zip(texts, refs))[:3]:
        print(f"    {t!r}\n      ref {r[0]!r}")
    return preds, attn


def probe_labels(data, split):
    """Per grid cell: colour, shape, layout position of the only object covering it (-1 if two
    objects cover it; 'none' = last class if none), and the cell index."""
    col, shp, pos = [], [], []
    for objs in data[f"{split}_objects"]:
        c = np.full(16, 6)
        s = np.full(16, 5)
        p = np.full(16, 9)
        count = np.zeros(16, int)
        for o in objs:
            m = o["cells"]
            count += m
            c[m], s[m], p[m] = ("red green blue yellow purple white".split().index(o["color"]),
                                "square circle triangle cross diamond".split().index(o["shape"]),
                                o["layout_cell"])
        for a in (c, s, p):
            a[count > 1] = -1
        col.append(c)
        shp.append(s)
        pos.append(p)
    cell = np.tile(np.arange(16), (len(col), 1))
    return {"colour": np.array(col), "shape": np.array(shp), "layout position": np.array(pos),
            "cell index": cell}


def linear_probe(xtr, ytr, xte, yte, epochs=30):
    torch.manual_seed(0)
    ok_tr, ok_te = ytr >= 0, yte >= 0
    xtr, ytr = torch.from_numpy(xtr[ok_tr]), torch.from_numpy(ytr[ok_tr]).long()
    xte, yte = torch.from_numpy(xte[ok_te]), torch.from_numpy(yte[ok_te]).long()
    lin = nn.Linear(xtr.shape[1], int(ytr.max()) + 1)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr))
        for a in range(0, len(xtr), 2048):
            i = perm[a:a + 2048]
            loss = F.cross_entropy(lin(xtr[i]), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (lin(xte).argmax(1) == yte).float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--numpy", default="rnn lstm attention")
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--skip-torch", action="store_true")
    args = ap.parse_args()
    # One thread: these models are tiny, and on a busy machine two OpenMP threads wait on each
    # other far more than they compute.
    torch.set_num_threads(1)
    data = load_captioning_data()
    if not args.skip_torch:
        torch_checks(data, args)
    for cell in args.numpy.split():
        numpy_check(data, cell, args.iters)


def numpy_check(data, cell, iters):
    from seqlab.captioning import CaptioningRNN
    from seqlab.solver import Solver
    key = "grid_features" if cell == "attention" else "features"
    print(f"4. numpy CaptioningRNN({cell!r}) on {key}, {iters} iterations of 100 captions")
    model = CaptioningRNN(data["word_to_idx"], data[f"train_{key}"].shape[-1], wordvec_dim=64,
                          hidden_dim=128, cell_type=cell, seed=0)
    solver = Solver(model, data[f"train_{key}"], data["train_captions"], data["train_image_idxs"],
                    batch_size=100, num_iterations=iters, learning_rate=5e-3, lr_decay=0.97,
                    grad_clip=5.0, progress=False)     # without clipping attention diverges at 5e-3
    solver.train()
    print(f"  {solver.train_time:.0f}s, final loss {np.mean(solver.loss_history[-20:]):.3f}")
    out = model.sample(data[f"test_{key}"], max_length=30, return_attention=(cell == "attention"))
    preds, attn = out if cell == "attention" else (out, None)
    texts = decode_captions(preds, data["idx_to_word"])
    refs = references(data, "test")
    m = evaluate_captions(texts, refs)
    exact = np.mean([t == r[0] for t, r in zip(texts, refs)])
    print("  " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()) + f"  exact {exact:.3f}")
    if attn is not None:
        loc = attention_on_objects(preds, attn, data["test_objects"], data["idx_to_word"])
        print("  attention on the named object: "
              + "  ".join(f"{k} {v:.3f}" for k, v in loc.items()))


def torch_checks(data, args):
    print("1. GRU captioner on pooled features")
    model = train_captioner(data, "features", args.steps)
    score(model, data, "features")
    print("2. linear probes on single grid vectors (test accuracy)")
    ltr, lte = probe_labels(data, "train"), probe_labels(data, "test")
    gtr = data["train_grid_features"].reshape(-1, data["train_grid_features"].shape[-1])
    gte = data["test_grid_features"].reshape(-1, data["test_grid_features"].shape[-1])
    for k in ltr:
        acc = linear_probe(gtr, ltr[k].ravel(), gte, lte[k].ravel())
        print(f"  {k}: {acc:.3f}")
    print("3. attention GRU captioner on grid features")
    model = train_captioner(data, "grid_features", args.steps, attention=True)
    preds, attn = score(model, data, "grid_features")
    loc = attention_on_objects(preds, attn, data["test_objects"], data["idx_to_word"])
    print("  attention on the named object: " + "  ".join(f"{k} {v:.3f}" for k, v in loc.items()))


if __name__ == "__main__":
    main()
