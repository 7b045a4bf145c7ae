"""The vanilla RNN captioner against the LSTM captioner, compared fairly (notebook 02).

Each model starts from the initialisation recommended for its cell
(``seqlab.analysis.recommended_init``: identity ``Wh`` for the RNN, forget-gate bias
``FORGET_BIAS`` for the LSTM; ``--init default`` for the constructor's weights), trains with the
same settings (``seqlab.analysis.TRAIN_SETTINGS`` except the number of iterations) for several
seeds, and is scored on the test split at several budgets, so that one sees where both have
converged. Per model, budget and metric the table gives mean +- standard deviation over the seeds
(``np.std`` with ``ddof=1``):

- exact match: share of test images whose greedy caption is one of its references;
- BLEU-4 (``seqlab.metrics.evaluate_captions``);
- 2 objects: exact match on the test images with two objects;
- val exact: exact match on the validation split (choose the budget on it, not on test).

The run for seed s with B iterations is exactly ``train_captioner(data, cell, seed=s,
num_iterations=B, init=...)``: the training runs in chunks of whole learning-rate periods, and the
solver keeps its minibatch generator and Adam state between chunks.

    python benchmarks/rnn_vs_lstm.py [--seeds 0,1,2] [--checkpoints 600,1200,1800,2400,3000]
                                     [--cells rnn,lstm] [--init recommended] [--json OUT]

``--settings batch_size=100,lr_decay=0.85`` trains with notebook 01's recipe instead.

Prints the table; never asserts anything. Run it with ``nice -n 10``. Time, on 2 cores shared
with other jobs: in a short run an RNN update took 33 ms and an LSTM update 95 ms (about 7
minutes of training for one seed of both cells to 3000 updates); at load averages of 15 to 30 one
seed took 20 to 25 minutes.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
# the reference seqlab, found by its folder: it is never installed (see pyproject.toml)
sys.path.insert(0, str(ROOT / "solutions" / "sequence_models"))

import numpy as np  # noqa: E402

from seqlab.analysis import TRAIN_SETTINGS, sample_captions, train_captioner  # noqa: E402
from seqlab.data import decode_captions, load_captioning_data, references  # noqa: E402
from seqlab.metrics import evaluate_captions  # noqa: E402

METRICS = ("exact match", "BLEU-4", "2 objects", "val exact")


def exact_matches(model, data, split):
    """Boolean array: is the greedy caption of image i one of its references?"""
    captions, _ = sample_captions(model, data, split)
    text = decode_captions(captions, data["idx_to_word"])
    refs = references(data, split)
    return text, refs, np.array([t in r for t, r in zip(text, refs)])


def score(model, data):
    """The metrics of ``METRICS`` for one trained model."""
    text, refs, exact = exact_matches(model, data, "test")
    two = np.array([len(objs) == 2 for objs in data["test_objects"]])
    _, _, val_exact = exact_matches(model, data, "val")
    return {"exact match": float(exact.mean()),
            "BLEU-4": evaluate_captions(text, refs)["BLEU-4"],
            "2 objects": float(exact[two].mean()),
            "val exact": float(val_exact.mean())}


def run(data, cell, init, seed, checkpoints, settings):
    """Train one model and score it at each checkpoint. Returns {budget: scores}.

    settings: entries of ``TRAIN_SETTINGS`` to override (``train_captioner``'s settings)."""
    period = settings.get("lr_decay_every", TRAIN_SETTINGS["lr_decay_every"])
    if any(c % period for c in np.diff([0, *checkpoints])):
        raise ValueError(f"checkpoints must be {period} iterations apart (whole learning-rate "
                         f"periods), got {checkpoints}")
    out, done, seconds = {}, 0, 0.0
    model = solver = None
    for budget in checkpoints:
        chunk = budget - done
        if model is None:
            model, solver = train_captioner(data, cell, num_iterations=chunk, seed=seed,
                                            progress=False, init=init, **settings)
        else:
            solver.num_iterations = chunk
            solver.train()
        seconds += solver.train_time
        done = budget
        out[budget] = {**score(model, data), "train time (s)": seconds,
                       "final loss": float(np.mean(solver.loss_history[-20:]))}
        print(f"  {cell:4s} {init:11s} seed {seed} {budget:5d} it: "
              + "  ".join(f"{k} {v:.3f}" for k, v in out[budget].items()), flush=True)
    return out


def table(results, checkpoints):
    """Text table: one line per (model, budget), mean +- std over the seeds per metric."""
    lines = [f"{'model':22s}{'iterations':>11s}" + "".join(f"{m:>17s}" for m in METRICS)]
    for name, per_seed in results.items():
        for budget in checkpoints:
            cells = []
            for m in METRICS:
                v = np.array([per_seed[s][budget][m] for s in per_seed])
                pct = m != "BLEU-4"
                std = v.std(ddof=1) if len(v) > 1 else 0.0
                text = (f"{100 * v.mean():.1f} +- {100 * std:.1f} %" if pct
                        else f"{v.mean():.3f} +- {std:.3f}")
                cells.append(text.rjust(17))
            lines.append(f"{name:22s}{budget:11d}" + "".join(cells))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--checkpoints", default="600,1200,1800,2400,3000")
    parser.add_argument("--cells", default="rnn,lstm")
    parser.add_argument("--init", default="recommended", help="recommended, default or both")
    parser.add_argument("--settings", default="",
                        help="override entries of TRAIN_SETTINGS, e.g. "
                             "batch_size=100,lr_decay=0.85 (notebook 01's recipe)")
    parser.add_argument("--json", help="also write every number to this file")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    checkpoints = sorted(int(c) for c in args.checkpoints.split(","))
    inits = ["recommended", "default"] if args.init == "both" else [args.init]
    settings = {}
    for item in filter(None, args.settings.split(",")):
        key, value = item.split("=")
        settings[key] = type(TRAIN_SETTINGS[key])(value)

    data = load_captioning_data()
    print(f"settings: {({**TRAIN_SETTINGS, **settings})} (num_iterations replaced by the "
          "checkpoints)")
    start = time.perf_counter()
    results = {}
    for init in inits:
        for cell in args.cells.split(","):
            name = f"{cell} ({init} init)"
            results[name] = {s: run(data, cell, init, s, checkpoints, settings) for s in seeds}
    print()
    print(f"mean +- std over seeds {seeds} (test split unless said otherwise; "
          f"{time.perf_counter() - start:.0f} s in all)")
    print(table(results, checkpoints))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"settings": {**TRAIN_SETTINGS, **settings}, "seeds": seeds, "checkpoints": checkpoints,
             "results": {n: {str(s): {str(b): r for b, r in per.items()} for s, per in ps.items()}
                         for n, ps in results.items()}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
