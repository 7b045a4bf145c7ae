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
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path


from autograder import isolation as isolation_mod
from autograder import course, paths, report
from autograder import replies
from autograder import submission as submission_mod
from autograder.checks import core
from autograder.report import CheckResult
from autograder.sandbox import WALL_FACTOR, GraderGroup, Limits, Worker, WorkerFailure

TORCH_MODULES = {"transformer"}
# modules are started longest first, so that two jobs finish together
MODULE_ORDER = list(reversed(course.STUDENT_MODULES))


@dataclass
class Options:
    only: list = field(default_factory=list)       # API names, modules, notebooks
    notebooks: list = field(default_factory=list)  # "01".."04"
    jobs: int = 2
    timeout: float = 10.0
    limits: Limits = None
    visibility: str = "visible"
    log: object = None  # a file for progress messages (None: quiet)
    isolation: object = None  # an isolation.Isolation (None: detected)

    def __post_init__(self):
        if self.limits is None:
            self.limits = Limits(timeout=self.timeout)
        self.limits.timeout = self.timeout
        if not self.limits.hide:
            self.limits.hide = default_hidden_paths()
        if self.isolation is None:
            self.isolation = isolation_mod.detect()


def default_hidden_paths(extra=()):
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


# failures that say nothing about the student's code when they happen once (a busy machine)
_COULD_NOT_RUN = ("timeout", "skipped")


@dataclass
class SubmissionResult:
    submission: submission_mod.Submission
    results: list
    seconds: float = 0.0
    internal_errors: list = field(default_factory=list)

    @property
    def score(self):
        return round(sum(r.score for r in self.results), 4)

    @property
    def max_score(self):
        return round(sum(r.points for r in self.results), 4)


def _log(opts, msg):
    if opts.log is not None:
        print(msg, file=opts.log, flush=True)


# ---------------------------------------------------------------------------------------------
# one module of one submission
# ---------------------------------------------------------------------------------------------

