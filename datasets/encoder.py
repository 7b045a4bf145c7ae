"""The image encoder of the shapes captioning data: a small CNN that turns a 64x64 scene into
a 4x4 grid of feature vectors and one pooled vector (PyTorch, BatchNorm, about 200k parameters).

    image (64x64x3) -> space-to-depth 2x2         12 channels, 32x32
                    -> conv-BN-ReLU, maxpool      32 channels, 16x16
                    -> conv-BN-ReLU, maxpool      64 channels,  8x8
                    -> + (x, y) coordinate channels -> conv-BN-ReLU, maxpool   128 ch, 4x4
                    -> + (x, y) coordinate channels -> 1x1 conv -> BN   = grid features (16, C)
    grid (16 x C)   -> 1x1 projection to 16 channels, flatten (256) -> MLP -> BN
                                                                      = pooled feature (C)

Where a grid vector came from. An attention layer sees the 16 grid vectors as an unordered
set: the weighted sum it returns does not know which cells the weights fell on. The caption,
however, has to say where each object is ("... in the top right"). So the position must be
*inside* each vector. The encoder does this in two ways:

* CoordConv: before the last two layers, two constant channels holding the x and y coordinate
  of every location (from -1 to 1) are appended to the feature map, so the last layers can mix
  "where" into "what";
* training: each grid vector was trained (with one linear classifier shared by all 16 cells)
  to tell the colour, shape and size of the object covering its cell, the 3x3 layout position
  of that object and its own cell index (0..15). A shared classifier can only do that if the
  position is written into the vector itself.

Grid cell p (row-major, p = 4 * row + col) covers pixels [16 row, 16 row + 16) x
[16 col, 16 col + 16) of the image. The pooled vector was trained to tell, for each of the 9
layout cells, the colour, shape and size of its object (or that it is empty), and for the 1st,
2nd and 3rd object in reading order (the order in which captions name them) its colour, shape,
size and layout position: a summary of the whole scene for captioners that start from one
vector (RNN, LSTM). Both outputs end with a BatchNorm without ReLU, so each feature is roughly
zero-mean with unit variance.

The encoder was trained once by ``datasets/train_encoder.py`` on the training split; its
weights ship as ``datasets/shapes_encoder.npz`` (float16).
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "shapes_encoder.npz"
FEATURE_DIM = 128
GRID = 4


def coord_channels(x):
    """x (N, C, H, W) -> (N, C + 2, H, W) with x and y coordinates in [-1, 1] appended."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([xx, yy]).expand(n, 2, h, w)
    return torch.cat([x, coords], dim=1)


def conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ShapesEncoder(nn.Module):
    """forward(images) -> (pooled (N, C), grid (N, 16, C)); images uint8 (N, 64, 64, 3)."""

    def __init__(self, feature_dim=FEATURE_DIM):
        super().__init__()
        self.block1 = conv_bn_relu(12, 32)
        self.block2 = conv_bn_relu(32, 64)
        self.block3 = conv_bn_relu(64 + 2, 128)
        self.grid_proj = nn.Conv2d(128 + 2, feature_dim, 1, bias=False)
        self.grid_norm = nn.BatchNorm2d(feature_dim)
        self.pool_reduce = nn.Linear(feature_dim, 16)
        self.pool_mlp = nn.Sequential(nn.Linear(16 * GRID * GRID, 256), nn.ReLU(inplace=True),
                                      nn.Linear(256, feature_dim, bias=False))
        self.pool_norm = nn.BatchNorm1d(feature_dim)
        self.pool = nn.MaxPool2d(2)

    def forward(self, images):
        x = images.permute(0, 3, 1, 2).float() * (1.0 / 64.0) - 2.0     # uint8 -> about [-2, 2]
        x = nn.functional.pixel_unshuffle(x, 2)                         # (N, 12, 32, 32)
        x = self.pool(self.block1(x))
        x = self.pool(self.block2(x))
        x = self.pool(self.block3(coord_channels(x)))
        g = self.grid_norm(self.grid_proj(coord_channels(x)))           # (N, C, 4, 4)
        grid = g.flatten(2).transpose(1, 2)                             # (N, 16, C) row-major
        p = self.pool_reduce(grid).flatten(1)                           # (N, 256)
        pooled = self.pool_norm(self.pool_mlp(p))
        return pooled, grid


def save_weights(model, path=WEIGHTS):
    """State dict as float16 arrays in an .npz (BatchNorm counters dropped)."""
    arrays = {k: v.detach().cpu().numpy().astype(np.float16)
              for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    np.savez_compressed(path, **arrays)


def load_encoder(path=WEIGHTS, fuse=False):
    """ShapesEncoder in eval mode with the shipped weights.

    fuse=True folds each BatchNorm of the conv blocks into its convolution (the same function,
    up to float round-off, and faster).
    """
    model = ShapesEncoder()
    with np.load(path) as f:
        state = {k: torch.from_numpy(f[k].astype(np.float32)) for k in f.files}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the encoder "
                         f"(missing {missing}, unexpected {unexpected})")
    model.eval()
    if fuse:
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        for block in (model.block1, model.block2, model.block3):
            block[0] = fuse_conv_bn_eval(block[0], block[1])
            block[1] = nn.Identity()
    return model


def extract_features(images, path=WEIGHTS, batch_size=500, threads=2):
    """Features of images (N, 64, 64, 3) uint8 -> pooled (N, C), grid (N, 16, C) float32."""
    model = load_encoder(path, fuse=True)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        pooled, grid = [], []
        with torch.inference_mode():
            for a in range(0, len(images), batch_size):
                p, g = model(torch.from_numpy(np.ascontiguousarray(images[a:a + batch_size])))
                pooled.append(p.numpy())
                grid.append(g.numpy())
    finally:
        torch.set_num_threads(old)
    return np.concatenate(pooled).astype(np.float32), np.concatenate(grid).astype(np.float32)
