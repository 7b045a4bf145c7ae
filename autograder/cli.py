"""The command line, ``python -m autograder COMMAND ...``: one parser, one subcommand per tool.

``python -m autograder --help`` lists the commands (release [--check], bundle, grade, list,
gradescope, nbgrader-prepare, similarity, data); ``python -m autograder COMMAND --help`` lists
a command's options.
"""
import argparse
import importlib
import json
import os
import re
import sys
import time

ISOLATION_LEVELS = ("full", "reduced", "none")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
DEFAULT_JOBS = min(4, os.cpu_count() or 1)
GRADE_HELP = """Grades each submission (a folder or a zip) with the hidden checks in isolated
workers, prints a readable summary (a total per notebook, then per API name; CaptioningRNN's
checks are listed under the notebook of their cell type: rnn 01, lstm 02, attention 03) and
writes Gradescope-style JSON. What a student reads (results.json) never holds the expected
values; the summary shows them only with --verbose. Exit status 0 whenever grading completed
(whatever the scores), 2 for bad arguments, 1 when the grader itself failed (a valid JSON with
the error is still written)."""
# the module whose run(args) does each command but grade and list
COMMANDS = {"release": "release", "bundle": "release", "gradescope": "gradescope",
            "nbgrader-prepare": "nbgrader_prepare", "similarity": "similarity",
            "data": "shared_data"}


# --------------------------------------------------------------------------- the parser

def _jobs(p: argparse.ArgumentParser, what: str = "workers") -> None:
    p.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                   help=f"{what} at a time (default: number of CPUs, at most 4)")


def _isolation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-isolation", default="full", choices=ISOLATION_LEVELS,
                   help="grade even when this machine isolates student code only at this level "
                        "(default full: refuse anything less; see autograder/README.md). The "
                        "level used is printed and written into results.json")


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="grade only an API name (rnn_forward), a student module (rnn_layers) "
                        "or a notebook (01, 02_lstm_captioning); repeatable")
    p.add_argument("--notebook", action="append", default=[], metavar="N",
                   help="grade only the checks of notebook N (01..04); repeatable")


def parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    top = argparse.ArgumentParser(prog="python -m autograder",
                                  description="The seqlab course's tools.",
                                  epilog="python -m autograder COMMAND --help lists a command's "
                                         "options.")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("release", help="regenerate assignments/ from solutions/")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if the committed release is out of date")

    p = sub.add_parser("bundle", help="write the student bundle zip")
    p.add_argument("out", help="path of the zip to write")

    p = sub.add_parser("grade", help="grade submissions with the hidden checks",
                       description=GRADE_HELP)
    p.add_argument("submissions", nargs="*", help="folders or zips")
    p.add_argument("--json", dest="json_out", metavar="OUT.json",
                   help="results.json of the single submission")
    p.add_argument("--out-dir", metavar="DIR",
                   help="write one DIR/<submission name>.json per submission")
    _selection(p)
    _jobs(p)
    p.add_argument("--timeout", type=float, default=10.0,
                   help="time limit of one call into student code: seconds of the worker's CPU "
                        "time (sandbox.Deadline; default 10)")
    p.add_argument("--verbose", action="store_true",
                   help="every failed check, with the expected values it compared")
    p.add_argument("--quiet", action="store_true",
                   help="one line per submission on stdout; on stderr only errors and "
                        "warnings about isolation (no progress)")
    p.add_argument("--list", action="store_true",
                   help="list the API names and their checks, grade nothing")
    _isolation(p)
    p.add_argument("--grader-memory", type=int, metavar="MIB",
                   help="memory limit of the grader process itself, in a cgroup leaf of its own "
                        "where the machine allows one (default 2048: sandbox.GRADER_MEMORY); "
                        "the progress says which")
    p.add_argument("--visibility", default="visible", choices=VISIBILITIES)
    p.add_argument("--gradescope-config", metavar="FILE",
                   help="write the JSON as Gradescope shows it (one test per graded function, "
                        "Markdown), with this gradescope_config.json of a bundle")

    p = sub.add_parser("list", help="list the API names and their checks")
    _selection(p)

    from autograder.gradescope_results import HINTS
    from autograder.gradescope_results import VISIBILITIES as GS_VISIBILITIES
    p = sub.add_parser("gradescope", help="build a Gradescope autograder bundle")
    p.add_argument("out", help="the zip to write")
    p.add_argument("--visibility", choices=GS_VISIBILITIES, default="visible",
                   help="visibility of every test on Gradescope (default: visible)")
    p.add_argument("--hints", choices=HINTS, default="with_feedback",
                   help="after_due_date: hold the hints back in a separate 0-point test per "
                        "function, shown after the due date (default: with_feedback)")

    p = sub.add_parser("nbgrader-prepare",
                       help="grade an nbgrader course's submissions in parallel and cache the "
                            "results for autograde")
    p.add_argument("assignment", help="the assignment (folder name under submitted/<student>/)")
    p.add_argument("--student", action="append", default=[], metavar="ID",
                   help="only this student (repeatable)")
    _jobs(p)
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds per call into student code")
    _isolation(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    from autograder import similarity as sim
    p = sub.add_parser("similarity",
                       help="compare the student modules of submissions with each other and "
                            "with a corpus of known solutions (read, never run)")
    p.add_argument("submissions", nargs="+",
                   help="folders, zips, or an nbgrader submitted/ folder (one per student)")
    p.add_argument("--corpus", metavar="FOLDER",
                   help="known solutions: one sub-folder (or file) per source; .py and .ipynb")
    p.add_argument("--out", default="similarity.html", metavar="REPORT.html",
                   help="the HTML report (default: similarity.html)")
    p.add_argument("--json", dest="json_out", metavar="OUT.json",
                   help="also write the scores of every pair and module as JSON")
    p.add_argument("--threshold", type=float, default=sim.THRESHOLD,
                   help=f"flag a module whose score reaches this (default {sim.THRESHOLD})")
    p.add_argument("--min-match", type=int, default=sim.MIN_MATCH, metavar="CHARS",
                   help=f"... and whose match is at least this long (default {sim.MIN_MATCH})")
    p.add_argument("--noise", type=int, default=sim.NOISE, metavar="CHARS",
                   help=f"shortest match that counts (default {sim.NOISE})")
    p.add_argument("--window", type=int, default=sim.WINDOW,
                   help=f"winnowing window (default {sim.WINDOW})")
    p.add_argument("--common", type=float, default=sim.COMMON, metavar="FRACTION",
                   help=f"ignore code shared by more than this fraction of the class "
                        f"(default {sim.COMMON}; 1 keeps everything)")
    _jobs(p, "processes")
    p.add_argument("--top", type=int, default=20, help="pairs printed on stdout (default 20)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("data", help="build the students' shared copy of the data")
    p.add_argument("folder", help="where students read the data (their SEQLAB_DATA_DIR)")
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command (``argv`` without the program name); returns the exit status."""
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 0
    if args.command == "grade":
        return grade(args)
    if args.command == "list":
        return list_checks(args.only, args.notebook)
    return importlib.import_module(f"autograder.{COMMANDS[args.command]}").run(args)


# --------------------------------------------------------------------------- grade and list

def _json_names(submissions: list[str]) -> dict[str, str]:
    """{submission path: the file name of its results in --out-dir}; raises ValueError naming
    two submissions whose results would land in the same file."""
    names, owner = {}, {}
    for s in submissions:
        base = re.sub(r"\.zip$", "", os.path.basename(os.path.normpath(s)))
        name = (re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "submission") + ".json"
        key = name.lower()  # case-insensitive file systems too
        if key in owner:
            from autograder.report import clean_line
            raise ValueError(f"submissions {clean_line(owner[key])!r} and {clean_line(s)!r} "
                             f"would both write {clean_line(name)!r} in --out-dir; rename one")
        owner[key] = s
        names[s] = name
    return names


def list_checks(only: list[str], notebooks: list[str]) -> int:
    """Print the selected API names, their points and their checks; exit status."""
    from autograder.checks import core
    try:
        checks = core.select(only, notebooks)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    current = None
    for c in checks:
        if c.api != current:
            current = c.api
            total = sum(x.points for x in checks if x.api == c.api)
            print(f"{c.api}  ({total:g} points)")
        print(f"    {c.points:4.2f}  {c.title}")
    return 0


def _grade_arguments(args: argparse.Namespace) -> tuple[dict | None, dict[str, str]]:
    """``grade``'s arguments checked -> (the --gradescope-config data or None, {submission:
    its JSON file name in --out-dir}); raises ValueError saying what is wrong."""
    from autograder.checks import core
    core.select(args.only, args.notebook)
    if not args.submissions:
        raise ValueError("give at least one submission (folder or zip)")
    if args.json_out and len(args.submissions) != 1:
        raise ValueError("--json needs exactly one submission; use --out-dir for several")
    missing = [s for s in args.submissions if not os.path.exists(s)]
    if missing:
        raise ValueError(f"no such file or folder: {', '.join(missing)}")
    config = None
    if args.gradescope_config:
        try:
            with open(args.gradescope_config, encoding="utf-8") as f:
                config = json.load(f)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {args.gradescope_config}: {exc}") from None
    return config, _json_names(args.submissions) if args.out_dir else {}


def _peak_memory_mib():
    """This process's peak resident memory (VmHWM) in MiB, or '?'. Not getrusage's ru_maxrss:
    that keeps the peak of the process image before exec (the parent's, when a big process
    such as a test session starts the grader)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return "?"


