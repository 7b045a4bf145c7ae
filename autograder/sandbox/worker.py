"""A sandboxed worker process that runs student code (grader side).

A :class:`Worker` is one Python process serving one student module of one submission
(``rnn_layers``, ``transformer``...), started in the sandbox that ``isolation.py`` builds. The
grader sends it programs (``boot.py`` runs them) and reads plain arrays back (``wire.py``);
nothing it sends is ever unpickled, and all comparisons happen in the grader. Every answer is
hostile: frames are size-checked (``wire.MAX_HEADER``, the per-call byte budget
``Limits.reply_bytes``), JSON nesting is bounded before parsing, arrays are plain numeric
dtypes whose size matches their shape; anything else is a WorkerFailure of that call
(``replies.py`` checks the contents).
"""
import contextlib
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autograder import isolation as iso
from autograder import paths
from autograder.sandbox import cgroup, procs, wire
from autograder.sandbox.output import OutputReader

HERE = Path(__file__).resolve().parent
BOOT_NAME = "_seqlab_worker.py"
# copied into the scratch folder: the worker imports the wire format as _seqlab_wire
BOOT_FILES = {BOOT_NAME: HERE / "boot.py", "_seqlab_wire.py": HERE / "wire.py"}
MARKER_ENV = "SEQLAB_SANDBOX_TOKEN"
GiB = cgroup.GiB


@dataclass
class Limits:
    """Resource limits of one worker (the time limit of a call is the caller's: see
    :class:`Deadline`)."""
    init_timeout: float = 60.0  # seconds to start and import numpy or torch
    mem_numpy: int = 1 * GiB
    mem_torch: int = 3 * GiB
    cpu_seconds: int = 300
    file_size: int = 64 * 2 ** 20
    nproc: int = 64          # per worker uid (root) / extra tasks over the user's count
    nofile: int = 512
    output_chars: int = 4000  # captured output kept per call
    reply_bytes: int = 64 * 2 ** 20  # array bytes one call may return


WALL_FACTOR = 4  # a call may wait this many times its CPU budget of wall-clock time
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids):
    """CPU time (user + system, with reaped children) used so far by the processes ``pids``
    (0 for those that have ended)."""
    ticks = 0
    for fields in filter(None, map(procs.stat_fields, pids)):
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / _TICKS


class Deadline:
    """When a call's time is up: once the worker has used ``seconds`` of CPU time since the
    call began (``cpu()``: its CPU seconds so far, see ``Worker.cpu_seconds``), or after
    ``WALL_FACTOR * seconds`` of wall clock, whichever comes first; without ``cpu``, after
    ``seconds`` of wall clock.

    CPU time does not run while the worker waits for a busy machine, so a call that runs out
    of time under load is one that would run out on an idle machine, and grades do not depend
    on the load; the wall-clock bound still stops a call that sleeps or blocks."""

    def __init__(self, seconds, cpu=None):
        self.seconds = seconds
        self.cpu = cpu
        self.start = time.monotonic()
        self.wall = seconds * (WALL_FACTOR if cpu else 1)
        self.cpu_start = cpu() if cpu else 0.0

    def remaining(self) -> float:
        """Seconds to wait before asking again (> 0), or 0 once the time is up."""
        elapsed = time.monotonic() - self.start
        if elapsed >= self.wall:
            return 0.0
        if not self.cpu:
            return self.wall - elapsed
        if elapsed < self.seconds / 4:  # too soon to have used the budget on a few CPUs
            return self.seconds / 4 - elapsed
        used = self.cpu() - self.cpu_start
        rate = max(1.0, used / elapsed)  # CPU seconds per second: above 1 with several processes
        return max(0.0, min((self.seconds - used) / rate, self.wall - elapsed))


