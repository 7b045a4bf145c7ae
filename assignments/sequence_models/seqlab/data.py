"""Captioning data: generated scenes of coloured shapes, or the CS231n COCO files (given code).

The shapes data (``datasets/shapes.py``): 64x64 images with 1 to 3 objects (6 colours x 5
shapes x 2 sizes) on a 3x3 layout, and captions that name every object with its position,
for example ``a small yellow cross in the top right and a large purple diamond on the right``.

    data = load_captioning_data()

returns a dict with, for split in ``train``, ``val``, ``test``:

=========================  ==================  ===========================================
key                        shape, dtype        meaning
=========================  ==================  ===========================================
``{split}_captions``       (M, 28) int32       ``<START> w1 ... wk <END> <NULL> ...``; one
                                               caption per image, objects in reading order
``{split}_image_idxs``     (M,) int32          image (row of the arrays below) of each caption
``{split}_features``       (Ni, 128) float32   pooled image feature (RNN / LSTM captioners)
``{split}_grid_features``  (Ni, 16, 128) f32   4x4 grid of features, row-major (attention)
``{split}_images``         (Ni, 64, 64, 3) u8  the images, for display
``{split}_references``     (Ni, 3, 28) int32   reference captions per image (other object
                                               orders); use ``references(data, split)``
``{split}_objects``        list of Ni lists    per image, per object (caption order) a dict
                                               ``color, shape, size, position, layout_cell,
                                               cells`` (bool (16,), the 4x4 grid cells the
                                               object's pixels cover)
``word_to_idx``            dict                ``<NULL>`` 0, ``<START>`` 1, ``<END>`` 2,
``idx_to_word``            list                ``<UNK>`` 3, then 24 words (28 in all)
=========================  ==================  ===========================================

Sizes: 10,000 / 1,000 / 1,000 images. The first call builds the data (about half a minute)
under ``datasets/cache/``; later calls read it in a second or two. Where the data lives:

* ``data_dir`` argument, else the environment variable ``SEQLAB_DATA_DIR``: a folder that
  holds the data files (built by us, or the CS231n COCO files). If it does not exist or is
  empty, the shapes data is built there. (If ``SEQLAB_DATA_DIR`` is instead a ``datasets/``
  folder, that folder's ``cache/`` is used.)
* otherwise ``datasets/cache/shapes-<key>/``, where ``datasets/`` is found by searching upward
  from this package for a folder ``datasets/`` holding ``seqlab_datasets.json``. The key
  changes whenever the generator, the encoder or its weights change.
* when that default folder (or the ``SEQLAB_DATA_DIR`` one) has no data yet and you cannot
  write there (a shared folder on a hub), your own copy in ``seqlab/shapes-<key>/`` of your
  cache folder (``$XDG_CACHE_HOME``, by default ``.cache`` in your home), built on first use.

The features come from a small CNN trained once on the training images (its code and the
docstring that explains how the grid vectors carry their position: ``datasets/encoder.py``).

COCO: pointed at a folder with the CS231n files (``coco2014_captions.h5``,
``coco2014_vocab.json``, ``train2014_vgg16_fc7_pca.h5``, ...), the same call returns
``train_*`` and ``val_*`` captions, image indices and pooled features (512-d PCA of VGG-16
fc7), ``{split}_urls`` and the vocabulary. COCO has no grid features, images, objects,
references or test split: those keys are absent, and ``references`` groups the (several)
captions of each image instead.
"""
import hashlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

GRADING = os.environ.get("SEQLAB_GRADING", "") == "1"
"""True when the notebooks run under the autograder (environment ``SEQLAB_GRADING=1``):
training cells then train a short version."""

MARKER = "seqlab_datasets.json"
SPLITS = ("train", "val", "test")
SPECIAL_TOKENS = ("<NULL>", "<START>", "<END>")
COLORS = ("red", "green", "blue", "yellow", "purple", "white")
SHAPES = ("square", "circle", "triangle", "cross", "diamond")
SIZES = ("small", "large")
POSITIONS = ("top left", "top", "top right", "left", "center", "right",
             "bottom left", "bottom", "bottom right")
_POSITION_WORDS = ("top", "bottom", "left", "right", "center")


# --------------------------------------------------------------------------- locations

def find_datasets_dir(start=None):
    """The ``datasets/`` folder: ``SEQLAB_DATA_DIR`` if it is one, else the first
    ``<ancestor>/datasets/seqlab_datasets.json`` above ``start`` (default: this package)."""
    env = os.environ.get("SEQLAB_DATA_DIR")
    if env and (Path(env) / MARKER).is_file():
        return Path(env).resolve()
    start = Path(start if start is not None else __file__).resolve()
    for p in (start, *start.parents):
        if (p / "datasets" / MARKER).is_file():
            return p / "datasets"
    raise FileNotFoundError(
        f"no folder datasets/ holding {MARKER} above {start}. Run from the course folder "
        "(the one that holds assignments/ and datasets/), or set SEQLAB_DATA_DIR.")


