"""Draw every diagram the seqlab notebooks show.

    python images/make_figures.py        # writes the PNGs into solutions/sequence_models/images/
    python images/make_figures.py --out DIR  # writes them into DIR instead
    python images/make_figures.py --only rnn lstm1   # a subset (names without .png)

The figures live inside the assignment folder so that they travel with the notebooks (the
release, the student bundle, an nbgrader exchange copy); the notebooks link them as
``images/NAME.png``.

matplotlib only (patches, arrows, text, mathtext; Pillow, which matplotlib installs, turns each
render into an optimised 256-colour PNG); no external assets, no network. The output is
deterministic: the same matplotlib/Pillow versions give byte-identical PNGs (no timestamps or
software tag in the metadata, every "image" drawn from fixed arrays). All nine take a few
seconds on a CPU.

Notation follows the code (the docstrings of solutions/sequence_models/seqlab/): row vectors, so a
step computes ``x_t W_x + h_{t-1} W_h + b`` with x (N, D) and W_x (D, H); LSTM gates in the order
i, f, o, g; attention masks are True where a query may attend.
"""
import argparse
import io
import os
import sys
import time

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import (  # noqa: E402
    Circle,
    FancyArrowPatch,
    FancyBboxPatch,
    Rectangle,
)
from PIL import Image  # noqa: E402  (installed with matplotlib)

DPI = 130
HERE = os.path.dirname(os.path.abspath(__file__))
# The notebooks link their figures as images/NAME.png, inside the assignment folder.
FIGURE_DIR = os.path.join(os.path.dirname(HERE), "solutions", "sequence_models", "images")

plt.rcParams.update({
    "font.family": "DejaVu Sans",
    "mathtext.fontset": "dejavusans",
    "font.size": 12,
    "savefig.facecolor": "white",
    "path.simplify": False,
})

# ---------------------------------------------------------------------------------------------
# Palette: one colour per kind of thing, the same in every figure.
# ---------------------------------------------------------------------------------------------
INK = "#222222"
MUTED = "#666666"
GRAD = "#C62828"        # backward pass / warnings
FEED = "#E07B00"        # values fed back at test time
KIND = {                 # (face, edge)
    "x": ("#DCEBFA", "#2F6DB5"),      # inputs, words, embeddings
    "h": ("#DDF1E0", "#2E8B57"),      # hidden states
    "c": ("#FFF1C1", "#B8860B"),      # LSTM cell state
    "w": ("#EEE4F7", "#7A4BA6"),      # parameters
    "op": ("#FFE3CC", "#D2691E"),     # operations, nonlinearities, cells
    "attn": ("#FDE0E6", "#C2185B"),   # attention
    "norm": ("#FFF7C2", "#B59B00"),   # add & norm
    "ff": ("#D9F0F7", "#1F7A99"),     # feed-forward
    "plain": ("#F4F4F4", "#888888"),  # neutral
    "white": ("#FFFFFF", "#888888"),
}
GATE = {  # LSTM gate colours (i, f, o, g)
    "i": ("#D6E9FB", "#1E6FBF"),
    "f": ("#FCDCDC", "#C0392B"),
    "o": ("#DDF1E0", "#2E8B57"),
    "g": ("#FFE7C7", "#D2691E"),
}
MASK_TRUE = "#5DAE5F"
MASK_FALSE = "#E6E6E6"


# ---------------------------------------------------------------------------------------------
# Drawing helpers (data units; every figure uses an equal-aspect canvas).
# ---------------------------------------------------------------------------------------------
class Node:
    """A drawn shape's bounding box, with its anchor points."""

    def __init__(self, cx, cy, w, h):
        self.cx, self.cy, self.w, self.h = cx, cy, w, h

    @property
    def l(self):  # noqa: E743
        return (self.cx - self.w / 2, self.cy)

    @property
    def r(self):
        return (self.cx + self.w / 2, self.cy)

    @property
    def t(self):
        return (self.cx, self.cy + self.h / 2)

    @property
    def b(self):
        return (self.cx, self.cy - self.h / 2)

    def at(self, fx, fy):
        """Point at fractions (-1..1) of the half-width / half-height from the centre."""
        return (self.cx + fx * self.w / 2, self.cy + fy * self.h / 2)


def canvas(x0, x1, y0, y1, scale=0.62):
    """Figure whose axes fill it, with data units of `scale` inches."""
    fig = plt.figure(figsize=((x1 - x0) * scale, (y1 - y0) * scale))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def box(ax, cx, cy, w, h, text="", kind="plain", fs=12, lw=1.5, r=0.12, fc=None, ec=None,
        tc=INK, weight="normal", z=2, ls="-", family=None, alpha=1.0):
    face, edge = KIND[kind]
    p = FancyBboxPatch((cx - w / 2, cy - h / 2), w, h,
                       boxstyle=f"round,pad=0,rounding_size={r}",
                       fc=fc or face, ec=ec or edge, lw=lw, zorder=z, ls=ls, alpha=alpha)
    ax.add_patch(p)
    if text:
        ax.text(cx, cy, text, ha="center", va="center", fontsize=fs, color=tc,
                weight=weight, zorder=z + 1, family=family, linespacing=1.25)
    return Node(cx, cy, w, h)


def circ(ax, cx, cy, text="", r=0.28, kind="op", fs=14, lw=1.5, z=3, fc=None, ec=None):
    face, edge = KIND[kind]
    ax.add_patch(Circle((cx, cy), r, fc=fc or face, ec=ec or edge, lw=lw, zorder=z))
    if text:
        ax.text(cx, cy, text, ha="center", va="center", fontsize=fs, color=INK, zorder=z + 1)
    return Node(cx, cy, 2 * r, 2 * r)


def arrow(ax, *pts, color=INK, lw=1.6, ls="-", ms=14, z=1, head=True, rad=0.0):
    """Polyline through pts with an arrow head at the end (curved if rad != 0, 2 points)."""
    pts = [tuple(p) for p in pts]
    for p0, p1 in zip(pts[:-2], pts[1:-1]):
        ax.add_line(Line2D([p0[0], p1[0]], [p0[1], p1[1]], color=color, lw=lw, ls=ls,
                           zorder=z, solid_capstyle="butt"))
    a = FancyArrowPatch(pts[-2], pts[-1], arrowstyle="-|>" if head else "-",
                        mutation_scale=ms, color=color, lw=lw, ls=ls, zorder=z,
                        shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={rad}",
                        capstyle="butt", joinstyle="miter")
    ax.add_patch(a)
    return a


def line(ax, *pts, color=INK, lw=1.6, ls="-", z=1):
    pts = np.asarray(pts, dtype=float)
    ax.add_line(Line2D(pts[:, 0], pts[:, 1], color=color, lw=lw, ls=ls, zorder=z,
                       solid_capstyle="butt", solid_joinstyle="miter"))


def dot(ax, x, y, color=INK, r=0.06, z=4):
    ax.add_patch(Circle((x, y), r, fc=color, ec=color, zorder=z))


def text(ax, x, y, s, fs=12, color=INK, ha="center", va="center", bg=None, z=5, **kw):
    bbox = kw.pop("bbox", None)
    if bg:
        bbox = dict(fc=bg, ec="none", pad=1.5, alpha=1.0)
    return ax.text(x, y, s, fontsize=fs, color=color, ha=ha, va=va, zorder=z, bbox=bbox,
                   linespacing=1.3, **kw)


