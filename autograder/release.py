"""Release pipeline: one source (solutions/), two outputs (assignments/ and the student zip).

``python -m autograder release [--check]``
    Regenerate ``assignments/sequence_models/`` from ``solutions/sequence_models/``.
    Notebooks go through ``nbgrader generate_assignment`` (outputs cleared, solution regions
    replaced by stubs, hidden tests removed). ``.py`` files go through :func:`stub_source`.
    Files without markers (given modules, public tests) are copied. Running it twice changes
    nothing. ``--check`` writes nothing and exits 1 when the
    committed release differs from what the source would produce.

    Before anything is written the release's text is checked (:mod:`autograder.release_text`).

``python -m autograder bundle OUT.zip``
    Write the student bundle: the release, the data files it needs at run time
    (:data:`DATASET_FILES`, no instructor script, no cache), a student README and
    requirements.txt. It is verified to contain no solution region, no hidden test and no
    autograder file.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from autograder import api_doc, course, paths
from autograder.course import ASSIGNMENT
from autograder.course import BEGIN_SOLUTION as BEGIN
from autograder.course import END_SOLUTION as END
from autograder.release_text import TEXT_SUFFIXES, text_problems

ROOT = paths.course_root()
SOURCE_DIR = paths.source_dir()
RELEASE_DIR = paths.assignment_dir()
API_MD = Path("API.md")                  # the API contract, shipped beside the notebooks
API_DOC = ROOT / "docs" / "API.md"       # ... and its copy in the repository's docs

# What the release needs from datasets/ at run time (seqlab.data builds its cache from these).
# The instructor's scripts (train_encoder.py, check_features.py) and the cache stay behind.
DATASET_FILES = ("seqlab_datasets.json", "shapes.py", "encoder.py", "build_captioning.py",
                 "shapes_encoder.npz")


_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(")
_CLASS = re.compile(r"^(\s*)class\s+([A-Za-z_]\w*)\s*[:(]")


class ReleaseError(RuntimeError):
    """A source file whose markers cannot be turned into a stub."""


def _indent(line):
    return len(line) - len(line.lstrip(" \t"))


def _enclosing_name(lines, index):
    """Qualified name (``Class.method`` or ``function``) of the def enclosing ``lines[index]``."""
    level = _indent(lines[index])
    names = []
    for line in reversed(lines[:index]):
        if not line.strip():
            continue
        ind = _indent(line)
        if ind >= level:
            continue
        match = _DEF.match(line) or _CLASS.match(line)
        if match:
            names.append(match.group(2))
            level = ind
            if ind == 0:
                break
    return ".".join(reversed(names)) or "this code"


def stub_source(text: str, filename: str = "<source>") -> str:
    """Replace every solution region of a Python source by a ``NotImplementedError`` stub.

    Inputs:
    - text: the source code (str)
    - filename: used in error messages only

    Returns the stubbed source (str). The ``raise`` is indented like the BEGIN marker and
    names the enclosing function, e.g. ``rnn_step_forward`` or ``MultiHeadAttention.forward``.
    Raises ReleaseError for unbalanced or nested markers.
    """
    lines = text.splitlines(keepends=True)
    out = []
    inside = None  # line number of the open BEGIN marker
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside is not None:
                raise ReleaseError(f"{filename}:{i + 1}: nested {BEGIN} "
                                   f"(the region opened at line {inside + 1} is not closed)")
            inside = i
            name = _enclosing_name(lines, i)
            pad = line[: _indent(line)]
            out.append(f'{pad}raise NotImplementedError("{name}: implement this '
                       f'(see the docstring)")\n')
        elif stripped.startswith(END):
            if inside is None:
                raise ReleaseError(f"{filename}:{i + 1}: {END} without {BEGIN}")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ReleaseError(f"{filename}:{inside + 1}: {BEGIN} is never closed")
    return "".join(out)


def _release_notebooks(source_dir, notebooks):
    """Run ``nbgrader generate_assignment`` on the notebooks in a temporary course folder.

    Returns {relative path: bytes of the release notebook}.
    """
    if not notebooks:
        return {}
    with tempfile.TemporaryDirectory(prefix="seqlab-release-") as tmp:
        course = Path(tmp)
        src = course / "source" / ASSIGNMENT
        for rel in notebooks:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source_dir / rel, src / rel)
        env = dict(os.environ)
        env["JUPYTER_CONFIG_DIR"] = str(course / "jupyter_config")  # ignore user config
        # nbgrader runs its database migrations with the `alembic` command, found on PATH: put
        # this interpreter's scripts folder first, so that a venv works without being activated.
        scripts = os.path.dirname(sys.executable)
        env["PATH"] = os.pathsep.join([scripts, env.get("PATH", os.defpath)])
        cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT,
               "--force", "--CourseDirectory.root=" + str(course),
               "--CourseDirectory.source_directory=source",
               "--CourseDirectory.release_directory=release",
               "--db=sqlite:///" + str(course / "gradebook.db"),
               "--ClearMetadataPreprocessor.enabled=False", "--log-level=WARN"]
        proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ReleaseError("nbgrader generate_assignment failed:\n"
                               + proc.stdout[-4000:] + proc.stderr[-4000:])
        return {rel: (course / "release" / ASSIGNMENT / rel).read_bytes() for rel in notebooks}


def release_files(source_dir: Path = SOURCE_DIR) -> dict[Path, bytes]:
    """The release's files but its notebooks, in memory: {relative path: bytes} (``.py``
    files stubbed, the others copied, and API.md when the source has the course's package)."""
    files = {}
    for rel in paths.packed_files(source_dir):
        if rel.suffix == ".py":
            text = (source_dir / rel).read_text(encoding="utf-8")
            files[rel] = stub_source(text, str(rel)).encode("utf-8")
        elif rel.suffix != ".ipynb":
            files[rel] = (source_dir / rel).read_bytes()
    if (source_dir / course.PACKAGE).is_dir():  # the API contract, from the docstrings
        files[API_MD] = api_doc.markdown(source_dir).encode("utf-8")
    return files


