"""The captioning data: generator, cache, loader (ours and the CS231n COCO layout), metrics,
object metadata and plots."""
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "solutions" / "sequence_models"
if str(PKG) not in sys.path:
    sys.path.insert(0, str(PKG))

from seqlab import data as sd  # noqa: E402
from seqlab.metrics import attention_on_objects, evaluate_captions, tokenize  # noqa: E402

TINY = {"name": "shapes", "version": 1, "seed": 0, "train": 40, "val": 12, "test": 12}


def _module(name):
    path = ROOT / "datasets" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_test_datasets_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


shapes = _module("shapes")
builder = _module("build_captioning")
heldout = _module("heldout")


@pytest.fixture(scope="session")
def full(report):
    """The real data (built once into datasets/cache/ if it is not there yet)."""
    built = sd._has_data(sd.captioning_data_dir())
    t = time.time()
    d = sd.load_captioning_data()
    report(f"[data] load_captioning_data(): {time.time() - t:.1f} s wall "
           f"({'read from the cache' if built else 'first load: built the cache'})")
    return d


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    """The same tiny configuration built twice, into two folders."""
    a = builder.build(tmp_path_factory.mktemp("a") / "shapes", dict(TINY), verbose=False)
    b = builder.build(tmp_path_factory.mktemp("b") / "shapes", dict(TINY), verbose=False)
    return a, b


# ---------------------------------------------------------------------------- generator

def test_generator_is_deterministic():
    a = shapes.generate(50, "val", seed=3)
    b = shapes.generate(50, "val", seed=3)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    c = shapes.generate(50, "val", seed=4)
    assert a["images"].tobytes() != c["images"].tobytes()


def test_build_same_seed_same_bytes(tiny_dirs):
    a, b = tiny_dirs
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert {"shapes_captions.h5", "shapes_vocab.json", "manifest.json", "train_features.h5",
            "test_images.h5"} <= set(names)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_vocabulary():
    itw = shapes.IDX_TO_WORD
    assert itw[:4] == ["<NULL>", "<START>", "<END>", "<UNK>"]
    assert 26 <= len(itw) <= 34 and len(set(itw)) == len(itw)
    assert all(shapes.WORD_TO_IDX[w] == i for i, w in enumerate(itw))
    assert sd.COLORS == shapes.COLORS and sd.SHAPES == shapes.SHAPES
    assert sd.SIZES == shapes.SIZES and sd.POSITIONS == shapes.POSITIONS


# ---------------------------------------------------------------------------- full data

def test_shapes_and_dtypes(full):
    C = full["train_features"].shape[1]
    assert C == 128
    L = shapes.CAPTION_LENGTH
    for split, n in (("train", 10000), ("val", 1000), ("test", 1000)):
        caps, idx = full[f"{split}_captions"], full[f"{split}_image_idxs"]
        assert caps.shape == (n, L) and caps.dtype == np.int32
        assert idx.shape == (n,) and idx.min() >= 0 and idx.max() < n
        assert full[f"{split}_features"].shape == (n, C)
        assert full[f"{split}_features"].dtype == np.float32
        assert full[f"{split}_grid_features"].shape == (n, 16, C)
        assert full[f"{split}_grid_features"].dtype == np.float32
        assert np.isfinite(full[f"{split}_grid_features"]).all()
        assert full[f"{split}_images"].shape == (n, 64, 64, 3)
        assert full[f"{split}_images"].dtype == np.uint8
        assert full[f"{split}_references"].shape == (n, 3, L)
        assert len(full[f"{split}_objects"]) == n
        assert (caps[:, 0] == 1).all()                               # <START>
    # BatchNorm outputs: about zero mean, unit variance
    f = full["train_features"]
    assert abs(f.mean()) < 0.3 and 0.5 < f.std() < 2.0


def _key(objs):
    return tuple(sorted((o["color"], o["shape"], o["size"], o["layout_cell"]) for o in objs))


def test_splits_are_disjoint(full):
    keys = {s: {_key(o) for o in full[f"{s}_objects"]} for s in ("train", "val", "test")}
    assert not keys["train"] & keys["test"]
    assert not keys["train"] & keys["val"]
    assert not keys["val"] & keys["test"]
    images = {s: {im.tobytes() for im in full[f"{s}_images"]} for s in ("train", "test")}
    assert not images["train"] & images["test"]


