"""How a worker is isolated: the isolation level this machine allows, and the command that starts
a worker in it (grader side).

A worker's world is built from what it needs, not from the host's with folders hidden
(an allowlist): with bubblewrap (``bwrap``, Debian's package, what Flatpak uses) it sees
``/usr`` and the interpreter's folders read-only, its scratch folder read-only at
``/submission``, small size-limited tmpfs folders for ``/tmp`` (its HOME and TMPDIR) and
``/dev/shm``, a private ``/proc``; no network, no System V IPC of the host, no other process.

Methods, tried in this order (the first one whose probe runs wins):

``bwrap``         root: bubblewrap without a user namespace (mount, PID, network, IPC and UTS
                  namespaces), then ``setpriv`` drops to a fresh unprivileged uid with an empty
                  bounding set and no_new_privs before the interpreter starts. Chosen over
                  ``--unshare-user --uid N`` because there the worker is uid 0 outside the
                  sandbox; here it is a uid that owns nothing on the host, and the interpreter
                  may sit in a folder only root can read (bound read-only at the same path).
``uid+bwrap``     root without CAP_SYS_ADMIN (Docker's default capabilities): ``setpriv`` to a
                  fresh uid, then bubblewrap in an unprivileged user namespace. Needs an
                  interpreter that uid can read.
``bwrap-userns``  bubblewrap in a user namespace under the grader's own uid (a normal user, or
                  root whose interpreter a fresh uid cannot read): every namespace, but the
                  worker is the grader's uid outside the sandbox.
``uid``           root where no namespace can be made (a seccomp filter forbids them, as in
                  Docker's default profile): ``setpriv`` to a fresh uid only. The course and
                  other submissions must be unreadable to other uids (the Gradescope bundle's
                  ``run_autograder`` makes them so).
``plain``         nothing: the worker runs as the grader.

Every method adds resource limits (rlimits) and, where one can be made, a cgroup with the
memory and pids controllers (see ``sandbox.Cgroup``).

Levels, defined by guarantees:

``full``     no capabilities; private mount, PID, network and IPC namespaces; an unprivileged
             uid outside the sandbox (not the grader's); a memory and pids cgroup.
``reduced``  some of these missing (each one is named in ``Isolation.missing``).
``none``     the worker runs under the grader's own uid without namespaces.

Grading untrusted code below ``full`` needs an explicit choice (``grade --allow-isolation``).
"""
import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

LEVELS = ("none", "reduced", "full")
GUARANTEES = ("no capabilities", "mount namespace", "PID namespace", "network namespace",
              "IPC namespace", "unprivileged uid", "memory and pids cgroup")
NAMESPACES = GUARANTEES[1:5]
# what each method gives but the cgroup (the machine's: see level_of), in the order tried
METHOD_GUARANTEES = {
    "bwrap": {"no capabilities", *NAMESPACES, "unprivileged uid"},
    "uid+bwrap": {"no capabilities", *NAMESPACES, "unprivileged uid"},
    "bwrap-userns": {"no capabilities", *NAMESPACES},
    "uid": {"no capabilities", "unprivileged uid"},
    "plain": set(),
}
METHODS = tuple(METHOD_GUARANTEES)
INSIDE_SCRATCH = "/submission"
TMPFS_BYTES = 64 * 2 ** 20
SHM_BYTES = 16 * 2 ** 20
METHOD_ENV = "SEQLAB_ISOLATION_METHOD"   # force one method (tests of the reduced levels)


@dataclass
class Isolation:
    """The isolation a worker gets on this machine: ``method`` (see the module docstring),
    ``level`` (none | reduced | full) and ``missing`` (the guarantees of ``full`` it lacks)."""
    method: str
    level: str
    missing: list = field(default_factory=list)

    def describe(self) -> str:
        """One line for people: 'full' or 'reduced (missing: ...)'."""
        if not self.missing:
            return self.level
        return f"{self.level} (missing: {', '.join(self.missing)})"

    def as_json(self) -> dict:
        return {"level": self.level, "method": self.method, "missing": list(self.missing)}


class IsolationTooLow(Exception):
    """The machine allows less isolation than the caller accepted."""


def fresh_uid(method: str) -> bool:
    """True when ``method`` runs the worker under a fresh unprivileged uid (with setpriv)."""
    return "unprivileged uid" in METHOD_GUARANTEES[method]


def level_of(method: str, cgroup_ok: bool) -> Isolation:
    """-> Isolation for a method, given whether a memory+pids cgroup can be made."""
    have = METHOD_GUARANTEES[method] | ({"memory and pids cgroup"} if cgroup_ok else set())
    missing = [g for g in GUARANTEES if g not in have]
    if not missing:
        level = "full"
    elif method == "plain":
        level = "none"
    else:
        level = "reduced"
    return Isolation(method, level, missing)


# the command that starts a worker --------------------------------------------------------------

