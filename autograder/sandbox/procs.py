"""Finding and ending every process a worker started (grader side).

A worker's processes are found by its cgroup, its session id, the marker variable in their
environment, its fresh uid, and, in the command-line process, the child-subreaper flag (orphans
are re-parented to the grader). This module holds the /proc scans behind these, the fresh uids
and groups workers run under, and the cleanup of files their uid left in shared folders.
"""
import contextlib
import os
import random
import shutil
import stat
import threading

subreaper = False  # True once enable_subreaper() succeeded (CLI process only)
_uid_lock = threading.Lock()
_used_uids = set()
workers_lock = threading.Lock()  # workers are spawned and added to worker_pids under it
worker_pids = set()


def enable_subreaper() -> None:
    """Make this process the child subreaper (Linux): orphans of workers are re-parented to
    it, so a detached grandchild is still found and killed. Only for a process that is the
    grader's alone (the CLI commands): from then on every child of this process that is not a
    worker counts as an escaped orphan, so in another program's process (a Jupyter server that
    runs nbgrader's preprocessors, and its kernels) it would kill that program's children."""
    global subreaper
    with contextlib.suppress(Exception):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_CHILD_SUBREAPER = 36
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
            subreaper = True


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state: b"R", b"S", b"Z"...,
    ppid, pgrp, sid, ...; see proc(5)), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def proc_uid(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def all_pids() -> list:
    try:
        return [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []


def has_marker(pid: int, token: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return token in f.read()
    except OSError:
        return False


def reap(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.waitpid(pid, os.WNOHANG)


def tasks_of_uid(uid: int) -> int:
    """The threads of all the processes of ``uid`` (what RLIMIT_NPROC counts)."""
    n = 0
    for pid in all_pids():
        if proc_uid(pid) != uid:
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                n += next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
        except (OSError, ValueError, StopIteration):
            continue
    return n


def pick_uid() -> int:
    with _uid_lock:
        while True:
            uid = random.SystemRandom().randrange(2_000_000_000, 2_100_000_000)
            if uid not in _used_uids:
                _used_uids.add(uid)
                return uid


_scratch_gids = {}
_scratch_lock = threading.Lock()


def scratch_group(scratch: str | os.PathLike) -> int:
    """A fresh gid that alone may read ``scratch`` (mode 0750): workers of this submission run
    with it, those of other submissions cannot read it (matters where there is no mount
    namespace to hide other scratch folders)."""
    key = os.path.realpath(scratch)
    # one lock for the whole get-or-make: two modules of one submission start their workers
    # in two threads, and a second chown would lock the first worker out of the folder
    with _scratch_lock:
        gid = _scratch_gids.get(key)
        if gid is None:
            gid = pick_uid()
            os.chown(key, 0, gid)
            os.chmod(key, 0o750)
            _scratch_gids[key] = gid
    return gid


def is_zombie(pid: int) -> bool:
    """True for a dead process not reaped yet, or one that is gone."""
    st = stat_fields(pid)
    return st is None or st[0] in (b"Z", b"X")


def cleanup_files_of(uid: int) -> None:
    """Remove top-level files a worker uid left in the shared temporary folders (root mode)."""
    for base in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            path = os.path.join(base, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if st.st_uid == uid and stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(path, ignore_errors=True)
                elif st.st_uid == uid:
                    os.unlink(path)