def save(fig, out_dir, name):
    """Render at DPI and write an optimised 256-colour PNG (about 3x smaller than RGBA,
    visually identical for flat-colour diagrams). Pillow is a matplotlib dependency."""
    buf = io.BytesIO()
    fig.savefig(buf, dpi=DPI, format="png", metadata={"Software": None})
    plt.close(fig)
    buf.seek(0)
    img = Image.open(buf).convert("RGB")
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path = os.path.join(out_dir, name)
    img.save(path, format="PNG", optimize=True)
    return path


def toy_image(size=64):
    """A synthetic 64x64 RGB image like the course data: a red circle and a blue square."""
    img = np.empty((size, size, 3), dtype=float)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    img[...] = (0.93, 0.93, 0.90)
    img -= 0.04 * (yy / size)[..., None]                      # soft vertical shade
    circle = (xx - 22) ** 2 + (yy - 22) ** 2 <= 13 ** 2      # top-left quadrant
    img[circle] = (0.86, 0.16, 0.16)
    square = (xx >= 38) & (xx < 58) & (yy >= 38) & (yy < 58)  # bottom-right quadrant
    img[square] = (0.17, 0.35, 0.80)
    return np.clip(img, 0, 1)


def draw_image(ax, x0, y0, side, grid=False, lw=1.2):
    """The toy image in the square [x0, x0+side] x [y0, y0+side] (row 0 at the top)."""
    ax.imshow(toy_image(), extent=(x0, x0 + side, y0, y0 + side), origin="upper",
              interpolation="nearest", zorder=2)
    ax.add_patch(Rectangle((x0, y0), side, side, fc="none", ec=INK, lw=1.2, zorder=3))
    if grid:
        for k in range(1, 4):
            line(ax, (x0 + k * side / 4, y0), (x0 + k * side / 4, y0 + side),
                 color="white", lw=lw, z=3)
            line(ax, (x0, y0 + k * side / 4), (x0 + side, y0 + k * side / 4),
                 color="white", lw=lw, z=3)


# ---------------------------------------------------------------------------------------------
# 1. rnn.png: a vanilla RNN, folded and unrolled over three steps.
# ---------------------------------------------------------------------------------------------
def fig_rnn(out_dir):
    fig, ax = canvas(0, 16.4, -1.55, 6.0)
    cy, cw, ch = 2.9, 1.7, 1.15
    xy, hy = 0.55, 5.4  # centre y of the input and output boxes

    # folded cell with its recurrent loop
    fx = 1.5
    cell = box(ax, fx, cy, cw, ch, "tanh", kind="op", fs=13)
    xin = box(ax, fx, xy, 1.1, 0.62, "$x_t$", kind="x", fs=14)
    hout = box(ax, fx, hy, 1.1, 0.62, "$h_t$", kind="h", fs=14)
    arrow(ax, xin.t, cell.b)
    arrow(ax, cell.t, hout.b)
    text(ax, fx + 0.15, (xin.t[1] + cell.b[1]) / 2, "$W_x$", fs=12, ha="left", color=KIND["w"][1])
    # loop: out of the top, round the right side, back in on the right
    line(ax, (fx + 0.45, cell.t[1]), (fx + 0.45, cy + 1.2), (fx + 1.45, cy + 1.2),
         (fx + 1.45, cy))
    arrow(ax, (fx + 1.45, cy), cell.r)
    text(ax, fx + 1.58, cy + 0.6, "$W_h$", fs=12, ha="left", color=KIND["w"][1])
    text(ax, fx + 1.0, cy + 1.48, "$h_{t-1}$", fs=12)

    # "unroll" sign
    text(ax, 4.35, cy + 0.05, "=", fs=30, color=MUTED)
    text(ax, 4.35, cy + 0.75, "unroll", fs=11, color=MUTED)

    # unrolled cells
    xs = [7.0, 10.4, 13.8]
    ts = ["t-1", "t", "t+1"]
    prev_right = (5.0, cy)
    text(ax, 5.05, cy + 0.32, "$h_{t-2}$", fs=13, ha="left")
    for k, (x, t) in enumerate(zip(xs, ts)):
        lw = 2.4 if t == "t" else 1.5
        c = box(ax, x, cy, cw, ch, "tanh", kind="op", fs=13, lw=lw)
        xi = box(ax, x, xy, 1.25, 0.62, f"$x_{{{t}}}$", kind="x", fs=14)
        ho = box(ax, x, hy, 1.25, 0.62, f"$h_{{{t}}}$", kind="h", fs=14)
        arrow(ax, xi.t, c.b)
        arrow(ax, c.t, ho.b)
        text(ax, x + 0.15, (xi.t[1] + c.b[1]) / 2, "$W_x$", fs=12, ha="left",
             color=KIND["w"][1])
        arrow(ax, prev_right, c.l)
        text(ax, (prev_right[0] + c.l[0]) / 2, cy - 0.3, "$W_h$", fs=12, color=KIND["w"][1])
        if k > 0:
            text(ax, (prev_right[0] + c.l[0]) / 2, cy + 0.32, f"$h_{{{ts[k - 1]}}}$", fs=13)
        prev_right = c.r
    arrow(ax, prev_right, (prev_right[0] + 1.0, cy))
    text(ax, prev_right[0] + 1.15, cy, "...", fs=14, ha="left")
    text(ax, prev_right[0] + 0.45, cy + 0.32, "$h_{t+1}$", fs=13)

    # formula
    fb = box(ax, 10.4, -0.8, 11.4, 1.0, "", kind="white", ec=KIND["op"][1], lw=1.4)
    text(ax, fb.cx, fb.cy + 0.15, r"$h_t = \tanh(x_t\,W_x + h_{t-1}\,W_h + b)$", fs=16)
    text(ax, fb.cx, fb.cy - 0.3, "the same $W_x$, $W_h$, $b$ at every time step;"
         "  $x_t$ (N, D),  $W_x$ (D, H),  $W_h$ (H, H),  $h_t$ (N, H)",
         fs=10.5, color=MUTED)
    return save(fig, out_dir, "rnn.png")


