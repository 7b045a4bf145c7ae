"""Pictures for the captioning notebooks (given code; matplotlib).

Each function draws a new figure and returns it. In a notebook the inline backend shows the
figure at the end of the cell; assign the result (``fig = show_captions_grid(...)``) or end
the line with ``;`` so that it is not shown twice.
"""
import textwrap

import numpy as np


def _plt():
    import matplotlib.pyplot as plt
    return plt


def _wrap(text, width):
    if isinstance(text, (list, tuple)):
        return "\n".join(_wrap(t, width) for t in text)
    return "\n".join(textwrap.wrap(str(text), width)) if text else ""


def show_captions_grid(images, captions, ncols=4, panel_size=2.4, wrap=34, fontsize=7):
    """Images in a grid, each with its caption(s) underneath.

    Inputs:
    - images: (N, H, W, 3) uint8 (or a list of such images).
    - captions: N captions; each is a string or a list of strings (one line each, e.g.
      ``["GT: a small red circle ...", "model: a small red circle ..."]``).
    - ncols: panels per row; panel_size: inches per panel; wrap: characters per text line.

    Returns the matplotlib figure.
    """
    plt = _plt()
    n = len(images)
    if len(captions) != n:
        raise ValueError(f"{n} images but {len(captions)} captions")
    texts = [_wrap(c, wrap) for c in captions]
    lines = max([t.count("\n") + 1 for t in texts] + [1])
    text_h = lines * fontsize * 1.3 / 72 + 0.1                       # inches under each image
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    width, height = panel_size * ncols, (panel_size + text_h) * nrows + 0.1
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.05 / height, bottom=text_h / height,
                        wspace=0.08, hspace=text_h / panel_size)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        ax.imshow(np.asarray(images[i]))
        ax.text(0.5, -0.02, texts[i], transform=ax.transAxes, ha="center", va="top",
                fontsize=fontsize)
    return fig


def attention_image(image, weights, floor=0.15):
    """The image darkened where the attention is low: a "spotlight" view of a 4x4 map.

    Inputs: image (H, W, 3) uint8 with H, W multiples of 4; weights (16,) or (4, 4) (row-major
    grid cells, as the grid features). Each grid cell keeps a fraction
    ``floor + (1 - floor) * w / max(w)`` of its brightness. Returns (H, W, 3) uint8.
    """
    image = np.asarray(image)
    w = np.asarray(weights, dtype=np.float64).reshape(4, 4)
    w = w / max(w.max(), 1e-12)
    h, wd = image.shape[:2]
    up = np.kron(w, np.ones((h // 4, wd // 4)))[..., None]
    return np.clip(image * (floor + (1 - floor) * up), 0, 255).astype(np.uint8)


def draw_attention(ax, image, weights, title=None, grid_lines=True, fontsize=9):
    """Draw one attention map over an image on a matplotlib axis (see ``attention_image``)."""
    ax.imshow(attention_image(image, weights))
    h, w = np.asarray(image).shape[:2]
    if grid_lines:
        for k in range(1, 4):
            ax.axhline(k * h / 4 - 0.5, color="white", lw=0.4, alpha=0.5)
            ax.axvline(k * w / 4 - 0.5, color="white", lw=0.4, alpha=0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=fontsize)


def show_attention(image, words, attn_weights, ncols=6, panel_size=1.8, caption=None):
    """Where an attention captioner looked while it produced each word.

    Inputs:
    - image: (64, 64, 3) uint8.
    - words: the T' produced words (a string is split on spaces), e.g.
      ``decode_captions(captions[i], idx_to_word).split()``.
    - attn_weights: (T, 16) or (T, 4, 4) with T >= T': row t holds the weights over the 4x4
      grid (row-major) of the step that produced word t, e.g. ``attn[i]`` from
      ``model.sample(features, return_attention=True)``.
    - caption: optional title (default: the words joined).

    The first panel is the plain image; then one panel per word, the image lit where the
    attention is. Returns the matplotlib figure.
    """
    plt = _plt()
    words = words.split() if isinstance(words, str) else list(words)
    attn = np.asarray(attn_weights, dtype=np.float64).reshape(len(attn_weights), -1)
    if attn.shape[1] != 16:
        raise ValueError(f"attention weights must have 16 (4x4) entries per step, got {attn.shape}")
    if len(attn) < len(words):
        raise ValueError(f"{len(words)} words but attention for only {len(attn)} steps")
    n = len(words) + 1
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    title = _wrap(caption if caption is not None else " ".join(words), 100)
    # each row: the panel and its word title above it; on top, the lines of the figure title
    title_height = 0.2 * (title.count("\n") + 1) + 0.2
    figsize = (panel_size * ncols, (panel_size + 0.35) * nrows + title_height)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(np.asarray(image))
    axes.flat[0].set_title("image", fontsize=9)
    for t, word in enumerate(words):
        ax = axes.flat[t + 1]
        ax.axis("on")
        draw_attention(ax, image, attn[t], title=word)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(h_pad=1.0)
    return fig