class ModuleRun:
    def __init__(self, sub, scratch, module, checks, opts):
        self.sub = sub
        self.scratch = scratch
        self.module = module
        self.checks = checks
        self.opts = opts
        self.worker = None
        self.import_error = None
        self.strikes = {}      # api -> number of timeouts
        self.crashes = {}      # api -> number of crashes
        self.deadline = time.monotonic() + opts.timeout * 8 + 30
        self.pending_output = ""

    def _scrub(self, text):
        if not text:
            return text
        return text.replace(str(self.scratch) + os.sep, "").replace(str(self.scratch),
                                                                    "<submission>")

    def _ensure_worker(self):
        if self.worker is not None and self.worker.alive:
            return
        limits = self.opts.limits
        worker = Worker(self.scratch, self.module, self.module in TORCH_MODULES, limits,
                        label=f"{self.sub.name}:{self.module}", isolation=self.opts.isolation)
        worker.start()
        for note in worker.notes:
            _log(self.opts, f"[{self.sub.name}:{self.module}] sandbox note: {note}")
        try:
            resp, arrays, output = worker.call({"kind": "import", "module": self.module}, {},
                                               max(limits.init_timeout, self.opts.timeout))
            ok, error, _, _ = replies.decode(resp, arrays, [])
        except WorkerFailure as exc:  # deterministic: do not retry for every call
            worker.close()
            what = {"timeout": "timed out while importing it",
                    "protocol": "it wrote into the grader's result channel"}.get(
                exc.kind, exc.message)
            self.import_error = (what, self._scrub(exc.output))
            return
        if output.strip():  # printed while importing: shown with the next call's output
            self.pending_output += self._scrub(output)
        if not ok:
            error = error or {}
            msg = error.get("message") or "import failed"
            where = error.get("where") or []
            if where:
                msg += "\n    at " + "\n    at ".join(where[-3:])
            worker.close()
            self.import_error = (self._scrub(msg), self._scrub(output))
            return
        self.worker = worker

    def _result(self, call, resp, arrays, output):
        """A checked Result of one answer (raises WorkerFailure when it is malformed); only
        the values the call asked for are kept."""
        ok, error, values, js = replies.decode(resp, arrays, call.returns)
        if error:
            error = {k: (self._scrub(v) if isinstance(v, str) else
                         [self._scrub(x) for x in v] if isinstance(v, list) else v)
                     for k, v in error.items()}
        return core.Result(ok=ok, error=error,
                           values={k: core.Value(m, a) for k, (m, a) in values.items()},
                           json=js, output=self._scrub(output))

    def _skip_reason(self, api):
        if self.import_error is not None:
            msg, out = self.import_error
            return core.Result(ok=False, failure=("import", f"importing {self.module}.py "
                                                  f"failed: {msg}"), output=out)
        if self.strikes.get(api, 0) >= 3 or self.crashes.get(api, 0) >= 5:
            return core.Result(ok=False, failure=(
                "skipped", f"not run: earlier calls of {api} hung or crashed repeatedly"))
        if time.monotonic() > self.deadline:
            return core.Result(ok=False, failure=(
                "skipped", f"not run: the time budget of {self.module}.py was used up "
                           "(earlier calls hung or crashed)"))
        return None

    def run_calls(self, api, calls):
        """Run the calls of one API name; returns one Result per call. A call that hangs or
        kills the worker fails alone: the rest go to a fresh worker."""
        results = [None] * len(calls)
        pending = list(range(len(calls)))
        while pending:
            skip = self._skip_reason(api)
            if skip is not None:
                for i in pending:
                    results[i] = skip
                break
            timeout = self.opts.timeout
            if self.strikes.get(api, 0):
                timeout = min(timeout, max(1.0, timeout / 5))
            try:
                self._ensure_worker()
            except WorkerFailure as exc:
                self.crashes[api] = self.crashes.get(api, 0) + 1
                results[pending[0]] = core.Result(ok=False, failure=(exc.kind, exc.message),
                                                  output=self._scrub(exc.output))
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
                    results[pending[done]] = self._result(calls[pending[done]], resp, arrays,
                                                          output)
                    del resp, arrays
                    done += 1
                pending = []
            except WorkerFailure as exc:
                if not hasattr(exc, "index"):  # a malformed answer, found here
                    exc.index = done
                    answers.close()
                    self.worker.close()
                    exc.output = ""
                failed = pending[exc.index]
                if exc.kind == "timeout":
                    self.strikes[api] = self.strikes.get(api, 0) + 1
                    msg = (f"timed out after {timeout:g} s of CPU time or "
                           f"{timeout * WALL_FACTOR:g} s in all (an infinite loop, far too slow, "
                           "or waiting forever); the worker was killed")
                else:
                    self.crashes[api] = self.crashes.get(api, 0) + 1
                    msg = exc.message
                self.worker = None
                results[failed] = core.Result(ok=False, failure=(exc.kind, msg),
                                              output=self._scrub(exc.output))
                pending = pending[exc.index + 1:]
        return results

    def run(self):
        out = []
        try:
            groups = {}
            for check in self.checks:
                groups.setdefault(check.api, []).append(check)
            for api, checks in groups.items():
                out.extend(self._run_group(api, checks))
        finally:
            if self.worker is not None:
                self.worker.close()
                self.worker = None
        return out

    def _run_group(self, api, checks):
        if self.module not in self.sub.files:
            return [CheckResult.of(c, message=f"{self.module}.py was not found in the submission")
                    for c in checks]
        flat, owners, out = [], [], {}
        for k, check in enumerate(checks):
            try:
                calls = check.get_calls()
            except Exception:
                out[k] = self._internal(check, "building the inputs")
                continue
            for call in calls:
                flat.append(call)
                owners.append(k)
        self._run_and_evaluate(api, checks, flat, owners, out)
        retry = [k for k in range(len(checks)) if out[k].could_not_run]
        if retry:  # once more, in a fresh worker, with the API name's strikes forgotten
            _log(self.opts, f"[{self.sub.name}:{self.module}] {len(retry)} check(s) of {api} "
                            "could not run; retrying them in a fresh worker")
            if self.worker is not None:
                self.worker.close()
                self.worker = None
            self.strikes.pop(api, None)
            self.crashes.pop(api, None)
            self.deadline = max(self.deadline, time.monotonic() + self.opts.timeout * 3 + 10)
            flat, owners, again = [], [], {}
            for k in retry:
                try:
                    calls = checks[k].get_calls()
                except Exception:
                    again[k] = self._internal(checks[k], "building the inputs")
                    continue
                for call in calls:
                    flat.append(call)
                    owners.append(k)
            self._run_and_evaluate(api, checks, flat, owners, again)
            for k, res in again.items():
                res.not_graded = res.could_not_run
                out[k] = res
        return [out[k] for k in range(len(checks))]

    def _run_and_evaluate(self, api, checks, flat, owners, out):
        """Run the calls ``flat`` (of ``checks[owners[i]]``) and put a CheckResult per check
        into ``out`` (index -> result)."""
        results = self.run_calls(api, flat) if flat else []
        per_check = {}
        for k, r in zip(owners, results):
            per_check.setdefault(k, []).append(r)
        for k in sorted(set(owners)):
            check = checks[k]
            rs = per_check.get(k, [])
            try:
                outcome = check.evaluate(rs, check)
            except Exception:
                out[k] = self._internal(check, "evaluating the results")
                continue
            stuck = not outcome.passed and any(
                r.failure is not None and r.failure[0] in _COULD_NOT_RUN for r in rs)
            out[k] = CheckResult.of(check, outcome.passed, message=self._scrub(outcome.message),
                                    hint=outcome.hint, detail=self._scrub(outcome.detail),
                                    printed=report.printed_text(r.output for r in rs),
                                    could_not_run=stuck)

    def _internal(self, check, what):
        tb = traceback.format_exc()
        _log(self.opts, f"INTERNAL ERROR in check {check.id} ({what}):\n{tb}")
        return CheckResult.of(check, message=f"internal grader error while {what}; please "
                              "report it to the course staff", could_not_run=True)


