"""Scenes of coloured shapes with captions from a small grammar (in the spirit of ShapeWorld).

Each image is 64x64 RGB: a smooth background (a linear gradient between two muted, dark
colours plus faint pixel noise) with 1 to 3 objects. The canvas is cut into a 3x3 layout; each
object sits in its own layout cell, its centre jittered by up to 3 pixels, so objects never
overlap. An object has a colour (6), a shape (5) and a size (2), with a little jitter of
colour and size.

Layout cells are numbered row-major, 0 = top left ... 8 = bottom right, and named

    0 "in the top left"     1 "at the top"      2 "in the top right"
    3 "on the left"         4 "in the center"   5 "on the right"
    6 "in the bottom left"  7 "at the bottom"   8 "in the bottom right"

A caption names every object, as "a <size> <colour> <shape> <position>", joined by "and":

    "a small yellow cross in the top right and a large purple diamond on the right"

The training caption lists the objects in reading order (by layout cell). Two more reference
captions use other object orders (for 2 objects only one other order exists, for 1 object none;
duplicates are then stored and ``references`` drops them).

Splits: every scene has a key (which object, with which colour, shape and size, is in which
layout cell; jitter and background are not part of it). A hash of the key decides the split
the scene may appear in, so no scene description of the test split occurs in the training
split (even the 540 possible one-object scenes are partitioned). Everything is deterministic
from the seed: numpy ``default_rng([seed, split, stream])``.

Only numpy; rendering is vectorised (signed distance functions, anti-aliased edges).
"""
import numpy as np

IMAGE_SIZE = 64
GRID = 4                      # the encoder's feature grid is GRID x GRID (P = 16)
LAYOUT = 3                    # objects live on a LAYOUT x LAYOUT layout
MAX_OBJECTS = 3

COLORS = ("red", "green", "blue", "yellow", "purple", "white")
COLOR_RGB = np.array([(220, 45, 40), (45, 175, 65), (55, 95, 235),
                      (235, 210, 45), (155, 65, 205), (235, 235, 235)], dtype=np.float32)
SHAPES = ("square", "circle", "triangle", "cross", "diamond")
SIZES = ("small", "large")
SIZE_RADIUS = ((4.0, 4.8), (6.8, 7.6))          # half-extent in pixels, uniform in this range
JITTER = 3.0                                    # max centre offset in pixels, each axis
POSITIONS = ("top left", "top", "top right", "left", "center", "right",
             "bottom left", "bottom", "bottom right")
POSITION_PHRASES = ("in the top left", "at the top", "in the top right",
                    "on the left", "in the center", "on the right",
                    "in the bottom left", "at the bottom", "in the bottom right")

SPECIAL = ("<NULL>", "<START>", "<END>", "<UNK>")
WORDS = (("a", "and") + SIZES + COLORS + SHAPES
         + ("in", "on", "at", "the", "top", "bottom", "left", "right", "center"))
IDX_TO_WORD = list(SPECIAL + WORDS)
WORD_TO_IDX = {w: i for i, w in enumerate(IDX_TO_WORD)}
NULL, START, END, UNK = 0, 1, 2, 3

# Longest caption: 3 objects x 8 words + 2 "and" = 26 words, plus <START> and <END>.
MAX_WORDS = MAX_OBJECTS * 8 + (MAX_OBJECTS - 1)
CAPTION_LENGTH = MAX_WORDS + 2
NUM_REFERENCES = 3

N_OBJECT_PROBS = (0.25, 0.40, 0.35)             # P(1 object), P(2), P(3)
SPLITS = ("train", "val", "test")
# A scene key hashes to a bucket in [0, 100): train < 80 <= val < 90 <= test.
SPLIT_BUCKETS = {"train": (0, 80), "val": (80, 90), "test": (90, 100)}

_CODES = len(COLORS) * len(SHAPES) * len(SIZES)       # 60 object kinds


def object_phrase(color, shape, size, cell):
    """'a small yellow cross in the top right' for integer attribute codes."""
    return f"a {SIZES[size]} {COLORS[color]} {SHAPES[shape]} {POSITION_PHRASES[cell]}"


def caption_text(objs, order=None):
    """Caption of one scene: objs is a list of (color, shape, size, cell) code tuples."""
    order = range(len(objs)) if order is None else order
    return " and ".join(object_phrase(*objs[k]) for k in order)


def encode(text, length=CAPTION_LENGTH):
    """Caption string -> int32 row ``<START> words <END> <NULL>...`` of the given length."""
    ids = [START] + [WORD_TO_IDX.get(w, UNK) for w in text.split()] + [END]
    if len(ids) > length:
        raise ValueError(f"caption longer than {length} tokens: {text!r}")
    row = np.full(length, NULL, dtype=np.int32)
    row[:len(ids)] = ids
    return row


