"""Isolated worker processes that run student code (grader side).

A :class:`Worker` is one sandboxed Python process serving one student module (``rnn_layers``,
``transformer``...). The grader sends it programs (see ``worker_boot.py``) and reads plain arrays
back; nothing it sends is ever unpickled, and all comparisons happen in the grader.

Isolation (see ``isolation.py`` for the methods and levels): the worker's world is built by
bubblewrap from what it needs (an allowlist), it runs under a fresh unprivileged uid without
capabilities, and, in every method:
- its scratch folder holds only the student files and the given files; a scrubbed
  environment, ``python -I -B`` (no PYTHONPATH, no user site, no cwd on sys.path); its
  configuration comes through the request pipe;
- resource limits set by the bootstrap before student code runs: address space (RLIMIT_AS),
  CPU seconds, file size, number of processes, open files, no core files;
- a per-call wall-clock limit enforced here;
- a cgroup with the memory and pids controllers (v2 when its group really has them, else v1)
  when one can be made;
- the session id, the marker environment variable, the fresh uid, and, in the CLI process,
  the child-subreaper flag, to find every process it started.
When a worker is closed (or a call fails) every process found by any of these is SIGKILLed, in a
loop, until none is left (with a PID namespace, killing bubblewrap ends them all). After every
call, processes other than the worker itself are killed.

Every answer is hostile: frames are size-checked (``MAX_HEADER``, the per-call byte budget
``Limits.reply_bytes``), JSON nesting is bounded before parsing, arrays are plain numeric
dtypes whose size matches their shape; anything else is a WorkerFailure of that call
(``replies.py`` checks the contents).
"""
import errno
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"SQLW"
_HEAD = struct.Struct(">4sIQ")
MAX_HEADER = 4 * 2 ** 20      # bytes of an answer's JSON header
MAX_NESTING = 64              # brackets deep in an answer's JSON header
BOOT_NAME = "_seqlab_worker.py"
BOOT_SOURCE = Path(__file__).with_name("worker_boot.py")
MARKER_ENV = "SEQLAB_SANDBOX_TOKEN"
GiB = 2 ** 30
CGROUP_SLACK = 256 * 2 ** 20  # a worker's cgroup: its address-space limit plus its tmpfs folders
GRADER_MEMORY = 2 * GiB       # default bound of the grader process's own memory (GraderGroup)
V2_MOUNTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
V1_CONTROLLERS = ("memory", "pids", "freezer")

_ALLOWED_DTYPES = {"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8",
                   "<f2", "<f4", "<f8", "<c8", "<c16"}

_subreaper = False  # set by enable_subreaper() (CLI process only)
_uid_lock = threading.Lock()
_used_uids = set()


@dataclass
class Limits:
    """Limits of one worker. ``timeout`` is per call: seconds of the worker's CPU time, and at
    most ``WALL_FACTOR`` times as many seconds of wall-clock time (see :class:`Deadline`)."""
    timeout: float = 10.0
    init_timeout: float = 60.0
    mem_numpy: int = 1 * GiB
    mem_torch: int = 3 * GiB
    cpu_seconds: int = 300
    file_size: int = 64 * 2 ** 20
    nproc: int = 64          # per worker uid (root) / extra tasks over the user's count
    nofile: int = 512
    output_chars: int = 4000  # captured output kept per call
    reply_bytes: int = 64 * 2 ** 20  # array bytes one call may return
    grader_memory: int = GRADER_MEMORY  # the grader process itself (GraderGroup)
    hide: list = field(default_factory=list)


WALL_FACTOR = 4  # a call may wait this many times its CPU budget of wall-clock time
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids):
    """CPU time (user + system, with reaped children) used so far by the processes ``pids``."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            pass  # the process has ended
    return ticks / _TICKS


class Deadline:
    """When a call's time is up: once the worker's own processes (``pids``) have used
    ``seconds`` of CPU time since the call began, or after ``WALL_FACTOR * seconds`` of wall
    clock, whichever comes first; without ``pids``, after ``seconds`` of wall clock.

    CPU time does not run while the worker waits for a busy machine, so a call that runs out
    of time under load is one that would run out on an idle machine, and grades do not depend
    on the load; the wall-clock bound still stops a call that sleeps or blocks."""

    def __init__(self, seconds, pids=()):
        self.seconds = seconds
        self.pids = tuple(pids)
        self.start = time.monotonic()
        self.wall = seconds * (WALL_FACTOR if self.pids else 1)
        self.cpu_start = _cpu_seconds(self.pids) if self.pids else 0.0

    def remaining(self):
        """Seconds to wait before asking again (> 0), or 0 once the time is up."""
        elapsed = time.monotonic() - self.start
        if elapsed >= self.wall:
            return 0.0
        if not self.pids:
            return self.wall - elapsed
        if elapsed < self.seconds / 4:  # a worker runs at most 4 threads: no need to look yet
            return self.seconds / 4 - elapsed
        cpu_left = self.seconds - (_cpu_seconds(self.pids) - self.cpu_start)
        return max(0.0, min(cpu_left, self.wall - elapsed))


class WorkerFailure(Exception):
    """The worker hung, died, or broke the protocol. ``kind``: timeout | crash | protocol."""

    def __init__(self, kind, message, output=""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.output = output


def enable_subreaper():
    """Make this process the child subreaper (Linux): orphans of workers are re-parented to
    it, so a detached grandchild is still found and killed. Only for the CLI process."""
    global _subreaper
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            _subreaper = True
    except Exception:
        pass


# ---------------------------------------------------------------------------------------------
# /proc helpers
# ---------------------------------------------------------------------------------------------

def _proc_stat(pid):
    """(ppid, sid) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        rest = data[data.rindex(b")") + 2:].split()
        return int(rest[1]), int(rest[3])
    except (OSError, ValueError, IndexError):
        return None


