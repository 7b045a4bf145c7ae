"""``python -m autograder nbgrader-prepare ASSIGNMENT [--student ID ...] [--jobs N]``

Grades every submission of an nbgrader course (``submitted/<student>/<ASSIGNMENT>/seqlab/``)
with the isolated grader, many in parallel, and caches the results (``nbgrader_cache``) so that
``nbgrader autograde ASSIGNMENT`` then only records them. Run it from anywhere: the course is
the folder that holds this ``autograder`` package (or ``SEQLAB_COURSE_ROOT``).

Only submissions whose modules (or the grader) changed since the last run are graded: after a
resubmission, ``nbgrader collect`` and this command grade that student only. A progress bar with
an ETA goes to stderr; results are stored after each batch, so an interrupted run keeps what it
finished.

Exit status 0 when every submission has a result (whatever the scores), 1 when the grader
failed, 2 for bad arguments or a machine that isolates student code less than
``--allow-isolation`` accepts (default full, as ``python -m autograder grade``).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

from autograder import nbgrader_cache, paths, report
from autograder import submission as submission_mod


def load_modules(seqlab_dir) -> submission_mod.Submission:
    """The student modules of ``seqlab_dir`` as the grader reads them (an
    ``autograder.submission.Submission``: ``files`` {module: bytes}, ``problems``). A folder
    that does not exist gives a submission with every module missing."""
    seqlab_dir = Path(seqlab_dir)
    if not seqlab_dir.is_dir() or seqlab_dir.is_symlink():
        sub = submission_mod.Submission(source=seqlab_dir, name=seqlab_dir.name)
        sub.problems.append("the submission has no seqlab/ folder")
        return sub
    return submission_mod.load(seqlab_dir)


def grade(subs: list, jobs: int = 2, timeout: float = 10.0,
          allow_isolation: str = "full") -> list[dict]:
    """Grade loaded submissions (``load_modules``) in isolated workers, ``jobs`` at a time.

    Exactly the bytes in each ``sub.files`` are graded (copied to a fresh folder first).
    Returns one ``report.record`` per submission, in order, whose notes start with the
    loader's problems (a symbolic link ignored ...). Raises ``isolation.IsolationTooLow`` when
    this machine isolates student code less than ``allow_isolation`` (full | reduced | none),
    as ``python -m autograder grade`` does."""
    from autograder import isolation, runner
    level = isolation.detect()
    isolation.require(level, allow_isolation)
    with tempfile.TemporaryDirectory(prefix="seqlab-prepare-") as tmp:
        folders = []
        for i, sub in enumerate(subs):
            folder = Path(tmp) / f"s{i:05d}"
            folder.mkdir()
            for module, data in sub.files.items():
                (folder / f"{module}.py").write_bytes(data)
            folders.append(folder)
        opts = runner.Options(jobs=jobs, timeout=timeout, isolation=level,
                              hide=runner.default_hidden_paths(extra=[tmp]))
        results = runner.grade(folders, opts)
    return [report.record(res, sub.problems) for sub, res in zip(subs, results)]


def results(seqlab_dir: str | Path, grade_missing: bool = True, jobs: int = 2,
            timeout: float = 10.0, allow_isolation: str = "full") -> list | None:
    """The CheckResults of the student modules of ``seqlab_dir``: from the course's result
    cache, else (``grade_missing``) graded in this process and cached; None when the cache
    lacks them and ``grade_missing`` is false. The one way to the results of an nbgrader
    submission: ``nbgrader-prepare``, autograde's preprocessor and the notebooks' hidden line
    (through a fresh process) all take it."""
    cache = nbgrader_cache.ResultCache()
    sub = load_modules(seqlab_dir)
    key = nbgrader_cache.submission_key(sub.files)
    data = cache.get(key)
    if data is None and grade_missing:
        data = grade([sub], jobs, timeout, allow_isolation)[0]
        cache.put(key, data)
    return None if data is None else report.from_record(data)


def submitted_folders(course_root, assignment: str, students=()) -> dict[str, Path]:
    """{student id: seqlab folder} of ``submitted/<student>/<assignment>/`` (sorted by id)."""
    base = Path(course_root) / "submitted"
    found = sorted(p.parent.name for p in base.glob(f"*/{assignment}") if p.is_dir())
    return {s: base / s / assignment / "seqlab" for s in found if not students or s in students}


def prepare(course_root: str | Path, assignment: str, students=(), jobs: int = 2,
            timeout: float = 10.0, progress: bool = True, allow_isolation: str = "full") -> dict:
    """Grade and cache the submissions of ``assignment`` that the cache lacks.

    Returns {"submissions": n, "graded": k, "cached": n - k, "seconds": wall time}."""
    t0 = time.monotonic()
    cache = nbgrader_cache.ResultCache(course_root)
    todo = {}   # key -> loaded submission (identical submissions are graded once)
    folders = submitted_folders(course_root, assignment, students)
    for folder in folders.values():
        sub = load_modules(folder)
        key = nbgrader_cache.submission_key(sub.files)
        if cache.get(key) is None:
            todo.setdefault(key, sub)
    keys = list(todo)
    batch = max(4, 4 * jobs)
    from tqdm import tqdm
    with tqdm(total=len(keys), unit="submission", desc="grading", disable=not progress or None,
              file=sys.stderr, dynamic_ncols=True) as bar:
        for start in range(0, len(keys), batch):
            chunk = keys[start:start + batch]
            for key, data in zip(chunk, grade([todo[k] for k in chunk], jobs, timeout,
                                                   allow_isolation)):
                cache.put(key, data)
            bar.update(len(chunk))
    return {"submissions": len(folders), "graded": len(keys),
            "cached": len(folders) - len(keys), "seconds": time.monotonic() - t0}


def run(args: argparse.Namespace) -> int:
    """The ``nbgrader-prepare`` command (``args``: assignment, student, jobs, timeout,
    allow_isolation, quiet); returns the exit status."""
    from autograder import isolation, sandbox
    root = paths.course_root()
    if not (root / "submitted").is_dir():
        print(f"error: no submitted/ folder in the course {root}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"error: --jobs must be at least 1, got {args.jobs}", file=sys.stderr)
        return 2
    known = submitted_folders(root, args.assignment)
    unknown = [s for s in args.student if s not in known]
    if not known or unknown:
        what = f"student(s) {', '.join(unknown)}" if known else "any student"
        print(f"error: no submission of {args.assignment!r} for {what} under submitted/",
              file=sys.stderr)
        return 2
    sandbox.enable_subreaper()  # this process is the grader's alone (not so in grade())
    sandbox.stop_on_sigterm()
    try:
        done = prepare(root, args.assignment, args.student, args.jobs, args.timeout,
                       progress=not args.quiet, allow_isolation=args.allow_isolation)
    except isolation.IsolationTooLow as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        import traceback
        traceback.print_exc()
        print(f"error: the grader failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    print(f"{done['submissions']} submission(s) of {args.assignment}: {done['graded']} graded, "
          f"{done['cached']} already in {nbgrader_cache.CACHE_DIR_NAME}/ "
          f"({done['seconds']:.1f} s); now run: nbgrader autograde {args.assignment} --force")
    return 0
