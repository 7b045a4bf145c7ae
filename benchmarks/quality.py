"""What each model learns: BLEU of the four captioners, attention localisation, dates accuracy.

Trains every model with the settings of its notebook, on the shipped data, and scores it on the
held-out test split:
- CaptioningRNN "rnn", "lstm", "attention" (numpy reference; ``seqlab.analysis.TRAIN_SETTINGS``,
  the settings notebooks 02-04 use for their comparison table);
- CaptioningTransformer (notebook 04's recipe);
- BLEU-1..4, CIDEr-D, ROUGE-L from pycocoevalcap's scorers (``seqlab.metrics.evaluate_captions``);
- the attention LSTM's localisation: share of attention mass on the grid cells of the object a
  colour/shape word names, against chance (cells covered / 16);
- the dates Transformer (``seqlab.dates.RECIPE``): exact match and chrF on held-out dates;
- ``heldout`` (not in the default run): the attention LSTM and the Transformer captioner trained
  once per seed (``--seeds``), scored on the test split and on the harder held-out split of
  ``datasets/heldout.py`` (three objects in a row or column, no two of them ever together in a
  training image): exact match and BLEU-4 per run, mean and standard deviation over the seeds,
  and whether the gap between the two models is more than twice the larger deviation.

    python benchmarks/quality.py [--json OUT] [--only rnn,lstm,attention,transformer,dates]
    python benchmarks/quality.py --only heldout [--seeds 0,1,2] [--json OUT]

Prints a table; never asserts anything. The default run takes about 3-4 minutes on 2 idle
cores; ``--only heldout`` trains two models per seed (about 1 minute per seed on idle cores).
"""
import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
# the reference seqlab, found by its folder: it is never installed (see pyproject.toml)
sys.path.insert(0, str(ROOT / "solutions" / "sequence_models"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seqlab import dates as D  # noqa: E402
from seqlab.analysis import compare_captioners, localisation, sample_captions, train_captioner  # noqa: E402
from seqlab.data import decode_captions, load_captioning_data, references  # noqa: E402
from seqlab.metrics import evaluate_captions  # noqa: E402
from seqlab.torch_utils import CAPTION_RECIPE, CaptionBatches, captioning_loss, train, train_seq2seq  # noqa: E402
from seqlab.transformer import CaptioningTransformer, Transformer  # noqa: E402


def _heldout_module():
    """datasets/heldout.py, imported by path (datasets/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_seqlab_datasets_heldout",
                                                  ROOT / "datasets" / "heldout.py")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    if not hasattr(module, "load"):
        spec.loader.exec_module(module)
    return module


heldout = _heldout_module()

def train_transformer(data, seed=0):
    """Notebook 04's captioning Transformer trained on the training split (``CAPTION_RECIPE``);
    ``seed`` seeds the weights and the minibatch order. Returns (model in eval mode, seconds)."""
    null_idx = data["word_to_idx"]["<NULL>"]
    batches = CaptionBatches(data["train_grid_features"], data["train_captions"],
                             data["train_image_idxs"], CAPTION_RECIPE["batch_size"], null_idx,
                             seed=seed)
    torch.manual_seed(seed)
    model = CaptioningTransformer(data["word_to_idx"],
                                  input_dim=data["train_grid_features"].shape[-1],
                                  max_length=data["train_captions"].shape[1],
                                  **CAPTION_RECIPE["model"])
    start = time.perf_counter()
    train(model, batches, lambda m, b: captioning_loss(m, b, null_idx=null_idx),
          progress=False, **CAPTION_RECIPE["train"])
    seconds = time.perf_counter() - start
    return model.eval(), seconds


def transformer_captions(model, data, split):
    """Greedy captions (Ni, L - 1) of every image of a split."""
    grid = torch.from_numpy(data[f"{split}_grid_features"])
    with torch.no_grad():
        max_length = data[f"{split}_captions"].shape[1] - 1
        return torch.cat([model.sample(grid[i:i + 500], max_length=max_length)
                          for i in range(0, len(grid), 500)]).numpy()


def transformer_captioner(data):
    model, seconds = train_transformer(data)
    caps = transformer_captions(model, data, "test")
    row = evaluate_captions(decode_captions(caps, data["idx_to_word"]), references(data, "test"))
    row["train time (s)"] = seconds
    return row


def exact_match(predictions, refs):
    """Share of the captions that name exactly the objects of their image (in any order): the
    prediction, cut at "and", is the same set of phrases as the image's first reference."""
    return float(np.mean([sorted(p.split(" and ")) == sorted(r[0].split(" and "))
                          for p, r in zip(predictions, refs)]))


def score_split(captions, data, split):
    """Exact match and BLEU-4 of greedy captions (Ni, T) of a split."""
    predictions = decode_captions(captions, data["idx_to_word"])
    refs = references(data, split)
    return {"exact match": exact_match(predictions, refs),
            "BLEU-4": evaluate_captions(predictions, refs)["BLEU-4"]}


def heldout_comparison(data, seeds):
    """The attention LSTM and the Transformer captioner, each trained once per seed, scored on
    the test split and on the held-out split of ``datasets/heldout.py``.

    Returns {"runs": [per model, seed and split: exact match, BLEU-4, train time], "summary":
    per model and split the mean and sample standard deviation over the seeds, "gaps": per split
    and metric the Transformer's mean minus the attention LSTM's, the larger of the two standard
    deviations and whether the gap is more than twice it}.
    """
    data.update(heldout.load())
    runs = []
    for seed in seeds:
        model, solver = train_captioner(data, "attention", seed=seed, progress=False)
        for split in ("test", "heldout"):
            caps, _ = sample_captions(model, data, split)
            runs.append({"model": "attention", "seed": seed, "split": split,
                         "train time (s)": solver.train_time, **score_split(caps, data, split)})
        model, seconds = train_transformer(data, seed)
        for split in ("test", "heldout"):
            caps = transformer_captions(model, data, split)
            runs.append({"model": "transformer", "seed": seed, "split": split,
                         "train time (s)": seconds, **score_split(caps, data, split)})
    summary, gaps = {}, {}
    for split in ("test", "heldout"):
        for metric in ("exact match", "BLEU-4"):
            stats = {}
            for name in ("attention", "transformer"):
                v = [r[metric] for r in runs if r["model"] == name and r["split"] == split]
                stats[name] = (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
                summary.setdefault(f"{name} {split}", {})[metric] = stats[name]
            gap = stats["transformer"][0] - stats["attention"][0]
            larger_std = max(stats["attention"][1], stats["transformer"][1])
            gaps[f"{split} {metric}"] = {"gap": gap, "larger std": larger_std,
                                         "separated": bool(abs(gap) > 2 * larger_std)}
    return {"seeds": list(seeds), "runs": runs, "summary": summary, "gaps": gaps}


def dates_transformer():
    data = D.load_dates_data(seed=0)
    src_vocab, tgt_vocab = data["src_vocab"], data["tgt_vocab"]
    recipe = D.RECIPE
    torch.manual_seed(0)
    model = Transformer(len(src_vocab), len(tgt_vocab), pad_idx=src_vocab.pad_idx,
                        **recipe["model"])
    batches = D.DateBatches(data["train"], src_vocab, tgt_vocab, batch_size=recipe["batch_size"],
                            seed=0)
    start = time.perf_counter()
    train_seq2seq(model, batches, pad_idx=tgt_vocab.pad_idx, progress=False, **recipe["train"])
    seconds = time.perf_counter() - start
    result = D.evaluate(model, data["test"], src_vocab, tgt_vocab)
    return {"exact match": result["exact_match"], "chrF": result["chrF"],
            "train time (s)": seconds, "test dates": len(data["test"])}


def print_captioning(out):
    """The test-split table of the four captioners and the attention localisation."""
    cols = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L", "train time (s)"]
    print(f"{'captioner (test split)':<24}" + "".join(f"{c:>15}" for c in cols))
    for name, row in out["captioning"].items():
        print(f"{name:<24}" + "".join(f"{row.get(c, float('nan')):>15.3f}" for c in cols))
    if "localisation" in out:
        loc = out["localisation"]
        print(f"\nattention localisation: {loc['mass']:.3f} of the mass on the named object "
              f"(chance {loc['uniform']:.3f}, {loc['ratio']:.1f}x; most-attended cell on the "
              f"object {loc['hit_rate']:.1%}; {loc['words']} words)")


def print_heldout(result):
    """Per seed and split the two captioners' exact match and BLEU-4, then mean +- std and the
    gaps."""
    print(f"\nheld-out comparison, seeds {result['seeds']} (exact match / BLEU-4):")
    print(f"{'model':<13}{'seed':>5}{'test':>17}{'held-out':>17}{'train (s)':>11}")
    for name in ("attention", "transformer"):
        for seed in result["seeds"]:
            r = {x["split"]: x for x in result["runs"] if x["model"] == name and x["seed"] == seed}
            print(f"{name:<13}{seed:>5}" + "".join(
                f"{r[s]['exact match']:>9.3f} {r[s]['BLEU-4']:>7.4f}" for s in ("test", "heldout"))
                + f"{r['test']['train time (s)']:>11.1f}")
    for name in ("attention", "transformer"):
        line = f"{name + ' mean':<18}"
        for split in ("test", "heldout"):
            m = result["summary"][f"{name} {split}"]
            line += (f"  {m['exact match'][0]:.3f}+-{m['exact match'][1]:.3f}"
                     f" {m['BLEU-4'][0]:.4f}+-{m['BLEU-4'][1]:.4f}")
        print(line)
    for key, g in result["gaps"].items():
        print(f"{key}: gap (transformer - attention) {g['gap']:+.4f}, larger std "
              f"{g['larger std']:.4f}: {'separated' if g['separated'] else 'not separated'} "
              f"(separated: |gap| > 2 x the larger std)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--only", default="rnn,lstm,attention,transformer,dates",
                        help="comma-separated: rnn, lstm, attention, transformer, dates, heldout")
    parser.add_argument("--seeds", default="0,1,2",
                        help="training seeds of the held-out comparison (default 0,1,2)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    torch.set_num_threads(2)
    out = {"machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                       "numpy": np.__version__}, "captioning": {}}
    total = time.perf_counter()
    data = None
    if only & {"rnn", "lstm", "attention", "transformer", "heldout"}:
        data = load_captioning_data()
    cell_types = [c for c in ("rnn", "lstm", "attention") if c in only]
    if cell_types:
        rows, models = compare_captioners(data, cell_types=tuple(cell_types), progress=False)
        out["captioning"].update(rows)
        if "attention" in models:
            loc = localisation(models["attention"], data, "test")
            out["localisation"] = {k: loc[k]
                                   for k in ("mass", "uniform", "ratio", "hit_rate", "words")}
    if "transformer" in only:
        out["captioning"]["transformer"] = transformer_captioner(data)
    if "dates" in only:
        out["dates"] = dates_transformer()
    if "heldout" in only:
        out["heldout"] = heldout_comparison(data, [int(x) for x in args.seeds.split(",")])
    out["wall time (s)"] = time.perf_counter() - total

    if out["captioning"]:
        print_captioning(out)
    if "dates" in out:
        d = out["dates"]
        print(f"dates Transformer: exact match {d['exact match']:.1%}, chrF {d['chrF']:.1f} on "
              f"{d['test dates']} held-out dates, trained in {d['train time (s)']:.0f} s")
    if "heldout" in out:
        print_heldout(out["heldout"])
    print(f"total wall time {out['wall time (s)']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
