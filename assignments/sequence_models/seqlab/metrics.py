"""Caption metrics: BLEU-1..4, CIDEr-D and ROUGE-L (given code).

The scores are computed by the scorers of ``pycocoevalcap`` (the COCO caption evaluation
code), pure-Python parts only: instead of its Java PTB tokenizer, captions are lowercased,
punctuation is replaced by spaces and words are split on whitespace.

* BLEU-n: geometric mean of the clipped 1..n-gram precisions over the whole corpus, times a
  brevity penalty (reference length: the closest reference of each image). 0..1.
* CIDEr-D: TF-IDF weighted n-gram (1..4) cosine similarity with each reference, with a
  length penalty and clipped counts, averaged, times 10. The IDF weights are computed from the
  references of the images being evaluated, so the score depends on that set: compare CIDEr-D
  values only over the same images, and use at least a few dozen. 0..about 10.
* ROUGE-L: F-measure (beta 1.2) of the longest common subsequence with the best reference,
  averaged over images. 0..1.

``attention_on_objects`` measures where an attention captioner looks while it names objects.
"""
import contextlib
import io
import re

import numpy as np

_PUNCT = re.compile(r"[.,!?;:\"()\[\]{}`]")


def tokenize(text):
    """Lowercase, punctuation -> spaces, single spaces between words."""
    return " ".join(_PUNCT.sub(" ", str(text).lower()).split())


def evaluate_captions(predictions, references):
    """Corpus-level caption scores.

    Inputs:
    - predictions: list of N strings, one predicted caption per image.
    - references: list of N lists of strings (a single string is taken as a list of one);
      ``seqlab.data.references(data, split)`` gives them in this form.

    Returns a dict of floats ``{"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L"}``.
    Runs silently (pycocoevalcap prints nothing).
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    predictions = list(predictions)
    references = list(references)
    if len(predictions) != len(references):
        raise ValueError(f"evaluate_captions: {len(predictions)} predictions but "
                         f"{len(references)} reference lists")
    if not predictions:
        raise ValueError("evaluate_captions: no captions to evaluate")
    res, gts = {}, {}
    for i, (p, refs) in enumerate(zip(predictions, references)):
        if isinstance(refs, str):
            refs = [refs]
        refs = [tokenize(r) for r in refs]
        if not refs:
            raise ValueError(f"evaluate_captions: image {i} has no reference caption")
        res[i] = [tokenize(p)]
        gts[i] = refs
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        cider, _ = Cider().compute_score(gts, res)
        rouge, _ = Rouge().compute_score(gts, res)
    out = {f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)}
    out["CIDEr-D"] = float(cider)
    out["ROUGE-L"] = float(rouge)
    return out


def attention_on_objects(captions, attn_weights, objects, idx_to_word):
    """How much attention falls on the object a colour or shape word names (shapes data).

    Inputs:
    - captions: (N, T) sampled captions, e.g. from ``CaptioningRNN.sample(features, T,
      return_attention=True)``; column t is the word produced at step t.
    - attn_weights: (N, T, 16) attention weights of the step that produced each word.
    - objects: list of N object lists, ``data[f"{split}_objects"]`` for those images.
    - idx_to_word: the vocabulary.

    For every colour or shape word whose phrase names an object of its image (see
    ``seqlab.data.object_word_cells``), take the attention weight on the 4x4 cells that object
    covers. Returns a dict:
    - ``"mass"``: mean total weight on the object's cells (1 = all attention on it);
    - ``"uniform"``: the same for uniform attention (the fraction of the 16 cells it covers),
      the level to beat;
    - ``"hit_rate"``: fraction of those words whose most-attended cell is one of the object's;
    - ``"words"``: how many words were measured.
    """
    from .data import object_word_cells

    captions = np.asarray(captions)
    attn = np.asarray(attn_weights, dtype=np.float64).reshape(len(captions), captions.shape[1], -1)
    special = {i for i, w in enumerate(idx_to_word) if w in ("<NULL>", "<START>", "<UNK>")}
    end = idx_to_word.index("<END>")
    mass, uniform, hits = [], [], []
    for i, row in enumerate(captions.tolist()):
        cols, words = [], []
        for t, tok in enumerate(row):
            if tok == end:
                break
            if tok not in special:
                cols.append(t)
                words.append(idx_to_word[tok])
        for t, cells in zip(cols, object_word_cells(words, objects[i])):
            if cells is None or not cells.any():
                continue
            w = attn[i, t]
            mass.append(w[cells].sum())
            uniform.append(cells.mean())
            hits.append(bool(cells[int(np.argmax(w))]))
    if not mass:
        return {"mass": float("nan"), "uniform": float("nan"), "hit_rate": float("nan"),
                "words": 0}
    return {"mass": float(np.mean(mass)), "uniform": float(np.mean(uniform)),
            "hit_rate": float(np.mean(hits)), "words": len(mass)}
