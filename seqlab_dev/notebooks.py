"""Running a course notebook end to end, as a student who solved everything would.

A release notebook (``assignments/sequence_models/``) is executed in a scratch copy of the
release where the reference student modules replace the stubs (:func:`scratch_release`), by a
kernel started with :func:`kernel_env`. Used by tests/test_notebooks.py (which asserts what the
cells show) and benchmarks/notebooks.py (which times them).
"""
import os
import shutil
import sys
from pathlib import Path

from autograder import course
from seqlab_dev import ROOT

SOURCE_DIR = ROOT / "solutions" / course.ASSIGNMENT
RELEASE_DIR = ROOT / "assignments" / course.ASSIGNMENT
DATASETS_DIR = ROOT / "datasets"

# The notebook files, in course order (the course manifest's).
NOTEBOOKS = [course.notebook_file(key) for key in course.NOTEBOOKS]

# Per-cell timeout in seconds: SEQLAB_NOTEBOOK_TIMEOUT, else 600.
CELL_TIMEOUT = int(os.environ.get("SEQLAB_NOTEBOOK_TIMEOUT", "600"))


def read(path):
    """The notebook at ``path`` (a ``Path`` or str), as an nbformat v4 NotebookNode."""
    import nbformat
    return nbformat.read(str(path), as_version=4)


def scratch_release(folder: Path) -> Path:
    """Copy the release into ``folder/sequence_models`` with the reference student modules
    over the stubs; returns the copy (the kernel's working folder, whose ``seqlab/`` the
    notebooks import)."""
    work = Path(folder) / course.ASSIGNMENT
    shutil.copytree(RELEASE_DIR, work,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints",
                                                  "cache"))
    for mod in course.STUDENT_MODULES:
        src = SOURCE_DIR / course.PACKAGE / f"{mod}.py"
        if src.exists():
            shutil.copy2(src, work / course.PACKAGE / f"{mod}.py")
    return work


def kernel_env() -> dict:
    """The environment of a notebook kernel: this one without PYTHONPATH (``seqlab`` comes
    from the kernel's working folder; a release notebook imports nothing of the grader), with
    this interpreter first on PATH (the ``python3`` kernel is this environment's), the course's
    data folder, an inline matplotlib backend and no debugger warning on stderr."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["SEQLAB_DATA_DIR"] = str(DATASETS_DIR)
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env
