"""Finding the student module files in a submission (a folder or a zip), and the scratch folder.

Only the five student modules are taken from a submission, found by file name: at its root,
under a ``seqlab/`` folder, or anywhere in an assignment folder (the shallowest match wins, a
``seqlab/`` parent first). Everything else the submission carries is ignored; the other files
of the package come from the grader's own copy of the release (see ``paths.given_files``).
Symbolic links, files larger than ``MAX_FILE`` and zip entries that are not regular files are
ignored; a file that *is* a reference solution file (same inode) is refused.

Folders and zips are walked iteratively within limits (``MAX_DEPTH`` folders deep,
``MAX_ENTRIES`` entries in all, shared by nested zips through a ``Budget``), so that no
submission can exhaust the grader's stack or time.

A submission in which no student module is found but which holds a zip (a zip uploaded inside
the upload, as Gradescope keeps it) is read from an inner zip (``_load_inner_zip``).
"""
import io
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder import course, paths

MAX_FILE = 2 * 2 ** 20
MAX_ENTRIES = 20000
MAX_DEPTH = 32
SKIP_PARTS = course.SUBMISSION_SKIP


@dataclass
class Submission:
    source: Path
    name: str
    files: dict = field(default_factory=dict)    # module -> bytes
    found_at: dict = field(default_factory=dict)  # module -> path inside the submission
    problems: list = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        return [m for m in course.STUDENT_MODULES if m not in self.files]


def _rank(parts):
    """Sort key of a candidate path (tuple of parts, file name last)."""
    in_seqlab = len(parts) >= 2 and parts[-2] == "seqlab"
    return (0 if in_seqlab else 1, len(parts), parts)


def _skip(parts):
    return any(p in SKIP_PARTS or p.startswith(".") for p in parts[:-1])


def _candidates(names):
    """names: iterable of tuples of path parts. -> {module: best parts}."""
    best = {}
    for parts in names:
        if not parts or _skip(parts):
            continue
        fname = parts[-1]
        if not fname.endswith(".py") or fname[:-3] not in course.STUDENT_MODULES:
            continue
        mod = fname[:-3]
        if mod not in best or _rank(parts) < _rank(best[mod]):
            best[mod] = parts
    return best


def _reference_inodes():
    out = set()
    ref = paths.reference_dir()
    for mod in course.STUDENT_MODULES:
        try:
            st = os.stat(ref / f"{mod}.py")
            out.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    return out


def load(path: str | Path) -> Submission:
    """Read the student modules of a submission (folder, zip, or a single .py file)."""
    path = Path(path)
    sub = Submission(source=path, name=path.name)
    if path.is_dir():
        _load_folder(sub, path)
    elif path.is_file() and zipfile.is_zipfile(path):
        _load_zip(sub, path)
    elif path.is_file() and path.suffix == ".py" and path.stem in course.STUDENT_MODULES:
        _load_folder_files(sub, {(path.name,): path})
    else:
        sub.problems.append(f"{path.name}: not a folder, a zip or a student module file")
    if not sub.files:
        _load_inner_zip(sub, path)
    return sub


class Budget:
    """The walking limits of one submission: ``entries`` left (files and folders, across
    nested zips), ``MAX_DEPTH``. ``take(parts)`` -> True when the entry may be used; the first
    refusal of each kind is noted in ``problems``."""

    def __init__(self, problems, entries=MAX_ENTRIES, depth=MAX_DEPTH):
        self.problems = problems
        self.entries = entries
        self.depth = depth
        self._noted = set()

    def _note(self, kind, message):
        if kind not in self._noted:
            self._noted.add(kind)
            self.problems.append(message)

    def take(self, parts: tuple) -> bool:
        if self.entries <= 0:
            self._note("entries", "the submission has too many files; the rest were ignored")
            return False
        self.entries -= 1
        if len(parts) > self.depth:
            self._note("depth", f"folders nested deeper than {self.depth} levels were ignored")
            return False
        return True


def walk_folder(root: Path, budget: "Budget") -> dict[tuple, Path]:
    """Regular files under ``root`` (iteratively, symbolic links not followed, hidden and
    tool folders skipped), within ``budget``: {path parts: Path}."""
    found = {}
    stack = [((), Path(root))]
    while stack:
        rel, folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            parts = rel + (entry.name,)
            if not budget.take(parts):
                if budget.entries <= 0:
                    return found
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in SKIP_PARTS and not entry.name.startswith("."):
                        subdirs.append((parts, Path(entry.path)))
                else:
                    found[parts] = Path(entry.path)
            except OSError:
                continue
        stack.extend(reversed(subdirs))
    return found


def zip_entries(zf: zipfile.ZipFile, budget: "Budget") -> dict[tuple, zipfile.ZipInfo]:
    """Usable entries of an open zip within ``budget`` (shared with nested zips): regular
    files only, names made relative: {path parts: ZipInfo}."""
    infos = {}
    for info in zf.infolist():
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        parts = tuple(p for p in parts if p not in ("", ".", "..", "/"))
        if not budget.take(parts or ("",)):
            if budget.entries <= 0:
                break
            continue
        if info.is_dir() or not parts:
            continue
        mode = (info.external_attr >> 16) & 0o170000
        if mode and mode != stat.S_IFREG:
            continue  # symlinks and other special entries
        infos[parts] = info
    return infos


