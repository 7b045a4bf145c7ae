"""The grader's clean-up after a worker kills the worker's processes and nothing else.

A worker that dies is reaped only once everything it started has been killed: until then its
zombie holds its pid. Reaped early, the pid could go to a new process (pids wrap around fast
under a fork bomb), and the process-group and session signals that clean up after the worker
would reach that process: another grader's worker, a shell, anything of the same user.

Graded inside another program's process (nbgrader's preprocessors in a Jupyter server), the
grader does not become the subreaper of that process: as one, it takes every child of the
process that is not a worker for a worker's escaped orphan (the server's kernels).

A grader stopped by SIGTERM kills its workers and removes what it made before it exits."""
import ctypes
import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import nbgrader_prepare, runner
from autograder.sandbox import procs

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab" / "rnn_layers.py"

EXITS = '''

import os as _os


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    _os._exit(3)
'''


def test_a_dead_worker_keeps_its_pid_until_its_processes_are_killed(tmp_path, monkeypatch):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "rnn_layers.py").write_text(REF.read_text(encoding="utf-8") + EXITS)
    signalled = []  # per os.killpg call: "running", "zombie" (ours, not reaped) or "reaped"
    real_killpg = os.killpg

    def killpg(pgid, sig):
        try:
            info = os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            signalled.append("running" if info is None else "zombie")
        except ChildProcessError:
            signalled.append("reaped")
        return real_killpg(pgid, sig)

    monkeypatch.setattr(os, "killpg", killpg)
    [res] = runner.grade([str(folder)], runner.Options(only=["rnn_step_forward"], jobs=1))
    assert "zombie" in signalled, signalled  # a dead worker was cleaned up: the case at stake
    assert "reaped" not in signalled, signalled
    assert res.score < res.max_score


def test_grading_in_another_programs_process_spares_its_children(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real sandbox.enable_subreaper (tests/conftest.py stubs it)
    folder = tmp_path / "seqlab"
    folder.mkdir()
    (folder / "rnn_layers.py").write_text(REF.read_text(encoding="utf-8"))
    kernel = subprocess.Popen(["sleep", "60"])  # a child of the program: a kernel, say
    try:
        [record] = nbgrader_prepare.grade([nbgrader_prepare.load_modules(folder)], jobs=1)
        assert kernel.poll() is None, "the grader killed a child of the process it ran in"
        assert record  # it graded
    finally:
        kernel.kill()
        kernel.wait()
        if procs.subreaper:  # this process is no CLI: undo it for the tests that follow
            ctypes.CDLL(None, use_errno=True).prctl(36, 0, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
            procs.subreaper = False


def test_a_worker_that_cannot_start_leaves_no_pipe_or_cgroup(tmp_path, monkeypatch):
    """Bubblewrap's arguments go through a pipe; when they do not fit, the worker fails before
    any process starts, and the grader's ends of the worker's pipes and the worker's cgroup
    go too (both were left behind, once per worker, in a grader that keeps grading)."""
    from autograder import isolation
    from autograder.sandbox import Limits, Worker, WorkerFailure
    method = isolation.detect()
    if "bwrap" not in method.method:
        pytest.skip("no bubblewrap sandbox here: its arguments never go through a pipe")
    real = isolation.command

    def command(*args, **kwargs):
        argv, bargs = real(*args, **kwargs)
        return argv, bargs + ["--setenv", "PADDING", "x" * 70000]

    monkeypatch.setattr(isolation, "command", command)
    before = set(os.listdir("/proc/self/fd"))
    worker = Worker(tmp_path, "rnn_layers", False, Limits(), isolation=method)
    with pytest.raises(WorkerFailure, match="do not fit a pipe"):
        worker.start()
    assert set(os.listdir("/proc/self/fd")) - before == set()
    assert worker.cgroup is None and worker.proc is None
    token = worker.token[:16]
    assert not glob.glob(f"/sys/fs/cgroup/**/seqlab-{token}", recursive=True)


SLEEPS = '''

import os as _os
import time as _time


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    if _os.fork() == 0:  # a child in a session of its own
        _os.setsid()
        _time.sleep(300)
    _time.sleep(300)
'''


def _groups_of_workers(grader_pid):
    """{cgroup folder} of the live processes of grader ``grader_pid``'s workers (found by the
    marker variable in their environment)."""
    marker = b"SEQLAB_SANDBOX_TOKEN=%d." % grader_pid
    folders = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker not in f.read():
                    continue
            with open(f"/proc/{pid}/cgroup") as f:
                for line in f.read().splitlines():
                    _, ctrl, rel = line.split(":", 2)
                    if "seqlab-" in rel:
                        folders.add(os.path.join("/sys/fs/cgroup", ctrl or "", rel.lstrip("/")))
        except OSError:
            continue
    return folders


def _procs_in(folders):
    """The pids in the cgroup folders ``folders``."""
    pids = set()
    for folder in folders:
        try:
            with open(os.path.join(folder, "cgroup.procs")) as f:
                pids.update(f.read().split())
        except OSError:
            continue
    return pids


def test_a_grader_stopped_by_sigterm_cleans_up(tmp_path):
    """SIGTERM (a time limit's, an instructor's ``kill``) ends the grader with status 143 after
    it has killed its workers and removed the scratch folder of the submission (the student's
    files) and its cgroups; by default it died at once and left both behind."""
    if os.geteuid() != 0:
        pytest.skip("the worker cgroups this checks are made as root")
    sub, tmp = tmp_path / "sleeper", tmp_path / "tmp"
    sub.mkdir()
    tmp.mkdir()
    os.chmod(tmp, 0o755)
    (sub / "rnn_layers.py").write_text(REF.read_text(encoding="utf-8") + SLEEPS)
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(sub), "--only",
                             "rnn_step_forward", "--timeout", "30", "--quiet"], cwd=ROOT,
                            env=dict(os.environ, TMPDIR=str(tmp)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # the worker and its child are up: two processes in its groups
            folders = _groups_of_workers(proc.pid)
            if folders and os.listdir(tmp) and len(_procs_in(folders)) >= 2:
                break
            time.sleep(0.1)
        assert folders, "no worker started"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        proc.kill()
        proc.wait()
    assert os.listdir(tmp) == [], "the scratch folder was left behind"
    for _ in range(30):
        left = [f for f in folders if os.path.exists(f)]
        if not left:
            break
        time.sleep(0.1)
    assert left == [], "cgroups were left behind"
