"""cgroups: one per worker (:class:`Cgroup`), and one for the grader itself
(:class:`GraderGroup`), next to which its workers' groups are made (grader side)."""
import contextlib
import errno
import os
import secrets
import signal
import threading
import time
from pathlib import Path

GiB = 2 ** 30
CGROUP_SLACK = 256 * 2 ** 20  # a worker's cgroup: its address-space limit plus its tmpfs folders
GRADER_MEMORY = 2 * GiB       # default bound of the grader process's own memory (GraderGroup)
V2_MOUNTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
V1_CONTROLLERS = ("memory", "pids", "freezer", "cpuacct")


def _own_bases():
    """This process's groups, from /proc/self/cgroup: {"v2": [folders of the unified
    hierarchy], "memory" | "pids" | "freezer" | "cpuacct": folder of that v1 controller}."""
    out = {"v2": []}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:  # "ID:controller,controller:/path", v2: "0::/path"
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        rel = parts[2].strip().lstrip("/")
        if not parts[1]:
            out["v2"] = [Path(m) / rel for m in V2_MOUNTS
                         if os.path.exists(os.path.join(m, "cgroup.controllers"))]
        for ctrl in set(parts[1].split(",")) & set(V1_CONTROLLERS):
            out[ctrl] = Path("/sys/fs/cgroup") / ctrl / rel
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
    """Remove a cgroup folder; retried for two seconds (its last processes may still be exiting
    on a loaded machine)."""
    for _ in range(200):
        try:
            path.rmdir()
            return
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            time.sleep(0.01)


class Cgroup:
    """A cgroup for one worker with the memory and pids controllers (both required): cgroup v2
    when its group really has both controllers, else v1 (memory, pids, and freezer and cpuacct
    when there are), each made next to the grader's own leaf (see GraderGroup), or under this
    process's group when it has none. ``ok`` is False when neither gives both."""

    def __init__(self, name, mem_bytes, max_pids):
        self.v2 = None
        self.v1 = {}
        self._cpu = 0.0  # the last CPU time read (cpu_seconds)
        bases = _bases()
        self._create_v2(bases, name, mem_bytes, max_pids)
        if self.v2 is None:
            self._create_v1(bases, name, mem_bytes, max_pids)

    @classmethod
    def probe(cls) -> bool:
        """True when this process can make a worker's cgroup with memory and pids limits, as
        runner.grade makes them: next to the grader's own leaf where it can have one (under
        cgroup v2, only then can its group hand controllers to children)."""
        with GraderGroup(GRADER_MEMORY):
            group = cls(f"seqlab-probe-{secrets.token_hex(6)}", 256 * 2 ** 20, 64)
            ok = group.ok
            group.remove()
        return ok

    @property
    def ok(self) -> bool:
        return self.v2 is not None or ("memory" in self.v1 and "pids" in self.v1)

    @property
    def folders(self) -> list:
        """Its folders: the v2 one, or one per v1 controller."""
        return [self.v2] if self.v2 is not None else list(self.v1.values())

    def _create_v2(self, bases, name, mem_bytes, max_pids):
        for base in bases["v2"]:
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            controllers = []
            with contextlib.suppress(OSError):
                controllers = (path / "cgroup.controllers").read_text().split()
            if {"memory", "pids"} <= set(controllers) and \
                    _write_checked(path / "memory.max", mem_bytes) and \
                    _write_checked(path / "pids.max", max_pids):
                _write_checked(path / "memory.swap.max", 0)
                self.v2 = path
                return
            _rmdir(path)

    def _create_v1(self, bases, name, mem_bytes, max_pids):
        for ctrl, settings in (("memory", {"memory.limit_in_bytes": mem_bytes}),
                               ("pids", {"pids.max": max_pids}), ("freezer", {}),
                               ("cpuacct", {})):
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

    def enter_command(self) -> list:
        """A command prefix that moves itself into this cgroup, then runs the rest: the
        worker's first process is inside before it starts any other (nothing escapes)."""
        procs = [str(p / "cgroup.procs") for p in self.folders]
        script = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 126; shift; '
                  'n=$((n-1)); done; exec "$@"')
        return ["/bin/sh", "-c", script, "sh", str(len(procs))] + procs

    def pids(self) -> set:
        out = set()
        for path in self.folders:
            with contextlib.suppress(OSError, ValueError):
                out.update(int(x) for x in (path / "cgroup.procs").read_text().split())
        return out

    @property
    def counts_cpu(self) -> bool:
        """True when the group can tell the CPU time of its processes (``cpu_seconds``): always
        under cgroup v2, under v1 with a cpuacct group."""
        return self.v2 is not None or "cpuacct" in self.v1

    def cpu_seconds(self) -> float:
        """CPU time (user + system, seconds) used so far by every process that has been in the
        group, children that never ended included (a fork bomb's). The last value read if the
        file cannot be read now; 0 where the group cannot tell (``counts_cpu``)."""
        with contextlib.suppress(OSError, ValueError, LookupError):
            if self.v2 is not None:  # "usage_usec N" (cgroup v2 keeps it with no cpu controller)
                stat = dict(line.split()[:2] for line in
                            (self.v2 / "cpu.stat").read_text().splitlines() if line.strip())
                self._cpu = int(stat["usage_usec"]) / 1e6
            elif "cpuacct" in self.v1:
                self._cpu = int((self.v1["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        return self._cpu

    def kill(self) -> None:
        if self.v2 is not None:
            with contextlib.suppress(OSError):
                (self.v2 / "cgroup.kill").write_text("1")
        freezer = self.v1.get("freezer")
        if freezer is not None:
            try:
                (freezer / "freezer.state").write_text("FROZEN")
            except OSError:
                freezer = None
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if freezer is not None:
            with contextlib.suppress(OSError):
                (freezer / "freezer.state").write_text("THAWED")

    def remove(self) -> None:
        for path in self.folders:
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
            with contextlib.suppress(OSError):
                fn(arg)

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
        for ctrl in V1_CONTROLLERS[1:]:  # the workers' pids, freezer, cpuacct groups: alongside
            if ctrl in own:
                folder = own[ctrl] / self.name
                try:
                    self._do(Path.mkdir, folder, _rmdir)
                    bases[ctrl] = folder
                except OSError:
                    bases[ctrl] = own[ctrl]
        self.bases, self.leaf, self.how = bases, leaf, "cgroup v1"
        return True

    def peak(self) -> int | None:
        """The most memory the grader used inside its leaf (bytes), or None."""
        if self.leaf is None:
            return None
        name = "memory.peak" if self.how == "cgroup v2" else "memory.max_usage_in_bytes"
        try:
            return int((self.leaf / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
