"""images/make_figures.py draws every diagram the notebooks show."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "images" / "make_figures.py"
EXPECTED = [
    "rnn.png", "rnn_step_graph.png", "teacher_forcing.png", "lstm.png", "lstm1.png",
    "attention.png", "transformer.png", "attention_masks.png", "multihead.png",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_make_figures_writes_every_png(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in EXPECTED:
        path = tmp_path / name
        assert path.is_file(), f"{name} was not written"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), f"{name} is not a PNG"
        assert 1_000 < len(data) < 200_000, f"{name}: {len(data)} bytes"
    # exactly these files, nothing else
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(EXPECTED)


def test_show_attention_titles_do_not_overlap_the_panels():
    """Every title of show_attention (the word above each panel, the figure title of two wrapped
    lines) stays clear of the panels: no title's box meets an image's box, in rows 2 and 3 too."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sys.path.insert(0, str(ROOT / "solutions" / "sequence_models"))
    from seqlab.visualize import show_attention

    rng = np.random.default_rng(0)
    image = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    words = ("a small red circle on the left and a large blue square on the right of the "
             "image with a few more words").split()                      # 22 words: 3 rows of 9
    caption = ["model: " + " ".join(words), "truth: " + " ".join(words)]
    fig = show_attention(image, words, rng.dirichlet(np.ones(16), size=len(words)), ncols=9,
                         caption=caption)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        panels = [ax for ax in fig.axes if ax.images]              # the image, one per word
        assert len(panels) == len(words) + 1
        titles = [ax.title for ax in panels] + [fig._suptitle]
        for title in titles:
            box = title.get_window_extent(renderer)
            for ax in panels:
                if ax.title is title:
                    continue
                assert not box.overlaps(ax.get_window_extent(renderer)), (
                    f"title {title.get_text()[:30]!r} overlaps a panel")
    finally:
        plt.close(fig)
