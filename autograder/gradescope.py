"""``python -m autograder gradescope OUT.zip``: build a Gradescope autograder bundle.

The zip holds, at its root (Gradescope unpacks it into ``/autograder/source``):

- ``setup.sh``        makes ``/autograder/venv`` from a Python >= the course's minimum (it
  installs one from the image's packages where none fits) with the pinned numpy and the CPU
  build of the pinned torch;
- ``run_autograder``  grades ``/autograder/submission`` with the same checks as
  ``python -m autograder grade`` and writes ``/autograder/results/results.json`` as Gradescope
  shows it (:mod:`autograder.gradescope_results`: one test per graded function, in notebook
  order, Markdown feedback, the instructor's visibility policy);
- ``gradescope_config.json``  that policy and the order of the notebooks' graded cells;
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

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope setup: a virtual environment of its own, from a Python >= {min_python} that it checks,
# with the pinned numpy and the CPU build of the pinned torch.
#
# Tested on Debian 12 (bookworm) with nothing but Debian's own python3 (3.11), in a chroot with
# Gradescope's default limits: see tools/gradescope_chroot.sh in the course repository. On
# Gradescope's default base image (Ubuntu 22.04, Python 3.10) it installs Ubuntu's python3.11.
# Choose either image in Gradescope's autograder settings; Debian 12 needs no extra package but
# python3-venv, which this script installs when it is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
VENV="${{SEQLAB_VENV:-/autograder/venv}}"
MIN_PYTHON="{min_python}"

fits() {{  # fits PYTHON: exit status 0 when it runs and is at least MIN_PYTHON
    "$1" -c "import sys; need = tuple(map(int, '$MIN_PYTHON'.split('.')))
sys.exit(sys.version_info[:2] < need)" 2>/dev/null
}}
find_python() {{
    for name in python3.13 python3.12 python3.11 python3; do
        if command -v "$name" >/dev/null 2>&1 && fits "$(command -v "$name")"; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}}

PYTHON="$(find_python || true)"
if [ -z "$PYTHON" ]; then
    echo "setup.sh: no Python >= $MIN_PYTHON on this image; installing python$MIN_PYTHON"
    apt-get update -qq
    apt-get install -y -qq "python$MIN_PYTHON" "python$MIN_PYTHON-venv"
    PYTHON="$(find_python)" || {{ echo "setup.sh: no Python >= $MIN_PYTHON" >&2; exit 1; }}
fi
VERSION="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
echo "setup.sh: using $PYTHON (Python $VERSION)"
# Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package.
if ! "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then
    apt-get update -qq
    apt-get install -y -qq "python$VERSION-venv"
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --no-cache-dir --disable-pip-version-check -q)
"${{PIP[@]}}" "numpy=={numpy}"
"${{PIP[@]}}" "torch=={torch}" --index-url https://download.pytorch.org/whl/cpu \
    || "${{PIP[@]}}" "torch=={torch}"
# The graded code runs as an unprivileged user: it must be able to read the environment.
chmod -R a+rX "$VENV"
"$VENV/bin/python" -c "import numpy, torch
print('setup.sh: numpy', numpy.__version__, '| torch', torch.__version__)"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope entry point: grade /autograder/submission with the seqlab hidden checks.
set -u
ROOT="${SEQLAB_AUTOGRADER_ROOT:-/autograder}"
PY="${SEQLAB_PYTHON:-$ROOT/venv/bin/python}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
rm -f "$RESULTS"
# Student code runs under its own uid: keep the reference and the results out of its reach.
chmod -R go-rwx "$ROOT/source" 2>/dev/null || true
chmod 755 "$ROOT/results" 2>/dev/null || true
cd "$ROOT/source"
# Isolation: Gradescope's container (Docker's default capabilities and seccomp filter) allows
# no namespace, so workers get the 'reduced' level: a fresh uid without capabilities, rlimits,
# and the course made unreadable to it above. One submission per container: nothing of other
# students to reach. What this level does not stop is listed in autograder/README.md.
# The results as Gradescope shows them: one test per graded function, in notebook order, Markdown
# feedback, the instructor's visibility policy (gradescope_config.json).
# Only the bundle's own grader: never one installed elsewhere in this Python (an editable
# install of a course clone would be found by name when source/autograder is missing).
if [ -f "$ROOT/source/autograder/__main__.py" ]; then
    # shellcheck disable=SC2086
    "$PY" -m autograder grade "$ROOT/submission" --json "$RESULTS" --jobs 2 \
        --allow-isolation reduced --gradescope-config "$ROOT/source/gradescope_config.json" \
        ${SEQLAB_GRADE_ARGS:-}
    status=$?
else
    echo "run_autograder: no autograder package in $ROOT/source" >&2
    status=1
fi
if [ ! -s "$RESULTS" ]; then
    cat > "$RESULTS" <<EOF
{"score": 0.0, "tests": [],
 "output": "The autograder could not grade this submission (status $status): ask the staff."}
EOF
fi
exit 0
"""

def _pins():
    text = (paths.course_root() / "requirements.txt").read_text()
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(numpy|torch)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
    return pins


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
    pins = _pins()
    return SETUP_SH.format(numpy=pins.get("numpy", "2.4.6"), torch=pins.get("torch", "2.13.0"),
                           min_python=min_python())


def config(visibility: str = "visible", hints: str = "with_feedback") -> dict:
    """gradescope_config.json: the visibility policy and the notebooks' graded cells in order."""
    return make_config(sorted(paths.source_dir().glob("[0-9][0-9]_*.ipynb")), visibility, hints)


def build(out_zip: str | Path, visibility: str = "visible",
          hints: str = "with_feedback") -> list[str]:
    """Write the bundle; returns the list of archive names.

    ``visibility``: of every test on Gradescope (visible, after_due_date, after_published,
    hidden); ``hints``: ``with_feedback`` or ``after_due_date`` (held back in a separate
    0-point test per function).
    """
    root = paths.course_root()
    policy = config(visibility, hints)
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
    out = args.out
    names = build(out, args.visibility, args.hints)
    from autograder.checks.core import all_checks
    total = sum(c.points for c in all_checks())
    print(f"wrote {out}: {len(names)} files (setup.sh, run_autograder, autograder/, "
          f"the reference and the release)")
    print(f"In Gradescope: a Programming Assignment worth {total:g} points; students upload "
          f"the five module files or their sequence_models folder (see docs/gradescope.md).")
    return 0