def under(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or lies inside it (both absolute and normalised)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _base_binds():
    """bwrap arguments for the system part of the world: /usr, the /bin-/lib links of a
    merged-/usr system (or their folders), the dynamic linker's cache."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    for name in ("/etc/ld.so.cache", "/etc/alternatives", "/etc/localtime"):
        args += ["--ro-bind-try", name, name]
    return args


def _bind_folder(folder, made):
    """Bind ``folder`` read-only at the same path, creating its parents world-traversable
    (bubblewrap would copy the modes of a 0700 parent such as /root)."""
    args = []
    parts = Path(folder).parts
    for i in range(2, len(parts)):
        parent = str(Path(*parts[:i]))
        if parent not in made and not under(parent, "/usr"):
            made.add(parent)
            args += ["--perms", "0755", "--dir", parent]
    return args + ["--ro-bind", folder, folder]


def bwrap_args(method: str, folders, hide, scratch, uid) -> list:
    """bubblewrap's arguments (without the program) for a worker: read-only ``folders`` (the
    interpreter's), empty folders over ``hide`` paths that lie inside them, the scratch folder
    read-only at ``/submission``, fresh tmpfs folders. ``uid``: the uid inside the sandbox
    (user-namespace methods)."""
    args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--hostname", "sandbox"]
    if method in ("uid+bwrap", "bwrap-userns"):
        args += ["--unshare-user", "--uid", str(uid), "--gid", str(uid), "--cap-drop", "ALL"]
    args += _base_binds()
    # the fresh folders first: an interpreter folder under /tmp is bound on top of them
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm",
             "--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
    made = set()
    for folder in folders:
        if not under(folder, "/usr"):
            args += _bind_folder(folder, made)
    for path in hide:  # e.g. the course installed into site-packages
        if any(under(path, f) and path != f for f in folders) and os.path.isdir(path):
            args += ["--perms", "0000", "--size", "4096", "--tmpfs", path]
    args += ["--ro-bind", str(scratch), INSIDE_SCRATCH, "--chdir", INSIDE_SCRATCH]
    return args


def setpriv_args(uid: int, gid: int) -> list:
    """setpriv's arguments that drop root to ``uid``/``gid`` for good (no groups, no
    capabilities in any set, no_new_privs)."""
    return [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={gid}",
            "--clear-groups", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs"]


def command(method: str, program: list, folders=(), hide=(), scratch: str | Path | None = None,
            uid: int | None = None, gid: int | None = None, args_fd: int | None = None) -> tuple:
    """The command line that runs ``program`` (a list) under ``method``. With bubblewrap, its
    arguments are read from ``args_fd`` when given (``--args FD``: they stay off the command
    line); returns (argv, bwrap arguments to write into that fd or None)."""
    drop = setpriv_args(uid, gid) if fresh_uid(method) else []
    if "bwrap" not in method:  # uid, plain
        return drop + list(program), None
    bargs = bwrap_args(method, folders, hide, scratch, uid)
    head = drop if method == "uid+bwrap" else []  # setpriv, then bubblewrap
    tail = ["--"] + (drop if method == "bwrap" else []) + list(program)  # or the reverse
    bwrap = [shutil.which("bwrap") or "bwrap"]
    if args_fd is None:
        return head + bwrap + bargs + tail, None
    return head + bwrap + ["--args", str(args_fd)] + tail, bargs


# detection -------------------------------------------------------------------------------------

def _candidates():
    forced = os.environ.get(METHOD_ENV)
    if forced:
        if forced not in METHODS:
            raise ValueError(f"{METHOD_ENV}={forced!r}: expected one of {', '.join(METHODS)}")
        return [forced]
    if os.geteuid() == 0:
        return list(METHODS)
    return ["bwrap-userns", "plain"]


def _probe(method, folders):
    """Run a small program with ``method``: True when the interpreter starts and finds numpy
    in its site-packages (what every worker needs; found, not imported: a few ms)."""
    import tempfile
    if "bwrap" in method and shutil.which("bwrap") is None:
        return False
    if fresh_uid(method) and shutil.which("setpriv") is None:
        return False
    uid = 1_999_999_999 if fresh_uid(method) else os.geteuid()
    program = [sys.executable, "-I", "-c",
               "import importlib.util, sys; sys.exit(importlib.util.find_spec('numpy') is None)"]
    with tempfile.TemporaryDirectory(prefix="seqlab-probe-") as scratch:
        os.chmod(scratch, 0o755)
        argv, _ = command(method, program, folders=folders, scratch=scratch, uid=uid, gid=uid)
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=30, cwd=scratch)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return proc.returncode == 0


@functools.lru_cache(maxsize=None)
def detect() -> Isolation:
    """The best isolation this machine allows (probed once per process), with this
    interpreter's folders and a memory+pids cgroup when one can be made."""
    from autograder.sandbox.cgroup import Cgroup
    from autograder.sandbox.worker import interpreter_folders
    folders = interpreter_folders()
    # SEQLAB_SANDBOX_CGROUP=0: no cgroup (tests of the other guarantees)
    cgroup_ok = os.environ.get("SEQLAB_SANDBOX_CGROUP", "1") != "0" and Cgroup.probe()
    for method in _candidates():
        if method == "plain" or _probe(method, folders):
            return level_of(method, cgroup_ok)
    return level_of("plain", cgroup_ok)


def require(isolation: Isolation, allowed: str) -> None:
    """Raise IsolationTooLow unless ``isolation`` is at least the ``allowed`` level."""
    if allowed not in LEVELS:
        raise ValueError(f"allowed isolation level: expected one of {', '.join(LEVELS)}, "
                         f"got {allowed!r}")
    if LEVELS.index(isolation.level) < LEVELS.index(allowed):
        nxt = "reduced" if isolation.level == "reduced" else "none"
        raise IsolationTooLow(
            f"this machine allows only isolation level {isolation.describe()}; student code "
            f"could then reach what those guarantees protect (see autograder/README.md, "
            f"'Isolation'). Run as root with bubblewrap installed for full isolation, or accept "
            f"it explicitly with --allow-isolation {nxt}.")
