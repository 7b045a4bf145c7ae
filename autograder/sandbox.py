"""Isolated worker processes that run student code (grader side).

A :class:`Worker` is one sandboxed Python process serving one student module (``rnn_layers``,
``transformer``...). The grader sends it programs (see ``worker_boot.py``) and reads plain arrays
back; nothing it sends is ever unpickled, and all comparisons happen in the grader.

Isolation, in layers (each used where the machine allows it):
- a scratch folder holding only the student files and the given files; cwd there, a scrubbed
  environment, ``python -I -B`` (no PYTHONPATH, no user site, no cwd on sys.path);
- resource limits set by the bootstrap before student code runs: address space (RLIMIT_AS),
  CPU seconds, file size, number of processes, open files, no core files;
- a per-call wall-clock limit enforced here;
- as root: a private mount namespace hiding the reference solutions, the autograder and the
  output folders, and a fresh unprivileged uid per worker (so it cannot write the results, and
  every process it ever starts is found by uid);
- a cgroup (v2 ``cgroup.kill``, v1 freezer/pids/memory) when one can be created;
- otherwise the session id and a marker environment variable, and, in the CLI process, the
  child-subreaper flag so that detached grandchildren are re-parented to the grader.
When a worker is closed (or a call fails) every process found by any of these is SIGKILLed, in a
loop, until none is left. After every call, processes other than the worker itself are killed.
"""
import errno
import json
import os
import random
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
MAX_RESPONSE = 256 * 2 ** 20
BOOT_NAME = "_seqlab_worker.py"
BOOT_SOURCE = Path(__file__).with_name("worker_boot.py")
MARKER_ENV = "SEQLAB_SANDBOX_TOKEN"
GiB = 2 ** 30

_ALLOWED_DTYPES = {"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8",
                   "<f2", "<f4", "<f8", "<c8", "<c16"}

_subreaper = False  # set by enable_subreaper() (CLI process only)
_uid_lock = threading.Lock()
_used_uids = set()


@dataclass
class Limits:
    """Limits of one worker. ``timeout`` is per call (seconds of wall clock)."""
    timeout: float = 10.0
    init_timeout: float = 60.0
    mem_numpy: int = 1 * GiB
    mem_torch: int = 3 * GiB
    cpu_seconds: int = 300
    file_size: int = 64 * 2 ** 20
    nproc: int = 64          # per worker uid (root) / extra tasks over the user's count
    nofile: int = 512
    output_chars: int = 4000  # captured output kept per call
    hide: list = field(default_factory=list)


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


def _world_accessible(path):
    """True when a process of another, unprivileged uid can read ``path`` (and reach it)."""
    try:
        path = Path(os.path.realpath(path))
        st = path.stat()
        if not st.st_mode & stat.S_IROTH:
            return False
        for parent in path.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return False
        return True
    except OSError:
        return False


_warned = set()


def _warn_once(message):
    if message not in _warned:
        _warned.add(message)
        print(f"autograder: note: {message}", file=sys.stderr)


def interpreter_folders(with_torch):
    """Folders a worker needs to see: the interpreter's prefixes and site-packages."""
    import site
    import sysconfig
    out = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable),
           os.path.dirname(os.path.realpath(sys.executable)),
           sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
           sysconfig.get_paths()["platlib"], os.path.dirname(os.path.dirname(np.__file__))}
    try:
        out.update(site.getsitepackages())
    except AttributeError:
        pass
    return sorted({os.path.realpath(p) for p in out if p and os.path.isdir(p)})


def interpreter_world_readable(with_torch):
    """Can an unprivileged uid run this interpreter with numpy (and torch)?"""
    import sysconfig
    paths = [sys.executable, os.path.join(sysconfig.get_paths()["stdlib"], "os.py"),
             np.__file__]
    if with_torch:
        try:
            import importlib.util
            spec = importlib.util.find_spec("torch")
            if spec and spec.origin:
                paths.append(spec.origin)
        except Exception:
            pass
    return all(_world_accessible(p) for p in paths)


