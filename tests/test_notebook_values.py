"""The expected values hard-coded in the public check cells of notebooks 02 and 03, verified
independently.

The check cells compare a student's function with fixed numbers (``expected_... = np.asarray(...)``
and ``check_close("loss", loss, <number>)``). Those numbers were printed from the reference code;
here they are read back from the source notebooks and recomputed with PyTorch autograd twins of
the same math in float64 (not with the reference), so a wrong constant cannot hide behind a
wrong reference. The LSTM values are CS231n's published ones (also checked against torch in
``test_numpy_layers_reference.py``); the LSTM captioning loss is CS231n's published 9.82445935443.
"""
import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.checks import twins
from seqlab.gradient_check import rel_error

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "solutions" / "sequence_models"
F64 = torch.float64


def check_cell(notebook, api):
    nb = json.loads((NB_DIR / notebook).read_text())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == f"public_{api}":
            return "".join(cell["source"])
    pytest.fail(f"{notebook} has no public_{api} cell (the public checks of {api})")


def constants(src):
    """``name = np.asarray(<literal>)`` assignments; the number of ``check_close("loss", ...)``."""
    out = {}
    for node in ast.walk(ast.parse(src)):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "attr", "") == "asarray"
                and isinstance(node.targets[0], ast.Name)):
            out[node.targets[0].id] = np.asarray(ast.literal_eval(node.value.args[0]))
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "check_close"
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == "loss"):
            out["loss"] = ast.literal_eval(node.args[2])
    return out


def lin(lo, hi, *shape):
    return torch.linspace(lo, hi, math.prod(shape), dtype=F64).reshape(*shape)


# ----------------------------------------------------- torch twins (autograder/checks/twins.py)

def t_caption_loss(cell_type, params, features, captions, null=0):
    p = {k: torch.tensor(v, dtype=F64) for k, v in params.items()}
    return float(twins.caption_loss(cell_type, p, torch.tensor(features, dtype=F64),
                                    torch.tensor(captions), null))


def assert_matches(name, notebook_value, torch_value, tol=1e-8):   # 10 decimals printed
    torch_value = np.asarray(torch_value)
    assert np.shape(notebook_value) == torch_value.shape, name
    err = rel_error(notebook_value, torch_value)
    assert err < tol, f"{name}: the notebook's constant differs from torch by {err:.1e}"


# ------------------------------------------------------------------------------- notebook 03

NB03 = "03_attention_captioning.ipynb"


def test_dot_product_attention_forward_values():
    c = constants(check_cell(NB03, "dot_product_attention_forward"))
    attn, w = twins.attention(lin(-0.4, 0.6, 2, 3), lin(-1.0, 1.5, 2, 4, 3))
    assert_matches("expected_attn", c["expected_attn"], attn.numpy())
    assert_matches("expected_weights", c["expected_weights"], w.numpy())


def test_attention_lstm_step_forward_values():
    c = constants(check_cell(NB03, "attention_lstm_step_forward"))
    N, D, H = 3, 4, 5
    x, h, cc = lin(-0.4, 1.2, N, D), lin(-0.3, 0.7, N, H), lin(-0.4, 0.9, N, H)
    attn = lin(0.6, -0.2, N, H)
    Wx, Wh = lin(-2.1, 1.3, D, 4 * H), lin(-0.7, 2.2, H, 4 * H)
    Wattn, b = lin(1.0, -0.5, H, 4 * H), lin(0.3, 0.7, 4 * H)
    nh, nc = twins.lstm_gates(x @ Wx + h @ Wh + attn @ Wattn + b, cc)
    assert_matches("expected_next_h", c["expected_next_h"], nh.numpy())
    assert_matches("expected_next_c", c["expected_next_c"], nc.numpy())


def test_attention_lstm_forward_values():
    c = constants(check_cell(NB03, "attention_lstm_forward"))
    N, T, D, P, H = 2, 3, 5, 4, 4
    h, w = twins.attention_lstm(lin(-0.4, 0.6, N, T, D), lin(-0.8, 0.9, N, P, H),
                            lin(-0.2, 0.9, D, 4 * H), lin(-0.3, 0.6, H, 4 * H),
                            lin(0.5, -0.4, H, 4 * H), lin(0.2, 0.7, 4 * H))
    assert_matches("expected_h", c["expected_h"], h.numpy())
    assert_matches("expected_weights", c["expected_weights"], w.numpy())


def _linspace_model(cell_type, N, D, W, H, T, P=None):
    V = 3                                      # {"<NULL>": 0, "cat": 2, "dog": 3}: 3 entries
    k = 4
    shapes = {"W_proj": (D, H), "b_proj": (H,), "W_embed": (V, W), "Wx": (W, k * H),
              "Wh": (H, k * H), "b": (k * H,), "W_vocab": (H, V), "b_vocab": (V,)}
    if cell_type == "attention":
        shapes["Wattn"] = (H, k * H)
    params = {n: np.linspace(-1.4, 1.3, num=math.prod(s)).reshape(s) for n, s in shapes.items()}
    fshape = (N, D) if P is None else (N, P, D)
    features = np.linspace(-0.5, 1.7, num=math.prod(fshape)).reshape(fshape)
    captions = (np.arange(N * T) % V).reshape(N, T)
    return params, features, captions


def test_captioning_attention_loss_value():
    c = constants(check_cell(NB03, "CaptioningRNN_attention"))
    params, features, captions = _linspace_model("attention", 10, 20, 30, 40, 13, P=16)
    assert abs(c["loss"] - t_caption_loss("attention", params, features, captions)) < 1e-9


# ------------------------------------------------------------------------------- notebook 02

def test_captioning_lstm_loss_value():
    c = constants(check_cell("02_lstm_captioning.ipynb", "CaptioningRNN_lstm"))
    params, features, captions = _linspace_model("lstm", 10, 20, 30, 40, 13)
    assert abs(c["loss"] - 9.82445935443) < 1e-11         # CS231n's published value
    assert abs(c["loss"] - t_caption_loss("lstm", params, features, captions)) < 1e-9