def scene_keys(attrs):
    """int64 key per scene from attrs (N, 3, 4) int (color, shape, size, cell; -1 = no object).

    key = sum over objects of (kind + 1) * 61**cell with kind = (color*5 + shape)*2 + size in
    [0, 60): two scenes have the same key iff they have the same objects in the same cells.
    """
    attrs = np.asarray(attrs, dtype=np.int64)
    valid = attrs[..., 0] >= 0
    kind = (attrs[..., 0] * len(SHAPES) + attrs[..., 1]) * len(SIZES) + attrs[..., 2] + 1
    power = np.power(np.int64(_CODES + 1), np.where(valid, attrs[..., 3], 0))
    return np.where(valid, kind * power, 0).sum(axis=-1)


def split_bucket(keys):
    """Bucket in [0, 100) of each scene key (splitmix64 hash)."""
    with np.errstate(over="ignore"):
        z = np.asarray(keys).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(100)).astype(np.int64)


def sample_scenes(n, split, seed=0):
    """Scene descriptions for one split: attrs (n, 3, 4) int8, objects sorted by layout cell.

    Candidates are drawn at random and kept only when their key hashes to this split.
    """
    s = SPLITS.index(split)
    lo, hi = SPLIT_BUCKETS[split]
    rng = np.random.default_rng([seed, s, 0])
    out, have = [], 0
    while have < n:
        m = 4 * (n - have) + 64
        k = rng.choice(np.arange(1, MAX_OBJECTS + 1), size=m, p=N_OBJECT_PROBS)
        cells = np.argsort(rng.random((m, LAYOUT * LAYOUT)), axis=1)[:, :MAX_OBJECTS]
        present = np.arange(MAX_OBJECTS)[None, :] < k[:, None]
        cells = np.where(present, cells, LAYOUT * LAYOUT)            # absent sorts last
        cells = np.sort(cells, axis=1)
        attrs = np.stack([rng.integers(0, len(COLORS), (m, MAX_OBJECTS)),
                          rng.integers(0, len(SHAPES), (m, MAX_OBJECTS)),
                          rng.integers(0, len(SIZES), (m, MAX_OBJECTS)),
                          cells], axis=-1)
        attrs[~present] = -1
        bucket = split_bucket(scene_keys(attrs))
        keep = attrs[(bucket >= lo) & (bucket < hi)]
        out.append(keep[: n - have])
        have += len(out[-1])
    return np.concatenate(out).astype(np.int8)


# --------------------------------------------------------------------------- rendering

def _sdf(shape, dx, dy, r):
    """Signed distance (pixels, < 0 inside) of a shape of half-extent r centred at 0."""
    r = r[:, None, None]
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == 0:                                               # square
        return np.maximum(ax, ay) - 0.8 * r
    if shape == 1:                                               # circle
        return np.sqrt(dx * dx + dy * dy) - 0.9 * r
    if shape == 2:                                               # triangle, apex up
        R = 1.15 * r                                             # circumradius
        dy = dy - 0.25 * R                                       # centre its bounding box
        return np.maximum(dy - 0.5 * R, 0.866 * ax - 0.5 * dy - 0.5 * R)
    if shape == 3:                                               # cross (plus sign)
        w = 0.3 * r
        return np.minimum(np.maximum(ax - r, ay - w), np.maximum(ax - w, ay - r))
    if shape == 4:                                               # diamond
        return (ax + ay - r) * 0.7071
    raise ValueError(shape)


_CHUNK = 1000
_WIN = 24                                       # objects are drawn in a 24x24 window