def _datasets_module(name, datasets_dir):
    key = f"_seqlab_datasets_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(datasets_dir) / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def _cache_key(datasets_dir):
    config = json.loads((datasets_dir / MARKER).read_text())["captioning"]
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in ("shapes.py", "encoder.py", "build_captioning.py", "shapes_encoder.npz"):
        h.update((datasets_dir / name).read_bytes())
    return h.hexdigest()[:10]


def captioning_data_dir(data_dir=None):
    """Folder the captioning data is read from (and built into): see the module docstring."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("SEQLAB_DATA_DIR")
    if env and not (Path(env) / MARKER).is_file():
        return Path(env)
    datasets_dir = find_datasets_dir()
    return datasets_dir / "cache" / f"shapes-{_cache_key(datasets_dir)}"


def _has_data(d):
    return (d / "manifest.json").is_file() or any(d.glob("*captions.h5"))


def _can_build_in(d):
    """True when this user may create the data in folder ``d``: it, or the first of its
    parents that exists, is writable."""
    d = Path(d)
    while not d.exists() and d.parent != d:
        d = d.parent
    return os.access(d, os.W_OK | os.X_OK)


def private_data_dir():
    """This user's own copy of the shapes data: ``seqlab/shapes-<key>/`` in the user's cache
    folder (``$XDG_CACHE_HOME``, by default ``.cache`` in the home folder), for when the shared
    folder holds no data and is read-only."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "seqlab" / f"shapes-{_cache_key(find_datasets_dir())}"


def build_captioning_data(out_dir, verbose=True):
    """Generate the shapes data into out_dir (what the first ``load_captioning_data`` does)."""
    datasets_dir = find_datasets_dir()
    builder = _datasets_module("build_captioning", datasets_dir)
    t = time.time()
    if verbose:
        print(f"Building the shapes captioning data in {out_dir} (once; about half a minute)",
              flush=True)
    builder.build(out_dir, verbose=verbose)
    if verbose:
        print(f"Done in {time.time() - t:.0f}s.", flush=True)
    return Path(out_dir)


# --------------------------------------------------------------------------- loading

def _read_h5(path):
    import h5py
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f.keys()}


def read_coco_layout(d):
    """Read a folder in the CS231n COCO-captioning layout (ours or the real COCO files)."""
    d = Path(d)
    caption_files = sorted(d.glob("*captions.h5"))
    vocab_files = sorted(d.glob("*vocab.json"))
    if len(caption_files) != 1 or len(vocab_files) != 1:
        raise FileNotFoundError(f"{d}: expected one *captions.h5 and one *vocab.json, found "
                                f"{[p.name for p in caption_files + vocab_files]}")
    data = _read_h5(caption_files[0])
    vocab = json.loads(vocab_files[0].read_text())
    data["idx_to_word"] = list(vocab["idx_to_word"])
    data["word_to_idx"] = {w: int(i) for w, i in vocab["word_to_idx"].items()}
    for split in SPLITS:
        if f"{split}_captions" in data:
            data[f"{split}_captions"] = data[f"{split}_captions"].astype(np.int32, copy=False)
        for name in (f"{split}_features.h5", f"{split}2014_vgg16_fc7_pca.h5",
                     f"{split}2014_vgg16_fc7.h5"):
            if (d / name).is_file():
                feats = _read_h5(d / name)
                data[f"{split}_features"] = feats["features"].astype(np.float32, copy=False)
                if "grid_features" in feats:
                    data[f"{split}_grid_features"] = feats["grid_features"].astype(
                        np.float32, copy=False)
                break
        if (d / f"{split}_images.h5").is_file():
            data[f"{split}_images"] = _read_h5(d / f"{split}_images.h5")["images"]
        if (d / f"{split}2014_urls.txt").is_file():
            lines = (d / f"{split}2014_urls.txt").read_text().split("\n")
            data[f"{split}_urls"] = np.asarray([u.strip() for u in lines if u.strip()])
        if f"{split}_object_attrs" in data:
            data[f"{split}_objects"] = _objects(data.pop(f"{split}_object_attrs"),
                                                data.pop(f"{split}_object_cells"))
    return data


def _objects(attrs, cells):
    out = []
    for a_img, c_img in zip(attrs.tolist(), cells):
        objs = []
        for (color, shape, size, cell), c in zip(a_img, c_img):
            if color < 0:
                continue
            objs.append({"color": COLORS[color], "shape": SHAPES[shape], "size": SIZES[size],
                         "position": POSITIONS[cell], "layout_cell": cell, "cells": c})
        out.append(objs)
    return out