# ---------------------------------------------------------------------------------------------
# submissions
# ---------------------------------------------------------------------------------------------

def _load(path, opts):
    """Load one submission; a submission that cannot be read is graded as empty (its
    problem noted), never the end of the batch."""
    try:
        return submission_mod.load(path)
    except Exception as exc:
        _log(opts, f"INTERNAL ERROR loading {path}:\n{traceback.format_exc()}")
        sub = submission_mod.Submission(source=Path(path), name=Path(path).name)
        sub.problems.append(f"the submission could not be read ({type(exc).__name__})")
        return sub


_warm_lock = threading.Lock()
_warm_thread = None


def _warm_up_torch():
    """Import torch in the background (1-3 s) while the first workers start: the transformer
    checks and every PyTorch-autograd comparison need it. Only when some worker will run: an
    empty submission does not pay for it. The thread is not a daemon: an interpreter that
    exits while a thread is inside torch's import aborts ("terminate called without an active
    exception", exit -6), so exit waits for it; the command line ends with ``os._exit``
    once its files are written, and waits for neither."""
    global _warm_thread
    with _warm_lock:
        if _warm_thread is None:
            _warm_thread = threading.Thread(target=core.import_torch, name="torch-import")
            _warm_thread.start()


def grade(submission_paths, opts):
    """Grade submissions; returns a list of SubmissionResult (in the order given). The grader
    process runs in a cgroup leaf of its own with a memory limit (``limits.grader_memory``)
    where the machine allows one (see sandbox.GraderGroup); the log says which."""
    with GraderGroup(opts.limits.grader_memory) as group:
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
    try:
        for p in submission_paths:
            sub = _load(p, opts)
            subs.append(sub)
            scratches.append(submission_mod.make_scratch(sub))
    except BaseException:
        for s in scratches:
            submission_mod.remove_scratch(s)
        raise
    if any(m in sub.files for sub in subs for m in modules):
        _warm_up_torch()

    tasks = []
    for i, sub in enumerate(subs):
        for m in modules:
            tasks.append((i, m))
    # longest modules first across all submissions
    tasks.sort(key=lambda t: (modules.index(t[1]) if t[1] in TORCH_MODULES else 1, t[0],
                              modules.index(t[1])))
    outputs = {}
    started = {i: None for i in range(len(subs))}
    finished_at = {}
    lock = threading.Lock()

    def work(task):
        i, m = task
        with lock:
            if started[i] is None:
                started[i] = time.monotonic()
        try:
            res = ModuleRun(subs[i], scratches[i], m, by_module[m], opts).run()
        except Exception:  # a bug of the grader on this submission costs it alone
            tb = traceback.format_exc()
            _log(opts, f"INTERNAL ERROR grading {subs[i].name}, {m}.py:\n{tb}")
            res = [CheckResult.of(c, message="internal grader error; please report it to the "
                                  "course staff") for c in by_module[m]]
        with lock:
            outputs[task] = res
            finished_at[i] = time.monotonic()
        _log(opts, f"[{subs[i].name}] {m}: {sum(r.score for r in res):g} / "
                   f"{sum(r.points for r in res):g}")
        return res

    try:
        # reference values computed up front would serialise the pool; they are memoized lazily
        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            list(pool.map(work, tasks))
    finally:
        for s in scratches:
            submission_mod.remove_scratch(s)

    out = []
    order = {c.id: k for k, c in enumerate(checks)}
    for i, sub in enumerate(subs):
        results = []
        for m in modules:
            results.extend(outputs.get((i, m), []))
        results.sort(key=lambda r: order[r.id])
        report.note_dependencies(results)
        secs = (finished_at.get(i, 0) - started[i]) if started[i] else 0.0
        out.append(SubmissionResult(sub, results, seconds=secs))
    return out
