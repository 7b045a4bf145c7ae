"""A call's time limit counts the worker's CPU time, so a busy machine does not change grades.

``sandbox.Deadline``: a call ends once the worker has used its budget of CPU time, or after
``WALL_FACTOR`` times that budget of wall clock (a call that sleeps or blocks). A worker that waits
for the CPU (a loaded machine, a CPU-quota cgroup) uses no CPU time while it waits, so it is not
cut off where an idle machine would have let it finish. The worker's CPU time is that of every
process in its cgroup (``Worker.cpu_seconds``): children a call starts and never waits for count.
"""
import os
import re
import secrets
import subprocess
import sys
import time

import pytest

from autograder import runner, sandbox
from autograder.sandbox import WALL_FACTOR, Deadline


@pytest.fixture
def process():
    started = []

    def start(code):
        proc = subprocess.Popen([sys.executable, "-c", code])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def _wait_until_up(deadline, limit=60.0):
    """Poll ``deadline`` as the worker protocol does; return the wall-clock seconds from its
    making to the end (the clock it judges itself by: on a loaded machine the first poll may
    come well after the making)."""
    while True:
        left = deadline.remaining()
        took = time.monotonic() - deadline.start
        if left <= 0:
            return took
        assert took < limit, "the deadline never came"
        time.sleep(min(left, 0.05))


def test_a_process_that_waits_is_not_cut_off_at_its_cpu_budget(process):
    """Waiting (here: sleeping, as a starved process does) uses no CPU time: the call goes on
    past ``seconds`` of wall clock, up to WALL_FACTOR * seconds."""
    proc = process("import time; time.sleep(60)")
    time.sleep(0.3)  # the interpreter has started
    deadline = Deadline(0.4, lambda: sandbox.worker._cpu_seconds([proc.pid]))
    time.sleep(1.0)  # 2.5 times the budget: a wall-clock limit would have ended the call
    assert deadline.remaining() > 0
    took = _wait_until_up(deadline)
    assert took >= 0.4 * WALL_FACTOR - 0.05


def test_a_process_that_spins_is_cut_off_by_its_cpu_time(process):
    proc = process("while True: pass")
    deadline = Deadline(0.5, lambda: sandbox.worker._cpu_seconds([proc.pid]))
    took = _wait_until_up(deadline)
    used = sandbox.worker._cpu_seconds([proc.pid]) - deadline.cpu_start
    if took < 0.5 * WALL_FACTOR:  # ended by CPU time, not by the wall-clock bound
        assert used >= 0.5


def test_without_processes_a_deadline_is_wall_clock():
    deadline = Deadline(0.3)
    took = _wait_until_up(deadline)
    assert 0.3 <= took < 0.3 * WALL_FACTOR


def test_cpu_seconds_of_a_finished_process_is_zero_not_an_error(process):
    proc = process("pass")
    proc.wait()
    assert sandbox.worker._cpu_seconds([proc.pid]) == 0.0


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab" / "rnn_layers.py"

SPINNING_CHILDREN = '''

import os as _os
import time as _time


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    for _ in range(2):  # children that do the spinning, never waited for
        if _os.fork() == 0:
            while True:
                pass
    _time.sleep(60)     # the worker's own process only waits
'''


def _worker_groups_count_cpu():
    group = sandbox.Cgroup("seqlab-" + secrets.token_hex(8), 2 ** 28, 64)
    try:
        return group.ok and group.counts_cpu
    finally:
        group.remove()


def test_the_cpu_time_of_children_a_call_never_waits_for_counts(tmp_path, monkeypatch):
    """Children that spin while the worker's own process sleeps (a fork bomb does this, and so
    does a pool of processes): the call ends once their CPU time reaches its budget, not at the
    wall-clock bound, four times later and sooner or later with the machine's load. Counting
    the worker's own process alone, every deadline here ended at the wall-clock bound."""
    if not _worker_groups_count_cpu():
        pytest.skip("no worker cgroup that counts CPU time here (root with cgroups needed)")
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "rnn_layers.py").write_text(REF.read_text(encoding="utf-8") + SPINNING_CHILDREN)
    ended = []  # (CPU seconds used, budget, wall seconds) of each call deadline that ran out
    real = Deadline.remaining

    def remaining(self):
        left = real(self)
        if left == 0 and self.cpu is not None:
            ended.append((self.cpu() - self.cpu_start, self.seconds,
                          time.monotonic() - self.start))
        return left

    monkeypatch.setattr(Deadline, "remaining", remaining)
    monkeypatch.setattr(runner, "HANGS_BEFORE_SKIP", 1)  # one hang, then one retry: two calls
    [res] = runner.grade([str(folder)], runner.Options(only=["rnn_step_forward"], jobs=1,
                                                       timeout=0.5))
    assert ended, "no call ran out of time"
    assert all(used >= budget for used, budget, _ in ended), ended
    # and the CPU time read is a real one: no more than all the CPUs could give in that time
    assert all(used <= wall * os.cpu_count() + 0.1 for used, _, wall in ended), ended
    assert res.score == 0


@pytest.mark.e2e
def test_a_slow_start_within_the_cpu_budget_is_graded_not_timed_out(tmp_path):
    """Each call of this rnn_step_forward first waits 0.8 s without using the CPU (as a worker
    starved by a busy machine does), with --timeout 0.5: graded, at full marks."""
    import json
    text = REF.read_text(encoding="utf-8")
    head = "def rnn_step_forward(x, prev_h, Wx, Wh, b):\n"
    assert head in text
    sub = tmp_path / "slow"
    sub.mkdir()
    (sub / "rnn_layers.py").write_text(
        "import time as _time\n" + text.replace(head, head + "    _time.sleep(0.8)\n"),
        encoding="utf-8")
    out = tmp_path / "slow.json"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(sub), "--only",
                           "rnn_step_forward", "--timeout", "0.5", "--json", str(out), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["tests"], data
    assert all(t["score"] == t["max_score"] for t in data["tests"]), \
        [t["output"][:200] for t in data["tests"] if t["score"] != t["max_score"]]


READS_HUGE_PAGES = '''

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    lines = open("/proc/self/status").read().splitlines()
    raise RuntimeError("THP_enabled=" + "".join(s.split()[1] for s in lines
                                                if s.startswith("THP_enabled:")))
'''


def test_a_worker_allocates_without_huge_pages(tmp_path):
    """A call's CPU time does not depend on how fragmented the machine's memory is: workers
    run with transparent huge pages off (a huge page's first touch may compact memory first,
    charged to the call). The worker's own /proc/self/status says so."""
    if "THP_enabled:" not in open("/proc/self/status").read():
        pytest.skip("this kernel does not show THP_enabled (Linux < 5.0)")
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "rnn_layers.py").write_text(REF.read_text(encoding="utf-8") + READS_HUGE_PAGES)
    [res] = runner.grade([str(folder)], runner.Options(only=["rnn_step_forward"], jobs=1))
    said = {m for r in res.results for m in re.findall(r"THP_enabled=\d", r.message)}
    assert said == {"THP_enabled=0"}, [r.message[:200] for r in res.results]