# ---------------------------------------------------------------------------------------------
# 2. rnn_step_graph.png: computational graph of one RNN step and its backward pass; only the
#    tanh node is worked out, the other gradients are left to the student ("?").
# ---------------------------------------------------------------------------------------------
def _grad_edge(ax, p0, p1, off=0.17):
    """Dashed red arrow running backward, parallel to the edge p0 -> p1."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / np.hypot(*d)
    a, b = p1 + n * off - d * 0.12, p0 + n * off + d * 0.12
    arrow(ax, a, b, color=GRAD, lw=1.3, ls=(0, (4, 2.5)), ms=11, z=1)


def fig_rnn_step_graph(out_dir):
    fig, ax = canvas(0, 16.2, -0.1, 8.2)
    x = box(ax, 1.35, 7.2, 2.3, 0.7, "$x$   (N, D)", kind="x", fs=12)
    wx = box(ax, 1.35, 5.3, 2.3, 0.7, "$W_x$   (D, H)", kind="w", fs=12)
    ph = box(ax, 1.35, 3.5, 2.3, 0.7, r"$\mathrm{prev\_h}$  (N, H)", kind="h", fs=12)
    wh = box(ax, 1.35, 1.6, 2.3, 0.7, "$W_h$   (H, H)", kind="w", fs=12)
    mm1 = box(ax, 5.0, 6.25, 1.5, 0.7, "matmul", kind="op", fs=12)
    mm2 = box(ax, 5.0, 2.55, 1.5, 0.7, "matmul", kind="op", fs=12)
    add = circ(ax, 8.2, 4.4, "+", r=0.33, fs=18)
    b = box(ax, 8.2, 0.6, 1.5, 0.7, "$b$   (H,)", kind="w", fs=12)
    th = box(ax, 11.0, 4.4, 1.3, 0.7, "tanh", kind="op", fs=12)
    nh = box(ax, 14.5, 4.4, 2.2, 0.7, r"$\mathrm{next\_h}$  (N, H)", kind="h", fs=12)

    edges = [
        (x.r, mm1.at(-1, 0.45)), (wx.r, mm1.at(-1, -0.45)),
        (ph.r, mm2.at(-1, 0.45)), (wh.r, mm2.at(-1, -0.45)),
        (mm1.r, add.at(-0.72, 0.72)), (mm2.r, add.at(-0.72, -0.72)),
        (b.t, add.b), (add.r, th.l), (th.r, nh.l),
    ]
    for p0, p1 in edges:
        arrow(ax, p0, p1, z=2)
    # backward twins (offset to the side where the gradient label sits)
    _grad_edge(ax, x.r, mm1.at(-1, 0.45), off=0.2)
    _grad_edge(ax, wx.r, mm1.at(-1, -0.45), off=-0.2)
    _grad_edge(ax, ph.r, mm2.at(-1, 0.45), off=0.2)
    _grad_edge(ax, wh.r, mm2.at(-1, -0.45), off=-0.2)
    _grad_edge(ax, mm1.r, add.at(-0.72, 0.72), off=-0.2)
    _grad_edge(ax, mm2.r, add.at(-0.72, -0.72), off=0.2)
    _grad_edge(ax, b.t, add.b, off=-0.2)
    _grad_edge(ax, add.r, th.l, off=-0.2)
    _grad_edge(ax, th.r, nh.l, off=-0.2)

    # forward values (black) and gradients (red)
    text(ax, 6.8, 5.75, "$x\\,W_x$", fs=12, ha="left")
    text(ax, 7.95, 2.75, r"$\mathrm{prev\_h}\,W_h$", fs=12, ha="right")
    text(ax, 9.6, 4.72, "$a$", fs=13)
    # the gradients of the sum and of the products are the student's to derive
    text(ax, 3.15, 7.35, r"$dx = \;?$", fs=12.5, color=GRAD, ha="left")
    text(ax, 3.0, 5.05, r"$dW_x = \;?$", fs=12.5, color=GRAD, ha="left")
    text(ax, 2.75, 4.05, r"$d\mathrm{prev\_h} = \;?$", fs=12.5, color=GRAD, ha="left")
    text(ax, 3.0, 1.35, r"$dW_h = \;?$", fs=12.5, color=GRAD, ha="left")
    text(ax, 6.3, 5.0, "?", fs=12.5, color=GRAD)
    text(ax, 6.3, 3.8, "?", fs=12.5, color=GRAD)
    text(ax, 8.5, 1.75, r"$db = \;?$", fs=12.5, color=GRAD, ha="left")
    text(ax, 9.6, 4.0, "$da$", fs=12.5, color=GRAD)
    text(ax, 12.75, 4.0, r"$d\mathrm{next\_h}$", fs=12.5, color=GRAD)
    # the one nonlinear step, worked out
    g = box(ax, 13.1, 2.65, 5.6, 0.95, "", kind="white", ec=GRAD, lw=1.3)
    text(ax, g.cx, g.cy + 0.15,
         r"$da = d\mathrm{next\_h} \odot (1 - \mathrm{next\_h}^2)$", fs=13, color=GRAD)
    text(ax, g.cx, g.cy - 0.27, r"since  $\tanh'(a) = 1 - \tanh^2(a)$", fs=10.5,
         color=MUTED)

    # legend
    lx, ly = 10.0, 7.6
    arrow(ax, (lx, ly), (lx + 0.9, ly))
    text(ax, lx + 1.1, ly, "forward: values flow left to right", fs=11, ha="left")
    arrow(ax, (lx + 0.9, ly - 0.55), (lx, ly - 0.55), color=GRAD, lw=1.3, ls=(0, (4, 2.5)),
          ms=11)
    text(ax, lx + 1.1, ly - 0.55, "backward: gradients flow right to left", fs=11,
         ha="left", color=GRAD)
    text(ax, lx + 1.1, ly - 1.05, "(each has the shape of its value)", fs=10.5, ha="left",
         color=MUTED)
    return save(fig, out_dir, "rnn_step_graph.png")


# ---------------------------------------------------------------------------------------------
# 3. teacher_forcing.png: training with teacher forcing vs greedy sampling at test time.
# ---------------------------------------------------------------------------------------------
def _caption_panel(ax, y0, title, inputs, outputs, sampling):
    panel = FancyBboxPatch((0.15, y0 + 0.1), 20.9, 5.55, boxstyle="round,pad=0,rounding_size=0.2",
                           fc="#FAFAFA", ec="#BBBBBB", lw=1.2, zorder=0)
    ax.add_patch(panel)
    text(ax, 0.45, y0 + 5.25, title, fs=14, ha="left", weight="bold")
    cy = y0 + 2.65
    iy, oy = y0 + 0.75, y0 + 4.35
    # image -> features -> h0
    draw_image(ax, 0.55, cy - 0.75, 1.5)
    text(ax, 1.3, cy - 1.05, "image", fs=10.5, color=MUTED, va="top")
    feat = box(ax, 3.45, cy, 2.0, 0.8, "CNN features\n(N, C)", kind="x", fs=10.5)
    arrow(ax, (2.1, cy), feat.l)
    xs = [8.75 + 2.65 * k for k in range(len(inputs))]
    cells = [box(ax, x, cy, 1.5, 0.95, "RNN", kind="op", fs=12) for x in xs]
    arrow(ax, feat.r, cells[0].l)
    text(ax, (feat.r[0] + cells[0].l[0]) / 2, cy + 0.52, "$h_0 = $ features $W_{proj} + b_{proj}$",
         fs=10.5)
    text(ax, (feat.r[0] + cells[0].l[0]) / 2, cy - 0.3, "$h_0$", fs=12)
    for k in range(1, len(cells)):
        arrow(ax, cells[k - 1].r, cells[k].l)
        text(ax, cells[k - 1].r[0] + 0.15, cy + 0.27, f"$h_{k}$", fs=11.5, ha="left")
    for k, (c, w_in, w_out) in enumerate(zip(cells, inputs, outputs)):
        bi = box(ax, c.cx, iy, 1.55, 0.6, w_in, kind="x", fs=11.5,
                 ec=FEED if (sampling and k > 0) else None, lw=2.0 if (sampling and k > 0) else 1.5)
        arrow(ax, bi.t, c.b)
        bo = box(ax, c.cx, oy, 1.55, 0.6, w_out, kind="h" if sampling else "plain", fs=11.5)
        arrow(ax, c.t, bo.b)
        if k == 0:
            text(ax, c.cx + 0.12, (bi.t[1] + c.b[1]) / 2, "$W_{embed}$", fs=10, ha="left",
                 color=KIND["w"][1])
            text(ax, c.cx + 0.12, (c.t[1] + bo.b[1]) / 2, "$W_{vocab}$", fs=10, ha="left",
                 color=KIND["w"][1])
        if sampling and k + 1 < len(cells):
            nxt = cells[k + 1].cx
            arrow(ax, bo.at(1, -0.4), (nxt - 0.78, iy + 0.12), color=FEED, lw=1.8,
                  ls=(0, (5, 2.5)), rad=-0.12, z=3)
    lx = xs[-1] + 1.15
    if sampling:
        text(ax, lx, oy, "argmax of the scores\nat each step", fs=10.5, ha="left")
        text(ax, lx, iy, "input = the previous\nstep's argmax word", fs=10.5, ha="left",
             color=FEED)
        text(ax, lx, cy, "stop at <END>\n(or max_length)", fs=10.5, ha="left")
    else:
        text(ax, lx, oy, "targets\n= captions[:, 1:]", fs=10.5, ha="left")
        text(ax, lx, iy, "inputs\n= captions[:, :-1]", fs=10.5, ha="left")
        text(ax, lx, cy, "softmax loss at\nevery step (<NULL>\ntargets masked)",
             fs=10.5, ha="left")


def fig_teacher_forcing(out_dir):
    fig, ax = canvas(0, 21.2, 0, 11.7, scale=0.56)
    _caption_panel(ax, 5.95, "Training: teacher forcing  (the ground-truth caption, shifted by one,"
                   " is the input)",
                   ["<START>", "a", "red", "circle"], ["a", "red", "circle", "<END>"],
                   sampling=False)
    _caption_panel(ax, 0.05, "Test time: greedy sampling  (each step's argmax word is fed back"
                   " as the next input)",
                   ["<START>", "a", "red", "circle"], ["a", "red", "circle", "<END>"],
                   sampling=True)
    return save(fig, out_dir, "teacher_forcing.png")


# ---------------------------------------------------------------------------------------------
# 4. lstm.png: the LSTM cell.
# ---------------------------------------------------------------------------------------------
def fig_lstm(out_dir):
    fig, ax = canvas(-0.6, 12.8, -2.3, 7.0)
    ax.add_patch(FancyBboxPatch((1.4, 0.35), 9.3, 5.6,
                                boxstyle="round,pad=0,rounding_size=0.35",
                                fc="#FBFBFB", ec="#999999", lw=1.5, zorder=0))
    hy, by, gy = 5.0, 1.1, 2.35   # cell-state highway, input bus, gate row
    ccol = KIND["c"][1]
    # highway
    fmul = circ(ax, 3.4, hy, r"$\times$", fs=15)
    plus = circ(ax, 6.0, hy, "+", fs=17)
    arrow(ax, (-0.1, hy), fmul.l, color=ccol, lw=2.6)
    arrow(ax, fmul.r, plus.l, color=ccol, lw=2.6)
    arrow(ax, plus.r, (12.1, hy), color=ccol, lw=2.6)
    text(ax, -0.1, hy + 0.35, "$c_{t-1}$", fs=15, ha="left")
    text(ax, 12.1, hy + 0.35, "$c_t$", fs=15, ha="right")
    text(ax, 7.6, hy + 0.3, "cell-state highway", fs=10.5, color=ccol)

    # gates
    gw, gh = 0.95, 0.7
    gates = {}
    for name, x, fn in [("f", 3.4, r"$\sigma$"), ("i", 4.7, r"$\sigma$"),
                        ("g", 6.0, "tanh"), ("o", 7.6, r"$\sigma$")]:
        face, edge = GATE[name]
        gates[name] = box(ax, x, gy, gw, gh, fn, fc=face, ec=edge, fs=13 if fn != "tanh" else 11.5)
        text(ax, x + 0.56, gy - 0.48, f"${name}$", fs=13, color=edge, ha="left", weight="bold")
    # input bus: h_{t-1} from the left, x_t from below
    arrow(ax, (-0.1, by), (7.6, by), head=False)
    text(ax, -0.1, by + 0.35, "$h_{t-1}$", fs=15, ha="left")
    xin = box(ax, 2.2, -0.5, 0.9, 0.6, "$x_t$", kind="x", fs=14)
    arrow(ax, xin.t, (2.2, by), head=False)
    dot(ax, 2.2, by)
    text(ax, 2.35, by - 0.55, "$[x_t, h_{t-1}]$", fs=10.5, color=MUTED, ha="left")
    for g in gates.values():
        dot(ax, g.cx, by)
        arrow(ax, (g.cx, by), g.b)
    # f -> x on highway
    arrow(ax, gates["f"].t, fmul.b)
    # i, g -> x -> +
    imul = circ(ax, 6.0, 3.7, r"$\times$", fs=15)
    arrow(ax, gates["g"].t, imul.b)
    arrow(ax, gates["i"].t, (4.7, 3.7), imul.l)
    arrow(ax, imul.t, plus.b)
    # output: tanh(c_t) * o
    tc = box(ax, 9.2, 3.7, 0.95, 0.6, "tanh", kind="op", fs=11.5)
    dot(ax, 9.2, hy, color=ccol)
    arrow(ax, (9.2, hy), tc.t, color=ccol, lw=1.6)
    omul = circ(ax, 9.2, gy, r"$\times$", fs=15)
    arrow(ax, tc.b, omul.t)
    arrow(ax, gates["o"].r, omul.l)
    arrow(ax, omul.b, (9.2, by), (12.1, by), lw=2.0)
    text(ax, 12.1, by + 0.35, "$h_t$", fs=15, ha="right")

    # gate names
    legend = [("f", "forget gate"), ("i", "input gate"), ("g", "candidate"), ("o", "output gate")]
    lx = 1.0
    for name, label in legend:
        face, edge = GATE[name]
        ax.add_patch(Rectangle((lx + 1.2, -1.46), 0.32, 0.32, fc=face, ec=edge, lw=1.3))
        text(ax, lx + 1.62, -1.3, f"${name}$: {label}", fs=10.5, ha="left")
        lx += 2.35
    text(ax, 6.05, -1.95, r"all four from  $a = x_t\,W_x + h_{t-1}\,W_h + b$,  split  i | f | o | g"
         "   (see the gate equations)", fs=10.5, color=MUTED)
    text(ax, 6.05, 6.55, r"$c_t = f \odot c_{t-1} + i \odot g \qquad h_t = o \odot \tanh(c_t)$",
         fs=14)
    return save(fig, out_dir, "lstm.png")


# ---------------------------------------------------------------------------------------------
# 5. lstm1.png: the gate equations and the i|f|o|g split of a.
# ---------------------------------------------------------------------------------------------
def _blocks(ax, x0, y0, w, h, names, label=None, fs=12, sub=None):
    """A row vector of len(names) equal coloured blocks; returns their centres."""
    cs = []
    bw = w / len(names)
    for k, n in enumerate(names):
        face, edge = GATE[n]
        ax.add_patch(Rectangle((x0 + k * bw, y0), bw, h, fc=face, ec=edge, lw=1.4, zorder=2))
        if label:
            text(ax, x0 + (k + 0.5) * bw, y0 + h / 2, label.format(n=n), fs=fs)
        cs.append(x0 + (k + 0.5) * bw)
    if sub:
        text(ax, x0 + w / 2, y0 - 0.25, sub, fs=10, color=MUTED, va="top")
    return cs


def fig_lstm1(out_dir):
    fig, ax = canvas(0, 16.0, 0, 9.6)
    order = ["i", "f", "o", "g"]
    # top: a = x Wx + h Wh + b, with the weight columns coloured by gate
    y = 7.35
    text(ax, 0.35, 8.9, "One matrix multiply for all four gates (order i, f, o, g):", fs=13,
         ha="left", weight="bold")
    box(ax, 0.95, y + 0.35, 1.0, 0.5, "$x_t$", kind="x", fs=13)
    text(ax, 0.95, y - 0.1, "(N, D)", fs=9.5, color=MUTED)
    _blocks(ax, 1.75, y - 0.1, 3.0, 1.0, order, label="{n}", fs=11)
    text(ax, 3.25, y + 1.15, "$W_x$  (D, 4H)", fs=11)
    text(ax, 5.1, y + 0.4, "+", fs=18)
    box(ax, 6.05, y + 0.35, 1.25, 0.5, "$h_{t-1}$", kind="h", fs=13)
    text(ax, 6.05, y - 0.1, "(N, H)", fs=9.5, color=MUTED)
    _blocks(ax, 6.95, y - 0.1, 3.0, 1.0, order, label="{n}", fs=11)
    text(ax, 8.45, y + 1.15, "$W_h$  (H, 4H)", fs=11)
    text(ax, 10.3, y + 0.4, "+", fs=18)
    _blocks(ax, 10.7, y + 0.15, 2.0, 0.42, order, label="{n}", fs=9.5)
    text(ax, 11.7, y + 1.15, "$b$  (4H,)", fs=11)
    text(ax, 13.05, y + 0.4, "=", fs=18)
    _blocks(ax, 13.45, y + 0.1, 2.3, 0.5, order, label="{n}", fs=10.5)
    text(ax, 14.6, y + 1.15, "$a$  (N, 4H)", fs=11)

    # middle: a split into four H-wide blocks
    ay, ah = 4.55, 0.8
    ax0, aw = 1.2, 13.6
    text(ax, 0.35, 6.05, "Split a into four H-wide blocks, then one nonlinearity per block:",
         fs=13, ha="left", weight="bold")
    cs = _blocks(ax, ax0, ay, aw, ah, order)
    names = {"i": "input", "f": "forget", "o": "output", "g": "candidate"}
    for k, (n, c) in enumerate(zip(order, cs)):
        text(ax, c, ay + ah / 2, f"$a_{n}$ = a[:, {k}H:{k + 1}H]".replace("0H", "0")
             .replace("[:, 1H", "[:, H").replace(":1H]", ":H]"), fs=12)
        text(ax, c, ay + ah + 0.25, names[n], fs=10.5, color=GATE[n][1])
    text(ax, ax0 - 0.1, ay + ah / 2, "$a$", fs=15, ha="right")
    # brace-like ticks for H
    line(ax, (ax0, ay - 0.15), (ax0 + aw, ay - 0.15), color=MUTED, lw=1.0)
    for k in range(5):
        line(ax, (ax0 + k * aw / 4, ay - 0.05), (ax0 + k * aw / 4, ay - 0.25), color=MUTED, lw=1.0)
    eqs = {"i": r"$i = \sigma(a_i)$", "f": r"$f = \sigma(a_f)$", "o": r"$o = \sigma(a_o)$",
           "g": r"$g = \tanh(a_g)$"}
    gy = 2.75
    for n, c in zip(order, cs):
        arrow(ax, (c, ay - 0.3), (c, gy + 0.38))
        face, edge = GATE[n]
        box(ax, c, gy, 2.6, 0.72, eqs[n], fc=face, ec=edge, fs=14)
    for c in cs[:3]:
        text(ax, c, gy - 0.62, "in (0, 1): a soft switch", fs=10, color=MUTED)
    text(ax, cs[3], gy - 0.62, "in (-1, 1): the new content", fs=10, color=MUTED)

    # bottom: the state updates
    eb = box(ax, 8.0, 0.75, 11.0, 0.95, "", kind="white", ec=KIND["c"][1], lw=1.5)
    text(ax, eb.cx, eb.cy,
         r"$c_t = f \odot c_{t-1} + i \odot g \qquad\qquad h_t = o \odot \tanh(c_t)$", fs=16)
    text(ax, 15.75, 0.3, "$\\odot$: elementwise", fs=10, color=MUTED, ha="right")
    return save(fig, out_dir, "lstm1.png")


# ---------------------------------------------------------------------------------------------
# 6. attention.png: spatial attention for captioning.
# ---------------------------------------------------------------------------------------------
def _toy_weights():
    """Attention weights over the 4x4 grid, peaked on the red circle (top-left)."""
    s = np.full((4, 4), -1.0)
    s[0, 0], s[0, 1], s[1, 0], s[1, 1] = 1.4, 1.1, 1.0, 1.7
    s[2, 2], s[3, 3], s[2, 3], s[3, 2] = 0.1, -0.2, -0.3, -0.2
    w = np.exp(s)
    return w / w.sum()


def fig_attention(out_dir):
    fig, ax = canvas(0, 19.6, -1.2, 9.0, scale=0.6)
    # image and grid
    draw_image(ax, 0.4, 3.5, 3.2, grid=True, lw=1.4)
    for p in range(16):
        r, c = divmod(p, 4)
        text(ax, 0.4 + (c + 0.1) * 0.8, 3.5 + 3.2 - (r + 0.19) * 0.8, str(p), fs=7.5,
             color=INK, ha="left", bbox=dict(fc="white", ec="none", alpha=0.75, pad=0.6))
    text(ax, 2.0, 7.1, "image (64×64), 4×4 grid", fs=11.5)
    text(ax, 2.0, 3.15, "P = 16 positions\n(row-major)", fs=10.5, color=MUTED, va="top")

    # A: 16 grid vectors
    ax0, aw, rh = 5.6, 2.2, 0.22
    top = 7.0
    face, edge = KIND["x"]
    for p in range(16):
        yb = top - (p + 1) * rh
        ax.add_patch(Rectangle((ax0, yb), aw, rh, fc=face, ec=edge, lw=0.8, zorder=2))
        if p in (0, 15):
            text(ax, ax0 - 0.1, yb + rh / 2, f"$A_{{{p}}}$", fs=9, ha="right")
    A_mid = (ax0 + aw / 2, top - 8 * rh)
    text(ax, ax0 + aw / 2, top + 0.72, "$A$   (P, H)", fs=13)
    text(ax, ax0 + aw / 2, top + 0.3, "grid vectors: keys and values", fs=10, color=MUTED)
    arrow(ax, (3.75, 5.1), (ax0 - 0.55, 5.1))
    text(ax, 4.6, 5.45, "CNN grid", fs=10, color=MUTED)
    text(ax, 4.6, 4.75, r"$W_{proj}$, $b_{proj}$", fs=10, color=KIND["w"][1])

    # query and scores
    q = box(ax, 10.6, 8.25, 2.1, 0.62, "$h_{t-1}$   (H,)", kind="h", fs=12.5)
    text(ax, q.l[0] - 0.15, q.cy, "query", fs=10.5, color=MUTED, ha="right")
    sc = box(ax, 10.6, 6.35, 4.3, 0.9, "", kind="op", fs=12)
    text(ax, sc.cx, sc.cy + 0.16, r"scores $= A\,h_{t-1} / \sqrt{H}$", fs=12.5)
    text(ax, sc.cx, sc.cy - 0.24, "(P,): one dot product per position", fs=9.5, color=MUTED)
    arrow(ax, q.b, sc.t)
    arrow(ax, (ax0 + aw + 0.1, sc.cy), sc.l)
    text(ax, (ax0 + aw + sc.l[0]) / 2 + 0.05, sc.cy + 0.22, "keys", fs=10, color=MUTED)

    # softmax -> 4x4 heat map
    w = _toy_weights()
    hs, hx0, hy0 = 0.62, 10.6 - 1.24, 2.2
    cmap = plt.get_cmap("Oranges")
    for r in range(4):
        for c in range(4):
            v = w[r, c]
            ax.add_patch(Rectangle((hx0 + c * hs, hy0 + (3 - r) * hs), hs, hs,
                                   fc=cmap(0.08 + 0.85 * v / w.max()), ec="white", lw=1.0,
                                   zorder=2))
            text(ax, hx0 + (c + 0.5) * hs, hy0 + (3.5 - r) * hs, f"{v:.2f}"[1:], fs=8,
                 color="white" if v > 0.5 * w.max() else INK)
    ax.add_patch(Rectangle((hx0, hy0), 4 * hs, 4 * hs, fc="none", ec=INK, lw=1.0, zorder=3))
    arrow(ax, sc.b, (10.6, hy0 + 4 * hs + 0.1))
    text(ax, 10.75, (sc.b[1] + hy0 + 4 * hs) / 2 + 0.02, "softmax over the\n16 positions",
         fs=10.5, ha="left")
    text(ax, 10.6, hy0 - 0.15, "attention weights (P,)\nshown as 4×4; they sum to 1",
         fs=10, color=MUTED, va="top")

    # weighted sum
    ws = circ(ax, 13.5, 3.45, r"$\Sigma$", r=0.36, fs=15)
    arrow(ax, (hx0 + 4 * hs + 0.05, 3.45), ws.l)
    line(ax, (A_mid[0], top - 16 * rh), (A_mid[0], 0.45), (13.5, 0.45))
    arrow(ax, (13.5, 0.45), ws.b)
    text(ax, 9.3, 0.7, "values", fs=10, color=MUTED)
    text(ax, 13.95, 2.7, r"$\mathrm{attn} = \sum_p\, w_p\, A_p$   (H,)", fs=11.5, ha="left")

    # LSTM step
    st = box(ax, 16.6, 5.1, 2.6, 1.25, "LSTM\nstep", kind="op", fs=13, lw=2.0)
    arrow(ax, ws.t, (13.5, 5.1), st.l)
    text(ax, 13.65, 4.4, "attn", fs=11, ha="left")
    xt = box(ax, 17.9, 2.2, 0.95, 0.6, "$x_t$", kind="x", fs=13)
    arrow(ax, xt.t, (17.9, st.b[1]))
    arrow(ax, q.r, (16.0, q.cy), (16.0, st.t[1]))
    text(ax, 14.2, q.cy + 0.28, "$h_{t-1}$, $c_{t-1}$", fs=11)
    arrow(ax, st.r, (19.45, st.cy))
    text(ax, 19.0, st.cy + 0.5, "$h_t$, $c_t$", fs=12)
    text(ax, 16.75, 1.55, r"$a = x_t\,W_x + h_{t-1}\,W_h$" "\n"
         r"$+\ \mathrm{attn}\, W_{attn} + b$", fs=12, va="top")
    text(ax, 16.75, 0.2, "then as the LSTM: split $a$\ninto i | f | o | g;\n"
         "$h_0 = c_0 =$ mean of $A$ over P", fs=10, color=MUTED, va="top")
    return save(fig, out_dir, "attention.png")


# ---------------------------------------------------------------------------------------------
# 7. transformer.png: encoder-decoder Transformer (post-LN, as in the paper).
# ---------------------------------------------------------------------------------------------
def _sublayer(ax, cx, y, w, label, kind, fs=12.5):
    h = 0.95 if kind == "attn" else 0.7
    return box(ax, cx, y, w, h, label, kind=kind, fs=fs, r=0.1)


def _qkv_in(ax, node, y_src):
    """Q, K, V arrows into the bottom of a self-attention box from one split point."""
    for x, lab in zip([node.cx - node.w * 0.3, node.cx, node.cx + node.w * 0.3], "QKV"):
        arrow(ax, (node.cx, y_src), (x, y_src + 0.15), (x, node.b[1]), lw=1.4, ms=11)
        text(ax, x + 0.1, node.b[1] - 0.2, lab, fs=10.5, ha="left", weight="bold")


def _residual(ax, x_side, y_from, x_from, node_to):
    dot(ax, x_from, y_from)
    tgt = node_to.l if x_side < node_to.cx else node_to.r
    arrow(ax, (x_from, y_from), (x_side, y_from), (x_side, node_to.cy), tgt, lw=1.4, ms=11)


def _pe(ax, cx, cy):
    ax.add_patch(Circle((cx, cy), 0.36, fc="white", ec=INK, lw=1.3, zorder=3))
    t = np.linspace(-0.26, 0.26, 60)
    ax.add_line(Line2D(cx + t, cy + 0.14 * np.sin(t * 24), color=INK, lw=1.2, zorder=4))


def _frame(ax, cx, w, y0, y1):
    ax.add_patch(FancyBboxPatch((cx - w / 2 - 0.4, y0), w + 0.8, y1 - y0,
                                boxstyle="round,pad=0,rounding_size=0.25", fc="#F2F2F2",
                                ec="#888888", lw=1.4, zorder=0))


def fig_transformer(out_dir):
    fig, ax = canvas(-0.2, 15.6, 0.0, 16.5, scale=0.52)
    W = 3.5
    ex, dx = 4.3, 11.2          # column centres
    mcol = "#1F5FA8"            # encoder output (memory): keys and values
    # ---- bottoms: tokens, embedding (x sqrt(d_model)), + positional encoding
    for cx, lab, emb, side in [(ex, "Inputs (source tokens)", "Input Embedding", -1),
                               (dx, "Outputs (target tokens,\nshifted right)",
                                "Output Embedding", 1)]:
        text(ax, cx, 0.45, lab, fs=11.5)
        e = box(ax, cx, 1.55, W, 0.7, emb, fc="#FBE1E4", ec="#C2185B", fs=12.5)
        arrow(ax, (cx, 0.8 if side < 0 else 0.9), e.b)
        text(ax, cx + W / 2 + 0.12, 1.55, r"$\times\sqrt{d_{model}}$", fs=10, ha="left",
             color=MUTED)
        plus = circ(ax, cx, 2.7, "+", r=0.3, fs=16, kind="white")
        arrow(ax, e.t, plus.b)
        pcx = cx + side * 1.45
        _pe(ax, pcx, 2.7)
        arrow(ax, (pcx - side * 0.36, 2.7), plus.l if side < 0 else plus.r)
        text(ax, pcx + side * 0.5, 2.7, "Positional\nEncoding", fs=10.5,
             ha="right" if side < 0 else "left")
        line(ax, plus.t, (cx, 3.95))

    # ---- encoder layer (x L: N is the batch size in this course)
    _frame(ax, ex, W, 3.45, 9.4)
    text(ax, ex - W / 2 - 0.6, 6.4, "L×", fs=15, ha="right", weight="bold")
    ls = ex - W / 2 - 0.2
    mha = _sublayer(ax, ex, 4.95, W, "Multi-Head\nSelf-Attention", "attn", fs=11.5)
    an1 = _sublayer(ax, ex, 6.2, W, "Add & Norm", "norm")
    ff = _sublayer(ax, ex, 7.6, W, "Feed Forward", "ff")
    an2 = _sublayer(ax, ex, 8.8, W, "Add & Norm", "norm")
    _qkv_in(ax, mha, 3.95)
    _residual(ax, ls, 3.7, ex, an1)
    arrow(ax, mha.t, an1.b)
    line(ax, an1.t, (ex, 6.9))
    arrow(ax, (ex, 6.9), ff.b)
    _residual(ax, ls, 6.9, ex, an2)
    arrow(ax, ff.t, an2.b)

    # ---- decoder layer (x L)
    _frame(ax, dx, W, 3.45, 13.0)
    text(ax, dx + W / 2 + 0.6, 8.2, "×L", fs=15, ha="left", weight="bold")
    rs = dx + W / 2 + 0.2
    mm = _sublayer(ax, dx, 4.95, W, "Masked Multi-Head\nSelf-Attention", "attn", fs=11.5)
    dan1 = _sublayer(ax, dx, 6.2, W, "Add & Norm", "norm")
    ca = _sublayer(ax, dx, 8.55, W, "Multi-Head\nCross-Attention", "attn", fs=11.5)
    dan2 = _sublayer(ax, dx, 9.8, W, "Add & Norm", "norm")
    dff = _sublayer(ax, dx, 11.2, W, "Feed Forward", "ff")
    dan3 = _sublayer(ax, dx, 12.4, W, "Add & Norm", "norm")
    _qkv_in(ax, mm, 3.95)
    _residual(ax, rs, 3.7, dx, dan1)
    arrow(ax, mm.t, dan1.b)
    # queries: from the decoder's own stream
    qx, kx, vx = dx + W * 0.3, dx - W * 0.3, dx
    line(ax, dan1.t, (dx, 6.95), (qx, 6.95))
    arrow(ax, (qx, 6.95), (qx, ca.b[1]), lw=1.6, ms=12)
    text(ax, qx + 0.1, ca.b[1] - 0.22, "Q", fs=11, ha="left", weight="bold")
    _residual(ax, rs, 6.95, qx, dan2)
    arrow(ax, ca.t, dan2.b)
    line(ax, dan2.t, (dx, 10.5))
    arrow(ax, (dx, 10.5), dff.b)
    _residual(ax, rs, 10.5, dx, dan3)
    arrow(ax, dff.t, dan3.b)
    # keys and values: from the encoder output (memory)
    line(ax, an2.t, (ex, 9.9), (7.0, 9.9), (7.0, 7.45), (vx, 7.45), color=mcol, lw=2.2)
    dot(ax, kx, 7.45, color=mcol, r=0.08)
    for x, lab in [(kx, "K"), (vx, "V")]:
        arrow(ax, (x, 7.45), (x, ca.b[1]), color=mcol, lw=2.2, ms=13)
        text(ax, x + 0.1, ca.b[1] - 0.22, lab, fs=11, ha="left", weight="bold", color=mcol)
    text(ax, 5.65, 10.2, "encoder output (memory)", fs=10.5, color=mcol)

    # ---- top: linear, softmax
    lin = box(ax, dx, 13.9, W, 0.7, "Linear", fc="#E8E0F5", ec="#7A4BA6", fs=12.5)
    sm = box(ax, dx, 15.0, W, 0.7, "Softmax", fc="#DDF1E0", ec="#2E8B57", fs=12.5)
    arrow(ax, dan3.t, lin.b)
    arrow(ax, lin.t, sm.b)
    arrow(ax, sm.t, (dx, 15.8))
    text(ax, dx, 16.1, "Output probabilities", fs=12)

    # ---- notes
    nx = 0.2
    text(ax, nx, 15.6, "Cross-attention:", fs=11.5, ha="left", weight="bold")
    text(ax, nx, 14.95, "queries Q from the decoder,", fs=11, ha="left")
    text(ax, nx, 14.45, "keys K and values V from the encoder\noutput (memory)", fs=11,
         ha="left", color=mcol, va="top")
    text(ax, nx, 13.05, "Post-LN, as in the paper:", fs=11.5, ha="left", weight="bold")
    post_ln = r"$x \leftarrow \mathrm{LayerNorm}(x + \mathrm{Dropout}(\mathrm{Sublayer}(x)))$"
    text(ax, nx, 12.5, post_ln, fs=11, ha="left")
    text(ax, nx, 11.6, "Masked: a causal mask, so position $i$\nattends only to positions"
         r" $\leq i$", fs=11, ha="left", va="top", color=MUTED)
    return save(fig, out_dir, "transformer.png")


# ---------------------------------------------------------------------------------------------
# 8. attention_masks.png: causal, padding and combined masks (True = may attend).
# ---------------------------------------------------------------------------------------------
def _mask(ax, x0, y0, m, cell, title, col_labels=None):
    T = m.shape[0]
    for i in range(T):
        for j in range(T):
            ax.add_patch(Rectangle((x0 + j * cell, y0 + (T - 1 - i) * cell), cell, cell,
                                   fc=MASK_TRUE if m[i, j] else MASK_FALSE, ec="white", lw=1.5,
                                   zorder=2))
    ax.add_patch(Rectangle((x0, y0), T * cell, T * cell, fc="none", ec="#555555", lw=1.0,
                           zorder=3))
    for k in range(T):
        text(ax, x0 - 0.12, y0 + (T - 0.5 - k) * cell, str(k), fs=10, ha="right", color=MUTED)
        text(ax, x0 + (k + 0.5) * cell, y0 + T * cell + 0.14, str(k), fs=10, va="bottom",
             color=MUTED)
        if col_labels:
            lab = col_labels[k]
            text(ax, x0 + (k + 0.5) * cell, y0 - 0.12, lab, fs=9.5, va="top",
                 color=GRAD if lab == "PAD" else MUTED)
    text(ax, x0 + T * cell / 2, y0 + T * cell + 0.62, "key  j", fs=10.5)
    text(ax, x0 - 0.55, y0 + T * cell / 2, "query  i", fs=10.5, rotation=90)
    text(ax, x0 + T * cell / 2, y0 - 0.72, title, fs=11.5, va="top")


def fig_attention_masks(out_dir):
    T = 6
    causal = np.tril(np.ones((T, T), bool))
    pad = np.ones((T, T), bool)
    pad[:, -2:] = False
    both = causal & pad
    fig, ax = canvas(-0.2, 17.2, -1.6, 5.6, scale=0.6)
    cell = 0.55
    xs = [1.0, 6.8, 12.6]
    y0 = 0.6
    toks = ["w0", "w1", "w2", "w3", "PAD", "PAD"]
    _mask(ax, xs[0], y0, causal, cell, "causal_mask(6):  True where  j ≤ i\n"
          "(T, T), lower-triangular")
    _mask(ax, xs[1], y0, pad, cell, "padding_mask: True where key j\nis not padding;"
          " (N, 1, T) broadcast", col_labels=toks)
    _mask(ax, xs[2], y0, both, cell, "causal & padding\n(what a decoder uses)",
          col_labels=toks)
    text(ax, (xs[0] + T * cell + xs[1]) / 2, y0 + T * cell / 2, "&", fs=22, weight="bold")
    text(ax, (xs[1] + T * cell + xs[2]) / 2, y0 + T * cell / 2, "=", fs=24, weight="bold")
    text(ax, 8.5, 5.15, "True = may attend", fs=16, weight="bold")
    # legend
    lx, ly = 5.0, -1.3
    ax.add_patch(Rectangle((lx, ly - 0.16), 0.32, 0.32, fc=MASK_TRUE, ec="none"))
    text(ax, lx + 0.45, ly, "True: may attend", fs=10.5, ha="left")
    ax.add_patch(Rectangle((lx + 3.2, ly - 0.16), 0.32, 0.32, fc=MASK_FALSE, ec="#999999",
                           lw=0.8))
    text(ax, lx + 3.65, ly, "False: score set to −inf before the softmax", fs=10.5, ha="left")
    return save(fig, out_dir, "attention_masks.png")


# ---------------------------------------------------------------------------------------------
# 9. multihead.png: splitting into heads and merging back, and the classic reshape bug
#    (in words and shapes: the PyTorch calls are the student's to find).
# ---------------------------------------------------------------------------------------------
HEAD_COL = [("#D6E9FB", "#1E6FBF"), ("#FFE3CC", "#D2691E")]


def _grid(ax, x0, y0, rows, cell, title=None, row_labels=None, fs=8.5):
    """rows: list of lists of (head, position), drawn top to bottom."""
    n = len(rows)
    for r, row in enumerate(rows):
        for c, (hd, pos) in enumerate(row):
            face, edge = HEAD_COL[hd]
            ax.add_patch(Rectangle((x0 + c * cell, y0 + (n - 1 - r) * cell), cell, cell,
                                   fc=face, ec=edge, lw=0.9, zorder=2))
            text(ax, x0 + (c + 0.5) * cell, y0 + (n - 0.5 - r) * cell, str(pos), fs=fs)
        if row_labels:
            text(ax, x0 - 0.1, y0 + (n - 0.5 - r) * cell, row_labels[r], fs=9.5, ha="right",
                 color=MUTED)
    if title:
        text(ax, x0 + len(rows[0]) * cell / 2, y0 + n * cell + 0.12, title, fs=10.5,
             va="bottom")


def fig_multihead(out_dir):
    fig, ax = canvas(0, 21.3, 1.0, 11.8, scale=0.5)
    mono = "DejaVu Sans Mono"
    text(ax, 0.4, 11.3, "Multi-head attention: split d_model into h heads of"
         " d_k = d_model / h, attend per head, merge back", fs=13, ha="left", weight="bold")
    tw, ow, gap = 2.8, 2.4, 0.35
    xs = [0.4 + tw / 2 + k * (tw + ow + 2 * gap) for k in range(4)]       # tensors
    os_ = [x + tw / 2 + gap + ow / 2 for x in xs[:3]]                       # ops between
    y1, y2 = 9.7, 7.0

    def tensor(cx, cy, s, kind="x"):
        return box(ax, cx, cy, tw, 0.72, s, kind=kind, fs=10, family=mono)

    def op(cx, cy, s):
        return box(ax, cx, cy, ow, 0.8, s, kind="op", fs=9, family=mono, r=0.25)

    # row 1, left to right: split the heads
    r1 = [tensor(xs[0], y1, "(N, T, d_model)"), tensor(xs[1], y1, "(N, T, d_model)"),
          tensor(xs[2], y1, "(N, T, h, d_k)"), tensor(xs[3], y1, "(N, h, T, d_k)", "h")]
    for k, s_ in enumerate(["q/k/v_proj\n(linear)", "split d_model\ninto h × d_k",
                            "head axis next\nto the batch"]):
        o = op(os_[k], y1, s_)
        arrow(ax, r1[k].r, o.l, ms=11)
        arrow(ax, o.r, r1[k + 1].l, ms=11)
    text(ax, 0.4, y1 + 0.6, "x: the query, key or value input", fs=10, color=MUTED,
         ha="left")
    text(ax, xs[3] + tw / 2, y1 + 0.6, "Q, K, V: one (T, d_k) matrix per head", fs=10,
         color=MUTED, ha="right")
    # per-head attention between the rows
    at = box(ax, xs[3], (y1 + y2) / 2, 3.4, 1.0, "", kind="attn")
    text(ax, at.cx, at.cy + 0.2, "attention per head", fs=10.5)
    text(ax, at.cx, at.cy - 0.2, r"softmax$(QK^{\top}/\sqrt{d_k})\,V$", fs=11)
    arrow(ax, r1[3].b, at.t, ms=11)
    # row 2, right to left: merge the heads
    r2 = [tensor(xs[0], y2, "(N, T, d_model)"), tensor(xs[1], y2, "(N, T, d_model)"),
          tensor(xs[2], y2, "(N, T, h, d_k)"), tensor(xs[3], y2, "(N, h, T, d_k)", "h")]
    arrow(ax, at.b, r2[3].t, ms=11)
    for k, s_ in enumerate(["out_proj\n(linear)", "merge h × d_k\ninto d_model",
                            "head axis\nback"]):
        o = op(os_[k], y2, s_)
        arrow(ax, r2[k + 1].l, o.r, ms=11)
        arrow(ax, o.l, r2[k].r, ms=11)
    text(ax, xs[0], y2 - 0.6, "out", fs=10, color=MUTED)
    text(ax, os_[1], y2 - 0.65, "the heads side by side again, in order: head 0, head 1, ...",
         fs=9.5, color=MUTED)

    # example: T = 4, d_model = 8, h = 2, d_k = 4
    line(ax, (0.4, 5.6), (20.9, 5.6), color="#CCCCCC", lw=1.0)
    text(ax, 0.4, 5.15, "Example (one sequence): T = 4, d_model = 8, h = 2, d_k = 4;"
         "  numbers = token position, colour = head", fs=11.5, ha="left")
    cell, gy = 0.42, 2.55
    q = [[(c // 4, p) for c in range(8)] for p in range(4)]
    _grid(ax, 1.3, gy, q, cell, title="q_proj(x): (T, d_model)",
          row_labels=[f"t{p}" for p in range(4)])
    arrow(ax, (4.95, gy + 2 * cell), (6.0, gy + 2 * cell), ms=12)
    good = [[[(hd, p)] * 4 for p in range(4)] for hd in range(2)]
    _grid(ax, 6.4, gy, good[0], cell, title="head 0")
    _grid(ax, 8.5, gy, good[1], cell, title="head 1")
    text(ax, 8.24, gy - 0.2, "correct: head i = features\ni·d_k … (i+1)·d_k − 1 of every"
         " token:\nall 4 tokens, its own d_k features", fs=9.5, va="top", color=KIND["h"][1])
    flat = [(c // 4, p) for p in range(4) for c in range(8)]       # memory order
    bad = [[flat[(hd * 4 + r) * 4:(hd * 4 + r) * 4 + 4] for r in range(4)] for hd in range(2)]
    arrow(ax, (10.5, gy + 2 * cell), (11.7, gy + 2 * cell), color=GRAD, ms=12)
    _grid(ax, 12.1, gy, bad[0], cell, title="\"head 0\"")
    _grid(ax, 14.2, gy, bad[1], cell, title="\"head 1\"")
    text(ax, 13.94, gy - 0.2, "reshaped straight to (N, h, T, d_k):\nwrong, a \"row\" is half a"
         " token;\nhead 0 sees only tokens 0-1,\nhead 1 only tokens 2-3", fs=9.5, va="top",
         color=GRAD)
    bb = box(ax, 18.85, gy + 2 * cell, 3.9, 2.0, "", kind="white", ec=GRAD, lw=1.8)
    text(ax, bb.cx, bb.cy, "right shape,\nwrong heads:\nit mixes positions,\n"
         "the classic bug", fs=11, color=GRAD, weight="bold")
    return save(fig, out_dir, "multihead.png")


FIGURES = {
    "rnn": fig_rnn,
    "rnn_step_graph": fig_rnn_step_graph,
    "teacher_forcing": fig_teacher_forcing,
    "lstm": fig_lstm,
    "lstm1": fig_lstm1,
    "attention": fig_attention,
    "transformer": fig_transformer,
    "attention_masks": fig_attention_masks,
    "multihead": fig_multihead,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=FIGURE_DIR,
                    help="output folder (default: solutions/sequence_models/images, where the "
                    "notebooks link them and the release copies them)")
    ap.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="draw only these")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    for name in args.only or FIGURES:
        path = FIGURES[name](args.out)
        print(f"{path}  {os.path.getsize(path) / 1024:.0f} KB")
    print(f"{len(args.only or FIGURES)} figures in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