def grade(args: argparse.Namespace) -> int:
    """The ``grade`` command (see the module docstring); exit status."""
    if args.list:
        return list_checks(args.only, args.notebook)
    from concurrent.futures import ThreadPoolExecutor

    from autograder import isolation
    # the isolation probe (a sandboxed interpreter, about 0.1 s) runs while the checks load
    probe = ThreadPoolExecutor(max_workers=1)
    detected = probe.submit(isolation.detect) if args.submissions else None
    probe.shutdown(wait=False)
    from autograder import report, runner, sandbox

    try:
        gradescope_config, json_names = _grade_arguments(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    level = detected.result()
    try:
        isolation.require(level, args.allow_isolation)
    except isolation.IsolationTooLow as exc:
        print(f"error: {exc}", file=sys.stderr)
        if args.json_out:
            report.write_json(report.error_json(str(exc)), args.json_out)
        return 2
    if not args.quiet:
        print(f"autograder: isolation level {level.describe()}", file=sys.stderr)

    outputs = [os.path.abspath(p) for p in (args.json_out, args.out_dir) if p]
    sandbox.enable_subreaper()
    sandbox.stop_on_sigterm()
    extra = [os.path.dirname(p) if p.endswith(".json") else p for p in outputs]
    for s in args.submissions:  # other students' submissions
        s = os.path.abspath(s)
        extra.append(s if os.path.isdir(s) else os.path.dirname(s))
    opts = runner.Options(only=args.only, notebooks=args.notebook, jobs=args.jobs,
                          timeout=args.timeout, hide=runner.default_hidden_paths(extra=extra),
                          isolation=level, log=None if args.quiet else sys.stderr)
    if args.grader_memory is not None:
        opts.grader_memory = args.grader_memory * 2 ** 20
    t0 = time.monotonic()
    try:
        results = runner.grade(args.submissions, opts)
    except Exception as exc:  # the grader itself failed: still leave a valid results file
        import traceback
        traceback.print_exc()
        data = report.error_json(f"{type(exc).__name__}: {exc}")
        if args.json_out:
            report.write_json(data, args.json_out)
        return 1
    for path, res in zip(args.submissions, results):  # files first: stdout may be closed
        if gradescope_config is None:
            data = report.results_json(res, args.visibility, isolation=level)
        else:
            from autograder.gradescope_results import for_gradescope
            data = for_gradescope(res.results, gradescope_config, report.submission_notes(res),
                                  level, args.visibility)
        if args.json_out:
            report.write_json(data, args.json_out)
        if args.out_dir:
            report.write_json(data, os.path.join(args.out_dir, json_names[path]))
    try:
        for res in results:
            print(report.summary(res, verbose=args.verbose, quiet=args.quiet), flush=True)
        if not args.quiet:
            print(f"isolation level: {level.describe()}", flush=True)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")  # e.g. piped into `head`
    if not args.quiet:
        print(f"graded {len(results)} submission(s) in {time.monotonic() - t0:.1f} s; "
              f"grader peak memory {_peak_memory_mib()} MiB", file=sys.stderr)
    return 0

