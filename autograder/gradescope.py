"""``python -m autograder gradescope OUT.zip``: build a Gradescope autograder bundle.

The zip holds, at its root (Gradescope unpacks it into ``/autograder/source``):

- ``setup.sh``        installs the pinned numpy and the CPU build of the pinned torch;
- ``run_autograder``  grades ``/autograder/submission`` with the same checks as
  ``python -m autograder grade`` and writes ``/autograder/results/results.json``;
- ``autograder/``     this package (the hidden checks);
- ``solutions/sequence_models/seqlab/``   the reference (never visible to student code: the
  workers run under a fresh uid, which ``run_autograder`` keeps out of the course folder);
- ``assignments/sequence_models/seqlab/`` the release, for the given files and stubs
  (when it has been generated);
- ``requirements.txt``.

``run_autograder`` reads ``SEQLAB_AUTOGRADER_ROOT`` (default ``/autograder``), ``SEQLAB_PYTHON``
(default ``python3``) and ``SEQLAB_GRADE_ARGS`` (extra arguments, e.g. ``--only ...``), so that
a test can run it in a temporary folder. It always leaves a valid results.json.
"""
import argparse
import io
import re
import sys
import zipfile
from pathlib import Path

from autograder import paths

SETUP_SH = """#!/usr/bin/env bash
# Gradescope setup: Python 3 with the pinned numpy and the CPU build of the pinned torch.
set -euo pipefail
if ! command -v python3 >/dev/null; then
    apt-get update && apt-get install -y python3 python3-pip
fi
python3 -m pip install --no-cache-dir "numpy=={numpy}"
CPU_INDEX=https://download.pytorch.org/whl/cpu
python3 -m pip install --no-cache-dir "torch=={torch}" --index-url "$CPU_INDEX" \\
    || python3 -m pip install --no-cache-dir "torch=={torch}"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope entry point: grade /autograder/submission with the seqlab hidden checks.
set -u
ROOT="${SEQLAB_AUTOGRADER_ROOT:-/autograder}"
PY="${SEQLAB_PYTHON:-python3}"
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
# shellcheck disable=SC2086
"$PY" -m autograder grade "$ROOT/submission" --json "$RESULTS" --jobs 2 \
    --allow-isolation reduced ${SEQLAB_GRADE_ARGS:-}
status=$?
if [ ! -s "$RESULTS" ]; then
    cat > "$RESULTS" <<EOF
{"score": 0.0, "output": "The autograder could not grade this submission (status $status). Please contact the course staff.", "tests": []}
EOF
fi
exit 0
"""

SKIP = re.compile(r"(__pycache__|\.pyc$|\.ipynb_checkpoints|\.pytest_cache)")


def _pins():
    text = (paths.course_root() / "requirements.txt").read_text()
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(numpy|torch)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[m.group(1)] = m.group(2)
    return pins


def _add_tree(zf, folder, arcroot):
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or SKIP.search(rel):
            continue
        _write(zf, f"{arcroot}/{rel}", path.read_bytes())


def _write(zf, name, data, mode=0o644):
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def build(out_zip):
    """Write the bundle; returns the list of archive names."""
    pins = _pins()
    root = paths.course_root()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _write(zf, "setup.sh", SETUP_SH.format(numpy=pins.get("numpy", "2.4.6"),
                                               torch=pins.get("torch", "2.13.0")), 0o755)
        _write(zf, "run_autograder", RUN_AUTOGRADER, 0o755)
        _write(zf, "requirements.txt", (root / "requirements.txt").read_bytes())
        _add_tree(zf, paths.autograder_dir(), "autograder")
        _add_tree(zf, paths.reference_dir(), f"solutions/{paths.ASSIGNMENT}/seqlab")
        if paths.release_dir().is_dir():
            _add_tree(zf, paths.release_dir(), f"assignments/{paths.ASSIGNMENT}/seqlab")
        names = zf.namelist()
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    out_zip.write_bytes(buf.getvalue())
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder gradescope",
                                     description="Build a Gradescope autograder bundle.")
    parser.add_argument("out", help="the zip to write")
    args = parser.parse_args(argv)
    names = build(args.out)
    print(f"wrote {args.out}: {len(names)} files (setup.sh, run_autograder, autograder/, "
          f"the reference and the release)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