def _load_folder(sub, root):
    files = walk_folder(root, Budget(sub.problems))
    names = {parts: p for parts, p in files.items()
             if parts[-1].endswith(".py") and parts[-1][:-3] in course.STUDENT_MODULES}
    _load_folder_files(sub, names)


def _load_folder_files(sub, names):
    ref_inodes = _reference_inodes()
    usable = {}
    for parts, p in names.items():
        try:
            st = os.lstat(p)
        except OSError:
            continue
        display = "/".join(parts)
        if stat.S_ISLNK(st.st_mode):
            sub.problems.append(f"{display}: a symbolic link; ignored")
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if (st.st_dev, st.st_ino) in ref_inodes:
            sub.problems.append(f"{display}: is the instructor's reference file; ignored")
            continue
        if st.st_size > MAX_FILE:
            sub.problems.append(f"{display}: larger than {MAX_FILE // 2 ** 20} MB; ignored")
            continue
        usable[parts] = p
    for mod, parts in _candidates(usable).items():
        with open(usable[parts], "rb") as f:
            data = f.read(MAX_FILE + 1)
        if len(data) > MAX_FILE:
            continue
        sub.files[mod] = data
        sub.found_at[mod] = "/".join(parts)


def _load_zip(sub, path):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        sub.problems.append(f"cannot read the zip: {exc}")
        return
    with zf:
        infos = zip_entries(zf, Budget(sub.problems))
        for mod, parts in _candidates(infos).items():
            info = infos[parts]
            if info.file_size > MAX_FILE:
                sub.problems.append(f"{'/'.join(parts)}: larger than {MAX_FILE // 2 ** 20} MB; "
                                    "ignored")
                continue
            try:
                with zf.open(info) as f:
                    data = f.read(MAX_FILE + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                sub.problems.append(f"{'/'.join(parts)}: cannot be read ({exc})")
                continue
            if len(data) > MAX_FILE:
                continue
            sub.files[mod] = data
            sub.found_at[mod] = "/".join(parts)


def make_scratch(sub: Submission) -> Path:
    """A fresh folder ``<tmp>/seqlab/`` with the given files, the submission's student modules,
    and release stubs for the student modules it lacks. Returns the folder (the parent of
    ``seqlab/``); readable by everyone, writable by the grader only."""
    scratch = Path(tempfile.mkdtemp(prefix="seqlab-grade-"))
    os.chmod(scratch, 0o755)
    pkg = scratch / "seqlab"
    pkg.mkdir()
    os.chmod(pkg, 0o755)
    files = dict(paths.given_files())
    stubs = paths.stub_files()
    for mod in course.STUDENT_MODULES:
        data = sub.files.get(mod, stubs.get(mod))
        if data is not None:
            files[f"{mod}.py"] = data
    files.setdefault("__init__.py", b"")
    for name, data in files.items():
        target = pkg / name
        target.write_bytes(data)
        os.chmod(target, 0o644)
    return scratch


def remove_scratch(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- a zip inside the upload

MAX_INNER_ZIP = 50 * 2 ** 20


def _inner_zips(path):
    """(display path, bytes) of the zips one level inside a submission (a folder or a zip),
    shallowest first; symbolic links, hidden and tool folders, and zips larger than
    ``MAX_INNER_ZIP`` are left out, and at most ``MAX_ENTRIES`` entries are looked at."""
    found = []
    if path.is_dir():
        count = 0
        for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames
                                 if d not in SKIP_PARTS and not d.startswith("."))
            for fname in sorted(filenames):
                count += 1
                if count > MAX_ENTRIES:
                    break
                full = Path(dirpath) / fname
                if fname.lower().endswith(".zip") and not fname.startswith("."):
                    st = os.lstat(full)
                    if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_INNER_ZIP:
                        found.append((full.relative_to(path).parts, full.read_bytes))
            if count > MAX_ENTRIES:
                break
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist()[:MAX_ENTRIES]:
                parts = tuple(p for p in info.filename.replace("\\", "/").split("/")
                              if p not in ("", ".", ".."))
                if not parts or info.is_dir() or not parts[-1].lower().endswith(".zip") \
                        or _skip(parts) or info.file_size > MAX_INNER_ZIP:
                    continue
                found.append((parts, lambda info=info: _read_entry(path, info)))
    found.sort(key=lambda item: (len(item[0]), item[0]))
    for parts, read in found:
        try:
            data = read()
        except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError):
            continue
        if data is not None and len(data) <= MAX_INNER_ZIP:
            yield "/".join(parts), data


def _read_entry(path, info):
    with zipfile.ZipFile(path) as zf, zf.open(info) as f:
        return f.read(MAX_INNER_ZIP + 1)


def _load_inner_zip(sub, path):
    """One nesting level: a submission without any student module that holds a zip (a zip
    uploaded inside the upload) takes its modules from the shallowest inner zip that has some,
    read by :func:`_load_zip` with the same limits as any zip. Zips inside it are not opened."""
    for display, data in _inner_zips(path):
        buffer = io.BytesIO(data)
        if not zipfile.is_zipfile(buffer):
            continue
        inner = Submission(source=path, name=sub.name)
        _load_zip(inner, buffer)
        if inner.files:
            sub.files.update(inner.files)
            sub.found_at.update({m: f"{display}/{p}" for m, p in inner.found_at.items()})
            sub.problems.extend(f"{display}: {p}" for p in inner.problems)
            return