def build_release(source_dir: Path = SOURCE_DIR) -> dict[Path, bytes]:
    """Compute the release in memory: {relative path: bytes}."""
    notebooks = [rel for rel in paths.packed_files(source_dir) if rel.suffix == ".ipynb"]
    return {**release_files(source_dir), **_release_notebooks(source_dir, notebooks)}


def check_text(files: dict[Path, bytes]) -> None:
    """Raise ReleaseError listing every text problem of a release ({relative path: bytes})."""
    problems = text_problems({rel.as_posix(): data for rel, data in files.items()},
                             also_shipped={f"datasets/{name}" for name in DATASET_FILES})
    if problems:
        raise ReleaseError("the release's text points at things a student does not have "
                           "(fix solutions/):\n  " + "\n  ".join(problems))


def release(release_dir: Path = RELEASE_DIR, check: bool = False,
            wanted: dict[Path, bytes] | None = None, doc: Path | None = None) -> list[Path]:
    """Write (or, with check=True, compare) the release. Returns the list of changed paths,
    relative to ``release_dir``.

    ``wanted`` is a release already computed by :func:`build_release` (saves a second
    nbgrader run); by default it is built from ``SOURCE_DIR``. ``doc``: a path that also
    receives the release's API.md (``API_DOC`` for the repository's docs/API.md).
    """
    if wanted is None:
        wanted = build_release()
    check_text(wanted)
    have = {rel: (release_dir / rel).read_bytes() for rel in paths.packed_files(release_dir)}
    changed = sorted({rel for rel in wanted if have.get(rel) != wanted[rel]}
                     | {rel for rel in have if rel not in wanted})
    if doc is not None and (not doc.is_file() or doc.read_bytes() != wanted[API_MD]):
        changed.append(Path(os.path.relpath(doc, release_dir)))
        if not check:
            doc.write_bytes(wanted[API_MD])
    if check:
        return changed
    for rel in changed:
        if rel.parts[0] == "..":
            continue
        path = release_dir / rel
        if rel in wanted:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(wanted[rel])
        else:
            path.unlink()
    # remove folders left empty
    if release_dir.exists():
        for folder in sorted(release_dir.rglob("*"), reverse=True):
            if folder.is_dir() and not paths.ignored(folder.relative_to(release_dir)) \
                    and not any(folder.iterdir()):
                folder.rmdir()
    return changed


