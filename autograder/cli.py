"""``python -m autograder grade SUBMISSION [SUBMISSION ...] [options]``

Grades each submission (a folder or a zip) with the hidden checks in isolated workers, prints a
readable summary per API name, and writes Gradescope-style JSON.

Options
  --json OUT.json        results of the (single) submission
  --out-dir DIR          one DIR/<submission name>.json per submission
  --only NAME            grade only an API name (rnn_forward), a student module (rnn_layers)
                         or a notebook (01, 02_lstm_captioning); repeatable
  --notebook N           grade only the checks of notebook N (01..04); repeatable
  --jobs N               workers running at a time (default: number of CPUs, at most 4)
  --timeout SECONDS      wall-clock limit of one call into student code (default 10)
  --allow-isolation L    grade even when this machine isolates student code only at level L
                         (full | reduced | none; default full: refuse anything less). The level
                         used is printed and written into results.json (extra_data.isolation)
  --grader-memory MIB    memory limit of the grader process itself (default 2048), in a cgroup
                         leaf of its own where the machine allows one; the progress says which
  --verbose              every failed check, with the expected values it compared
  --quiet                one line per submission on stdout; on stderr only errors and
                         warnings about isolation (no progress)
  --list                 list the API names and their checks, grade nothing

The summary gives a total per notebook, then per API name (CaptioningRNN's checks are listed
under the notebook of their cell type: rnn 01, lstm 02, attention 03). What a student reads
(results.json) never holds the expected values; the summary shows them only with --verbose.

Exit status 0 whenever grading completed (whatever the scores), 2 for bad arguments,
1 when the grader itself failed (a valid JSON with the error is still written).
"""
import argparse
import os
import re
import sys
import time


def _parser():
    p = argparse.ArgumentParser(prog="python -m autograder grade",
                                description="Grade seqlab submissions with the hidden checks.")
    p.add_argument("submissions", nargs="*", help="folders or zips")
    p.add_argument("--json", dest="json_out", help="results.json of the single submission")
    p.add_argument("--out-dir", help="write one JSON per submission into this folder")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="grade only this API name, student module or notebook (repeatable)")
    p.add_argument("--notebook", action="append", default=[], metavar="N",
                   help="grade only the checks of this notebook, 01..04 (repeatable)")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per call")
    p.add_argument("--verbose", action="store_true",
                   help="every failed check, with the expected values")
    p.add_argument("--quiet", action="store_true",
                   help="one line per submission; no progress on stderr")
    p.add_argument("--list", action="store_true", help="list API names and checks")
    p.add_argument("--allow-isolation", default="full", choices=["full", "reduced", "none"],
                   help="lowest isolation level accepted (see autograder/README.md)")
    p.add_argument("--grader-memory", type=int, metavar="MIB",
                   help="memory limit of the grader process itself, in a cgroup of its own "
                        "where the machine allows one (default 2048: sandbox.GRADER_MEMORY)")
    p.add_argument("--visibility", default="visible",
                   choices=["visible", "hidden", "after_due_date", "after_published"])
    return p


def _json_name(sub_name):
    """The file name of a submission's results in --out-dir."""
    base = re.sub(r"\.zip$", "", sub_name)
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "submission"
    return base + ".json"


def _json_names(submissions):
    """{submission path: JSON file name}; raises ValueError naming two submissions whose
    results would land in the same file."""
    names, owner = {}, {}
    for s in submissions:
        name = _json_name(os.path.basename(os.path.normpath(s)))
        key = name.lower()  # case-insensitive file systems too
        if key in owner:
            from autograder.report import clean_line
            raise ValueError(f"submissions {clean_line(owner[key])!r} and {clean_line(s)!r} "
                             f"would both write {clean_line(name)!r} in --out-dir; rename one")
        owner[key] = s
        names[s] = name
    return names


def _peak_memory_mib():
    """This process's peak resident memory (VmHWM) in MiB, or '?'."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return "?"


def main(argv=None):
    args = _parser().parse_args(argv)
    from concurrent.futures import ThreadPoolExecutor

    from autograder import isolation
    # the isolation probe (a sandboxed interpreter, about 0.1 s) runs while the checks load
    probe = ThreadPoolExecutor(max_workers=1)
    detected = probe.submit(isolation.detect) if args.submissions and not args.list else None
    probe.shutdown(wait=False)
    from autograder import report, runner, sandbox
    from autograder.checks import core

    try:
        selected = core.select(args.only, args.notebook)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        checks = selected
        current = None
        for c in checks:
            if c.api != current:
                current = c.api
                total = sum(x.points for x in checks if x.api == c.api)
                print(f"{c.api}  ({total:g} points)")
            print(f"    {c.points:4.2f}  {c.title}")
        return 0
    if not args.submissions:
        print("error: give at least one submission (folder or zip)", file=sys.stderr)
        return 2
    if args.json_out and len(args.submissions) != 1:
        print("error: --json needs exactly one submission; use --out-dir for several",
              file=sys.stderr)
        return 2
    missing = [s for s in args.submissions if not os.path.exists(s)]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2

    json_names = {}
    if args.out_dir:
        try:
            json_names = _json_names(args.submissions)
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

    outputs = [os.path.abspath(args.json_out)] if args.json_out else []
    if args.out_dir:
        outputs.append(os.path.abspath(args.out_dir))
    sandbox.enable_subreaper()
    opts = runner.Options(only=args.only, notebooks=args.notebook, jobs=args.jobs,
                          timeout=args.timeout, visibility=args.visibility, isolation=level,
                          log=None if args.quiet else sys.stderr)
    extra = [os.path.dirname(p) if p.endswith(".json") else p for p in outputs]
    for s in args.submissions:  # other students' submissions
        s = os.path.abspath(s)
        extra.append(s if os.path.isdir(s) else os.path.dirname(s))
    opts.limits.hide = runner.default_hidden_paths(extra=extra)
    if args.grader_memory is not None:
        opts.limits.grader_memory = args.grader_memory * 2 ** 20
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
        data = report.results_json(res, args.visibility, isolation=level)
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