# ---------------------------------------------------------------------------------------------
# cgroups (best effort)
# ---------------------------------------------------------------------------------------------

class Cgroup:
    """A cgroup for one worker: v2 (``cgroup.kill``) and/or v1 (freezer, pids, memory)."""

    def __init__(self, name, mem_bytes, max_pids):
        self.v2 = None
        self.v1 = {}
        self._create_v2(name, mem_bytes, max_pids)
        if self.v2 is None:
            self._create_v1(name, mem_bytes, max_pids)

    @property
    def ok(self):
        return self.v2 is not None or "freezer" in self.v1 or "pids" in self.v1

    def _create_v2(self, name, mem_bytes, max_pids):
        roots = []
        for line in Path("/proc/self/cgroup").read_text().splitlines() if \
                os.path.exists("/proc/self/cgroup") else []:
            if line.startswith("0::"):
                rel = line[3:].strip().lstrip("/")
                for mount in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                    if os.path.exists(os.path.join(mount, "cgroup.controllers")):
                        roots.append(Path(mount) / rel)
        for base in roots:
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            if not (path / "cgroup.kill").exists():
                try:
                    path.rmdir()
                except OSError:
                    pass
                continue
            for fname, value in (("pids.max", max_pids), ("memory.max", mem_bytes),
                                 ("memory.swap.max", 0)):
                try:
                    (path / fname).write_text(str(value))
                except OSError:
                    pass
            self.v2 = path
            return

    def _create_v1(self, name, mem_bytes, max_pids):
        for ctrl, settings in (("freezer", {}), ("pids", {"pids.max": max_pids}),
                               ("memory", {"memory.limit_in_bytes": mem_bytes})):
            path = Path("/sys/fs/cgroup") / ctrl / name
            try:
                path.mkdir()
            except OSError:
                continue
            for fname, value in settings.items():
                try:
                    (path / fname).write_text(str(value))
                except OSError:
                    pass
            self.v1[ctrl] = path

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
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError as exc:
                    if exc.errno == errno.ENOENT:
                        break
                    time.sleep(0.01)


# ---------------------------------------------------------------------------------------------
# the worker
# ---------------------------------------------------------------------------------------------

class _OutputReader(threading.Thread):
    """Drains the worker's stdout+stderr, keeping a bounded head of each call's output. The
    worker ends the output of every call with a sentinel; ``take(n)`` waits (briefly) until the
    n-th sentinel has been read, so that output is attributed to the call that printed it."""

    def __init__(self, stream, keep, sentinel):
        super().__init__(daemon=True)
        self.stream = stream
        self.keep = keep
        self.sentinel = b"\x00\x00" + sentinel + b"\x00\x00"
        self.cond = threading.Condition()
        self.buf = bytearray()
        self.dropped = 0
        self.seen = 0
        self.closed = False
        self.reliable = True

    def _append(self, data):
        room = self.keep - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        self.dropped += max(0, len(data) - max(room, 0))

    def run(self):
        tail = b""
        try:
            while True:
                chunk = self.stream.read1(65536) if hasattr(self.stream, "read1") else \
                    self.stream.read(65536)
                if not chunk:
                    break
                data = tail + chunk
                with self.cond:
                    while True:
                        i = data.find(self.sentinel)
                        if i < 0:
                            break
                        self._append(data[:i])
                        data = data[i + len(self.sentinel):]
                        self.seen += 1
                        self.cond.notify_all()
                    keep_back = len(self.sentinel) - 1
                    self._append(data[:-keep_back] if len(data) > keep_back else b"")
                    tail = data[-keep_back:] if len(data) > keep_back else data
        except (OSError, ValueError):
            pass
        with self.cond:
            self._append(tail)
            self.closed = True
            self.cond.notify_all()

    def take(self, until=None, wait=2.0):
        """The output so far (after the ``until``-th sentinel has been read, if given)."""
        with self.cond:
            if until is not None and self.reliable:
                deadline = time.monotonic() + wait
                while self.seen < until and not self.closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.reliable = False  # fd 1 closed or redirected: stop waiting
                        break
                    self.cond.wait(remaining)
            text = bytes(self.buf).decode("utf-8", errors="replace")
            if self.dropped:
                text += f"\n... [{self.dropped} more bytes of output dropped]"
            self.buf = bytearray()
            self.dropped = 0
        return "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())