def _proc_uid(pid):
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _all_pids():
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def _has_marker(pid, token):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return token in f.read()
    except OSError:
        return False


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def _tasks_of_uid(uid):
    n = 0
    for pid in _all_pids():
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        n += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return n


def _course_root():
    return os.path.realpath(Path(__file__).resolve().parent.parent)


def _is_site_dir(path):
    """True for a folder of this interpreter's sys.path that a worker may see: not the course
    (an editable install or a PYTHONPATH entry), not the current folder."""
    if not path or not os.path.isabs(path) or not os.path.isdir(path):
        return False
    real = os.path.realpath(path)
    course = _course_root()
    # the course, a folder inside it, or a folder that holds it (e.g. PYTHONPATH=/home/me)
    return not (real == course or real.startswith(course + os.sep)
                or course.startswith(real.rstrip(os.sep) + os.sep))


def interpreter_folders():
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
        if f == "/" or f == course or f.startswith(course + os.sep):
            continue
        if any(f == k or f.startswith(k.rstrip(os.sep) + os.sep) for k in keep):
            continue
        keep.append(f)
    return keep


# ---------------------------------------------------------------------------------------------
# cgroups (best effort)
# ---------------------------------------------------------------------------------------------

def _own_cgroups():
    """{controller or '' (v2): this process's cgroup path}, from /proc/self/cgroup."""
    out = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        rel = parts[2].strip().lstrip("/")
        for ctrl in parts[1].split(",") if parts[1] else [""]:
            out[ctrl] = rel
    return out


def _own_bases():
    """This process's groups: {"v2": [folders of the unified hierarchy], "memory" | "pids" |
    "freezer": folder of that v1 controller}."""
    own = _own_cgroups()
    out = {"v2": []}
    if "" in own:
        out["v2"] = [Path(m) / own[""] for m in V2_MOUNTS
                     if os.path.exists(os.path.join(m, "cgroup.controllers"))]
    for ctrl in V1_CONTROLLERS:
        if ctrl in own:
            out[ctrl] = Path("/sys/fs/cgroup") / ctrl / own[ctrl]
    return out


def _bases():
    """Where worker groups are made: next to the grader's own leaf while a GraderGroup holds
    this process, else under this process's groups."""
    with _grader_lock:
        group = _grader_group
    return group.bases if group is not None else _own_bases()


def _write_checked(path, value):
    """Write a cgroup setting and read it back: True when the kernel took it (a memory limit
    comes back rounded down to a page)."""
    try:
        path.write_text(str(value))
        got = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return 0 <= int(value) - got < 65536


def _rmdir(path):
    """Remove a cgroup folder; retried for half a second (its last processes may be exiting)."""
    for _ in range(50):
        try:
            path.rmdir()
            return
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            time.sleep(0.01)