PHRASE = (r"a (small|large) (red|green|blue|yellow|purple|white) "
          r"(square|circle|triangle|cross|diamond) "
          r"(in the top left|at the top|in the top right|on the left|in the center|on the right"
          r"|in the bottom left|at the bottom|in the bottom right)")
GRAMMAR = re.compile(rf"{PHRASE}( and {PHRASE}){{0,2}}")


def test_captions_follow_the_grammar_and_the_objects(full):
    itw = full["idx_to_word"]
    for split in ("train", "test"):
        texts = sd.decode_captions(full[f"{split}_captions"], itw)
        refs = sd.references(full, split)
        for i in range(len(texts)):
            objs = full[f"{split}_objects"][full[f"{split}_image_idxs"][i]]
            assert GRAMMAR.fullmatch(texts[i]), texts[i]
            expected = " and ".join(
                f"a {o['size']} {o['color']} {o['shape']} "
                f"{shapes.POSITION_PHRASES[o['layout_cell']]}" for o in objs)
            assert texts[i] == expected
            assert [o["layout_cell"] for o in objs] == sorted(o["layout_cell"] for o in objs)
            r = refs[i]
            assert r[0] == texts[i] and len(r) == min(len(objs), 3) and len(set(r)) == len(r)
            for alt in r:
                assert sorted(alt.split(" and ")) == sorted(texts[i].split(" and "))
            for o in objs:
                assert o["cells"].dtype == bool and o["cells"].shape == (16,) and o["cells"].any()
    lengths = (full["train_captions"] != 0).sum(1)
    assert lengths.max() <= shapes.CAPTION_LENGTH and lengths.min() >= 9


def test_objects_cells_match_positions(full):
    # an object lies within 3 (jitter) + 7.6 (half size) + 1 pixels of its layout cell's
    # centre, so it covers 1 to 4 grid cells, all overlapping that window
    for objs in full["val_objects"]:
        for o in objs:
            r, c = divmod(o["layout_cell"], 3)
            y, x = (r + 0.5) * 64 / 3, (c + 0.5) * 64 / 3
            assert 1 <= o["cells"].sum() <= 4
            for g in np.nonzero(o["cells"])[0]:
                gy, gx = divmod(g, 4)
                assert 16 * gy < y + 11.6 and 16 * gy + 16 > y - 11.6
                assert 16 * gx < x + 11.6 and 16 * gx + 16 > x - 11.6


# ---------------------------------------------------------------------------- held-out split

def _pairs(objects):
    """Unordered pairs of objects (colour, shape, size, layout cell) that share an image."""
    out = set()
    for objs in objects:
        keys = sorted((o["color"], o["shape"], o["size"], o["layout_cell"]) for o in objs)
        out.update((a, b) for i, a in enumerate(keys) for b in keys[i + 1:])
    return out


def _as_objects(attrs):
    return [[{"color": shapes.COLORS[c], "shape": shapes.SHAPES[s], "size": shapes.SIZES[z],
              "layout_cell": int(cell)} for c, s, z, cell in a.tolist() if c >= 0]
            for a in attrs]


def test_heldout_scenes_are_deterministic_and_new(full):
    a = heldout.sample_scenes(200)
    assert a.dtype == np.int8 and a.shape == (200, 3, 4)
    assert a.tobytes() == heldout.sample_scenes(200).tobytes()
    assert a.tobytes() != heldout.sample_scenes(200, seed=1).tobytes()
    rows = [set(range(3 * r, 3 * r + 3)) for r in range(3)]
    cols = [set(range(c, 9, 3)) for c in range(3)]
    for scene in a:
        cells = scene[:, 3].tolist()
        assert cells == sorted(cells) and set(cells) in rows + cols      # three in a line
        assert (scene[:, 0] >= 0).all()
    # checked against the built training data, not the generator the split was drawn with
    held = _as_objects(a)
    assert not _pairs(held) & _pairs(full["train_objects"])
    keys = {_key(o) for o in held}
    for split in ("train", "val", "test"):
        assert not keys & {_key(o) for o in full[f"{split}_objects"]}, split


