"""Where the grader finds the course: reference solutions, given files, release stubs.

The course root is the parent of the ``autograder`` package (the repository, or
``/autograder/source`` in a Gradescope bundle). ``SEQLAB_COURSE_ROOT`` overrides it.
"""
import fnmatch
import os
from pathlib import Path, PurePath

from autograder import course
from autograder.course import ASSIGNMENT, STUDENT_MODULES


def course_root() -> Path:
    """The course folder (the repository root), or ``SEQLAB_COURSE_ROOT`` when set."""
    env = os.environ.get("SEQLAB_COURSE_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent


def source_dir() -> Path:
    """``solutions/sequence_models``: the nbgrader source of the assignment."""
    return course_root() / "solutions" / ASSIGNMENT


def assignment_dir() -> Path:
    """``assignments/sequence_models``: the generated student release."""
    return course_root() / "assignments" / ASSIGNMENT


def reference_dir() -> Path:
    """The reference ``seqlab`` package (solutions/)."""
    return source_dir() / course.PACKAGE


def release_dir() -> Path:
    """The released ``seqlab`` package (assignments/)."""
    return assignment_dir() / course.PACKAGE


def autograder_dir() -> Path:
    """This package's folder."""
    return Path(__file__).resolve().parent


def ignored(rel: PurePath) -> bool:
    """True when a part of the relative path ``rel`` matches :data:`course.PACK_IGNORE`."""
    return any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in course.PACK_IGNORE)


def packed_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that are packed (release, bundles), as sorted paths relative
    to ``folder``: everything but what :data:`course.PACK_IGNORE` names."""
    return [path.relative_to(folder) for path in sorted(folder.rglob("*"))
            if path.is_file() and not ignored(path.relative_to(folder))]


def _released_package() -> dict[str, bytes]:
    """{file name: bytes} of the released ``seqlab`` package: the release folder's when it
    exists, else the release computed from solutions/ (``release.release_files``)."""
    rel = release_dir()
    if rel.is_dir() and (rel / "__init__.py").exists():
        return {path.name: path.read_bytes() for path in sorted(rel.iterdir())
                if path.is_file() and not path.is_symlink() and path.suffix != ".pyc"
                and not path.name.startswith(".")}
    from autograder import release
    return {path.name: data for path, data in release.release_files(source_dir()).items()
            if path.parent == Path(course.PACKAGE)}


def given_files() -> dict[str, bytes]:
    """{file name: bytes} of the given (non-student) files of the released ``seqlab``
    package."""
    return {name: data for name, data in _released_package().items()
            if Path(name).stem not in STUDENT_MODULES}


def stub_files() -> dict[str, bytes]:
    """{module name: bytes} of the release stubs of the student modules (used for a module that
    a submission lacks, so that the modules it has can still be imported)."""
    package = _released_package()
    return {mod: package[f"{mod}.py"] for mod in STUDENT_MODULES if f"{mod}.py" in package}
