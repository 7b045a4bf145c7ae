"""How long the autograder takes: the full hidden suite on one submission (the reference), and on
20 submissions with ``--jobs 2``.

    python benchmarks/grading_speed.py [--repeat 3] [--many 20] [--jobs 2]

Times are wall-clock seconds of the whole ``python -m autograder grade`` command (process start,
imports, workers, comparisons, JSON). Nothing is asserted: the budget (about 20 s for one
submission on two cores) is for people to read.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab"
MODULES = ["rnn_layers", "lstm_layers", "attention_layers", "captioning", "transformer"]


def _submission(folder):
    folder.mkdir(parents=True)
    for mod in MODULES:
        shutil.copy(REF / f"{mod}.py", folder / f"{mod}.py")
    return folder


def _grade(paths, out_dir, jobs):
    cmd = [sys.executable, "-m", "autograder", "grade", *map(str, paths), "--out-dir",
           str(out_dir), "--jobs", str(jobs), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"grading failed:\n{proc.stderr[-3000:]}")
    return seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="runs of the single-submission case")
    p.add_argument("--many", type=int, default=20, help="submissions in the batch case")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="seqlab-bench-") as tmp:
        tmp = Path(tmp)
        one = _submission(tmp / "reference")
        singles = [_grade([one], tmp / f"out{i}", args.jobs) for i in range(args.repeat)]
        print(f"full suite, 1 submission (reference), --jobs {args.jobs}: "
              f"median {statistics.median(singles):.1f} s  (runs: "
              f"{', '.join(f'{s:.1f}' for s in singles)})")
        many = [_submission(tmp / "many" / f"student{i:02d}") for i in range(args.many)]
        total = _grade(many, tmp / "out_many", args.jobs)
        print(f"full suite, {args.many} submissions, --jobs {args.jobs}: {total:.1f} s "
              f"({total / args.many:.2f} s per submission)")


if __name__ == "__main__":
    main()