def test_heldout_split_is_built_like_the_others(full):
    d = {**full, **heldout.load()}
    n, L = heldout.SIZE, shapes.CAPTION_LENGTH
    assert d["heldout_captions"].shape == (n, L) and d["heldout_captions"].dtype == np.int32
    assert (d["heldout_image_idxs"] == np.arange(n)).all()
    assert d["heldout_references"].shape == (n, 3, L)
    assert d["heldout_features"].shape == (n, 128) and d["heldout_features"].dtype == np.float32
    assert d["heldout_grid_features"].shape == (n, 16, 128)
    assert d["heldout_images"].shape == (n, 64, 64, 3) and d["heldout_images"].dtype == np.uint8
    assert d["heldout_object_cells"].shape == (n, 3, 16)
    attrs = d["heldout_object_attrs"]
    assert attrs.tobytes() == heldout.sample_scenes(n).tobytes()
    texts = sd.decode_captions(d["heldout_captions"], d["idx_to_word"])
    refs = sd.references(d, "heldout")
    for text, r, objs in zip(texts, refs, _as_objects(attrs)):
        assert GRAMMAR.fullmatch(text) and text.count(" and ") == 2
        assert text == " and ".join(f"a {o['size']} {o['color']} {o['shape']} "
                                    f"{shapes.POSITION_PHRASES[o['layout_cell']]}" for o in objs)
        assert r[0] == text and len(r) == 3
    # features from the shipped encoder, as for the other splits
    encoder = _module("encoder")
    pooled, grid = encoder.extract_features(d["heldout_images"][:20])
    assert np.allclose(pooled, d["heldout_features"][:20], atol=1e-5)
    assert np.allclose(grid, d["heldout_grid_features"][:20], atol=1e-5)
    images = {im.tobytes() for im in d["heldout_images"]}
    assert len(images) == n and not images & {im.tobytes() for im in full["test_images"]}


def test_cached_load_reads_the_cache(tiny_dirs, monkeypatch):
    """Once built, the data is read back, never rebuilt (the full data: about 2 s instead of
    ~30 s); ``max_train`` keeps the same captions on every load, and every image."""
    def no_rebuild(*args, **kwargs):
        raise AssertionError("load_captioning_data rebuilt data that was already cached")
    monkeypatch.setattr(sd, "build_captioning_data", no_rebuild)
    monkeypatch.setenv("SEQLAB_DATA_DIR", str(tiny_dirs[0]))  # the default location: built
    whole = sd.load_captioning_data()
    d = sd.load_captioning_data(max_train=10)
    assert d["train_captions"].shape == (10, shapes.CAPTION_LENGTH)
    assert len(whole["train_captions"]) == TINY["train"]
    assert len(d["train_features"]) == len(whole["train_features"]) > 0
    again = sd.load_captioning_data(max_train=10)
    assert (again["train_image_idxs"] == d["train_image_idxs"]).all()


# ---------------------------------------------------------------------------- locations

