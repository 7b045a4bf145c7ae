"""Grading: submissions -> checks run in isolated workers -> results (Gradescope schema).

One worker process per (submission, student module) runs every call of that module's selected
checks, in order. When a call hangs or kills its worker, that call fails, the worker and all it
started are killed, and the remaining calls go to a fresh worker. An API name whose calls keep
hanging gets a shorter timeout (after one timeout) and its remaining calls are skipped after
three; a module also has an overall time budget. A check that could not run (a timeout, a
call skipped after hangs, an internal grader error) is run once more in a fresh worker; if it
still cannot run it is NOT GRADED (score 0 until regraded, said in results.json and the
summary), never reported as the student's failure. ``jobs`` workers run at a time (threads
here, processes there). All comparisons happen in this process.
"""
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from autograder import course, paths, replies, report
from autograder import isolation as isolation_mod
from autograder import submission as submission_mod
from autograder.checks import core
from autograder.report import CheckResult
from autograder.sandbox import (
    GRADER_MEMORY,
    WALL_FACTOR,
    GraderGroup,
    Limits,
    Worker,
    WorkerFailure,
)

TORCH_MODULES = {"transformer"}
# modules are started longest first, so that two jobs finish together
MODULE_ORDER = list(reversed(course.STUDENT_MODULES))

# the retry policy
HANGS_BEFORE_SKIP = 3      # timeouts of one API name; then its remaining calls are skipped
CRASHES_BEFORE_SKIP = 5    # crashes of one API name; then its remaining calls are skipped
SHORT_TIMEOUT = 5          # after a timeout, the API name's calls get timeout / 5 ...
MIN_TIMEOUT = 1.0          # ... but at least 1 s
MODULE_BUDGET = (8, 30)    # a module's time: 8 call timeouts + 30 s
RETRY_BUDGET = (3, 10)     # a retry in a fresh worker has at least 3 call timeouts + 10 s
# failures that are not the student's: a hang, a call skipped after hangs, a worker that did not
# start (no student code runs before it says it is ready)
COULD_NOT_RUN = ("timeout", "skipped", "start")


@dataclass
class Options:
    """How to grade. ``only``: API names, modules or notebooks (all when empty); ``notebooks``:
    "01".."04"; ``jobs``: workers at a time; ``timeout``: seconds of the worker's CPU time
    for one call (bounded by WALL_FACTOR times that of wall clock); ``limits``: each worker's
    resource limits; ``hide``: folders a worker must not see (default:
    ``default_hidden_paths()``); ``grader_memory``: the grader process's own memory limit in
    bytes (sandbox.GraderGroup); ``isolation``: an isolation.Isolation (None: detected);
    ``log``: a file for progress messages (None: quiet; internal errors then go to stderr)."""
    only: list = field(default_factory=list)
    notebooks: list = field(default_factory=list)
    jobs: int = 2
    timeout: float = 10.0
    limits: Limits = field(default_factory=Limits)
    hide: Optional[list] = None
    grader_memory: int = GRADER_MEMORY
    isolation: object = None
    log: object = None

    def __post_init__(self):
        if self.hide is None:
            self.hide = default_hidden_paths()
        if self.isolation is None:
            self.isolation = isolation_mod.detect()


def default_hidden_paths(extra=()) -> list:
    """Folders a worker must not see even where they lie inside a folder it is given (an
    interpreter's site-packages holding an installed course): the course, the autograder
    package, the reference solutions, and ``extra`` (outputs, submissions). The worker's world
    is an allowlist (see isolation.py); these are covered with empty folders when needed."""
    candidates = [paths.course_root(), paths.autograder_dir(), paths.reference_dir()] + \
        list(extra)
    out = []
    for c in candidates:
        c = os.path.realpath(c)
        if os.path.isdir(c) and c != "/" and c not in out:
            out.append(c)
    return out


@dataclass
class SubmissionResult:
    """The CheckResults of one submission, in the order of the checks."""
    submission: submission_mod.Submission
    results: list

    @property
    def score(self) -> float:
        return round(sum(r.score for r in self.results), 4)

    @property
    def max_score(self) -> float:
        return round(sum(r.points for r in self.results), 4)


