"""What each model learns: BLEU of the four captioners, attention localisation, dates accuracy.

Trains every model with the settings of its notebook, on the shipped data, and scores it on the
held-out test split:
- CaptioningRNN "rnn", "lstm", "attention" (numpy reference; ``seqlab.analysis.TRAIN_SETTINGS``,
  the settings notebooks 02-04 use for their comparison table);
- CaptioningTransformer (notebook 04's recipe);
- BLEU-1..4, CIDEr-D, ROUGE-L from pycocoevalcap's scorers (``seqlab.metrics.evaluate_captions``);
- the attention LSTM's localisation: share of attention mass on the grid cells of the object a
  colour/shape word names, against chance (cells covered / 16);
- the dates Transformer (``seqlab.dates.RECIPE``): exact match and chrF on held-out dates.

    python benchmarks/quality.py [--json OUT] [--only rnn,lstm,attention,transformer,dates]

Prints a table; never asserts anything. Takes about 3-4 minutes on 2 idle cores.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "solutions" / "sequence_models"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seqlab import dates as D  # noqa: E402
from seqlab.analysis import compare_captioners, localisation, sample_captions  # noqa: E402
from seqlab.data import decode_captions, load_captioning_data, references  # noqa: E402
from seqlab.metrics import evaluate_captions  # noqa: E402
from seqlab.torch_utils import (CAPTION_RECIPE, CaptionBatches, captioning_loss, train,  # noqa: E402
                                train_seq2seq)
from seqlab.transformer import CaptioningTransformer, Transformer  # noqa: E402

def transformer_captioner(data):
    null_idx = data["word_to_idx"]["<NULL>"]
    batches = CaptionBatches(data["train_grid_features"], data["train_captions"],
                             data["train_image_idxs"], CAPTION_RECIPE["batch_size"], null_idx)
    torch.manual_seed(0)
    model = CaptioningTransformer(data["word_to_idx"], input_dim=data["train_grid_features"].shape[-1],
                                  max_length=data["train_captions"].shape[1],
                                  **CAPTION_RECIPE["model"])
    start = time.perf_counter()
    train(model, batches, lambda m, b: captioning_loss(m, b, null_idx=null_idx),
          progress=False, **CAPTION_RECIPE["train"])
    seconds = time.perf_counter() - start
    grid = data["test_grid_features"]
    model.eval()
    with torch.no_grad():
        caps = torch.cat([model.sample(grid[i:i + 500], max_length=data["test_captions"].shape[1] - 1)
                          for i in range(0, len(grid), 500)]).numpy()
    row = evaluate_captions(decode_captions(caps, data["idx_to_word"]), references(data, "test"))
    row["train time (s)"] = seconds
    return row


def dates_transformer():
    data = D.load_dates_data(seed=0)
    src_vocab, tgt_vocab = data["src_vocab"], data["tgt_vocab"]
    recipe = D.RECIPE
    torch.manual_seed(0)
    model = Transformer(len(src_vocab), len(tgt_vocab), pad_idx=src_vocab.pad_idx, **recipe["model"])
    batches = D.DateBatches(data["train"], src_vocab, tgt_vocab, batch_size=recipe["batch_size"],
                            seed=0)
    start = time.perf_counter()
    train_seq2seq(model, batches, pad_idx=tgt_vocab.pad_idx, progress=False, **recipe["train"])
    seconds = time.perf_counter() - start
    result = D.evaluate(model, data["test"], src_vocab, tgt_vocab)
    return {"exact match": result["exact_match"], "chrF": result["chrF"],
            "train time (s)": seconds, "test dates": len(data["test"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--only", default="rnn,lstm,attention,transformer,dates")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    torch.set_num_threads(2)
    out = {"machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                       "numpy": np.__version__}, "captioning": {}}
    total = time.perf_counter()
    data = None
    if only & {"rnn", "lstm", "attention", "transformer"}:
        data = load_captioning_data()
    cell_types = [c for c in ("rnn", "lstm", "attention") if c in only]
    if cell_types:
        rows, models = compare_captioners(data, cell_types=tuple(cell_types), progress=False)
        out["captioning"].update(rows)
        if "attention" in models:
            loc = localisation(models["attention"], data, "test")
            out["localisation"] = {k: loc[k] for k in ("mass", "uniform", "ratio", "hit_rate", "words")}
    if "transformer" in only:
        out["captioning"]["transformer"] = transformer_captioner(data)
    if "dates" in only:
        out["dates"] = dates_transformer()
    out["wall time (s)"] = time.perf_counter() - total

    cols = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L", "train time (s)"]
    print(f"{'captioner (test split)':<24}" + "".join(f"{c:>15}" for c in cols))
    for name, row in out["captioning"].items():
        print(f"{name:<24}" + "".join(f"{row.get(c, float('nan')):>15.3f}" for c in cols))
    if "localisation" in out:
        loc = out["localisation"]
        print(f"\nattention localisation: {loc['mass']:.3f} of the mass on the named object "
              f"(chance {loc['uniform']:.3f}, {loc['ratio']:.1f}x; most-attended cell on the "
              f"object {loc['hit_rate']:.1%}; {loc['words']} words)")
    if "dates" in out:
        d = out["dates"]
        print(f"dates Transformer: exact match {d['exact match']:.1%}, chrF {d['chrF']:.1f} on "
              f"{d['test dates']} held-out dates, trained in {d['train time (s)']:.0f} s")
    print(f"total wall time {out['wall time (s)']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
