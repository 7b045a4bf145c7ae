"""Build the shapes captioning data in the CS231n COCO-captioning layout.

    python datasets/build_captioning.py OUT_DIR [--train 10000 --val 1000 --test 1000 --seed 0]

``seqlab.data.load_captioning_data()`` calls ``build`` on first use (into
``datasets/cache/shapes-<key>/``); nobody needs to run this by hand. Files written:

    shapes_captions.h5    {split}_captions      (M, L) int32  <START> w1 ... <END> <NULL>...
                          {split}_image_idxs    (M,)   int32  row of the image of each caption
                          {split}_references    (Ni, 3, L) int32  reference captions per image
                                                (column 0 = the caption; repeats when an image
                                                has fewer than 3 distinct object orders)
                          {split}_object_attrs  (Ni, 3, 4) int8  colour, shape, size, layout
                                                cell of each object (-1 = no object), caption order
                          {split}_object_cells  (Ni, 3, 16) bool  4x4 grid cells the object covers
    shapes_vocab.json     {"idx_to_word": [...], "word_to_idx": {...}}
    {split}_features.h5   features (Ni, C) float32 pooled; grid_features (Ni, 16, C) float32
    {split}_images.h5     images (Ni, 64, 64, 3) uint8
    manifest.json         settings and sizes; written last (its presence = complete)

Here M = Ni: one caption per image, image_idxs = 0..Ni-1. The build goes to a temporary
folder that is renamed at the end, so an interrupted or concurrent build never leaves a
half-written folder behind.
"""
import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "val", "test")
# Pixels (alpha-weighted) an object needs in a 4x4 grid cell to count as covering it.
CELL_MIN_PIXELS = 1.0


def _sibling(name):
    """Import datasets/<name>.py by path (datasets/ is not a package)."""
    key = f"_seqlab_datasets_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def default_config():
    return json.loads((HERE / "seqlab_datasets.json").read_text())["captioning"]


def cache_key(config=None):
    """Short hash of the settings, the generator, the encoder code and its weights."""
    config = default_config() if config is None else config
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in ("shapes.py", "encoder.py", "build_captioning.py", "shapes_encoder.npz"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:10]


def _write_h5(path, arrays):
    import h5py
    with h5py.File(path, "w", track_order=True) as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v, track_times=False)


def build(out_dir, config=None, verbose=True):
    """Generate, encode and write the data to out_dir (see the module docstring)."""
    shapes = _sibling("shapes")
    encoder = _sibling("encoder")
    config = default_config() if config is None else config
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    t0 = time.time()
    try:
        caption_arrays, sizes = {}, {}
        for split in SPLITS:
            n = int(config[split])
            d = shapes.generate(n, split, int(config["seed"]))
            pooled, grid = encoder.extract_features(d["images"])
            caption_arrays[f"{split}_captions"] = d["captions"]
            caption_arrays[f"{split}_image_idxs"] = np.arange(n, dtype=np.int32)
            caption_arrays[f"{split}_references"] = d["references"]
            caption_arrays[f"{split}_object_attrs"] = d["attrs"]
            caption_arrays[f"{split}_object_cells"] = d["coverage"] >= CELL_MIN_PIXELS
            _write_h5(tmp / f"{split}_features.h5", {"features": pooled, "grid_features": grid})
            _write_h5(tmp / f"{split}_images.h5", {"images": d["images"]})
            sizes[split] = n
            if verbose:
                print(f"  {split}: {n} images ({time.time() - t0:.0f}s)", flush=True)
        _write_h5(tmp / "shapes_captions.h5", caption_arrays)
        vocab = {"idx_to_word": shapes.IDX_TO_WORD, "word_to_idx": shapes.WORD_TO_IDX}
        (tmp / "shapes_vocab.json").write_text(json.dumps(vocab))
        manifest = {"dataset": "seqlab shapes captioning", "config": config, "sizes": sizes,
                    "feature_dim": int(pooled.shape[1]), "grid": [4, 4],
                    "caption_length": int(shapes.CAPTION_LENGTH),
                    "vocab_size": len(shapes.IDX_TO_WORD), "key": cache_key(config)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            os.replace(tmp, out_dir)               # atomic; fails if out_dir exists and is full
        except OSError:
            if not (out_dir / "manifest.json").is_file():
                if out_dir.exists() and not any(out_dir.iterdir()):
                    out_dir.rmdir()
                    os.replace(tmp, out_dir)
                else:
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)     # a concurrent build won; keep its copy
    return out_dir


def main():
    ap = argparse.ArgumentParser(description="Build the shapes captioning data.")
    ap.add_argument("out_dir")
    cfg = default_config()
    for k in ("train", "val", "test", "seed"):
        ap.add_argument(f"--{k}", type=int, default=cfg[k])
    args = ap.parse_args()
    for k in ("train", "val", "test", "seed"):
        cfg[k] = getattr(args, k)
    t = time.time()
    build(args.out_dir, cfg)
    print(f"built {args.out_dir} in {time.time() - t:.1f}s")


if __name__ == "__main__":
    main()
