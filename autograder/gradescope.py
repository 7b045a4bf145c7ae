"""``python -m autograder gradescope OUT.zip``: build a Gradescope autograder bundle.

The zip holds, at its root (Gradescope unpacks it into ``/autograder/source``):

- ``setup.sh`` and ``run_autograder``, the files of ``gradescope_bundle/`` (each says what it
  does; setup.sh gets the pins of requirements.txt): a venv with the pinned numpy and torch;
  ``/autograder/submission`` graded into ``/autograder/results/results.json`` as Gradescope
  shows it (:mod:`autograder.gradescope_results`);
- ``gradescope_config.json``  the instructor's visibility policy and the order of the
  notebooks' graded cells;
- ``autograder/``     this package (the hidden checks);
- ``solutions/sequence_models/seqlab/``   the reference (never visible to student code: the
  workers run under a fresh uid, which ``run_autograder`` keeps out of the course folder);
- ``assignments/sequence_models/seqlab/`` the release, for the given files and stubs
  (when it has been generated);
- ``requirements.txt``.

``run_autograder`` reads ``SEQLAB_AUTOGRADER_ROOT`` (default ``/autograder``), ``SEQLAB_PYTHON``
(default ``/autograder/venv/bin/python``) and ``SEQLAB_GRADE_ARGS`` (extra arguments, e.g.
``--only ...``), so that a test can run it in a temporary folder. It always leaves a valid
results.json. What to choose in Gradescope's settings: docs/gradescope.md.
"""
import argparse
import json
import re
from pathlib import Path

from autograder import paths
from autograder.course import ASSIGNMENT, PACKAGE
from autograder.gradescope_results import CONFIG_NAME, make_config
from autograder.release import write_zip

FILES = Path(__file__).resolve().parent / "gradescope_bundle"  # setup.sh, run_autograder
RUN_AUTOGRADER = (FILES / "run_autograder").read_text()


def _tree(folder, arcroot):
    """Zip entries of the packed files under ``folder``, named ``arcroot/<relative path>``."""
    return [(f"{arcroot}/{rel.as_posix()}", (folder / rel).read_bytes())
            for rel in paths.packed_files(folder)]


def min_python() -> str:
    """The course's minimum Python ("3.11"), from pyproject.toml's requires-python."""
    text = (paths.course_root() / "pyproject.toml").read_text()
    match = re.search(r'requires-python\s*=\s*">=\s*(3\.\d+)"', text)
    return match.group(1) if match else "3.11"


def setup_script() -> str:
    """The text of setup.sh, with the pins of requirements.txt and the minimum Python."""
    pins = {"numpy": "2.4.6", "torch": "2.13.0"}
    for line in (paths.course_root() / "requirements.txt").read_text().splitlines():
        m = re.match(r"^\s*(numpy|torch)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
    text = (FILES / "setup.sh").read_text()
    for key, value in {**pins, "min_python": min_python()}.items():
        text = text.replace(f"@{key.upper()}@", value)
    return text


def build(out_zip: str | Path, visibility: str = "visible",
          hints: str = "with_feedback") -> list[str]:
    """Write the bundle; returns the list of archive names.

    ``visibility``: of every test on Gradescope (visible, after_due_date, after_published,
    hidden); ``hints``: ``with_feedback`` or ``after_due_date`` (held back in a separate
    0-point test per function).
    """
    root = paths.course_root()
    # the visibility policy and the notebooks' graded cells in order
    policy = make_config(sorted(paths.source_dir().glob("[0-9][0-9]_*.ipynb")), visibility, hints)
    entries = [("setup.sh", setup_script(), 0o755), ("run_autograder", RUN_AUTOGRADER, 0o755),
               (CONFIG_NAME, json.dumps(policy, indent=1) + "\n"),
               ("requirements.txt", (root / "requirements.txt").read_bytes())]
    entries += _tree(paths.autograder_dir(), "autograder")
    entries += _tree(paths.reference_dir(), f"solutions/{ASSIGNMENT}/{PACKAGE}")
    if paths.release_dir().is_dir():
        entries += _tree(paths.release_dir(), f"assignments/{ASSIGNMENT}/{PACKAGE}")
    write_zip(out_zip, entries)
    return [name for name, *_ in entries]


def run(args: argparse.Namespace) -> int:
    """The ``gradescope OUT`` command: build the bundle and say what to set up; exit status."""
    names = build(args.out, args.visibility, args.hints)
    from autograder.checks.core import all_checks
    total = sum(c.points for c in all_checks())
    print(f"wrote {args.out}: {len(names)} files (setup.sh, run_autograder, autograder/, "
          f"the reference and the release)")
    print(f"In Gradescope: a Programming Assignment worth {total:g} points; students upload "
          f"the five module files or their sequence_models folder (see docs/gradescope.md).")
    return 0
