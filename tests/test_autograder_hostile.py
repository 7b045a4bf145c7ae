"""Hostile submissions are contained (tests/corpus/hostile.py).

One CLI run grades every hostile submission (numpy forwards only, short timeout, two jobs).
Each may lose points only on the API names it attacks through; the grader always finishes,
writes its own valid JSON, and leaves no process, scratch folder or cgroup behind.
"""
import glob
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from seqlab_dev.testing import BACKGROUND

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from hostile import (ESCAPE_API, ESCAPES, HOSTILE, SELECTED, Listener, escape_effect,  # noqa
                     escape_score, escape_source, file_handle, shm_keys, tagged_files)

REF = ROOT / "solutions" / "sequence_models" / "seqlab" / "rnn_layers.py"
CTRL_NAME = "ctrl\x1b[31m\nname"
IS_ROOT = os.geteuid() == 0


def _worker_processes(grader_pid):
    """Live (not zombie) processes that a worker of grader ``grader_pid`` started (the marker
    variable names the grader), and the detached grandchild of fork_detached (which clears its
    environment). Polls for up to 3 s (killed processes take a moment to go)."""
    for _ in range(30):
        found = _scan(grader_pid)
        if not found:
            return found
        time.sleep(0.1)
    return found


def _scan(grader_pid):
    found = []
    marker = b"SEQLAB_SANDBOX_TOKEN=%d." % grader_pid
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            if data[data.rindex(b")") + 2:][:1] in (b"Z", b"X"):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"987.654321" in f.read():
                    found.append(pid)
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker in f.read():
                    found.append(pid)
        except (OSError, ValueError):
            continue
    return found


