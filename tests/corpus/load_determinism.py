"""Do grades depend on the machine's load? Grade the realistic corpus many times and compare.

    python tests/corpus/load_determinism.py --runs 20 --load hog      # 2 busy loops beside it
    python tests/corpus/load_determinism.py --runs 20 --load quota    # 25 % of the CPUs (cgroup)
    python tests/corpus/load_determinism.py --runs 3 --load none

Writes every submission of ``realistic.py`` as a folder (the reference modules with that
submission's changes), grades them the way ``tests/test_corpus_realistic.py`` does (each
submission on the modules it changes and those importing them; all modules for the degenerate
ones; ``--jobs 2``), ``--runs`` times under the chosen load, and compares every results.json with
the first run's, byte for byte. Prints one line per run (wall time, files that differ) and exits
with 1 when any run differs. Needs root for ``--load quota`` (a cgroup with ``cpu.max``, or
``cpu.cfs_quota_us`` on cgroup v1). Not part of the test suite: 20 runs take tens of minutes.
"""
import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from realistic import write_corpus  # noqa: E402

CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_V2 = Path("/sys/fs/cgroup")


class CpuQuota:
    """A cgroup that holds its processes to ``share`` of all the machine's CPUs."""

    def __init__(self, share):
        ncpu = os.cpu_count()
        period = 100_000
        quota = max(1_000, int(share * ncpu * period))
        name = f"seqlab-load-{os.getpid()}"
        if (CGROUP_V2 / "cgroup.controllers").exists() and \
                "cpu" in (CGROUP_V2 / "cgroup.controllers").read_text().split():
            self.path = CGROUP_V2 / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{quota} {period}")
        elif CGROUP_V1_CPU.is_dir():
            self.path = CGROUP_V1_CPU / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(period))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            sys.exit("no cgroup cpu controller on this machine: --load quota is not possible")
        self.describe = (f"cgroup {self.path} ({quota} us per {period} us = {share:.0%} "
                         f"of {ncpu} CPUs)")

    def enter(self):
        """Move the calling process into the group (used as the grader's preexec_fn)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self):
        """Delete the group (its processes have ended)."""
        self.path.rmdir()


def _spin():
    while True:
        pass


def grade_once(groups, out, jobs, preexec):
    """Grade every group into ``out``; return the wall time in seconds."""
    start = time.monotonic()
    for modules, paths in groups.items():
        only = [a for m in modules for a in ("--only", m)]
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", *paths, *only,
                               "--out-dir", str(out), "--jobs", str(jobs), "--quiet"],
                              cwd=ROOT, capture_output=True, text=True, preexec_fn=preexec)
        # a grader bug's traceback reaches stderr even with --quiet
        if proc.returncode != 0 or "INTERNAL ERROR" in proc.stderr:
            sys.exit(f"grading failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    hit = [p.name for p in out.iterdir() if "internal grader error" in p.read_text()]
    if hit:
        sys.exit(f"internal grader error in {', '.join(hit)}")
    return time.monotonic() - start


def differences(first, other):
    """Names of the results.json files of ``other`` that differ from ``first``'s."""
    names = sorted({p.name for p in first.iterdir()} | {p.name for p in other.iterdir()})
    return [n for n in names if not (first / n).exists() or not (other / n).exists()
            or (first / n).read_bytes() != (other / n).read_bytes()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--load", choices=["none", "hog", "quota"], default="hog")
    parser.add_argument("--hogs", type=int, default=2, help="busy loops for --load hog")
    parser.add_argument("--share", type=float, default=0.25, help="CPU share for --load quota")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", help="keep the corpus and the results in this folder")
    args = parser.parse_args()

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="seqlab-load-"))
    base.mkdir(parents=True, exist_ok=True)
    (base / "corpus").mkdir()
    groups = write_corpus(base / "corpus")
    hogs, quota, preexec = [], None, None
    if args.load == "hog":
        hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.hogs)]
        for h in hogs:
            h.start()
        print(f"load: {args.hogs} busy loops on {os.cpu_count()} CPUs", flush=True)
    elif args.load == "quota":
        quota = CpuQuota(args.share)
        preexec = quota.enter
        print(f"load: {quota.describe}", flush=True)
    else:
        print("load: none", flush=True)
    failed = False
    try:
        for run in range(args.runs):
            out = base / f"run{run:02d}"
            seconds = grade_once(groups, out, args.jobs, preexec)
            diff = differences(base / "run00", out) if run else []
            failed |= bool(diff)
            scores = sum(1 for _ in out.iterdir())
            load1 = os.getloadavg()[0]
            print(f"run {run + 1:2d}/{args.runs}: {seconds:6.1f} s (load average {load1:.1f}), "
                  f"{scores} results.json, "
                  f"{'identical to run 1' if not diff else 'DIFFERENT: ' + ', '.join(diff)}",
                  flush=True)
    finally:
        for h in hogs:
            h.terminate()
        if quota:
            quota.remove()
        if not args.keep:
            shutil.rmtree(base)
    print("all runs byte-identical" if not failed else "runs differ", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