def _window(cell_index):
    """Pixel origin of the drawing window of a layout row or column (0, 1 or 2)."""
    centre = (cell_index + 0.5) * IMAGE_SIZE / LAYOUT
    return int(np.clip(round(centre) - _WIN // 2, 0, IMAGE_SIZE - _WIN))


def _grid_bounds(origin):
    """Grid cells that a window starting at origin overlaps, and their local start offsets."""
    g = IMAGE_SIZE // GRID
    cells = [j for j in range(GRID) if g * j < origin + _WIN and g * (j + 1) > origin]
    return cells, [max(0, g * j - origin) for j in cells]


def render(attrs, seed=0, split="train"):
    """Draw the scenes.

    Inputs: attrs (N, 3, 4) from ``sample_scenes``.
    Returns images (N, 64, 64, 3) uint8 and coverage (N, 3, 16) float32: for each object the
    number of its pixels (alpha-weighted) in each cell of the 4x4 grid (row-major).
    """
    attrs = np.asarray(attrs)
    n = len(attrs)
    chunk = _CHUNK                 # fixed: the pixel-noise stream depends on it
    rng = np.random.default_rng([seed, SPLITS.index(split), 1])
    # All random draws up front, in a fixed order, so that chunking does not change them.
    bg = (rng.uniform(20, 105, (n, 2, 1)) + rng.normal(0, 12, (n, 2, 3))).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, n)
    jitter = rng.uniform(-JITTER, JITTER, (n, MAX_OBJECTS, 2)).astype(np.float32)
    size_u = rng.random((n, MAX_OBJECTS)).astype(np.float32)
    color_noise = rng.normal(0, 8, (n, MAX_OBJECTS, 3)).astype(np.float32)

    cell = IMAGE_SIZE / LAYOUT
    lo = np.array([r[0] for r in SIZE_RADIUS], dtype=np.float32)
    hi = np.array([r[1] for r in SIZE_RADIUS], dtype=np.float32)
    win = np.arange(_WIN, dtype=np.float32) + 0.5
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    coverage = np.zeros((n, MAX_OBJECTS, GRID * GRID), dtype=np.float32)
    cos = (np.cos(angle) / IMAGE_SIZE).astype(np.float32)
    sin = (np.sin(angle) / IMAGE_SIZE).astype(np.float32)
    centred = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5 - IMAGE_SIZE / 2
    buf = np.empty((min(chunk, n), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)  # channel-first
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        img = buf[: b - a]
        t = (centred[None, None, :] * cos[a:b, None, None]
             + centred[None, :, None] * sin[a:b, None, None] + 0.5)       # (B, 64, 64) in [0, 1]
        np.multiply((bg[a:b, 1] - bg[a:b, 0])[:, :, None, None], t[:, None], out=img)
        img += bg[a:b, 0, :, None, None]
        for k in range(MAX_OBJECTS):
            at = attrs[a:b, k]
            for c in range(LAYOUT * LAYOUT):
                row, col = divmod(c, LAYOUT)
                y0, x0 = _window(row), _window(col)
                gy, by = _grid_bounds(y0)
                gx, bx = _grid_bounds(x0)
                gidx = (np.array(gy)[:, None] * GRID + np.array(gx)[None, :]).ravel()
                for s in range(len(SHAPES)):
                    idx = np.nonzero((at[:, 3] == c) & (at[:, 1] == s))[0]
                    if len(idx) == 0:
                        continue
                    i = idx + a
                    cx = (col + 0.5) * cell - x0 + jitter[i, k, 0]
                    cy = (row + 0.5) * cell - y0 + jitter[i, k, 1]
                    sz = at[idx, 2]
                    r = lo[sz] + (hi[sz] - lo[sz]) * size_u[i, k]
                    dx = win[None, None, :] - cx[:, None, None]
                    dy = win[None, :, None] - cy[:, None, None]
                    alpha = np.clip(0.5 - _sdf(s, dx, dy, r), 0.0, 1.0)[:, None]  # (m,1,W,W)
                    rgb = np.clip(COLOR_RGB[at[idx, 0]] + color_noise[i, k], 0, 255)
                    patch = img[idx, :, y0:y0 + _WIN, x0:x0 + _WIN]
                    img[idx, :, y0:y0 + _WIN, x0:x0 + _WIN] = (
                        patch + (rgb[:, :, None, None] - patch) * alpha)
                    cov = np.add.reduceat(np.add.reduceat(alpha[:, 0], by, axis=1), bx, axis=2)
                    coverage[i[:, None], k, gidx[None, :]] = cov.reshape(len(idx), -1)
        img += rng.integers(-2, 3, img.shape, dtype=np.int8)        # faint pixel noise
        np.clip(img, 0, 255, out=img)
        img += 0.5                                                   # round on the cast
        images[a:b] = img.transpose(0, 2, 3, 1)
    return images, coverage


def captions_for(attrs, seed=0, split="train"):
    """Encoded captions (N, L) int32 in reading order and references (N, 3, L) int32.

    references[:, 0] is the caption itself; references[:, 1:] use other object orders, drawn
    at random among the distinct ones (repeated when fewer exist).
    """
    rng = np.random.default_rng([seed, SPLITS.index(split), 2])
    perms3 = [(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    n = len(attrs)
    caps = np.zeros((n, CAPTION_LENGTH), dtype=np.int32)
    refs = np.zeros((n, NUM_REFERENCES, CAPTION_LENGTH), dtype=np.int32)
    choice = rng.permuted(np.tile(np.arange(5), (n, 1)), axis=1)[:, :2]
    for i in range(n):
        objs = [tuple(int(v) for v in o) for o in attrs[i] if o[0] >= 0]
        caps[i] = encode(caption_text(objs))
        if len(objs) == 1:
            orders = [None, None]
        elif len(objs) == 2:
            orders = [(1, 0), (1, 0)]
        else:
            orders = [perms3[j] for j in choice[i]]
        refs[i, 0] = caps[i]
        for j, order in enumerate(orders):
            refs[i, j + 1] = encode(caption_text(objs, order))
    return caps, refs


def generate(n, split, seed=0):
    """Everything for one split: dict with attrs, images, coverage, captions, references."""
    attrs = sample_scenes(n, split, seed)
    images, coverage = render(attrs, seed, split)
    captions, refs = captions_for(attrs, seed, split)
    return {"attrs": attrs, "images": images, "coverage": coverage,
            "captions": captions, "references": refs}
