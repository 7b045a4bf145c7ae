"""Train the shapes image encoder once and save its weights (datasets/shapes_encoder.npz).

    python datasets/train_encoder.py [--epochs 16] [--threads 1] [--out datasets/shapes_encoder.npz]

The encoder (datasets/encoder.py) is trained on the training split of the generated data
(settings in datasets/seqlab_datasets.json) with two groups of classifiers that are thrown
away afterwards:

* one linear classifier shared by all 16 grid vectors: colour (6 + none), shape (5 + none),
  size (2 + none) of the object that covers most of the grid cell (none below 12 pixels),
  the 3x3 layout position of that object (9 + none) and the cell's own index (16);
* one linear classifier on the pooled vector: for each of the 9 layout cells, the colour,
  shape and size of its object, or none; and for the 1st, 2nd and 3rd object in reading
  order (the order of the caption), its colour, shape, size and layout position, or none.
  The second group makes the pooled vector a summary from which a recurrent decoder can read
  the objects one after the other.

The loss is the sum of the cross-entropies. Validation accuracies are printed each epoch; the
shipped weights (the defaults) end at about 0.995 for the grid classifiers, 0.998 for the
layout-cell classifiers and 0.97-1.0 for the reading-order ones. About 15-20 minutes on one
CPU core. Deterministic given the seed (same machine, same torch, same thread count).
"""
import argparse
import json
import time
from pathlib import Path

import encoder as enc
import numpy as np
import shapes
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
N_COL, N_SHP, N_SIZ, N_POS = len(shapes.COLORS), len(shapes.SHAPES), len(shapes.SIZES), 9
GRID_HEADS = (N_COL + 1, N_SHP + 1, N_SIZ + 1, N_POS + 1, 16)
POOL_HEADS = (N_COL + 1, N_SHP + 1, N_SIZ + 1)
SLOT_HEADS = (N_COL + 1, N_SHP + 1, N_SIZ + 1, N_POS + 1)
MIN_PIXELS = 12.0


def grid_labels(attrs, coverage):
    """(N, 16, 5) int64: colour, shape, size, layout position of the object in each grid cell
    (the 'none' class is the last one of each), and the grid cell index."""
    n = len(attrs)
    best = coverage.argmax(axis=1)                                   # (N, 16)
    has = coverage.max(axis=1) >= MIN_PIXELS
    obj = attrs[np.arange(n)[:, None], best].astype(np.int64)        # (N, 16, 4)
    none = np.array([N_COL, N_SHP, N_SIZ, N_POS])
    lab = np.where(has[..., None], obj, none)
    cell = np.broadcast_to(np.arange(16), (n, 16))[..., None]
    return np.concatenate([lab, cell], axis=-1)


def layout_labels(attrs):
    """(N, 9, 3) int64: colour, shape, size of the object in each layout cell (or none)."""
    n = len(attrs)
    lab = np.tile(np.array([N_COL, N_SHP, N_SIZ]), (n, 9, 1))
    for k in range(attrs.shape[1]):
        ok = attrs[:, k, 0] >= 0
        lab[np.nonzero(ok)[0], attrs[ok, k, 3]] = attrs[ok, k, :3]
    return lab


def slot_labels(attrs):
    """(N, 3, 4) int64: colour, shape, size, layout cell of the k-th object in reading order
    (attrs are stored in that order), the 'none' class where there is no k-th object."""
    none = np.array([N_COL, N_SHP, N_SIZ, N_POS])
    return np.where(attrs[..., :1] >= 0, attrs, none).astype(np.int64)


def split_logits(logits, sizes):
    return torch.split(logits, list(sizes), dim=-1)


def losses_and_acc(model, heads, images, glab, llab, slab):
    pooled, grid = model(images)
    gout = split_logits(heads["grid"](grid), GRID_HEADS)                   # each (B, 16, k)
    pout = split_logits(heads["pool"](pooled).view(len(images), 9, -1), POOL_HEADS)
    sout = split_logits(heads["slot"](pooled).view(len(images), 3, -1), SLOT_HEADS)
    loss, acc = 0.0, []
    for j, o in enumerate(gout):
        loss = loss + F.cross_entropy(o.reshape(-1, o.shape[-1]), glab[..., j].reshape(-1))
        acc.append((o.argmax(-1) == glab[..., j]).float().mean().item())
    for j, o in enumerate(pout):
        loss = loss + F.cross_entropy(o.reshape(-1, o.shape[-1]), llab[..., j].reshape(-1))
        acc.append((o.argmax(-1) == llab[..., j]).float().mean().item())
    for j, o in enumerate(sout):
        loss = loss + F.cross_entropy(o.reshape(-1, o.shape[-1]), slab[..., j].reshape(-1))
        acc.append((o.argmax(-1) == slab[..., j]).float().mean().item())
    return loss, acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (the shipped weights used 1: faster on a busy machine)")
    ap.add_argument("--out", default=str(enc.WEIGHTS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = json.loads((HERE / "seqlab_datasets.json").read_text())["captioning"]

    t0 = time.time()
    data = {s: shapes.generate(cfg[s], s, cfg["seed"]) for s in ("train", "val")}
    print(f"generated data in {time.time() - t0:.1f}s")
    tensors = {}
    for s, d in data.items():
        tensors[s] = (torch.from_numpy(d["images"]),
                      torch.from_numpy(grid_labels(d["attrs"], d["coverage"])),
                      torch.from_numpy(layout_labels(d["attrs"])),
                      torch.from_numpy(slot_labels(d["attrs"])))

    model = enc.ShapesEncoder()
    heads = nn.ModuleDict({"grid": nn.Linear(enc.FEATURE_DIM, sum(GRID_HEADS)),
                           "pool": nn.Linear(enc.FEATURE_DIM, 9 * sum(POOL_HEADS)),
                           "slot": nn.Linear(enc.FEATURE_DIM, 3 * sum(SLOT_HEADS))})
    params = list(model.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    n = len(tensors["train"][0])
    steps = args.epochs * ((n + args.batch_size - 1) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps,
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(args.seed)
    names = ["g.col", "g.shp", "g.siz", "g.pos", "g.cell", "p.col", "p.shp", "p.siz",
             "s.col", "s.shp", "s.siz", "s.pos"]
    for epoch in range(args.epochs):
        model.train()
        heads.train()
        perm = torch.randperm(n, generator=gen)
        t1, total = time.time(), 0.0
        for a in range(0, n, args.batch_size):
            idx = perm[a:a + args.batch_size]
            loss, _ = losses_and_acc(model, heads, *(t[idx] for t in tensors["train"]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        model.eval()
        heads.eval()
        with torch.no_grad():
            _, acc = losses_and_acc(model, heads, *tensors["val"])
        print(f"epoch {epoch + 1:2d}  loss {total / n:.4f}  {time.time() - t1:.0f}s  val acc "
              + " ".join(f"{k} {v:.3f}" for k, v in zip(names, acc)), flush=True)
    enc.save_weights(model, args.out)
    size = Path(args.out).stat().st_size
    print(f"saved {args.out} ({size / 1024:.0f} KB) after {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