class Cgroup:
    """A cgroup for one worker with the memory and pids controllers (both required): cgroup v2
    when its group really has both controllers, else v1 (memory, pids, and freezer when there
    is one), each made next to the grader's own leaf (see GraderGroup), or under this
    process's group when it has none. ``ok`` is False when neither gives both; ``why`` then
    says what was missing."""

    def __init__(self, name, mem_bytes, max_pids):
        self.v2 = None
        self.v1 = {}
        self.why = ""
        bases = _bases()
        self._create_v2(bases, name, mem_bytes, max_pids)
        if self.v2 is None:
            self._create_v1(bases, name, mem_bytes, max_pids)

    @classmethod
    def probe(cls):
        """True when this process can make a worker's cgroup with memory and pids limits, as
        runner.grade makes them: next to the grader's own leaf where it can have one (under
        cgroup v2, only then can its group hand controllers to children)."""
        with GraderGroup(GRADER_MEMORY):
            group = cls(f"seqlab-probe-{secrets.token_hex(6)}", 256 * 2 ** 20, 64)
            ok = group.ok
            group.remove()
        return ok

    @property
    def ok(self):
        return self.v2 is not None or ("memory" in self.v1 and "pids" in self.v1)

    def _create_v2(self, bases, name, mem_bytes, max_pids):
        for base in bases["v2"]:
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                controllers = (path / "cgroup.controllers").read_text().split()
            except OSError:
                controllers = []
            if {"memory", "pids"} <= set(controllers) and \
                    _write_checked(path / "memory.max", mem_bytes) and \
                    _write_checked(path / "pids.max", max_pids):
                _write_checked(path / "memory.swap.max", 0)
                self.v2 = path
                return
            self.why = f"cgroup v2 at {base} lacks the memory or pids controller"
            _rmdir(path)

    def _create_v1(self, bases, name, mem_bytes, max_pids):
        for ctrl, settings in (("memory", {"memory.limit_in_bytes": mem_bytes}),
                               ("pids", {"pids.max": max_pids}), ("freezer", {})):
            if ctrl not in bases:
                continue
            path = bases[ctrl] / name
            try:
                path.mkdir()
            except OSError:
                continue
            if all(_write_checked(path / f, v) for f, v in settings.items()):
                self.v1[ctrl] = path
            else:
                _rmdir(path)
        if not self.ok:
            self.why = (self.why + "; " if self.why else "") + \
                "no cgroup v1 memory and pids controllers could be used"

    def enter_command(self):
        """A command prefix that moves itself into this cgroup, then runs the rest: the
        worker's first process is inside before it starts any other (nothing escapes)."""
        procs = [str(p / "cgroup.procs") for p in ([self.v2] if self.v2 else [])
                 + list(self.v1.values())]
        script = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 126; shift; '
                  'n=$((n-1)); done; exec "$@"')
        return ["/bin/sh", "-c", script, "sh", str(len(procs))] + procs

    def add(self, pid):
        for path in ([self.v2] if self.v2 else []) + list(self.v1.values()):
            try:
                (path / "cgroup.procs").write_text(str(pid))
            except OSError:
                pass

    def pids(self):
        out = set()
        for path in ([self.v2] if self.v2 else []) + list(self.v1.values()):
            try:
                out.update(int(x) for x in (path / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return out

    def kill(self):
        if self.v2 is not None:
            try:
                (self.v2 / "cgroup.kill").write_text("1")
            except OSError:
                pass
        freezer = self.v1.get("freezer")
        if freezer is not None:
            try:
                (freezer / "freezer.state").write_text("FROZEN")
            except OSError:
                freezer = None
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if freezer is not None:
            try:
                (freezer / "freezer.state").write_text("THAWED")
            except OSError:
                pass

    def remove(self):
        for path in ([self.v2] if self.v2 else []) + list(self.v1.values()):
            _rmdir(path)


_grader_lock = threading.Lock()
_grader_group = None  # the GraderGroup that holds this process now


def _subtree(folder, sign):
    """A function that enables (sign '+') or disables ('-') a controller for the children of a
    cgroup v2 folder."""
    return lambda ctrl: (folder / "cgroup.subtree_control").write_text(sign + ctrl)


class GraderGroup:
    """A context manager that bounds the grader process's own memory: it moves this process
    into a cgroup leaf of its own with a memory limit, next to the groups of its workers
    (cgroup v2 allows processes in leaves only)::

        <the grader's group>/seqlab-grader-<hex>/grader     this process, memory limit ``limit``
        <the grader's group>/seqlab-grader-<hex>/seqlab-... one group per worker (Cgroup)

    On exit the process goes back to its group and both folders are removed. Where this cannot
    be done (no memory controller, no permission, cgroup v2 with other processes in the
    grader's group), nothing changes: ``bounded`` is False and ``describe()`` says why. Only
    the memory allocated inside is counted (the kernel does not move earlier charges)."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.name = f"seqlab-grader-{secrets.token_hex(6)}"
        self.how = ""   # "cgroup v2" or "cgroup v1" once this process is inside
        self.why = ""   # why it is not, otherwise
        self.bases = None
        self.leaf = None
        self._undo = []  # (function, argument), undone last first

    @property
    def bounded(self) -> bool:
        return bool(self.how)

    def describe(self) -> str:
        """'limited to N MiB (cgroup v1)' or 'not limited (why)'."""
        if self.bounded:
            return f"limited to {self.limit // 2 ** 20} MiB ({self.how})"
        return f"not limited ({self.why or 'no cgroup could be made'})"

    def __enter__(self):
        global _grader_group
        with _grader_lock:
            if _grader_group is not None:  # a grade() inside a grade(): the outer one bounds it
                self.why = "an enclosing grader group bounds it"
                return self
            try:
                done = self._enter_v2() or self._enter_v1()
            except OSError as exc:
                done = False
                self.why = f"{type(exc).__name__}: {exc}"
            if done:
                _grader_group = self
            else:
                self._unwind()
        return self

    def __exit__(self, *exc):
        global _grader_group
        with _grader_lock:
            if _grader_group is self:
                _grader_group = None
                self._unwind()
        return False

    def _do(self, fn, arg, undo):
        fn(arg)
        self._undo.append((undo, arg))

    def _unwind(self):
        while self._undo:
            fn, arg = self._undo.pop()
            try:
                fn(arg)
            except OSError:
                pass

    @staticmethod
    def _join(folder):
        (folder / "cgroup.procs").write_text(str(os.getpid()))

    def _enter_v2(self):
        for base in _own_bases()["v2"]:
            try:
                have = set((base / "cgroup.controllers").read_text().split())
                enabled = set((base / "cgroup.subtree_control").read_text().split())
            except OSError:
                continue
            if not {"memory", "pids"} <= have:
                self.why = f"cgroup v2 at {base} lacks the memory or pids controller"
                continue
            top, leaf = base / self.name, base / self.name / "grader"
            self._do(Path.mkdir, top, _rmdir)
            self._do(Path.mkdir, leaf, _rmdir)
            self._do(self._join, leaf, lambda _, home=base: self._join(home))
            try:  # a group hands controllers to its children only once no process is in it
                for ctrl in sorted({"memory", "pids"} - enabled):
                    self._do(_subtree(base, "+"), ctrl, _subtree(base, "-"))
                for ctrl in ("memory", "pids"):
                    self._do(_subtree(top, "+"), ctrl, _subtree(top, "-"))
            except OSError:
                self.why = (f"cgroup v2: other processes share the grader's group {base} "
                            "(processes may sit in leaves only)")
                self._unwind()
                continue
            if not _write_checked(leaf / "memory.max", self.limit):
                self.why = "cgroup v2: the memory limit was not taken"
                self._unwind()
                continue
            _write_checked(leaf / "memory.swap.max", 0)
            self.bases, self.leaf, self.how = {"v2": [top]}, leaf, "cgroup v2"
            return True
        return False

    def _enter_v1(self):
        own = _own_bases()
        base = own.get("memory")
        if base is None:
            self.why = (self.why + "; " if self.why else "") + "no cgroup memory controller"
            return False
        top, leaf = base / self.name, base / self.name / "grader"
        self._do(Path.mkdir, top, _rmdir)
        self._do(Path.mkdir, leaf, _rmdir)
        if not _write_checked(leaf / "memory.limit_in_bytes", self.limit):
            self.why = "cgroup v1: the memory limit was not taken"
            return False
        _write_checked(leaf / "memory.memsw.limit_in_bytes", self.limit)  # no swap either
        self._do(self._join, leaf, lambda _, home=base: self._join(home))
        bases = {"v2": [], "memory": top}
        for ctrl in V1_CONTROLLERS[1:]:  # the workers' pids and freezer groups: alongside
            if ctrl in own:
                folder = own[ctrl] / self.name
                try:
                    self._do(Path.mkdir, folder, _rmdir)
                    bases[ctrl] = folder
                except OSError:
                    bases[ctrl] = own[ctrl]
        self.bases, self.leaf, self.how = bases, leaf, "cgroup v1"
        return True

    def peak(self):
        """The most memory the grader used inside its leaf (bytes), or None."""
        if self.leaf is None:
            return None
        name = "memory.peak" if self.how == "cgroup v2" else "memory.max_usage_in_bytes"
        try:
            return int((self.leaf / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


# ---------------------------------------------------------------------------------------------
# the worker
# ---------------------------------------------------------------------------------------------

class _OutputReader(threading.Thread):
    """Drains the worker's stdout+stderr and cuts it into the output of each answer.

    After each answer the worker writes a marker ``\0\0<token>:<n>\0\0`` into its output
    (``n``: the number of the answer, counted from 1). Segment ``n`` is every byte since the
    previous marker; ``segment(n)`` waits for it. An answer whose marker could not be written
    (the student closed or redirected fd 1) has no segment: its output goes to the next one.
    So each call gets the output it printed, whatever the timing (regrades are identical).
    At most ``keep`` bytes of a segment are kept (the count of the others is noted)."""

    def __init__(self, stream, keep, token):
        super().__init__(daemon=True)
        self.stream = stream
        self.keep = keep
        self.prefix = b"\x00\x00" + token + b":"
        self.cond = threading.Condition()
        self.cur = bytearray()
        self.cur_dropped = 0
        self.done = {}      # answer number -> (bytes, dropped)
        self.closed = False

    def _append(self, data):
        room = self.keep - len(self.cur)
        if room > 0:
            self.cur += data[:room]
        self.cur_dropped += max(0, len(data) - max(room, 0))

    def _cut(self, number):
        self.done[number] = (bytes(self.cur), self.cur_dropped)
        self.cur = bytearray()
        self.cur_dropped = 0

    def _feed(self, data):
        """Consume ``data``; returns the unconsumed tail (a possible partial marker)."""
        while True:
            i = data.find(self.prefix)
            if i < 0:
                keep_back = len(self.prefix) + 24
                if len(data) > keep_back:
                    self._append(data[:-keep_back])
                    return data[-keep_back:]
                return data
            j = data.find(b"\x00\x00", i + len(self.prefix))
            if j < 0:
                if len(data) - i > len(self.prefix) + 24:  # not a marker after all
                    self._append(data[:i + 1])
                    data = data[i + 1:]
                    continue
                self._append(data[:i])
                return data[i:]
            digits = data[i + len(self.prefix):j]
            if digits.isdigit() and len(digits) < 20:
                self._append(data[:i])
                self._cut(int(digits))
                data = data[j + 2:]
            else:
                self._append(data[:i + 1])
                data = data[i + 1:]

    def run(self):
        tail = b""
        try:
            while True:
                chunk = self.stream.read1(65536) if hasattr(self.stream, "read1") else \
                    self.stream.read(65536)
                if not chunk:
                    break
                with self.cond:
                    tail = self._feed(tail + chunk)
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass
        with self.cond:
            self._append(tail)
            self.closed = True
            self.cond.notify_all()

    def segment(self, number, deadline):
        """The output of answer ``number`` (waits until its marker is read, the stream ends
        or ``deadline``); None when it has no segment."""
        with self.cond:
            while number not in self.done and not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(remaining)
            if number not in self.done:
                return None
            data, dropped = self.done.pop(number)
        return _printable(data, dropped)

    def rest(self):
        """Output not attributed to any answer yet (after a failure)."""
        with self.cond:
            data, dropped = bytes(self.cur), self.cur_dropped
            self.cur, self.cur_dropped = bytearray(), 0
            for k in sorted(self.done):
                d, n = self.done.pop(k)
                data, dropped = d + data, dropped + n
        return _printable(data, dropped)


def _printable(data, dropped):
    text = data.decode("utf-8", errors="replace")
    if dropped:
        text += f"\n... [{dropped} more bytes of output dropped]"
    return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def _pick_uid():
    with _uid_lock:
        while True:
            uid = random.SystemRandom().randrange(2_000_000_000, 2_100_000_000)
            if uid not in _used_uids:
                _used_uids.add(uid)
                return uid


_scratch_gids = {}


def _scratch_group(scratch):
    """A fresh gid that alone may read ``scratch`` (mode 0750): workers of this submission run
    with it, those of other submissions cannot read it (matters where there is no mount
    namespace to hide other scratch folders)."""
    key = os.path.realpath(scratch)
    with _uid_lock:
        gid = _scratch_gids.get(key)
    if gid is None:
        gid = _pick_uid()
        os.chown(key, 0, gid)
        os.chmod(key, 0o750)
        with _uid_lock:
            _scratch_gids[key] = gid
    return gid


class Worker:
    """One sandboxed worker process for one student module of one submission.

    ``isolation``: an ``isolation.Isolation`` (default: what this machine allows)."""

    def __init__(self, scratch, module, use_torch, limits, label="", isolation=None):
        from autograder import isolation as isolation_mod
        self.scratch = Path(scratch)
        self.module = module
        self.use_torch = use_torch
        self.limits = limits
        self.label = label
        self.isolation = isolation or isolation_mod.detect()
        self.proc = None
        self.cgroup = None
        self.uid = None
        self.token = secrets.token_hex(16)
        self.notes = []
        self._req_w = None
        self._resp_r = None
        self._reader = None
        self._next_id = 0
        self._answers = 0
        self._core = set()
        self.alive = False

    @property
    def fresh_uid(self):
        return self.isolation.method in ("bwrap", "uid+bwrap", "uid")

    # start / stop -----------------------------------------------------------------------
    def start(self):
        from autograder import isolation as iso
        scratch = self.scratch
        boot = scratch / BOOT_NAME
        source = BOOT_SOURCE.read_bytes()
        if not boot.exists() or boot.read_bytes() != source:
            boot.write_bytes(source)
            os.chmod(boot, 0o644)
        method = self.isolation.method
        mem = self.limits.mem_torch if self.use_torch else self.limits.mem_numpy
        inside = iso.INSIDE_SCRATCH if "bwrap" in method else str(scratch)
        tmp = "/tmp" if "bwrap" in method else None
        if tmp is None:  # no private /tmp: a folder of its own in the scratch folder
            wdir = scratch / ".w" / self.token[:12]
            wdir.mkdir(parents=True)
            tmp = str(wdir)
        gid = None
        if self.fresh_uid:
            self.uid = _pick_uid()
            gid = _scratch_group(scratch)
            if tmp != "/tmp":
                os.chown(tmp, self.uid, gid)
                os.chmod(tmp, 0o700)
        config = {"scratch": inside, "torch": self.use_torch,
                  "path": [p for p in sys.path if _is_site_dir(p)],
                  "limits": {"as": mem, "cpu": self.limits.cpu_seconds,
                             "fsize": self.limits.file_size, "nofile": self.limits.nofile,
                             "core": 0},
                  "marker": self.token[16:]}
        if self.fresh_uid:
            config["limits"]["nproc"] = self.limits.nproc
        else:
            config["limits"]["nproc"] = _tasks_of_uid(os.getuid()) + self.limits.nproc
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            MARKER_ENV: f"{os.getpid()}.{self.token}",  # the grader's pid: for tests
        }
        self.cgroup = None
        if "memory and pids cgroup" not in self.isolation.missing:  # promised: fail closed
            # the address-space limit bounds each process; the cgroup bounds them together
            # (with room for the tmpfs folders)
            self.cgroup = Cgroup(f"seqlab-{self.token[:16]}", mem + CGROUP_SLACK,
                                 self.limits.nproc + 64)
            if not self.cgroup.ok:
                self.cgroup.remove()
                self.cgroup = None
                raise WorkerFailure("crash", "the worker's memory and pids cgroup could not be "
                                    "made, although the isolation level promises one")
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        args_r = args_w = None
        fds = [req_r, resp_w]
        if "bwrap" in method:
            args_r, args_w = os.pipe()
            fds.append(args_r)
        program = [sys.executable, "-I", "-B", "-u", f"{inside}/{BOOT_NAME}", str(req_r),
                   str(resp_w)]
        uid = self.uid if self.fresh_uid else os.geteuid()
        argv, bargs = iso.command(method, program, folders=interpreter_folders(),
                                  hide=self.limits.hide, scratch=scratch, uid=uid,
                                  gid=gid if gid is not None else os.getegid(),
                                  args_fd=args_r)
        if self.cgroup is not None:  # joins the cgroup before it starts anything
            argv = self.cgroup.enter_command() + argv
        try:
            if bargs is not None:
                data = b"".join(os.fsencode(a) + b"\0" for a in bargs)
                if len(data) > 60000:
                    raise WorkerFailure("crash", "the sandbox arguments do not fit a pipe")
                os.write(args_w, data)
                os.close(args_w)
                args_w = None
            with _workers_lock:  # spawn and register atomically (see tracked_pids)
                self.proc = subprocess.Popen(
                    argv, cwd=str(scratch), env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=tuple(fds),
                    start_new_session=True, close_fds=True)
                _worker_pids.add(self.proc.pid)
        finally:
            for fd in fds + ([args_w] if args_w is not None else []):
                os.close(fd)
        self._req_w, self._resp_r = req_w, resp_r
        os.set_blocking(req_w, False)
        self._reader = _OutputReader(self.proc.stdout, self.limits.output_chars,
                                     self.token[16:].encode())
        self._reader.start()
        self.alive = True
        deadline = Deadline(self.limits.init_timeout)
        try:
            self._send(_pack({"kind": "config", "config": config}, {}), deadline)
            header, _ = self._receive(deadline, MAX_HEADER)
            if header.get("ready") is not True:
                raise WorkerFailure("protocol", "the worker did not say it was ready")
        except WorkerFailure as exc:
            self.close()
            raise WorkerFailure(exc.kind, "the worker process did not start: " + exc.message,
                                self._reader.rest())
        notes = header.get("notes")
        self.notes = [str(n)[:300] for n in notes[:10]] if isinstance(notes, list) else []
        self._core = self.tracked_pids()  # the worker's own processes (sandbox and python)
        return self

    def close(self):
        """Kill the worker and everything it started; clean up."""
        if self.proc is None:
            return
        self.alive = False
        for fd in (self._req_w, self._resp_r):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._req_w = self._resp_r = None
        self.kill_all()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self._reader is not None:
            self._reader.join(timeout=1)
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        register_worker_pid(self.proc.pid, add=False)
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.fresh_uid and self.uid is not None and self.isolation.method == "uid":
            _cleanup_files_of(self.uid)
        self.proc = None

    # process tracking -------------------------------------------------------------------
    def tracked_pids(self, quick=False):
        """Every live process that belongs to this worker (the worker included). ``quick``:
        the cgroup alone when there is one."""
        found = set()
        if self.cgroup is not None:
            found |= self.cgroup.pids()
            if quick:
                return found
        sid = self.proc.pid if self.proc is not None else None
        me = os.getpid()
        token = self.token.encode()
        my_uid = os.geteuid()
        orphans = set()
        for pid in _all_pids():
            if pid == me:
                continue
            uid = _proc_uid(pid)
            if uid is None:
                continue
            if self.fresh_uid and self.uid is not None and uid == self.uid:
                found.add(pid)
                continue
            if uid != my_uid:
                continue
            st = _proc_stat(pid)
            if st is None:
                continue
            ppid, psid = st
            if psid == sid or _has_marker(pid, token):
                found.add(pid)
            elif _subreaper and ppid == me:
                orphans.add(pid)  # re-parented to us: escaped from some worker, or a worker
        if orphans:
            # Workers are spawned and registered under this lock, so a worker that the scan
            # saw is registered by the time we get it.
            with _workers_lock:
                found |= orphans - _worker_pids
        return found

    def kill_all(self, keep_worker=False):
        """SIGKILL every tracked process (but the worker itself if keep_worker), until none."""
        if self.proc is None:
            return
        worker_pid = self.proc.pid
        for attempt in range(200):
            if self.cgroup is not None and not keep_worker:
                self.cgroup.kill()
            if not keep_worker:
                try:
                    os.killpg(worker_pid, signal.SIGKILL)
                except OSError:
                    pass
            pids = self.tracked_pids(quick=keep_worker)
            if keep_worker:
                pids -= self._core | {worker_pid}
            zombies = {p for p in pids if _is_zombie(p)}
            for pid in zombies:
                _reap(pid)  # adopted orphans (subreaper) that died
            pids -= zombies
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                _reap(pid)
            time.sleep(0.005 if attempt < 20 else 0.05)

    # protocol ---------------------------------------------------------------------------
    def call(self, header, arrays, timeout, budget=None):
        """Send one request that has one answer (``import``); return (answer header,
        {name: array}, captured output). Raises WorkerFailure (and kills the worker) on
        timeout, death, a bad frame or an answer over ``budget`` bytes."""
        if not self.alive:
            raise WorkerFailure("crash", "the worker is not running")
        self._next_id += 1
        header = dict(header, id=self._next_id)
        deadline = Deadline(timeout, self._core)
        try:
            self._send(_pack(header, arrays), deadline)
            resp, out_arrays = self._receive(deadline, budget or self.limits.reply_bytes)
            if resp.get("id") != self._next_id:
                raise WorkerFailure("protocol", "the worker answered another request")
        except WorkerFailure as exc:
            self.close()  # kills everything; the output reader then reaches the end
            exc.output = self._reader.rest()
            raise
        return resp, out_arrays, self._output_of(resp, deadline)

    def batch(self, calls, timeout, budget=None):
        """Run calls [(steps, returns, inputs)] in one request; yield (answer header, arrays,
        output) per call as it completes, each within ``timeout`` seconds of the previous one
        and within ``budget`` bytes (default ``limits.reply_bytes``).

        On a timeout, a death, a bad frame or an answer over budget, the worker (and all it
        started) is killed and WorkerFailure is raised with ``index`` = the call that did not
        complete."""
        if not self.alive:
            raise WorkerFailure("crash", "the worker is not running")
        self._next_id += 1
        arrays = {}
        specs = []
        for i, (steps, returns, inputs) in enumerate(calls):
            specs.append({"steps": steps, "return": returns})
            for k, v in inputs.items():
                arrays[f"{i}:{k}"] = v
        header = {"kind": "batch", "id": self._next_id, "calls": specs}
        index = 0
        try:
            deadline = Deadline(timeout, self._core)
            self._send(_pack(header, arrays), deadline)
            for index in range(len(calls)):
                resp, out_arrays = self._receive(deadline, budget or self.limits.reply_bytes)
                if resp.get("id") != self._next_id or resp.get("index") != index:
                    raise WorkerFailure("protocol", "the worker sent an answer out of order")
                yield resp, out_arrays, self._output_of(resp, deadline)
                deadline = Deadline(timeout, self._core)
        except WorkerFailure as exc:
            exc.index = index
            self.close()
            exc.output = self._reader.rest()
            raise
        self.kill_all(keep_worker=True)  # anything the calls left running in the background

    def _output_of(self, resp, deadline):
        """The output printed by the call that gave answer ``resp`` (the next answer number);
        empty when the worker could not mark its end (then it goes with a later call)."""
        self._answers += 1
        if resp.get("marked") is not True:
            return ""
        wait = max(deadline.remaining(), 1.0)
        text = self._reader.segment(self._answers, time.monotonic() + wait)
        return text or ""

    def _send(self, data, deadline):
        view = memoryview(data)
        while view:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise WorkerFailure("timeout", "timed out while sending the inputs")
            try:
                _, w, _ = select.select([], [self._req_w], [], min(remaining, 0.5))
            except (OSError, ValueError):
                raise WorkerFailure("crash", self._death_message())
            if not w:
                if self.proc.poll() is not None:
                    raise WorkerFailure("crash", self._death_message())
                continue
            try:
                n = os.write(self._req_w, view)
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise WorkerFailure("crash", self._death_message())
            view = view[n:]

    def _read(self, n, deadline):
        chunks, got = [], 0
        while got < n:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise WorkerFailure("timeout", "timed out")
            r, _, _ = select.select([self._resp_r], [], [], min(remaining, 0.5))
            if not r:
                continue
            b = os.read(self._resp_r, min(n - got, 1 << 20))
            if not b:
                raise WorkerFailure("crash", self._death_message())
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def _receive(self, deadline, budget):
        """Read one answer frame: (header dict, {key: array}). Everything about it is checked:
        any malformed part, or more than ``budget`` bytes of array data, is a
        WorkerFailure("protocol") of this call."""
        magic, hlen, dlen = _HEAD.unpack(self._read(_HEAD.size, deadline))
        if magic != MAGIC or hlen > MAX_HEADER:
            raise WorkerFailure("protocol", "the worker sent a malformed answer")
        if dlen > budget:
            raise WorkerFailure("protocol", f"the answer holds {dlen} bytes of values, more "
                                f"than a call may return ({budget} bytes)")
        raw = self._read(hlen, deadline)
        data = self._read(dlen, deadline)
        try:
            header = decode_header(raw)
            arrays = _unpack_arrays(header.pop("arrays", []), data)
        except Exception as exc:  # RecursionError, MemoryError...: all the worker's fault
            raise WorkerFailure("protocol", f"the worker sent a malformed answer "
                                f"({type(exc).__name__})")
        return header, arrays

    def _death_message(self):
        if self.proc is None:
            return "the worker process died"
        try:
            code = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "the worker process closed its result channel"
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


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:data.rindex(b")") + 3] in (b"Z", b"X")
    except (OSError, ValueError):
        return True


_workers_lock = threading.Lock()
_worker_pids = set()


def register_worker_pid(pid, add=True):
    with _workers_lock:
        (_worker_pids.add if add else _worker_pids.discard)(pid)


def _cleanup_files_of(uid):
    """Remove top-level files a worker uid left in the shared temporary folders (root mode)."""
    for base in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            path = os.path.join(base, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_uid != uid:
                continue
            try:
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# framing (grader side)
# ---------------------------------------------------------------------------------------------

def _pack(header, arrays):
    table, blobs, offset = [], [], 0
    for name, arr in arrays.items():
        arr = np.array(arr, order="C", copy=True)
        if arr.dtype.str not in _ALLOWED_DTYPES:
            raise TypeError(f"cannot send dtype {arr.dtype} ({name})")
        data = arr.tobytes()
        table.append([name, arr.dtype.str, list(arr.shape), offset, len(data)])
        blobs.append(data)
        offset += len(data)
    header = dict(header, arrays=table)
    head = json.dumps(header).encode("utf-8")
    return _HEAD.pack(MAGIC, len(head), offset) + head + b"".join(blobs)


def decode_header(raw):
    """The JSON header of an answer frame -> dict. Raises ValueError when it is not UTF-8 JSON
    of an object, or nests brackets deeper than MAX_NESTING (checked before parsing, so that
    the parser cannot recurse without bound)."""
    text = raw.decode("utf-8")
    brackets = re.sub(r'[^\[\]{}]', "", re.sub(r'"(?:[^"\\]|\\.)*"', "", text))
    depth = 0
    for ch in brackets:
        depth += 1 if ch in "[{" else -1
        if depth > MAX_NESTING:
            raise ValueError("the header nests too deep")
    header = json.loads(text)
    if not isinstance(header, dict):
        raise ValueError("the header is not an object")
    return header


def _unpack_arrays(table, data):
    """Decode arrays of an answer. Only plain numeric dtypes; never pickle. Entries that are
    malformed are dropped (the value then reads as missing)."""
    out = {}
    if not isinstance(table, list):
        return out
    for entry in table:
        try:
            name, dtype, shape, off, nbytes = entry
            if dtype not in _ALLOWED_DTYPES:
                continue
            dt = np.dtype(dtype)
            shape = tuple(int(s) for s in shape)
            count = int(np.prod(shape)) if shape else 1
            if count * dt.itemsize != nbytes or off < 0 or off + nbytes > len(data):
                continue
            arr = np.frombuffer(data, dtype=dt, count=count, offset=int(off)).reshape(shape)
            out[str(name)] = arr.copy()
        except (ValueError, TypeError):
            continue
    return out
