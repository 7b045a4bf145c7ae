"""Hostile submissions are contained (tests/corpus/hostile.py).

One CLI run grades every hostile submission (numpy forwards only, short timeout, two jobs).
Each may lose points only on the API names it attacks through; the grader always finishes,
writes its own valid JSON, and leaves no process, scratch folder or cgroup behind.
"""
import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from hostile import HOSTILE, SELECTED  # noqa: E402

REF = ROOT / "solutions" / "sequence_models" / "seqlab" / "rnn_layers.py"
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


def _cgroups():
    return sorted(glob.glob("/sys/fs/cgroup/**/seqlab-*", recursive=True))


def _empty_new_cgroups(before):
    """seqlab cgroups made since ``before`` that hold no process (a worker's, not removed).
    Groups with processes belong to other graders running at the same time."""
    for _ in range(30):
        left = []
        for path in set(_cgroups()) - set(before):
            try:
                if not open(os.path.join(path, "cgroup.procs")).read().split():
                    left.append(path)
            except OSError:
                continue
        if not left:
            break
        time.sleep(0.1)
    return left


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    subs = base / "subs"
    ref = REF.read_text(encoding="utf-8")
    names = [n for n, (_, _, root_only) in HOSTILE.items() if IS_ROOT or not root_only]
    for name in names:
        code = HOSTILE[name][0]
        (subs / name).mkdir(parents=True)
        (subs / name / "rnn_layers.py").write_text(ref + "\n\n# --- hostile ---\n" + code)
    out = base / "out"
    tmp = base / "tmp"  # the grader's temporary folder: its scratch folders go there
    tmp.mkdir()
    os.chmod(tmp, 0o755)
    cgroups_before = _cgroups()
    cmd = [sys.executable, "-m", "autograder", "grade", *[str(subs / n) for n in names],
           "--out-dir", str(out), "--timeout", "2", "--jobs", "2", "--quiet"]
    for api in SELECTED:
        cmd += ["--only", api]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, TMPDIR=str(tmp)))
    stdout, stderr = proc.communicate(timeout=300)
    proc.stdout, proc.stderr = stdout, stderr
    leftovers = _worker_processes(proc.pid)
    return dict(proc=proc, out=out, names=names, leftovers=leftovers,
                new_scratch=set(os.listdir(tmp)),
                cgroups=_empty_new_cgroups(cgroups_before))


def test_grader_completes(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "INTERNAL ERROR" not in proc.stderr


def test_nothing_left_behind(graded):
    assert graded["leftovers"] == [], "worker processes survived the grader"
    assert graded["new_scratch"] == set(), "scratch folders were not removed"
    assert graded["cgroups"] == [], "cgroups were not removed"


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


def test_no_isolation_fallback(tmp_path):
    """Without any sandbox (method 'plain', accepted explicitly with --allow-isolation none), a
    hang, an exit and a detached grandchild are still contained, by session id, marker
    variable and subreaper."""
    ref = REF.read_text(encoding="utf-8")
    names = ["hang_ignore_sigterm", "os_exit", "fork_detached"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "rnn_layers.py").write_text(ref + "\n" + HOSTILE[name][0])
    env = dict(os.environ, SEQLAB_ISOLATION_METHOD="plain", SEQLAB_SANDBOX_CGROUP="0")
    cmd = [sys.executable, "-m", "autograder", "grade", *[str(tmp_path / n) for n in names],
           "--out-dir", str(tmp_path / "out"), "--timeout", "2", "--jobs", "2", "--quiet",
           "--allow-isolation", "none", "--only", "rnn_step_forward", "--only", "rnn_forward",
           "--only", "word_embedding_forward"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    assert _worker_processes(proc.pid) == []
    for name in names:
        data = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        assert data["extra_data"]["isolation"]["level"] == "none"
        for t in data["tests"]:
            assert (t["status"] == "failed") == (t["tags"][0] in HOSTILE[name][1]), t["name"]