class WorkerFailure(Exception):
    """The worker hung, died, or broke the protocol. ``kind``: timeout | crash | protocol."""

    def __init__(self, kind, message, output=""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.output = output


def _course_root():
    # the folder that holds the grader's code, which no worker may see: paths.course_root()
    # unless SEQLAB_COURSE_ROOT moves the course elsewhere (the code stays here)
    return os.path.realpath(paths.autograder_dir().parent)


def _is_site_dir(path):
    """True for a folder of this interpreter's sys.path that a worker may see: not the course
    (an editable install or a PYTHONPATH entry), not the current folder."""
    if not path or not os.path.isabs(path) or not os.path.isdir(path):
        return False
    real, course = os.path.realpath(path), _course_root()
    # the course, a folder inside it, or a folder that holds it (e.g. PYTHONPATH=/home/me)
    return not (iso.under(real, course) or iso.under(course, real))


def interpreter_folders() -> list:
    """Folders a worker needs to see, read-only: the interpreter's prefixes, its standard
    library and the folders of sys.path that hold packages (numpy, torch). Never the course."""
    import sysconfig
    out = {sys.prefix, sys.base_prefix, sys.exec_prefix,
           os.path.dirname(os.path.realpath(sys.executable)),
           os.path.dirname(sys.executable),
           sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
           sysconfig.get_paths()["platlib"], os.path.dirname(os.path.dirname(np.__file__))}
    out.update(p for p in sys.path if _is_site_dir(p))
    folders = sorted({os.path.realpath(p) for p in out if p and os.path.isdir(p)}, key=len)
    course = _course_root()
    keep = []
    for f in folders:
        if f != "/" and not iso.under(f, course) and not any(iso.under(f, k) for k in keep):
            keep.append(f)
    return keep


_live_workers = set()  # started, not yet closed (under procs.workers_lock)
_stopping = False      # set by stop_all: no worker starts any more


def stop_all() -> None:
    """The grader is being stopped: start no more workers (``Worker.start`` then fails) and
    kill every process of the workers of this process. The threads that drive them then see
    their calls fail and close them; the grader's clean-up (scratch folders, cgroups) follows
    as it unwinds."""
    global _stopping
    _stopping = True
    with procs.workers_lock:
        workers = list(_live_workers)
    for worker in workers:
        with contextlib.suppress(Exception):  # its own thread may be closing it meanwhile
            worker.kill_all()


def _stop_and_exit(signum, frame):
    stop_all()
    raise SystemExit(128 + signum)


def stop_on_sigterm() -> None:
    """In a process that is the grader's alone (the CLI commands, as ``enable_subreaper``), from
    the main thread: SIGTERM (a time limit's, an instructor's ``kill``) kills the workers and
    their processes and removes the grader's cgroups before the process exits with status
    143. By default it would exit at once and leave them running."""
    signal.signal(signal.SIGTERM, _stop_and_exit)


class Worker:
    """A worker (see above). ``isolation``: an ``isolation.Isolation`` (default: what this
    machine allows)."""

    def __init__(self, scratch, module: str, use_torch: bool, limits: Limits, hide=(),
                 isolation=None):
        self.scratch = Path(scratch)
        self.module = module
        self.use_torch = use_torch
        self.limits = limits
        self.hide = list(hide)
        self.isolation = isolation or iso.detect()
        self.proc = None
        self.cgroup = None
        self.uid = None
        self.token = secrets.token_hex(16)
        self._req_w = self._resp_r = None
        self._reader = None
        self._next_id = 0
        self._answers = 0
        self._core = set()
        self.alive = False

    # start / stop -----------------------------------------------------------------------
    def start(self) -> "Worker":
        scratch, method = self.scratch, self.isolation.method
        for name, source in BOOT_FILES.items():  # the bootstrap and the wire format
            target, data = scratch / name, source.read_bytes()
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
                os.chmod(target, 0o644)
        bwrap = "bwrap" in method
        mem = self.limits.mem_torch if self.use_torch else self.limits.mem_numpy
        inside = iso.INSIDE_SCRATCH if bwrap else str(scratch)
        # without bubblewrap's private /tmp: a folder of its own in the scratch folder
        tmp = "/tmp" if bwrap else str(scratch / ".w" / self.token[:12])
        if not bwrap:
            os.makedirs(tmp)
        uid, gid, nproc = os.geteuid(), os.getegid(), self.limits.nproc
        if iso.fresh_uid(method):
            uid = self.uid = procs.pick_uid()
            gid = procs.scratch_group(scratch)
            if not bwrap:
                os.chown(tmp, uid, gid)
                os.chmod(tmp, 0o700)
        else:  # RLIMIT_NPROC counts every task of the uid: the grader's too
            nproc += procs.tasks_of_uid(os.getuid())
        config = {"scratch": inside, "torch": self.use_torch,
                  "path": [p for p in sys.path if _is_site_dir(p)],
                  "limits": {"as": mem, "cpu": self.limits.cpu_seconds,
                             "fsize": self.limits.file_size, "nofile": self.limits.nofile,
                             "core": 0, "nproc": nproc},
                  "marker": self.token[16:]}
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            MARKER_ENV: f"{os.getpid()}.{self.token}",  # the grader's pid: for tests
        }
        if "memory and pids cgroup" not in self.isolation.missing:  # promised: fail closed
            # the address-space limit bounds each process; the cgroup bounds them together
            # (with room for the tmpfs folders)
            self.cgroup = cgroup.Cgroup(f"seqlab-{self.token[:16]}", mem + cgroup.CGROUP_SLACK,
                                 self.limits.nproc + 64)
            if not self.cgroup.ok:
                self.cgroup.remove()
                self.cgroup = None
                raise WorkerFailure("crash", "the worker's memory and pids cgroup could not be "
                                    "made, although the isolation level promises one")
        (req_r, req_w), (resp_r, resp_w) = os.pipe(), os.pipe()
        args_r, args_w = os.pipe() if bwrap else (None, None)  # bubblewrap's arguments
        fds = [req_r, resp_w] + ([args_r] if bwrap else [])
        program = [sys.executable, "-I", "-B", "-u", f"{inside}/{BOOT_NAME}", str(req_r),
                   str(resp_w)]
        try:
            argv, bargs = iso.command(method, program, folders=interpreter_folders(),
                                      hide=self.hide, scratch=scratch, uid=uid, gid=gid,
                                      args_fd=args_r)
            if self.cgroup is not None:  # joins the cgroup before it starts anything
                argv = self.cgroup.enter_command() + argv
            if bargs is not None:
                data = b"".join(os.fsencode(a) + b"\0" for a in bargs)
                if len(data) > 60000:
                    raise WorkerFailure("crash", "the sandbox arguments do not fit a pipe")
                os.write(args_w, data)
                os.close(args_w)
                args_w = None
            with procs.workers_lock:  # spawn and register atomically (see tracked_pids)
                if _stopping:
                    raise WorkerFailure("crash", "the grader is stopping")
                self.proc = subprocess.Popen(
                    argv, cwd=str(scratch), env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=tuple(fds),
                    start_new_session=True, close_fds=True)
                procs.worker_pids.add(self.proc.pid)
                _live_workers.add(self)
        except BaseException:  # nothing started: the grader's ends of the pipes and the cgroup
            for fd in (req_w, resp_r):
                os.close(fd)
            if self.cgroup is not None:
                self.cgroup.remove()
                self.cgroup = None
            raise
        finally:
            for fd in fds + ([args_w] if args_w is not None else []):
                os.close(fd)
        self._req_w, self._resp_r = req_w, resp_r
        os.set_blocking(req_w, False)
        self._reader = OutputReader(self.proc.stdout, self.limits.output_chars,
                                     self.token[16:].encode())
        self._reader.start()
        self.alive = True
        deadline = Deadline(self.limits.init_timeout)
        try:
            self._send(wire.pack({"kind": "config", "config": config}, {}), deadline)
            header, _ = self._receive(deadline, wire.MAX_HEADER)
            if header.get("ready") is not True:
                raise WorkerFailure("protocol", "the worker did not say it was ready")
        except WorkerFailure as exc:
            self.close()
            raise WorkerFailure(exc.kind, "the worker process did not start: " + exc.message,
                                self._reader.rest()) from None
        self._core = self.tracked_pids()  # the worker's own processes (sandbox and python)
        return self

    def cpu_seconds(self) -> float:
        """CPU time (seconds) the worker has used so far, what a call's ``Deadline`` counts:
        every process in its cgroup when the cgroup can tell (the processes a call forks and
        never waits for, a fork bomb's among them, count too), else the worker's own processes
        and the children they reaped."""
        if self.cgroup is not None and self.cgroup.counts_cpu:
            return self.cgroup.cpu_seconds()
        return _cpu_seconds(self._core)

    def close(self) -> None:
        """Kill the worker and everything it started; clean up."""
        if self.proc is None:
            return
        self.alive = False
        for fd in (self._req_w, self._resp_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._req_w = self._resp_r = None
        self.kill_all()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._reader.join(timeout=1)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()
        with procs.workers_lock:
            procs.worker_pids.discard(self.proc.pid)
            _live_workers.discard(self)
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.isolation.method == "uid":
            procs.cleanup_files_of(self.uid)
        self.proc = None

    # process tracking -------------------------------------------------------------------
    def tracked_pids(self, quick: bool = False) -> set:
        """Every live process that belongs to this worker (the worker included). ``quick``:
        the cgroup alone when there is one."""
        found = self.cgroup.pids() if self.cgroup is not None else set()
        if quick and self.cgroup is not None:
            return found
        sid = self.proc.pid
        me = os.getpid()
        token = self.token.encode()
        my_uid = os.geteuid()
        orphans = set()
        for pid in procs.all_pids():
            uid = procs.proc_uid(pid)
            if pid == me or uid is None:
                continue
            if uid == self.uid:  # a fresh uid (None without one)
                found.add(pid)
            elif uid == my_uid and (st := procs.stat_fields(pid)) is not None:
                if int(st[3]) == sid or procs.has_marker(pid, token):
                    found.add(pid)
                elif procs.subreaper and int(st[1]) == me:
                    orphans.add(pid)  # re-parented to us: escaped from some worker, or a worker
        if orphans:
            # Workers are spawned and registered under this lock, so a worker that the scan
            # saw is registered by the time we get it.
            with procs.workers_lock:
                found |= orphans - procs.worker_pids
        return found

    def kill_all(self, keep_worker: bool = False) -> None:
        """SIGKILL every tracked process (but the worker itself if keep_worker), until none."""
        if self.proc is None:
            return
        worker_pid = self.proc.pid
        for attempt in range(200):
            if self.cgroup is not None and not keep_worker:
                self.cgroup.kill()
            if not keep_worker:
                with contextlib.suppress(OSError):
                    os.killpg(worker_pid, signal.SIGKILL)
            pids = self.tracked_pids(quick=keep_worker)
            if keep_worker:
                pids -= self._core | {worker_pid}
            zombies = {p for p in pids if procs.is_zombie(p)}
            for pid in zombies - {worker_pid}:  # the worker is reaped by close(), last
                procs.reap(pid)  # adopted orphans (subreaper) that died
            pids -= zombies
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                procs.reap(pid)
            time.sleep(0.005 if attempt < 20 else 0.05)

    # protocol ---------------------------------------------------------------------------
    def call(self, header: dict, arrays: dict, timeout: float) -> tuple:
        """Send one request that has one answer (``import``); return (answer header,
        {name: array}, captured output). On a timeout, a death, a bad frame or an answer over
        ``limits.reply_bytes``, the worker (and all it started) is killed and WorkerFailure is
        raised."""
        return next(self._exchange(header, arrays, [None], timeout))

    def batch(self, calls: list, timeout: float) -> Iterator[tuple]:
        """Run calls [(steps, returns, inputs)] in one request; yield (answer header, arrays,
        output) per call as it completes, each within ``timeout`` seconds of the previous one.
        Failures as in ``call``; the WorkerFailure's ``index`` is the call that did not
        complete."""
        specs = [{"steps": steps, "return": returns} for steps, returns, _ in calls]
        arrays = {f"{i}:{k}": v for i, (_, _, inputs) in enumerate(calls)
                  for k, v in inputs.items()}
        yield from self._exchange({"kind": "batch", "calls": specs}, arrays, range(len(calls)),
                                 timeout)
        self.kill_all(keep_worker=True)  # anything the calls left running in the background

    def _exchange(self, header, arrays, indices, timeout):
        """The answers of one request (see ``batch``); their ``index`` must follow ``indices``
        (None: an answer without one)."""
        if not self.alive:
            raise WorkerFailure("crash", "the worker is not running")
        self._next_id += 1
        index = next(iter(indices), None)  # the answer expected next
        try:
            deadline = Deadline(timeout, self.cpu_seconds)
            self._send(_request(dict(header, id=self._next_id), arrays), deadline)
            for index in indices:
                resp, out_arrays = self._receive(deadline, self.limits.reply_bytes)
                if resp.get("id") != self._next_id or resp.get("index") != index:
                    raise WorkerFailure("protocol", "the worker sent an answer out of order")
                yield resp, out_arrays, self._output_of(resp, deadline)
                deadline = Deadline(timeout, self.cpu_seconds)
        except WorkerFailure as exc:
            exc.index = index
            self.close()
            exc.output = self._reader.rest()
            raise

    def _output_of(self, resp, deadline):
        """The output printed by the call that gave answer ``resp`` (the next answer number);
        empty when the worker could not mark its end (then it goes with a later call)."""
        self._answers += 1
        if resp.get("marked") is not True:
            return ""
        wait = max(deadline.remaining(), 1.0)
        return self._reader.segment(self._answers, time.monotonic() + wait) or ""

    def _send(self, data, deadline):
        view = memoryview(data)
        while view:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise WorkerFailure("timeout", "timed out while sending the inputs")
            try:
                _, w, _ = select.select([], [self._req_w], [], min(remaining, 0.5))
                if w:
                    view = view[os.write(self._req_w, view):]
                elif self._exit_code() is not None:
                    raise WorkerFailure("crash", self._death_message())
            except BlockingIOError:
                continue
            except (OSError, ValueError):  # a closed pipe
                raise WorkerFailure("crash", self._death_message()) from None

    def _read(self, n, deadline):
        data = bytearray()
        while len(data) < n:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise WorkerFailure("timeout", "timed out")
            r, _, _ = select.select([self._resp_r], [], [], min(remaining, 0.5))
            if not r:
                continue
            b = os.read(self._resp_r, min(n - len(data), 1 << 20))
            if not b:
                raise WorkerFailure("crash", self._death_message())
            data += b
        return bytes(data)

    def _receive(self, deadline, budget):
        """Read one answer frame: (header dict, {key: array}), checked as above (at most
        ``budget`` bytes of array data); a bad one is a WorkerFailure("protocol")."""
        try:
            hlen, dlen = wire.sizes(self._read(wire.HEAD.size, deadline))
        except ValueError:
            raise WorkerFailure("protocol", "the worker sent a malformed answer") from None
        if dlen > budget:
            raise WorkerFailure("protocol", f"the answer holds {dlen} bytes of values, more "
                                f"than a call may return ({budget} bytes)")
        raw = self._read(hlen, deadline)
        data = self._read(dlen, deadline)
        try:
            header = wire.decode_header(raw)
            arrays = wire.unpack_arrays(header.pop("arrays", []), data)
        except Exception as exc:  # RecursionError, MemoryError...: all the worker's fault
            raise WorkerFailure("protocol", f"the worker sent a malformed answer "
                                f"({type(exc).__name__})") from None
        return header, arrays

    def _exit_code(self):
        """The worker's exit status (negative: killed by that signal), or None while it runs.
        It is not reaped here: until close() has killed everything of the worker, its zombie
        keeps its pid, which would otherwise go to some new process that kill_all's process
        group and session signals then reach (pids wrap around fast under a fork bomb)."""
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped already
            return self.proc.returncode
        if info is None:
            return None
        killed = info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
        return -info.si_status if killed else info.si_status

    def _death_message(self):
        if self.proc is None:
            return "the worker process died"
        give_up = time.monotonic() + 1.0
        while (code := self._exit_code()) is None:
            if time.monotonic() > give_up:
                return "the worker process closed its result channel"
            time.sleep(0.01)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            why = {"SIGKILL": " (killed: out of memory, or a process limit)",
                   "SIGXCPU": " (CPU time limit)", "SIGSEGV": " (segmentation fault)",
                   "SIGXFSZ": " (file size limit)"}.get(name, "")
            return f"the worker process was killed by {name}{why}"
        return f"the worker process exited with status {code} (os._exit or exit in a thread?)"


def _request(header, arrays):
    """A request frame; its arrays made contiguous and checked to be of a plain numeric dtype."""
    plain = {}
    for name, arr in arrays.items():
        arr = np.array(arr, order="C", copy=True)
        if arr.dtype.str not in wire.ALLOWED_DTYPES:
            raise TypeError(f"cannot send dtype {arr.dtype} ({name})")
        plain[name] = arr
    return wire.pack(header, plain)
