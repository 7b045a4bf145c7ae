"""A harder held-out split of the shapes captioning data: three objects in a line, in
combinations never seen in training.

On the test split the two best captioners (the attention LSTM and the Transformer) both reach
BLEU-4 0.98, so it cannot tell them apart. Every scene of this split

* has three objects (the longest caption, 26 words) in one row or one column of the 3x3 layout,
  so that the objects are neighbours and share cells of the encoder's 4x4 feature grid (a
  layout cell is 21.3 pixels wide, a grid cell 16);
* holds objects that never appear together in a training image: no two of its objects (each
  a colour, shape, size and layout cell) occur in one training scene;
* is a scene description of the test part of the hash partition (``shapes.split_bucket``),
  and none of the test split's scenes: it is disjoint from the training, validation and test
  splits.

Why not more objects: captions are 28 tokens long (3 objects, 26 words), every captioner is
trained to stop after at most three phrases, and the shipped encoder's pooled feature was
trained to describe three objects; a fourth object needs longer captions and retraining.

Everything is deterministic from the settings below and the settings of the captioning data
(``seqlab_datasets.json``): the scenes are drawn with ``numpy.random.default_rng([seed,
SCENE_STREAM])``; images, features and references are made as for the other splits
(``shapes.render``, ``shapes.captions_for``, ``encoder.extract_features``), with the rendering
seed ``RENDER_SEED_OFFSET + seed`` so that their jitter, colours and noise are drawn afresh.

    import heldout                                   # datasets/ on sys.path, or by file path
    split = heldout.load()                           # builds datasets/cache/heldout-<key>/

``load`` returns a dict in the layout of ``seqlab.data.load_captioning_data`` for the split
``heldout``: ``heldout_captions`` (N, 28) int32, ``heldout_image_idxs`` (N,),
``heldout_references`` (N, 3, 28), ``heldout_features`` (N, 128), ``heldout_grid_features``
(N, 16, 128) float32, ``heldout_images`` (N, 64, 64, 3) uint8, ``heldout_object_attrs``
(N, 3, 4) int8 (colour, shape, size, layout cell) and ``heldout_object_cells`` (N, 3, 16) bool.
Merge it into the data (``data.update(split)``) and ``seqlab.data.references(data,
"heldout")`` and ``seqlab.analysis.sample_captions(model, data, "heldout")`` work on it.
"""
import hashlib
import importlib.util
import json
import os
import shutil
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPLIT = "heldout"
SIZE = 1000                      # images
SCENE_STREAM = 3                 # the other splits use streams 0, 1, 2 (train, val, test)
RENDER_SEED_OFFSET = 1000        # rendering seed = RENDER_SEED_OFFSET + the data's seed
LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8))


def _module(name):
    """Import datasets/<name>.py by path, under the name seqlab.data and the builder use."""
    key = f"_seqlab_datasets_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def object_codes(attrs):
    """Code per object from attrs (..., 4) (colour, shape, size, layout cell; -1 = none):
    a number in [0, 540) naming the object and its cell, or -1."""
    shapes = _module("shapes")
    a = np.asarray(attrs, dtype=np.int64)
    kind = (a[..., 0] * len(shapes.SHAPES) + a[..., 1]) * len(shapes.SIZES) + a[..., 2]
    return np.where(a[..., 0] >= 0, kind * shapes.LAYOUT ** 2 + a[..., 3], -1)


def pairs_in(attrs):
    """The set of unordered pairs (code, code) of objects that share a scene in attrs
    (N, 3, 4)."""
    pairs = set()
    for row in object_codes(attrs).tolist():
        present = sorted(c for c in row if c >= 0)
        pairs.update(combinations(present, 2))
    return pairs