class TreeMemory(threading.Thread):
    """Samples, every 0.5 s until it ends, the summed PSS of a process (a Popen) and all its
    descendants (workers included), and the names of the seqlab cgroups they are in
    (``groups``); the peak in MiB from ``stop()``."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc = proc
        self.pid = proc.pid
        self.peak_kib = 0
        self.groups = set()
        self.halt = threading.Event()

    def _tree(self):
        children = {}
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat", "rb") as f:
                    data = f.read()
                ppid = int(data[data.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(p))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out

    def run(self):
        while self.proc.poll() is None and not self.halt.wait(0.5):
            total = 0
            for p in self._tree():
                try:
                    with open(f"/proc/{p}/cgroup") as f:
                        self.groups.update(part for part in re.split(r"[:/\s]", f.read())
                                           if part.startswith("seqlab-"))
                    with open(f"/proc/{p}/smaps_rollup") as f:
                        for line in f:
                            if line.startswith("Pss:"):
                                total += int(line.split()[1])
                                break
                except (OSError, ValueError):
                    continue
            self.peak_kib = max(self.peak_kib, total)

    def stop(self):
        self.halt.set()
        self.join()
        return self.peak_kib // 1024


class Run:
    """One run of the CLI in the background, its tree's memory sampled (TreeMemory). Its
    output goes to files: several runs go at once, and a pipe that nobody reads would stall
    its grader."""

    def __init__(self, cmd, log, env=None, timeout=300):
        self.cmd = cmd
        self.streams = [open(log.with_suffix(".stdout"), "w+"),
                        open(log.with_suffix(".stderr"), "w+")]
        self.proc = subprocess.Popen(BACKGROUND + cmd, cwd=ROOT, stdout=self.streams[0],
                                     stderr=self.streams[1], text=True, env=env)
        self.pid = self.proc.pid
        self.deadline = time.monotonic() + timeout
        self.sampler = TreeMemory(self.proc)
        self.sampler.start()
        self.result = None

    def finish(self):
        """Wait for it (at most ``timeout`` s from its start); returns (CompletedProcess,
        the tree's peak PSS in MiB)."""
        if self.result is None:
            try:
                code = self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
            finally:
                self.kill()
                tree = self.sampler.stop()
            texts = []
            for stream in self.streams:
                stream.seek(0)
                texts.append(stream.read())
                stream.close()
            stdout, stderr = texts
            self.result = subprocess.CompletedProcess(self.cmd, code, stdout, stderr), tree
        return self.result

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _grader_peak(stderr):
    """The grader's own VmHWM (MiB) from its last line."""
    line = [s for s in stderr.splitlines() if "grader peak memory" in s]
    return int(line[-1].split("grader peak memory")[1].split()[0]) if line else None


def _cgroups():
    """The grader's cgroups: its workers' (named by sandbox.Worker and Cgroup.probe) and its
    own (sandbox.GraderGroup)."""
    return sorted(p for p in glob.glob("/sys/fs/cgroup/**/seqlab-*", recursive=True)
                  if re.fullmatch(r"seqlab-(probe-[0-9a-f]{12}|grader-[0-9a-f]{12}|[0-9a-f]{16})",
                                  os.path.basename(p)))


def _cgroups_left(names):
    """The seqlab cgroups that are, or are inside, a group named in ``names`` (the groups a
    run's processes were seen in: the grader's own group holds its workers' groups). Polls
    for up to 3 s (the last processes of a group take a moment to go)."""
    for _ in range(30):
        left = [p for p in _cgroups() if names & set(Path(p).parts)]
        if not left:
            break
        time.sleep(0.1)
    return left


# Submissions that hang come first: each takes a job for the whole time of its timeouts.
SLOW_FIRST = ["fork_bomb", "hang_ignore_sigterm"]
FALLBACK = ["hang_ignore_sigterm", "os_exit", "fork_detached"]


def _start_hostile(base):
    """The hostile batch: every hostile submission and a file name with control characters,
    numpy forwards only (SELECTED), a short timeout, two jobs."""
    subs = base / "subs"
    ref = REF.read_text(encoding="utf-8")
    names = [n for n, (_, _, root_only) in HOSTILE.items() if IS_ROOT or not root_only]
    for name in names:
        code = HOSTILE[name][0]
        (subs / name).mkdir(parents=True)
        (subs / name / "rnn_layers.py").write_text(ref + "\n\n# --- hostile ---\n" + code)
    (subs / CTRL_NAME).mkdir()  # a file name that would rewrite the instructor's terminal
    (subs / CTRL_NAME / "rnn_layers.py").write_text(ref)
    tmp = base / "tmp"  # the grader's temporary folder: its scratch folders go there
    tmp.mkdir()
    os.chmod(tmp, 0o755)
    order = [n for n in SLOW_FIRST if n in names] + [n for n in names if n not in SLOW_FIRST]
    cmd = [sys.executable, "-m", "autograder", "grade", *[str(subs / n) for n in order],
           str(subs / CTRL_NAME), "--out-dir", str(base / "out"), "--timeout", "0.5", "--jobs", "2"]
    if not IS_ROOT:  # a normal user's sandbox is 'reduced' (see test_autograder_isolation)
        cmd += ["--allow-isolation", "reduced"]
    for api in SELECTED:
        cmd += ["--only", api]
    run = Run(cmd, base / "grader", dict(os.environ, TMPDIR=str(tmp)))
    return dict(run=run, out=base / "out", names=names, tmp=tmp)


def _start_fallback(base):
    """Without any sandbox (method 'plain', accepted explicitly with --allow-isolation none):
    a hang, an exit and a detached grandchild."""
    ref = REF.read_text(encoding="utf-8")
    for name in FALLBACK:
        (base / name).mkdir(parents=True)
        (base / name / "rnn_layers.py").write_text(ref + "\n" + HOSTILE[name][0])
    env = dict(os.environ, SEQLAB_ISOLATION_METHOD="plain", SEQLAB_SANDBOX_CGROUP="0")
    cmd = [sys.executable, "-m", "autograder", "grade", *[str(base / n) for n in FALLBACK],
           "--out-dir", str(base / "out"), "--timeout", "0.5", "--jobs", "2", "--quiet",
           "--allow-isolation", "none", "--only", "rnn_step_forward", "--only", "rnn_forward",
           "--only", "word_embedding_forward"]
    return dict(run=Run(cmd, base / "grader", env), out=base / "out")


class HostileRuns:
    """The long grader runs of this module, started together at the start of the session
    (``start_early``, see tests/conftest.py) and awaited together: the hostile batch, the batch
    without isolation, and (root only) the escapes in the sandbox and, with ``controls``,
    without isolation (the positive control). Most of their time goes to waiting
    for hung calls to time out, so they run while the rest of the suite does. Processes,
    scratch folders and cgroups left behind are looked for once all have ended, so that one
    run's workers are never taken for another's leftovers."""

    def __init__(self, base, controls=True):
        self.reference_before = REF.read_bytes()
        self.shm_before = shm_keys()
        self.started, self.escape_batches = {}, {}
        self.results = None
        try:
            self.started["graded"] = _start_hostile(base / "graded")
            self.started["fallback"] = _start_fallback(base / "fallback")
            if IS_ROOT:  # the positive control of the escapes is a root worker
                for mode in ("unisolated", "sandbox") if controls else ("sandbox",):
                    listener = Listener()
                    listener.start()
                    self.escape_batches[mode] = _escape_batch(base / "escapes", mode, listener)
        except BaseException:
            self.stop()
            raise

    def _batches(self):
        return list(self.started.values()) + list(self.escape_batches.values())

    def collect(self):
        """Wait for every run; returns what the tests read (computed once)."""
        if self.results is None:
            for batch in self._batches():
                batch["run"].finish()
            graded, fallback = self.started["graded"], self.started["fallback"]
            proc, tree_mib = graded["run"].finish()
            self.results = dict(
                graded=dict(proc=proc, out=graded["out"], names=graded["names"],
                            leftovers=_worker_processes(graded["run"].pid), tree_mib=tree_mib,
                            new_scratch=set(os.listdir(graded["tmp"])),
                            groups=graded["run"].sampler.groups,
                            cgroups=_cgroups_left(graded["run"].sampler.groups)),
                fallback=dict(proc=fallback["run"].finish()[0], out=fallback["out"],
                              leftovers=_worker_processes(fallback["run"].pid)),
                escape_batches=self.escape_batches, shm_before=self.shm_before,
                reference_before=self.reference_before)
        return self.results

    def stop(self):
        """Kill what still runs, stop the listeners, remove what the escapes left."""
        for batch in self._batches():
            batch["run"].kill()
        for batch in self.escape_batches.values():
            batch["listener"].stop()
            _clean_escapes(batch)
        self.escape_batches = {}


def start_early(base, wanted):
    """The positive control of the escapes (an end-to-end test) runs only when it is wanted."""
    return HostileRuns(base, controls="test_escape_works_without_isolation" in wanted)


@pytest.fixture(scope="module")
def runs(early):
    return early.collect()


@pytest.fixture(scope="module")
def graded(runs):
    return runs["graded"]


def test_grader_completes(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "INTERNAL ERROR" not in proc.stderr
    assert "isolation level: full" in proc.stdout or not IS_ROOT


def test_control_characters_never_reach_the_terminal(graded):
    stdout = graded["proc"].stdout
    assert "\x1b" not in stdout and "ctrl\n" not in stdout
    assert "== ctrl?[31m?name: " in stdout  # shown, made harmless
    data = json.loads((graded["out"] / "ctrl_31m_name.json").read_text())
    assert data["score"] == data["max_score"] > 0


def test_broadcast_amplification_is_refused(tmp_path):
    """A (K, 1) loss and a (1, K) loss: np.allclose would broadcast them to (K, K) in the
    grader (3.2 GB for K = 20000) and pass; they are refused as non-scalar first."""
    K = 20000
    assert np.broadcast_shapes((K, 1), (1, K)) == (K, K)  # positive control: what it was
    sub = tmp_path / "broadcast"
    sub.mkdir()
    (sub / "rnn_layers.py").write_text(REF.read_text(encoding="utf-8") + f"""

_calls = []


def temporal_softmax_loss(x, y, mask):
    import numpy as np
    _calls.append(1)
    shape = ({K}, 1) if len(_calls) % 2 else (1, {K})
    return np.ones(shape), np.zeros_like(x)
""")
    cmd = [sys.executable, "-m", "autograder", "grade", str(sub), "--json",
           str(tmp_path / "r.json"), "--jobs", "1", "--only", "temporal_softmax_loss"]
    if not IS_ROOT:
        cmd += ["--allow-isolation", "reduced"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _grader_peak(proc.stderr) < 1024
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["score"] == 0
    assert any("must return a scalar loss" in t["output"] for t in data["tests"])


def test_grader_memory(graded, report):
    """The grader's own peak memory stays small whatever the workers do (the workers' is
    bounded by their rlimits and cgroups)."""
    peak = _grader_peak(graded["proc"].stderr)
    bound = [line for line in graded["proc"].stderr.splitlines()
             if line.startswith("grader memory:")]
    report(f"hostile batch, --jobs 2: grader peak RSS (VmHWM) {peak} MiB; whole tree's peak "
           f"PSS {graded['tree_mib']} MiB; {'; '.join(bound)}")
    assert peak is not None and peak < 1536


def test_nothing_left_behind(graded):
    assert graded["leftovers"] == [], "worker processes survived the grader"
    assert graded["new_scratch"] == set(), "scratch folders were not removed"
    assert graded["cgroups"] == [], "cgroups were not removed"
    if IS_ROOT:  # root's sandbox puts each worker in a cgroup: the check above looked at them
        assert any(g.startswith("seqlab-grader-") for g in graded["groups"]), graded["groups"]
        assert len(graded["groups"]) > 3, graded["groups"]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_contained(graded, name):
    if name not in graded["names"]:
        pytest.skip("needs root (the worker runs under its own uid)")
    path = graded["out"] / f"{name}.json"
    data = json.loads(path.read_text())
    assert set(data) >= {"score", "tests"}
    assert "PWNED" not in path.read_text() and "LEAKED" not in path.read_text()
    breaks = HOSTILE[name][1]
    per_api = {}
    for t in data["tests"]:
        assert t["status"] in ("passed", "failed")
        assert 0 <= t["score"] <= t["max_score"]
        per_api.setdefault(t["tags"][0], []).append(t)
    assert set(per_api) == set(SELECTED)
    for api, tests in per_api.items():
        lost = [t for t in tests if t["status"] == "failed"]
        if api in breaks:
            assert lost, f"{name}: {api} should lose points"
        else:
            assert not lost, f"{name}: {api} lost points: {lost[0]['output'][:500]}"
    assert abs(data["score"] - sum(t["score"] for t in data["tests"])) < 1e-6


def test_no_isolation_fallback(runs):
    """Without any sandbox (method 'plain', accepted explicitly with --allow-isolation none), a
    hang, an exit and a detached grandchild are still contained, by session id, marker
    variable and subreaper."""
    run = runs["fallback"]
    assert run["proc"].returncode == 0, run["proc"].stderr[-2000:]
    assert run["leftovers"] == []
    for name in FALLBACK:
        data = json.loads((run["out"] / f"{name}.json").read_text())
        assert data["extra_data"]["isolation"]["level"] == "none"
        for t in data["tests"]:
            assert (t["status"] == "failed") == (t["tags"][0] in HOSTILE[name][1]), t["name"]


# ---------------------------------------------------------------------------------------------
# escapes: each attack works against a worker without isolation, and not in the sandbox
# ---------------------------------------------------------------------------------------------

STUB = ROOT / "assignments" / "sequence_models" / "seqlab" / "rnn_layers.py"


def _escape_batch(base, mode, listener):
    """Write the escapes and a classmate (the reference) for one run; start the grader.
    Returns what ``_finish_escapes`` needs."""
    tag = f"seqlab-escape-{mode}-" + secrets.token_hex(4)
    handle, handle_type = file_handle(REF)
    fill = dict(COURSE=ROOT, REFERENCE=REF, HANDLE=handle, HANDLE_TYPE=handle_type,
                PORT=listener.port, CLASSMATE="classmate-" + tag,
                SHM_KEY=0x5E000000 + secrets.randbelow(2 ** 24), TAG=tag)
    texts = {"stub": STUB.read_text(encoding="utf-8"), "reference": REF.read_text("utf-8")}
    subs = base / f"subs-{mode}"
    paths = []
    for name, (_, kind) in ESCAPES.items():
        (subs / name).mkdir(parents=True)
        (subs / name / "rnn_layers.py").write_text(escape_source(name, texts[kind], fill))
        paths.append(str(subs / name))
    (subs / fill["CLASSMATE"]).mkdir()
    (subs / fill["CLASSMATE"] / "rnn_layers.py").write_text(texts["reference"])
    paths.append(str(subs / fill["CLASSMATE"]))
    tmp = base / f"tmp-{mode}"
    tmp.mkdir()
    os.chmod(tmp, 0o755)
    env = dict(os.environ, TMPDIR=str(tmp))
    cmd = [sys.executable, "-m", "autograder", "grade", *paths, "--out-dir",
           str(base / mode), "--jobs", "2", "--only", ESCAPE_API]
    if mode == "unisolated":
        env.update(SEQLAB_ISOLATION_METHOD="plain", SEQLAB_SANDBOX_CGROUP="0")
        # unisolated workers stay in the grader's own cgroup: give it room for forked_memory's
        # 1.5 GiB next to the other job's worker and disk_fill's files, so that the control
        # measures the attack, not the grader's bound
        cmd += ["--allow-isolation", "none", "--timeout", "60", "--grader-memory", "4096"]
    else:
        cmd += ["--timeout", "3"]
    return dict(run=Run(cmd, base / f"grader-{mode}", env), fill=fill, tmp=tmp,
                out=base / mode, listener=listener)


def _finish_escapes(batch, shm_before, reference_before):
    proc, tree = batch["run"].finish()
    stderr = proc.stderr
    fill = batch["fill"]
    assert proc.returncode == 0, stderr[-3000:]
    results = {n: json.loads((batch["out"] / f"{n}.json").read_text())
               for n in list(ESCAPES) + [fill["CLASSMATE"]]}
    return dict(results=results, connections=batch["listener"].take(),
                shm=fill["SHM_KEY"] in shm_keys() - shm_before,
                files=tagged_files(fill["TAG"]),
                reference_same=REF.read_bytes() == reference_before,
                scratch_left=os.listdir(batch["tmp"]), peak=_grader_peak(stderr), tree=tree,
                classmate=fill["CLASSMATE"])


def _clean_escapes(batch):
    subprocess.run(["ipcrm", "-M", str(batch["fill"]["SHM_KEY"])], capture_output=True)
    for path in tagged_files(batch["fill"]["TAG"]):
        os.unlink(path)


@pytest.fixture(scope="module")
def escapes(runs, report):
    """The escapes and a classmate (the reference), graded in one batch in the sandbox and,
    when the positive control runs, at the same time without isolation (started by ``runs``),
    each with its own listener, tag and System V key. Root only: the control is a root
    worker."""
    if not IS_ROOT:
        pytest.skip("the positive control runs an unisolated worker as root")
    out = {}
    for mode, batch in runs["escape_batches"].items():
        out[mode] = _finish_escapes(batch, runs["shm_before"], runs["reference_before"])
        report(f"escapes, {mode}, --jobs 2: grader peak RSS {out[mode]['peak']} MiB, "
               f"tree peak PSS {out[mode]['tree']} MiB")
    return out


@pytest.mark.e2e  # the control checks the corpus, not the grader: CI runs it
@pytest.mark.parametrize("name", list(ESCAPES))
def test_escape_works_without_isolation(escapes, name):
    """Positive control: the attack is real (it succeeds against an unisolated worker)."""
    assert escape_effect(escapes["unisolated"], name), name


@pytest.mark.parametrize("name", list(ESCAPES))
def test_escape_stopped_by_the_sandbox(escapes, name):
    run = escapes["sandbox"]
    assert not escape_effect(run, name), name
    got, total = escape_score(run["results"][name], ESCAPE_API)
    if name == "steal_reference":
        assert got == 0  # the stub's score: nothing was read
    elif name != "forked_memory":
        assert got == total  # the attack costs nothing else (the reference does the work)


def test_escapes_leave_the_host_unchanged(escapes):
    """In the sandbox: the classmate gets the reference's full marks, the reference is
    unchanged, nothing was left in shared folders or System V IPC, scratch removed."""
    run = escapes["sandbox"]
    got, total = escape_score(run["results"][run["classmate"]], ESCAPE_API)
    assert got == total > 0
    assert run["reference_same"]
    assert run["files"] == [] and not run["shm"]
    assert run["scratch_left"] == []
    assert run["peak"] is not None and run["peak"] < 1536


def test_regrade_is_byte_identical(tmp_path):
    """A submission that prints in every call: each call's output is attached to that call, so
    two gradings (run at the same time) give byte-identical JSON."""
    ref = REF.read_text(encoding="utf-8")
    sub = tmp_path / "printer"
    sub.mkdir()
    (sub / "rnn_layers.py").write_text(ref + """

_ref_step = rnn_step_forward
_ref_forward = rnn_forward


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    print("step", x.shape, float(x.sum()))
    return _ref_step(x, prev_h, Wx, Wh, b)


def rnn_forward(x, h0, Wx, Wh, b):
    import sys
    print("forward", x.shape, file=sys.stderr)
    return _ref_forward(x, h0, Wx, Wh, b)
""")
    procs = []
    for k in range(2):  # two gradings at the same time
        cmd = [sys.executable, "-m", "autograder", "grade", str(sub), "--json",
               str(tmp_path / f"r{k}.json"), "--jobs", "2", "--quiet", "--only",
               "rnn_step_forward", "--only", "rnn_forward"]
        if not IS_ROOT:
            cmd += ["--allow-isolation", "reduced"]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
    outs = []
    for k, proc in enumerate(procs):
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
        outs.append((tmp_path / f"r{k}.json").read_bytes())
    assert outs[0] == outs[1]
    data = json.loads(outs[0])
    for t in data["tests"]:  # each check shows what its own calls printed, nothing else
        printed = t["output"].split("Your code printed:\n", 1)[-1]
        if t["tags"][0] == "rnn_step_forward":
            assert "step (" in printed and "forward (" not in printed, t["output"]
        else:
            assert "forward (" in printed and "step (" not in printed, t["output"]


GRADER_GROUP_PROBE = """
import contextlib, json, sys
sys.path.insert(0, sys.argv[1])
from autograder import sandbox
limit, mode = int(sys.argv[2]) * 2 ** 20, sys.argv[3]
with (sandbox.GraderGroup(limit) if mode != "unbounded" else contextlib.nullcontext()) as g:
    if g is not None:
        if not g.bounded:
            print("NOT BOUNDED", g.describe(), flush=True)
            sys.exit(0)
        print("LEAF", g.leaf, flush=True)
        print("SELF", g.leaf.name in open("/proc/self/cgroup").read(), flush=True)
        worker = sandbox.Cgroup("seqlab-" + "0" * 16, 2 ** 30, 64)
        print("WORKER", json.dumps([str(p.parent) for p in [worker.v2, *worker.v1.values()] if p]),
              flush=True)
        worker.remove()
    if mode != "clean":
        block = b"x" * (3 * limit)  # written, so resident
        print("SURVIVED", len(block), flush=True)
print("BACK", "seqlab-grader" not in open("/proc/self/cgroup").read(), flush=True)
"""


def _grader_group(mode, limit_mib=200):
    proc = subprocess.run([sys.executable, "-c", GRADER_GROUP_PROBE, str(ROOT), str(limit_mib),
                           mode], capture_output=True, text=True, timeout=120)
    lines = dict(s.split(" ", 1) for s in proc.stdout.splitlines() if " " in s)
    return proc.returncode, lines


def test_grader_group_bounds_the_grader(report):
    """The grader process in its own cgroup leaf (sandbox.GraderGroup): without it, a process
    may use three times the limit (the positive control); inside, the kernel stops it there.
    Its workers' groups are made next to its leaf, not inside it (their memory is not the
    grader's), and a grader that leaves its group goes back where it was, the group removed."""
    code, out = _grader_group("unbounded")
    assert code == 0 and "SURVIVED" in out, out
    code, out = _grader_group("clean")
    if "NOT" in out:
        require_grader_group(out["NOT"])
    assert code == 0 and out["SELF"] == "True" and out["BACK"] == "True", out
    leaf = Path(out["LEAF"])
    assert not leaf.exists() and not leaf.parent.exists()
    assert all(Path(p) != leaf and Path(p).name == leaf.parent.name
               for p in json.loads(out["WORKER"])), out  # siblings of the leaf
    code, out = _grader_group("bound")
    leaf = Path(out["LEAF"])
    try:
        assert code == -9 and "SURVIVED" not in out, (code, out)
    finally:  # a grader killed inside its group cannot remove it, in any hierarchy (v1)
        for top in glob.glob(f"/sys/fs/cgroup/**/{leaf.parent.name}", recursive=True):
            for folder, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                os.rmdir(folder)
    report(f"grader group {leaf.parent.name}/grader: a 200 MiB grader that writes 600 MiB is "
           f"killed (status {code})")


def require_grader_group(why):
    if IS_ROOT and os.environ.get("SEQLAB_REQUIRE_E2E") == "1":
        pytest.fail("the grader's cgroup could not be made under CI: " + why)
    pytest.skip("the grader's cgroup could not be made: " + why)