def test_env_var_overrides_the_data_location(tiny_dirs, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLAB_DATA_DIR", str(tiny_dirs[0]))
    assert sd.captioning_data_dir() == tiny_dirs[0]
    d = sd.load_captioning_data()
    assert len(d["train_captions"]) == TINY["train"] and len(d["test_images"]) == TINY["test"]
    assert sd.load_captioning_data(data_dir=tiny_dirs[1])["val_features"].shape[0] == TINY["val"]
    # a datasets/ folder is also accepted: its cache/ is used
    monkeypatch.setenv("SEQLAB_DATA_DIR", str(ROOT / "datasets"))
    assert sd.find_datasets_dir() == (ROOT / "datasets").resolve()
    assert sd.captioning_data_dir().parent == (ROOT / "datasets" / "cache").resolve()
    # a non-empty folder without data is an error, not a place to build into
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(FileNotFoundError):
        sd.load_captioning_data(data_dir=tmp_path)


def test_a_read_only_shared_folder_without_data_builds_a_private_copy(tmp_path, monkeypatch):
    """A hub student whose shared SEQLAB_DATA_DIR holds no data and is read-only builds the data
    in their own cache folder instead of failing with PermissionError there; with an explicit
    data_dir nothing changes."""
    import shutil
    shared = tmp_path / "shared"
    shutil.copytree(ROOT / "datasets", shared,
                    ignore=shutil.ignore_patterns("cache", "__pycache__"))
    monkeypatch.setenv("SEQLAB_DATA_DIR", str(shared))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    built = []

    def build(out_dir, verbose=True):
        built.append(Path(out_dir))
        raise RuntimeError("stop")
    monkeypatch.setattr(sd, "build_captioning_data", build)
    monkeypatch.setattr(sd, "_can_build_in", lambda d: d != shared / "cache"
                        and shared not in Path(d).parents)
    with pytest.raises(RuntimeError, match="stop"):
        sd.load_captioning_data()
    key = sd.captioning_data_dir().name
    assert key.startswith("shapes-") and built == [tmp_path / "xdg" / "seqlab" / key]
    with pytest.raises(RuntimeError, match="stop"):       # an explicit folder: built there
        sd.load_captioning_data(data_dir=tmp_path / "mine")
    assert built[-1] == tmp_path / "mine"
    monkeypatch.setattr(sd, "_can_build_in", lambda d: True)   # writable: built in place
    with pytest.raises(RuntimeError, match="stop"):
        sd.load_captioning_data()
    assert built[-1] == shared / "cache" / key


@pytest.mark.parametrize("where", ["assignments/sequence_models/seqlab",
                                   "autograded/alice/sequence_models/seqlab",
                                   "solutions/sequence_models/seqlab"])
def test_datasets_folder_is_found_from_every_layout(tmp_path, monkeypatch, where):
    monkeypatch.delenv("SEQLAB_DATA_DIR", raising=False)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / sd.MARKER).write_text("{}")
    pkg = tmp_path / where
    pkg.mkdir(parents=True)
    (pkg / "data.py").write_text("")
    assert sd.find_datasets_dir(pkg / "data.py") == tmp_path / "datasets"
    assert sd.find_datasets_dir() == (ROOT / "datasets")          # this repository


# ---------------------------------------------------------------------------- COCO layout

def _fake_coco(d):
    itw = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "man", "riding", "horse", "dog", "on"]
    wti = {w: i for i, w in enumerate(itw)}

    def enc(text):
        row = [1] + [wti.get(w, 3) for w in text.split()] + [2]
        return row + [0] * (17 - len(row))

    train = ["a man riding a horse", "a man on a horse", "a dog", "a zebra on a dog"]
    val = ["a dog on a horse", "a man"]
    with h5py.File(d / "coco2014_captions.h5", "w") as f:
        f["train_captions"] = np.array([enc(t) for t in train], dtype=np.int32)
        f["train_image_idxs"] = np.array([0, 0, 2, 1], dtype=np.int32)
        f["val_captions"] = np.array([enc(t) for t in val], dtype=np.int32)
        f["val_image_idxs"] = np.array([1, 0], dtype=np.int32)
    (d / "coco2014_vocab.json").write_text(json.dumps({"idx_to_word": itw, "word_to_idx": wti}))
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        with h5py.File(d / f"{split}2014_vgg16_fc7_pca.h5", "w") as f:
            f["features"] = rng.normal(size=(n, 512)).astype(np.float32)
        with h5py.File(d / f"{split}2014_vgg16_fc7.h5", "w") as f:
            f["features"] = rng.normal(size=(n, 4096)).astype(np.float32)
        (d / f"{split}2014_urls.txt").write_text(
            "".join(f"http://example.org/{split}/{i}.jpg\n" for i in range(n)))


def test_reads_the_cs231n_coco_layout(tmp_path):
    _fake_coco(tmp_path)
    d = sd.load_captioning_data(data_dir=tmp_path)
    assert d["train_captions"].shape == (4, 17) and d["train_captions"].dtype == np.int32
    assert d["train_features"].shape == (3, 512) and d["val_features"].shape == (2, 512)
    assert d["word_to_idx"]["horse"] == 7 and d["idx_to_word"][7] == "horse"
    assert list(d["val_urls"]) == ["http://example.org/val/0.jpg", "http://example.org/val/1.jpg"]
    for k in ("train_grid_features", "train_images", "train_objects", "test_captions"):
        assert k not in d
    assert sd.decode_captions(d["train_captions"][3], d["idx_to_word"]) == "a <UNK> on a dog"
    assert sd.references(d, "train") == [["a man riding a horse", "a man on a horse"],
                                         ["a <UNK> on a dog"], ["a dog"]]
    assert sd.references(d, "val") == [["a man"], ["a dog on a horse"]]
    sub = sd.load_captioning_data(max_train=2, data_dir=tmp_path)
    assert sub["train_captions"].shape == (2, 17) and sub["train_features"].shape == (3, 512)


