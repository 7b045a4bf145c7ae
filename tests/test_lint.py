"""The code passes ruff (rules E, F, W, B and I, configured in pyproject.toml).

ruff is a development requirement (``requirements-dev.txt``), not a student one: without it the
test is skipped, except under CI, where ``.ci/run`` installs it.
"""
import shutil
import subprocess
import sys
from pathlib import Path

from seqlab_dev.testing import require_e2e

ROOT = Path(__file__).resolve().parent.parent


def _ruff():
    exe = shutil.which("ruff") or (Path(sys.executable).parent / "ruff")
    if not Path(exe).exists():
        require_e2e("ruff is not installed (pip install -r requirements-dev.txt)")
    return str(exe)


def test_ruff_finds_nothing():
    proc = subprocess.run([_ruff(), "check", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_would_report_a_finding(tmp_path):
    """Positive control: the configured rules do fire (an unused import, a bare lambda name)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nl = 1\n", encoding="utf-8")
    proc = subprocess.run([_ruff(), "check", "--output-format", "concise", "--config",
                           str(ROOT / "pyproject.toml"), str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "F401" in proc.stdout and "E741" in proc.stdout, proc.stdout
