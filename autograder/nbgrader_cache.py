"""The isolated grader's results of nbgrader submissions, cached on disk.

``nbgrader autograde`` runs no student code: the graded cells take their outputs from the
isolated grader's results (``report.record``: the check results without the instructor's
details) for the student's five modules. ``python -m autograder nbgrader-prepare`` computes
those results for a whole class in parallel and stores them here; autograde then only reads
(``nbgrader_prepare.results``).

One file per result, ``<course root>/nbgrader_results/<key>.json`` (gitignored), by
:func:`submission_key`: a changed check, reference or library (:func:`grader_identity`) grades
everything again, and so does a resubmission (other bytes); an unchanged one is not graded
again. The folder lies in the course root, which the grader's workers never see
(``runner.default_hidden_paths``): student code cannot write it.
"""
import functools
import hashlib
import json
import platform
import sys
from importlib import metadata
from pathlib import Path

from autograder import course, paths, report

CACHE_DIR_NAME = "nbgrader_results"
_SKIPPED = ("__pycache__", ".pyc", ".pyo")


def _hash_tree(h, folder, suffixes=None):
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or any(s in rel for s in _SKIPPED) \
                or (suffixes and path.suffix not in suffixes):
            continue
        h.update(f"\0{rel}\0".encode())
        h.update(path.read_bytes())


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def grader_identity() -> str:
    """Hex SHA-256 naming this grader: the files of ``autograder/``, the reference modules and
    the Python, numpy and torch versions. Computed once per process."""
    h = hashlib.sha256()
    _hash_tree(h, paths.autograder_dir())
    _hash_tree(h, paths.reference_dir(), suffixes={".py"})
    versions = (f"python {platform.python_implementation()} {sys.version}; "
                f"numpy {_version('numpy')}; torch {_version('torch')}")
    h.update(versions.encode())
    return h.hexdigest()


def submission_key(files: dict) -> str:
    """The cache key (hex SHA-256) of a submission for this grader: ``files`` maps each student
    module found (``"rnn_layers"`` ...) to its bytes, as ``autograder.submission.load`` reads
    them; a module not in ``files`` counts as missing."""
    h = hashlib.sha256(grader_identity().encode())
    for module in course.STUDENT_MODULES:
        h.update(f"\0{module}\0".encode())
        h.update(files[module] if module in files else b"\0<missing>\0")
    return h.hexdigest()


class ResultCache:
    """The results of graded submissions (``report.record``), by :func:`submission_key`, in
    ``<course root>/nbgrader_results`` (``course_root``: by default the grader's)."""

    def __init__(self, course_root: str | Path | None = None):
        self.folder = Path(course_root or paths.course_root()) / CACHE_DIR_NAME

    def get(self, key: str) -> dict | None:
        """The cached ``report.record`` (a dict), or None when there is none or it cannot be
        read."""
        try:
            data = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            report.from_record(data)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None
        return data

    def put(self, key: str, data: dict) -> None:
        """Store ``data`` atomically (a reader never sees half a file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        report.write_json(data, self.folder / f"{key}.json")