# ---------------------------------------------------------------------------- captions

def test_decode_captions():
    itw = ["<NULL>", "<START>", "<END>", "<UNK>", "a", "red", "circle"]
    assert sd.decode_captions(np.array([1, 4, 5, 6, 2, 0, 0]), itw) == "a red circle"
    assert sd.decode_captions([[4, 5, 2, 6, 6], [1, 4, 3, 0, 0]], itw) == ["a red", "a <UNK>"]


def test_object_word_cells():
    m = [np.eye(16, dtype=bool)[k] for k in (0, 5, 15)]
    objs = [{"color": "red", "shape": "circle", "size": "small", "position": "top left",
             "layout_cell": 0, "cells": m[0]},
            {"color": "blue", "shape": "square", "size": "large", "position": "center",
             "layout_cell": 4, "cells": m[1]},
            {"color": "red", "shape": "square", "size": "small", "position": "bottom right",
             "layout_cell": 8, "cells": m[2]}]
    words = "a large blue square in the center and a small red square in the bottom right"
    out = sd.object_word_cells(words, objs)
    assert len(out) == len(words.split())
    w = words.split()
    for j, cells in enumerate(out):
        if w[j] in ("blue",) or (w[j] == "square" and j < 6):
            assert (cells == m[1]).all()
        elif w[j] in ("red", "square"):
            assert (cells == m[2]).all()
        else:
            assert cells is None
    # one wrong attribute still names the object; two wrong ones name nothing
    out = sd.object_word_cells("a small green circle in the top left", objs)
    assert (out[2] == m[0]).all() and (out[3] == m[0]).all()
    assert sd.object_word_cells("a large green circle in the center", objs)[2] is None


def test_object_word_cells_on_the_data(full):
    for i in range(200):
        objs = full["test_objects"][i]
        words = sd.decode_captions(full["test_captions"][i], full["idx_to_word"]).split()
        out = sd.object_word_cells(words, objs)
        k = 0
        for w, cells in zip(words, out):
            if w in sd.SHAPES:
                assert (cells == objs[k]["cells"]).all()
                k += 1
            elif w in sd.COLORS:
                assert (cells == objs[k]["cells"]).all()
            else:
                assert cells is None


# ---------------------------------------------------------------------------- metrics

def test_bleu1_by_hand_and_rouge_l_by_hand():
    # candidate "a red red circle": unigram matches a 1, red min(2, 1) = 1, circle 0 -> 2/4;
    # candidate length 4, reference length 6: brevity penalty exp(1 - 6/4).
    m = evaluate_captions(["a red red circle"], [["a red square on the left"]])
    assert m["BLEU-1"] == pytest.approx(0.5 * np.exp(1 - 6 / 4), rel=1e-6)
    # ROUGE-L: LCS("a b c d", "a c d e") = 3, P = R = 3/4 -> F = 3/4
    assert evaluate_captions(["a b c d"], [["a c d e"]])["ROUGE-L"] == pytest.approx(0.75)
    # the best reference counts: exact match with the second one
    assert evaluate_captions(["a c d e"], [["x y", "a c d e"]])["ROUGE-L"] == pytest.approx(1.0)


