"""images/make_figures.py draws every diagram the notebooks show."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "images" / "make_figures.py"
EXPECTED = [
    "rnn.png", "rnn_step_graph.png", "teacher_forcing.png", "lstm.png", "lstm1.png",
    "attention.png", "transformer.png", "attention_masks.png", "multihead.png",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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
