#!/usr/bin/env bash
# Gradescope setup: a virtual environment of its own, from a Python >= @MIN_PYTHON@ that it checks,
# with the pinned numpy and the CPU build of the pinned torch.
#
# Tested on Debian 12 (bookworm) with nothing but Debian's own python3 (3.11), in a chroot with
# Gradescope's default limits: see tools/gradescope_chroot.sh in the course repository. On
# Gradescope's default base image (Ubuntu 22.04, Python 3.10) it installs Ubuntu's python3.11.
# Choose either image in Gradescope's autograder settings; Debian 12 needs no extra package but
# python3-venv, which this script installs when it is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
VENV="${SEQLAB_VENV:-/autograder/venv}"
MIN_PYTHON="@MIN_PYTHON@"

fits() {  # fits PYTHON: exit status 0 when it runs and is at least MIN_PYTHON
    "$1" -c "import sys; need = tuple(map(int, '$MIN_PYTHON'.split('.')))
sys.exit(sys.version_info[:2] < need)" 2>/dev/null
}
find_python() {
    for name in python3.13 python3.12 python3.11 python3; do
        if command -v "$name" >/dev/null 2>&1 && fits "$(command -v "$name")"; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

PYTHON="$(find_python || true)"
if [ -z "$PYTHON" ]; then
    echo "setup.sh: no Python >= $MIN_PYTHON on this image; installing python$MIN_PYTHON"
    apt-get update -qq
    apt-get install -y -qq "python$MIN_PYTHON" "python$MIN_PYTHON-venv"
    PYTHON="$(find_python)" || { echo "setup.sh: no Python >= $MIN_PYTHON" >&2; exit 1; }
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
"${PIP[@]}" "numpy==@NUMPY@"
"${PIP[@]}" "torch==@TORCH@" --index-url https://download.pytorch.org/whl/cpu \
    || "${PIP[@]}" "torch==@TORCH@"
# The graded code runs as an unprivileged user: it must be able to read the environment.
chmod -R a+rX "$VENV"
"$VENV/bin/python" -c "import numpy, torch
print('setup.sh: numpy', numpy.__version__, '| torch', torch.__version__)"
