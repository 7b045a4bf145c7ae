"""``python -m autograder data FOLDER``: the students' shared copy of the data, on a hub.

Copies the course's ``datasets/`` (generators, encoder weights and the cache if it was built)
to ``FOLDER``, builds the captioning data into ``FOLDER/cache/`` unless it is there already,
exactly where a student with ``SEQLAB_DATA_DIR=FOLDER`` reads it, and makes ``FOLDER``
readable by everyone (files a+r, folders a+rx; its parents must be traversable too, which
this checks). Running it again rebuilds nothing that is up to date.

Exit status 0 when the data is in place and readable by everyone, 1 otherwise, 2 for bad
arguments.
"""
import argparse
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from autograder import paths

LOAD = "from seqlab.data import load_captioning_data; load_captioning_data()"


def _make_world_readable(folder):
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        # a+r, and a+x on folders
        os.chmod(path, path.stat().st_mode | (0o555 if path.is_dir() else 0o444))


def _closed_parents(folder):
    """Parents of ``folder`` that other users cannot traverse."""
    return [p for p in folder.parents if not p.stat().st_mode & stat.S_IXOTH]


def build_shared(folder: Path) -> None:
    """Copy ``datasets/`` to ``folder`` (a Path), build its cache there and make it readable
    by everyone. Raises RuntimeError when the build fails."""
    source = paths.course_root() / "datasets"
    folder = folder.resolve()
    if folder != source.resolve():
        shutil.copytree(source, folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = dict(os.environ, SEQLAB_DATA_DIR=str(folder))
    cwd = paths.reference_dir().parent     # seqlab/data.py is a given module: the same file
    proc = subprocess.run([sys.executable, "-c", LOAD], cwd=cwd, env=env, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"building the data in {folder} failed (exit {proc.returncode})")
    _make_world_readable(folder)


def run(args: argparse.Namespace) -> int:
    """The ``data FOLDER`` command; returns the exit status."""
    folder = Path(args.folder)
    if folder.exists() and not folder.is_dir():
        print(f"error: folder: expected a folder, got the file {folder}", file=sys.stderr)
        return 2
    try:
        build_shared(folder)
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    closed = _closed_parents(folder.resolve())
    if closed:
        print(f"error: other users cannot reach {folder}: {', '.join(map(str, closed))} "
              "is not traversable by everyone (chmod o+x, or choose another folder)",
              file=sys.stderr)
        return 1
    print(f"the data is in {folder.resolve()}, readable by everyone; students need "
          f"SEQLAB_DATA_DIR={folder.resolve()}")
    return 0