def _pick_uid():
    with _uid_lock:
        while True:
            uid = random.SystemRandom().randrange(2_000_000_000, 2_100_000_000)
            if uid not in _used_uids:
                _used_uids.add(uid)
                return uid


class Worker:
    """One sandboxed worker process for one student module of one submission."""

    def __init__(self, scratch, module, use_torch, limits, label="", hide_extra=()):
        self.scratch = Path(scratch)
        self.module = module
        self.use_torch = use_torch
        self.limits = limits
        self.label = label
        self.hide_extra = list(hide_extra)
        self.proc = None
        self.cgroup = None
        self.uid = None
        self.token = secrets.token_hex(16)
        self.notes = []
        self._req_w = None
        self._resp_r = None
        self._reader = None
        self._next_id = 0
        self.alive = False
        # SEQLAB_SANDBOX_MODE=user: behave as for an unprivileged grader even as root (tests of
        # the fallback: session id, marker variable and subreaper sweeps; no uid, no mounts)
        self.root_mode = os.geteuid() == 0 and os.environ.get("SEQLAB_SANDBOX_MODE") != "user"

    # start / stop -----------------------------------------------------------------------
    def start(self):
        scratch = self.scratch
        boot = scratch / BOOT_NAME
        source = BOOT_SOURCE.read_bytes()
        if not boot.exists() or boot.read_bytes() != source:
            boot.write_bytes(source)
            os.chmod(boot, 0o644)
        wdir = scratch / ".w" / self.token[:12]
        home, tmp = wdir / "home", wdir / "tmp"
        home.mkdir(parents=True)
        tmp.mkdir()
        mem = self.limits.mem_torch if self.use_torch else self.limits.mem_numpy
        config = {"scratch": str(scratch), "torch": self.use_torch,
                  "limits": {"as": mem, "cpu": self.limits.cpu_seconds,
                             "fsize": self.limits.file_size, "nofile": self.limits.nofile,
                             "core": 0}}
        if self.root_mode:
            self.uid = _pick_uid()
            for p in (wdir, home, tmp):
                os.chown(p, self.uid, self.uid)
                os.chmod(p, 0o700)
            keep_cap = not interpreter_world_readable(self.use_torch)
            config.update(uid=self.uid, gid=self.uid,
                          hide=[str(p) for p in list(self.limits.hide) + list(self.hide_extra)],
                          keep=[str(scratch)] + interpreter_folders(self.use_torch),
                          keep_read_cap=keep_cap)
            if keep_cap:
                _warn_once("the Python interpreter is not readable by an unprivileged user, so "
                           "workers keep read access to files (CAP_DAC_READ_SEARCH); the "
                           "course, /root, /home and the temporary folder are hidden from them. "
                           "Install Python world-readable (as on Gradescope) for full isolation.")
            config["limits"]["nproc"] = self.limits.nproc
        else:
            config["limits"]["nproc"] = _tasks_of_uid(os.getuid()) + self.limits.nproc
            _warn_once("not running as root: workers run under your own uid (no private mount "
                       "namespace, no separate user); run the grader as root (a container, "
                       "Gradescope) for full isolation.")
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        config.update(req_fd=req_r, resp_fd=resp_w, sentinel=self.token[16:])
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(tmp),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1", "MPLBACKEND": "Agg", MARKER_ENV: self.token,
        }
        self.cgroup = None
        if os.environ.get("SEQLAB_SANDBOX_CGROUP", "1") != "0":  # "0": test the fallbacks
            self.cgroup = Cgroup(f"seqlab-{self.token[:16]}", mem + GiB, self.limits.nproc + 64)
            if not self.cgroup.ok:
                self.cgroup = None
        cmd = [sys.executable, "-I", "-B", "-u", str(boot), json.dumps(config)]
        try:
            with _workers_lock:  # spawn and register atomically (see tracked_pids)
                self.proc = subprocess.Popen(
                    cmd, cwd=str(scratch), env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(req_r, resp_w),
                    start_new_session=True, close_fds=True)
                _worker_pids.add(self.proc.pid)
        finally:
            os.close(req_r)
            os.close(resp_w)
        if self.cgroup is not None:
            self.cgroup.add(self.proc.pid)
        self._req_w, self._resp_r = req_w, resp_r
        os.set_blocking(req_w, False)
        self._reader = _OutputReader(self.proc.stdout, self.limits.output_chars,
                                     self.token[16:].encode())
        self._answers = 0  # answers received = sentinels to expect
        self._reader.start()
        self.alive = True
        try:
            header, _ = self._receive(time.monotonic() + self.limits.init_timeout)
        except WorkerFailure as exc:
            self.close()
            raise WorkerFailure(exc.kind, "the worker process did not start: " + exc.message,
                                exc.output)
        self.notes = header.get("notes", [])
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
        if self.root_mode and self.uid is not None:
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
            if self.root_mode and self.uid is not None and uid == self.uid:
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
                pids.discard(worker_pid)
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
    def call(self, header, arrays, timeout):
        """Send one request that has one answer (``import``); return (answer header,
        {name: array}, captured output). Raises WorkerFailure (and kills the worker) on
        timeout, death or a bad frame."""
        if not self.alive:
            raise WorkerFailure("crash", "the worker is not running")
        self._next_id += 1
        header = dict(header, id=self._next_id)
        deadline = time.monotonic() + timeout
        self._reader.take()
        try:
            self._send(_pack(header, arrays), deadline)
            resp, out_arrays = self._receive(deadline)
            if resp.get("id") != self._next_id:
                raise WorkerFailure("protocol", "the worker answered another request")
        except WorkerFailure as exc:
            self.close()  # kills everything; the output reader then reaches the end
            exc.output = self._finish_output()
            raise
        self._answers += 1
        return resp, out_arrays, self._finish_output(self._answers)

    def batch(self, calls, timeout):
        """Run calls [(steps, returns, inputs)] in one request; yield (answer header, arrays,
        output) per call as it completes, each within ``timeout`` seconds of the previous one.

        On a timeout, a death or a bad frame, the worker (and all it started) is killed and
        WorkerFailure is raised with ``index`` = the call that did not complete."""
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
        self._reader.take()
        index = 0
        try:
            deadline = time.monotonic() + timeout
            self._send(_pack(header, arrays), deadline)
            for index in range(len(calls)):
                resp, out_arrays = self._receive(deadline)
                if resp.get("id") != self._next_id or resp.get("index") != index:
                    raise WorkerFailure("protocol", "the worker sent an answer out of order")
                self._answers += 1
                yield resp, out_arrays, self._finish_output(self._answers)
                deadline = time.monotonic() + timeout
        except WorkerFailure as exc:
            exc.index = index
            self.close()
            exc.output = self._finish_output()
            raise
        self.kill_all(keep_worker=True)  # anything the calls left running in the background

    def _finish_output(self, until=None):
        return self._reader.take(until) if self._reader is not None else ""

    def _send(self, data, deadline):
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
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
            remaining = deadline - time.monotonic()
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

    def _receive(self, deadline):
        magic, hlen, dlen = _HEAD.unpack(self._read(_HEAD.size, deadline))
        if magic != MAGIC or hlen > 16 * 2 ** 20 or dlen > MAX_RESPONSE:
            raise WorkerFailure("protocol", "the worker sent a malformed answer")
        try:
            header = json.loads(self._read(hlen, deadline).decode("utf-8"))
            if not isinstance(header, dict):
                raise ValueError("header is not an object")
        except (ValueError, UnicodeDecodeError):
            raise WorkerFailure("protocol", "the worker sent a malformed answer")
        data = self._read(dlen, deadline)
        return header, _unpack_arrays(header.pop("arrays", []), data)

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


def _live_worker_pids():
    with _workers_lock:
        return set(_worker_pids)


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