def test_bleu4_agrees_with_sacrebleu():
    import sacrebleu
    preds = ["a small red circle in the top left and a large blue square on the right",
             "a large green cross at the bottom",
             "a small white diamond in the center and a small red cross at the top",
             "a large yellow triangle on the left and a small purple circle on the right"]
    refs = [["a small red circle in the top left and a large blue square on the right",
             "a large blue square on the right and a small red circle in the top left"],
            ["a large green cross at the top", "a large green cross at the top"],
            ["a small white diamond in the center and a small red cross in the bottom left",
             "a small red cross in the bottom left and a small white diamond in the center"],
            ["a large yellow triangle on the left", "a large yellow triangle on the left"]]
    ours = evaluate_captions(preds, refs)
    sb = sacrebleu.corpus_bleu(preds, [list(r) for r in zip(*refs)], tokenize="none",
                               smooth_method="none", force=True)
    assert ours["BLEU-4"] == pytest.approx(sb.score / 100, rel=1e-6)
    for n in range(4):
        assert ours[f"BLEU-{n + 1}"] >= ours["BLEU-4"] - 1e-12


def test_metrics_are_silent_and_perfect_on_references(full, capsys):
    refs = sd.references(full, "test")
    m = evaluate_captions([r[0] for r in refs], refs)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    for n in range(1, 5):
        assert m[f"BLEU-{n}"] == pytest.approx(1.0)
    assert m["ROUGE-L"] == pytest.approx(1.0)
    assert m["CIDEr-D"] > 5
    # wrong captions score lower
    wrong = evaluate_captions([refs[(i + 1) % len(refs)][0] for i in range(len(refs))], refs)
    assert wrong["BLEU-4"] < 0.5 and wrong["CIDEr-D"] < m["CIDEr-D"] / 3


def test_cider_of_exact_captions_is_ten():
    # every n-gram (n = 1..4) of each caption occurs in its own reference only: cosine 1 for
    # each n, no length penalty, times 10. A 3-word caption has no 4-grams: (1 + 1 + 1 + 0) / 4.
    preds = ["a red circle on top", "two blue squares at left", "one green cross on top"]
    assert evaluate_captions(preds, [[p] for p in preds])["CIDEr-D"] == pytest.approx(10.0)
    short = ["a red circle", "two blue squares"]
    assert evaluate_captions(short, [[p] for p in short])["CIDEr-D"] == pytest.approx(7.5)


def test_metrics_tokenize_and_check_inputs():
    assert tokenize("A Red circle, on the LEFT.") == "a red circle on the left"
    same = evaluate_captions(["A red circle."], [["a red circle"]])
    assert same["BLEU-1"] == pytest.approx(1.0)
    assert evaluate_captions([""], [["a red circle"]])["BLEU-1"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        evaluate_captions(["a"], [["a"], ["b"]])


def test_attention_on_objects():
    itw = list(shapes.IDX_TO_WORD)
    cells = np.zeros(16, bool)
    cells[[0, 1]] = True
    objs = [[{"color": "red", "shape": "circle", "size": "small", "position": "top left",
              "layout_cell": 0, "cells": cells}]]
    caps = np.array([[shapes.WORD_TO_IDX[w] for w in "a small red circle in the top left".split()]
                     + [2, 0]])
    attn = np.full((1, caps.shape[1], 16), 1 / 16)
    attn[0, 2] = cells / 2                               # "red": all weight on the object
    out = attention_on_objects(caps, attn, objs, itw)
    assert out["words"] == 2
    assert out["mass"] == pytest.approx((1 + 2 / 16) / 2)
    assert out["uniform"] == pytest.approx(2 / 16)


# ---------------------------------------------------------------------------- plots

def test_plots_return_figures():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from seqlab import visualize
    d = shapes.generate(5, "test")
    caps = [shapes.caption_text([tuple(o) for o in a if o[0] >= 0]) for a in d["attrs"]]
    fig = visualize.show_captions_grid(d["images"], caps, ncols=3)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 6
    plt.close(fig)
    words = caps[0].split()
    attn = np.random.default_rng(0).dirichlet(np.ones(16), size=len(words) + 2)
    fig = visualize.show_attention(d["images"][0], words, attn)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert sum(ax.has_data() for ax in fig.axes) == len(words) + 1
    plt.close(fig)
    lit = visualize.attention_image(d["images"][0], np.eye(16)[5])
    assert lit.shape == (64, 64, 3) and lit[16:32, 16:32].mean() > lit[:16, :16].mean()


def test_grading_flag():
    assert sd.GRADING == (os.environ.get("SEQLAB_GRADING", "") == "1")