def load_captioning_data(max_train=None, data_dir=None):
    """Load the captioning data (building the shapes data on first use).

    Inputs:
    - max_train: if given, keep a fixed random subset of this many training captions (and
      their image indices); the image arrays are not cut, as in CS231n.
    - data_dir: folder of the data (default: see the module docstring).

    Returns the dict described in the module docstring.
    """
    d = captioning_data_dir(data_dir)
    if not _has_data(d) and data_dir is None and not _can_build_in(d):
        private = private_data_dir()
        print(f"{d} holds no data yet and you cannot write there; using your own copy in "
              f"{private}. (Instructors: build the shared copy with `python -m autograder "
              f"data FOLDER`.)", flush=True)
        d = private
    if not _has_data(d):
        if d.exists() and any(d.iterdir()):
            raise FileNotFoundError(f"{d} holds no captioning data (no manifest.json or "
                                    "*captions.h5) and is not empty, so nothing is built there")
        build_captioning_data(d)
    data = read_coco_layout(d)
    if max_train is not None and max_train < len(data["train_captions"]):
        keep = np.sort(np.random.default_rng(0).choice(len(data["train_captions"]),
                                                        size=max_train, replace=False))
        data["train_captions"] = data["train_captions"][keep]
        data["train_image_idxs"] = data["train_image_idxs"][keep]
    return data


# --------------------------------------------------------------------------- captions

def decode_captions(captions, idx_to_word):
    """Integer captions -> text.

    Inputs:
    - captions: (T,) or (N, T) ints (numpy array, list or tensor).
    - idx_to_word: list mapping index -> word.

    Returns a string for (T,) input, a list of N strings for (N, T). ``<NULL>`` and ``<START>``
    are dropped and a caption stops at its first ``<END>``; other words (``<UNK>`` included)
    are joined by single spaces.
    """
    captions = np.asarray(captions)
    single = captions.ndim == 1
    if single:
        captions = captions[None]
    skip = {w for w in ("<NULL>", "<START>") if w in idx_to_word}
    skip = {i for i, w in enumerate(idx_to_word) if w in skip}
    end = idx_to_word.index("<END>") if "<END>" in idx_to_word else None
    out = []
    for row in captions.tolist():
        words = []
        for t in row:
            if t == end:
                break
            if t not in skip:
                words.append(idx_to_word[t])
        out.append(" ".join(words))
    return out[0] if single else out


def references(data, split):
    """Reference captions per image: a list (one entry per image, in image order) of lists of
    distinct strings.

    Shapes data: the image's caption first, then its other object orders (1 to 3 references:
    one object has one order, two objects two, three objects three of the six). COCO: all
    captions of ``{split}_captions`` grouped by ``{split}_image_idxs`` (an image without a
    caption gets an empty list).

    Use with ``seqlab.metrics.evaluate_captions(predictions, references(data, split))`` where
    ``predictions[i]`` is the caption of image i.
    """
    itw = data["idx_to_word"]
    if f"{split}_references" in data:
        refs = data[f"{split}_references"]
        flat = decode_captions(refs.reshape(-1, refs.shape[-1]), itw)
        k = refs.shape[1]
        return [list(dict.fromkeys(flat[i * k:(i + 1) * k])) for i in range(len(refs))]
    idxs = data[f"{split}_image_idxs"]
    n = len(data[f"{split}_features"]) if f"{split}_features" in data else int(idxs.max()) + 1
    out = [[] for _ in range(n)]
    for i, text in zip(idxs.tolist(), decode_captions(data[f"{split}_captions"], itw)):
        if text not in out[i]:
            out[i].append(text)
    return out


def object_word_cells(caption_words, objects):
    """Which grid cells each colour and shape word of a caption refers to.

    Inputs:
    - caption_words: a caption as a string or a list of words (no special tokens), for
      example a sampled caption decoded with ``decode_captions``.
    - objects: the objects of its image, ``data[f"{split}_objects"][i]``.

    Returns a list as long as the words: for a colour or shape word, the bool (16,) mask of
    the 4x4 grid cells covered by the object that its phrase names; None for every other word
    and when no object fits. The caption is cut into phrases at "and"; a phrase names the
    object that agrees with it on the most of colour, shape, size and position, provided it
    disagrees on at most one of those the phrase states and no other object agrees as well.
    (A wrong colour with the right shape, size and position still points at that object.)
    """
    words = caption_words.split() if isinstance(caption_words, str) else list(caption_words)
    out = [None] * len(words)
    start = 0
    for end in [j for j, w in enumerate(words) if w == "and"] + [len(words)]:
        phrase = words[start:end]
        idx = list(range(start, end))
        start = end + 1
        stated = {"color": next((w for w in phrase if w in COLORS), None),
                  "shape": next((w for w in phrase if w in SHAPES), None),
                  "size": next((w for w in phrase if w in SIZES), None)}
        pos = " ".join(w for w in phrase if w in _POSITION_WORDS)
        stated["position"] = pos or None
        stated = {k: v for k, v in stated.items() if v is not None}
        if not stated or not objects:
            continue
        scores = [sum(o[k] == v for k, v in stated.items()) for o in objects]
        best = max(scores)
        if best < len(stated) - 1 or scores.count(best) > 1:
            continue
        cells = np.asarray(objects[scores.index(best)]["cells"], dtype=bool)
        for j in idx:
            if words[j] in COLORS or words[j] in SHAPES:
                out[j] = cells.copy()
    return out