STUDENT_REQUIREMENT_SKIP = ("nbgrader", "-e ", "--editable")


def _student_requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    kept = [line for line in lines if not line.strip().startswith(STUDENT_REQUIREMENT_SKIP)]
    return "\n".join(kept) + "\n"


def find_leaks(names_and_bytes: Iterable[tuple[str, bytes]]) -> list[str]:
    """Names of bundle entries that carry solution markers, hidden tests or autograder files."""
    leaks = []
    for name, data in names_and_bytes:
        if name.startswith("autograder/") or "/autograder/" in name:
            leaks.append(f"{name}: autograder file")
            continue
        if name.endswith(TEXT_SUFFIXES):
            text = data.decode("utf-8", errors="replace")
            for marker in course.MARKERS:
                if marker in text:
                    leaks.append(f"{name}: contains {marker!r}")
    return leaks


def bundle(out_zip: str | Path, wanted: dict[Path, bytes] | None = None) -> list[str]:
    """Write the student bundle zip of the release in ``RELEASE_DIR`` (``wanted``: as for
    :func:`release`). Returns the list of archive names."""
    if release(check=True, wanted=wanted):
        raise ReleaseError("the release is out of date: run `python -m autograder release` first")
    entries = [(f"assignments/{ASSIGNMENT}/{rel.as_posix()}", (RELEASE_DIR / rel).read_bytes())
               for rel in paths.packed_files(RELEASE_DIR)]
    entries += [(f"datasets/{name}", (ROOT / "datasets" / name).read_bytes())
                for name in DATASET_FILES]
    readme = (ROOT / "docs" / "student_README.md").read_bytes()
    entries += [("README.md", readme), ("requirements.txt", _student_requirements().encode())]
    problems = text_problems({"README.md": readme}, also_shipped={name for name, _ in entries})
    if problems:
        raise ReleaseError("the student README: " + "; ".join(problems))
    leaks = find_leaks(entries)
    if leaks:
        raise ReleaseError("the student bundle would leak:\n  " + "\n  ".join(leaks))
    write_zip(out_zip, sorted(entries))
    return [name for name, _ in sorted(entries)]


def write_zip(out_zip: str | Path, entries: Iterable[tuple]) -> None:
    """Write a reproducible zip (fixed dates, deflated) of ``entries``, in their order:
    ``(name, bytes)`` or ``(name, bytes, mode)`` (default 0o644). Used by the student bundle
    and the Gradescope bundle."""
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data, *mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (mode[0] if mode else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)


def run(args: argparse.Namespace) -> int:
    """The ``release [--check]`` and ``bundle OUT`` commands; returns the exit status."""
    check = args.command == "release" and args.check
    try:
        if args.command == "bundle":
            names = bundle(args.out)
            print(f"wrote {args.out}: {len(names)} files, no solution, hidden test or autograder "
                  "file")
            return 0
        changed = release(check=check, doc=API_DOC)
    except ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if check and changed:
        print("release out of date; these files differ:")
    elif check:
        print("release is up to date")
    else:
        print(f"release written to {RELEASE_DIR.relative_to(ROOT)}: "
              f"{len(changed)} file(s) changed")
    for rel in changed:
        print("  ", os.path.normpath(RELEASE_DIR.relative_to(ROOT) / rel))
    return 1 if check and changed else 0
