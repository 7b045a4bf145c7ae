"""Where the grader finds the course: reference solutions, given files, release stubs.

The course root is the parent of the ``autograder`` package (the repository, or
``/autograder/source`` in a Gradescope bundle). ``SEQLAB_COURSE_ROOT`` overrides it.
"""
import os
from pathlib import Path

ASSIGNMENT = "sequence_models"
STUDENT_MODULES = ("rnn_layers", "lstm_layers", "attention_layers", "captioning", "transformer")
BEGIN = "### BEGIN SOLUTION"


def course_root():
    env = os.environ.get("SEQLAB_COURSE_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def reference_dir():
    return course_root() / "solutions" / ASSIGNMENT / "seqlab"


def release_dir():
    return course_root() / "assignments" / ASSIGNMENT / "seqlab"


def autograder_dir():
    return Path(__file__).resolve().parent


def _has_markers(path):
    try:
        return BEGIN in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True


def _plain_files(folder):
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.is_symlink() and path.suffix != ".pyc" \
                and not path.name.startswith("."):
            yield path


def given_files():
    """{file name: bytes} of the given (non-student) files of the ``seqlab`` package.

    From the release when it exists; else the files of the reference package that carry no
    solution marker. A student module is never taken from solutions/.
    """
    rel = release_dir()
    out = {}
    if rel.is_dir() and (rel / "__init__.py").exists():
        for path in _plain_files(rel):
            if path.stem not in STUDENT_MODULES:
                out[path.name] = path.read_bytes()
        return out
    for path in _plain_files(reference_dir()):
        if path.stem in STUDENT_MODULES or _has_markers(path):
            continue
        out[path.name] = path.read_bytes()
    return out


def stub_files():
    """{module name: bytes} of the release stubs of the student modules (used for a module that
    a submission lacks, so that the modules it has can still be imported)."""
    rel = release_dir()
    out = {}
    for mod in STUDENT_MODULES:
        path = rel / f"{mod}.py"
        if path.is_file():
            out[mod] = path.read_bytes()
            continue
        ref = reference_dir() / f"{mod}.py"
        if ref.is_file():
            from autograder.release import stub_source
            out[mod] = stub_source(ref.read_text(encoding="utf-8"), ref.name).encode("utf-8")
    return out