def _log(opts, msg, error=False):
    """A progress message to ``opts.log`` (nothing when quiet), or an internal ``error`` of the
    grader with its traceback: to ``opts.log``, or to stderr when quiet (the instructor always
    sees a grader bug)."""
    if opts.log is not None or error:
        print(msg, file=opts.log if opts.log is not None else sys.stderr, flush=True)


class Strikes:
    """The retry policy of one module's worker: timeouts ("hangs") and crashes per API name,
    and the module's time budget."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.hangs = {}     # api -> number of timeouts
        self.crashes = {}   # api -> number of crashes
        self.deadline = time.monotonic() + timeout * MODULE_BUDGET[0] + MODULE_BUDGET[1]

    def timeout_for(self, api: str) -> float:
        """The timeout of the next calls of ``api``: shorter after it hung once."""
        if self.hangs.get(api, 0):
            return min(self.timeout, max(MIN_TIMEOUT, self.timeout / SHORT_TIMEOUT))
        return self.timeout

    def count(self, api: str, kind: str):
        """Count a failed call of ``api`` (kind ``timeout``: a hang; else a crash)."""
        table = self.hangs if kind == "timeout" else self.crashes
        table[api] = table.get(api, 0) + 1

    def gave_up(self, api: str) -> bool:
        return self.hangs.get(api, 0) >= HANGS_BEFORE_SKIP or \
            self.crashes.get(api, 0) >= CRASHES_BEFORE_SKIP

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def forget(self, api: str):
        """A retry of ``api`` in a fresh worker: its counts forgotten, time for it ensured."""
        self.hangs.pop(api, None)
        self.crashes.pop(api, None)
        self.deadline = max(self.deadline, time.monotonic() + self.timeout * RETRY_BUDGET[0]
                            + RETRY_BUDGET[1])


# --------------------------------------------------------------------- one module of one submission

class ModuleRun:
    """Runs the checks of one student module of one submission in its worker (started again
    after a call kills it), with the retry policy of :class:`Strikes`; ``run()`` returns one
    CheckResult per check."""

    def __init__(self, sub, scratch, module: str, checks: list, opts: Options):
        self.sub = sub
        self.scratch = scratch
        self.module = module
        self.checks = checks
        self.opts = opts
        self.worker = None
        self.import_error = None   # (message, printed output) once importing it failed
        self.strikes = Strikes(opts.timeout)
        self.pending_output = ""   # printed while importing: shown with the next call's

    def scrub(self, text: str) -> str:
        """``text`` without the scratch folder's path (a student sees ``seqlab/rnn_layers.py``,
        and ``<submission>`` for the folder itself)."""
        folder = str(self.scratch)
        return text.replace(folder + os.sep, "").replace(folder, "<submission>") if text else text

    def run(self) -> list:
        out = []
        try:
            groups = {}
            for check in self.checks:
                groups.setdefault(check.api, []).append(check)
            for api, checks in groups.items():
                out.extend(self._run_group(api, checks))
        finally:
            self._close_worker()
        return out

    def _close_worker(self):
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def _ensure_worker(self):
        if self.worker is not None and self.worker.alive:
            return
        limits = self.opts.limits
        worker = Worker(self.scratch, self.module, self.module in TORCH_MODULES, limits,
                        hide=self.opts.hide, isolation=self.opts.isolation)
        worker.start()
        try:
            resp, arrays, output = worker.call({"kind": "import", "module": self.module}, {},
                                               max(limits.init_timeout, self.opts.timeout))
            ok, error, _, _ = replies.decode(resp, arrays, [])
        except WorkerFailure as exc:  # deterministic: do not retry for every call
            worker.close()
            what = {"timeout": "timed out while importing it",
                    "protocol": "it wrote into the grader's result channel"}.get(
                exc.kind, exc.message)
            self.import_error = (what, self.scrub(exc.output))
            return
        if output.strip():
            self.pending_output += self.scrub(output)
        if not ok:
            worker.close()
            self.import_error = (self.scrub(replies.import_message(error)), self.scrub(output))
            return
        self.worker = worker

    def _skip_reason(self, api):
        if self.import_error is not None:
            msg, out = self.import_error
            return core.Result(ok=False, failure=("import", f"importing {self.module}.py "
                                                  f"failed: {msg}"), output=out)
        if self.strikes.gave_up(api):
            return core.Result(ok=False, failure=(
                "skipped", f"not run: earlier calls of {api} hung or crashed repeatedly"))
        if self.strikes.out_of_time():
            return core.Result(ok=False, failure=(
                "skipped", f"not run: the time budget of {self.module}.py was used up "
                           "(earlier calls hung or crashed)"))
        return None

    def run_calls(self, api: str, calls: list) -> list:
        """Run the calls of one API name; returns one core.Result per call. A call that hangs
        or kills the worker fails alone: the rest go to a fresh worker."""
        results = [None] * len(calls)
        pending = list(range(len(calls)))
        while pending:
            skip = self._skip_reason(api)
            if skip is not None:
                for i in pending:
                    results[i] = skip
                break
            timeout = self.strikes.timeout_for(api)
            try:
                self._ensure_worker()
            except WorkerFailure as exc:  # from Worker.start: before any student code ran
                self.strikes.count(api, "crash")
                results[pending[0]] = core.Result(ok=False, failure=("start", exc.message),
                                                  output=self.scrub(exc.output))
                pending = pending[1:]
                continue
            if self.import_error is not None:
                continue  # reported by _skip_reason
            batch = [(calls[i].steps, calls[i].returns, calls[i].inputs) for i in pending]
            done = 0
            answers = self.worker.batch(batch, timeout)
            try:
                for resp, arrays, output in answers:
                    if self.pending_output:
                        output, self.pending_output = self.pending_output + output, ""
                    results[pending[done]] = replies.result(resp, arrays, calls[pending[done]]
                                                            .returns, output, self.scrub)
                    del resp, arrays
                    done += 1
                pending = []
            except WorkerFailure as exc:
                if not hasattr(exc, "index"):  # a malformed answer, found here
                    exc.index = done
                    answers.close()
                    self.worker.close()
                    exc.output = ""
                self.strikes.count(api, exc.kind)
                msg = exc.message if exc.kind != "timeout" else (
                    f"timed out after {timeout:g} s of CPU time or {timeout * WALL_FACTOR:g} s "
                    "in all (an infinite loop, far too slow, or waiting forever); the worker "
                    "was killed")
                self.worker = None
                results[pending[exc.index]] = core.Result(ok=False, failure=(exc.kind, msg),
                                                          output=self.scrub(exc.output))
                pending = pending[exc.index + 1:]
        return results

    def _run_group(self, api, checks):
        if self.module not in self.sub.files:
            return [CheckResult.of(c, message=f"{self.module}.py was not found in the submission")
                    for c in checks]
        out = self._run_and_evaluate(api, checks, range(len(checks)))
        retry = [k for k in range(len(checks)) if out[k].could_not_run]
        if retry:  # once more, in a fresh worker, with the API name's strikes forgotten
            _log(self.opts, f"[{self.sub.name}:{self.module}] {len(retry)} check(s) of {api} "
                            "could not run; retrying them in a fresh worker")
            self._close_worker()
            self.strikes.forget(api)
            for k, res in self._run_and_evaluate(api, checks, retry).items():
                res.not_graded = res.could_not_run
                out[k] = res
        return [out[k] for k in range(len(checks))]

    def _run_and_evaluate(self, api, checks, which):
        """Run the calls of ``checks[k]`` for k in ``which``, evaluate them: {k: CheckResult}."""
        flat, owners, out = [], [], {}
        for k in which:
            try:
                calls = checks[k].get_calls()
            except Exception:
                out[k] = self._internal(checks[k], "building the inputs")
                continue
            flat.extend(calls)
            owners.extend([k] * len(calls))
        results = self.run_calls(api, flat) if flat else []
        per_check = {}
        for k, r in zip(owners, results, strict=True):
            per_check.setdefault(k, []).append(r)
        for k, rs in sorted(per_check.items()):
            check = checks[k]
            try:
                outcome = check.evaluate(rs, check)
            except Exception:
                out[k] = self._internal(check, "evaluating the results")
                continue
            stuck = not outcome.passed and any(
                r.failure is not None and r.failure[0] in COULD_NOT_RUN for r in rs)
            out[k] = CheckResult.of(check, outcome.passed, message=self.scrub(outcome.message),
                                    hint=outcome.hint, detail=self.scrub(outcome.detail),
                                    printed=report.printed_text(r.output for r in rs),
                                    could_not_run=stuck)
        return out

    def _internal(self, check, what):
        tb = traceback.format_exc()
        _log(self.opts, f"INTERNAL ERROR in check {check.id} ({what}):\n{tb}", error=True)
        return CheckResult.of(check, message=f"internal grader error while {what}; please "
                              "report it to the course staff", could_not_run=True)


# -------------------------------------------------------------------------------------- submissions

def _load(path, opts):
    """Load one submission; a submission that cannot be read is graded as empty (its
    problem noted), never the end of the batch."""
    try:
        return submission_mod.load(path)
    except Exception as exc:
        _log(opts, f"INTERNAL ERROR loading {path}:\n{traceback.format_exc()}", error=True)
        sub = submission_mod.Submission(source=Path(path), name=Path(path).name)
        sub.problems.append(f"the submission could not be read ({type(exc).__name__})")
        return sub


def grade(submission_paths: list, opts: Options) -> list:
    """Grade submissions (folders or zips); returns a SubmissionResult per submission, in the
    order given. The grader process runs in a cgroup leaf of its own with a memory limit
    (``opts.grader_memory``) where the machine allows one (sandbox.GraderGroup); the log says
    which."""
    with GraderGroup(opts.grader_memory) as group:
        _log(opts, f"grader memory: {group.describe()}")
        try:
            return _grade(submission_paths, opts)
        finally:
            peak = group.peak()
            if peak is not None:
                _log(opts, f"grader memory: peak {peak // 2 ** 20} MiB in its cgroup")


def _grade(submission_paths, opts):
    checks = core.select(opts.only, opts.notebooks)
    by_module = {}
    for c in checks:
        by_module.setdefault(c.module, []).append(c)
    modules = [m for m in MODULE_ORDER if m in by_module] + \
        [m for m in by_module if m not in MODULE_ORDER]

    subs, scratches = [], []

    def work(task):
        i, m = task
        try:
            res = ModuleRun(subs[i], scratches[i], m, by_module[m], opts).run()
        except Exception:  # a bug of the grader on this submission costs it alone
            tb = traceback.format_exc()
            _log(opts, f"INTERNAL ERROR grading {subs[i].name}, {m}.py:\n{tb}", error=True)
            res = [CheckResult.of(c, message="internal grader error; please report it to the "
                                  "course staff") for c in by_module[m]]
        _log(opts, f"[{subs[i].name}] {m}: {sum(r.score for r in res):g} / "
                   f"{sum(r.points for r in res):g}")
        return res

    try:
        for p in submission_paths:
            subs.append(_load(p, opts))
            scratches.append(submission_mod.make_scratch(subs[-1]))
        # torch is imported by the first check that needs it (core.import_torch), not ahead of
        # time: a selection of numpy forwards never needs it, and importing it in the
        # background held the GIL while the pool started its workers (2-3 s of wall time a run)
        tasks = [(i, m) for i in range(len(subs)) for m in modules]
        # longest modules first across all submissions
        tasks.sort(key=lambda t: (modules.index(t[1]) if t[1] in TORCH_MODULES else 1, t[0],
                                  modules.index(t[1])))
        # reference values computed up front would serialise the pool; they are memoized lazily
        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            outputs = dict(zip(tasks, pool.map(work, tasks), strict=True))
    finally:
        for s in scratches:
            submission_mod.remove_scratch(s)

    out = []
    order = {c.id: k for k, c in enumerate(checks)}
    for i, sub in enumerate(subs):
        results = [r for m in modules for r in outputs[(i, m)]]
        results.sort(key=lambda r: order[r.id])
        report.note_dependencies(results)
        out.append(SubmissionResult(sub, results))
    return out