def sample_scenes(n, seed=0, config=None):
    """The held-out scene descriptions: attrs (n, 3, 4) int8, objects in reading order.

    Candidates are three objects with random colour, shape and size on a random row or column;
    a candidate is kept when its key hashes to the test part of the partition, it is not a
    scene of the test split and no pair of its objects shares a training scene.
    """
    shapes = _module("shapes")
    config = _module("build_captioning").default_config() if config is None else config
    train = shapes.sample_scenes(int(config["train"]), "train", int(config["seed"]))
    test = shapes.sample_scenes(int(config["test"]), "test", int(config["seed"]))
    seen = pairs_in(train)
    test_keys = set(shapes.scene_keys(test).tolist())
    lo, hi = shapes.SPLIT_BUCKETS["test"]
    rng = np.random.default_rng([seed, SCENE_STREAM])
    out = []
    while len(out) < n:
        m = 4096
        cells = np.array(LINES)[rng.integers(0, len(LINES), m)]
        attrs = np.stack([rng.integers(0, len(shapes.COLORS), (m, 3)),
                          rng.integers(0, len(shapes.SHAPES), (m, 3)),
                          rng.integers(0, len(shapes.SIZES), (m, 3)), cells], axis=-1)
        keys = shapes.scene_keys(attrs)
        bucket = shapes.split_bucket(keys)
        for a, key, b in zip(attrs, keys.tolist(), bucket.tolist()):
            if not lo <= b < hi or key in test_keys:
                continue
            if pairs_in(a[None]) & seen:
                continue
            out.append(a)
            if len(out) == n:
                break
    return np.array(out, dtype=np.int8)


def generate(n=SIZE, seed=0, config=None):
    """Everything for the split: dict with attrs, images, coverage, captions, references
    (as ``shapes.generate``)."""
    shapes = _module("shapes")
    attrs = sample_scenes(n, seed, config)
    images, coverage = shapes.render(attrs, RENDER_SEED_OFFSET + seed, "test")
    captions, refs = shapes.captions_for(attrs, RENDER_SEED_OFFSET + seed, "test")
    return {"attrs": attrs, "images": images, "coverage": coverage,
            "captions": captions, "references": refs}


def settings(config=None):
    """The settings the split depends on (the size and the captioning data's)."""
    config = _module("build_captioning").default_config() if config is None else config
    return {"split": SPLIT, "size": SIZE, "captioning": config}


def cache_key(config=None):
    """Short hash of the settings and of every file the split is made with."""
    h = hashlib.sha256(json.dumps(settings(config), sort_keys=True).encode())
    for name in ("heldout.py", "shapes.py", "encoder.py", "build_captioning.py",
                 "shapes_encoder.npz"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:10]


def build(out_dir, config=None):
    """Generate the split, encode its images and write ``heldout.h5`` and ``manifest.json``
    (last) to out_dir. The build goes to a temporary folder renamed at the end."""
    builder = _module("build_captioning")
    encoder = _module("encoder")
    config = builder.default_config() if config is None else config
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        d = generate(SIZE, int(config["seed"]), config)
        pooled, grid = encoder.extract_features(d["images"])
        builder._write_h5(tmp / f"{SPLIT}.h5", {
            f"{SPLIT}_captions": d["captions"],
            f"{SPLIT}_image_idxs": np.arange(SIZE, dtype=np.int32),
            f"{SPLIT}_references": d["references"],
            f"{SPLIT}_object_attrs": d["attrs"],
            f"{SPLIT}_object_cells": d["coverage"] >= builder.CELL_MIN_PIXELS,
            f"{SPLIT}_features": pooled, f"{SPLIT}_grid_features": grid,
            f"{SPLIT}_images": d["images"]})
        manifest = {"dataset": "seqlab shapes captioning, held-out split",
                    "settings": settings(config), "key": cache_key(config)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if not (out_dir / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def load(out_dir=None):
    """The split as a dict of arrays (see the module docstring), built on first use into
    out_dir (default ``datasets/cache/heldout-<key>/``)."""
    import h5py
    out_dir = Path(out_dir) if out_dir is not None else HERE / "cache" / f"heldout-{cache_key()}"
    if not (out_dir / "manifest.json").is_file():
        build(out_dir)
    with h5py.File(out_dir / f"{SPLIT}.h5", "r") as f:
        return {k: f[k][()] for k in f}
