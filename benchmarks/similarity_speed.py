"""How long ``python -m autograder similarity`` takes on a class of copies.

    python benchmarks/similarity_speed.py [--students 200] [--seed 0] [--keep DIR]

Builds ``--students`` submissions: the six honest and copied students of the test class
(``tests/corpus/similarity/``: ``rnn_layers``, and ``lstm_layers`` for three), and for the
rest the reference solution's five student modules with perturbations (comments dropped, local
names renamed, lines of solution code deleted, swapped with their neighbour, or followed by a
new line); the corpus is the test class's. Times the whole command (process start, reading,
fingerprints, every pair, the HTML and JSON; ``--jobs`` as the command's default unless given)
and prints how the scores spread.
Nothing is asserted; the figures are for people.
"""
import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import course
from seqlab_dev import similarity_class

ROOT = Path(__file__).resolve().parent.parent

REF = ROOT / "solutions" / "sequence_models" / "seqlab"
CORPUS = ROOT / "tests" / "corpus" / "similarity" / "known"
MODULES = course.STUDENT_MODULES
TEST_FLAGGED = {("alice", "dave"), ("erin", "cs231n_public")}
NAME = re.compile(r"\b([a-z][a-z0-9_]*)\s*=(?!=)")


def perturb(source, rng):
    """A copy of ``source`` (str) as a student hiding a copy might leave it: inside the
    solution blocks, comments dropped, a third of the assigned local names renamed, and 10% of
    the lines each deleted, swapped with the previous line, or followed by a new statement."""
    lines = source.splitlines()
    names = sorted(set(NAME.findall(source)))
    renames = {n: f"{n}_{rng.randrange(100)}" for n in rng.sample(names, len(names) // 3)}
    out, inside = [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("### BEGIN SOLUTION"):
            inside = True
            continue
        if stripped.startswith("### END SOLUTION"):
            inside = False
            continue
        if inside:
            line = re.sub(r"\s+#.*$", "", line)
            line = re.sub(r"\b[a-z][a-z0-9_]*\b", lambda m: renames.get(m[0], m[0]), line)
            if not line.strip() or line.strip().startswith("#"):
                continue
            r = rng.random()
            if r < 0.03:
                continue
            if r < 0.06 and out and out[-1].strip() and \
                    len(out[-1]) - len(out[-1].lstrip()) == len(line) - len(line.lstrip()):
                out.insert(len(out) - 1, line)
                continue
            if r < 0.10:
                indent = line[:len(line) - len(line.lstrip())]
                out.append(line)
                out.append(f"{indent}_check_{rng.randrange(1000)} = {rng.randrange(100)}")
                continue
        out.append(line)
    return "\n".join(out) + "\n"


def _test_class(folder):
    """The submissions of the test class, put into the release as the tests do."""
    paths = []
    for name in similarity_class.STUDENTS:
        pkg = folder / name / "seqlab"
        pkg.mkdir(parents=True)
        for mod in similarity_class.modules_of(name):
            (pkg / f"{mod}.py").write_text(similarity_class.student_module(name, mod),
                                           encoding="utf-8")
        paths.append(pkg.parent)
    return paths


def build(folder, students, seed):
    rng = random.Random(seed)
    sources = {m: (REF / f"{m}.py").read_text(encoding="utf-8") for m in MODULES}
    paths = _test_class(folder)
    for i in range(students - len(paths)):
        pkg = folder / f"student{i:03d}" / "seqlab"
        pkg.mkdir(parents=True)
        for m in MODULES:
            (pkg / f"{m}.py").write_text(perturb(sources[m], rng), encoding="utf-8")
        paths.append(pkg.parent)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", help="build the class in this folder and keep it")
    p.add_argument("--jobs", type=int, help="passed on to the command")
    args = p.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="seqlab-sim-"))
    try:
        subs = build(folder / "class", args.students, args.seed)
        cmd = [sys.executable, "-m", "autograder", "similarity", *map(str, subs), "--corpus",
               str(CORPUS), "--out", str(folder / "report.html"), "--json",
               str(folder / "scores.json"), "--quiet", "--top", "0"]
        if args.jobs:
            cmd += ["--jobs", str(args.jobs)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"similarity failed:\n{proc.stderr[-3000:]}")
        data = json.loads((folder / "scores.json").read_text())
        mb = (folder / "report.html").stat().st_size / 2 ** 20
        copies = [q for q in data["pairs"] if q["kind"] == "class"
                  and q["a"].startswith("student") and q["b"].startswith("student")]
        scores = sorted(x["score"] for q in copies for x in q["modules"].values())
        print(f"{len(data['submissions'])} submissions ({len(data['submissions']) - 6} copies "
              f"of all five modules, 6 of the test class), {len(data['pairs'])} pairs: "
              f"{seconds:.1f} s (whole command); report {mb:.1f} MB")
        print(f"pairs of copies flagged: {sum(1 for q in copies if q['flagged'])} of "
              f"{len(copies)}; their module scores: min {scores[0]:.3f}, 1st percentile "
              f"{scores[len(scores) // 100]:.3f}, median {scores[len(scores) // 2]:.3f}")
        copy_ids = {id(q) for q in copies}
        others = [q for q in data["pairs"] if id(q) not in copy_ids]
        for q in sorted(others, key=lambda q: -q["score"])[:4]:
            print(f"  highest outside the copies: {q['a']} ~ {q['b']} {q['score']:.3f}"
                  + (" FLAGGED" if q["flagged"] else ""))
        wrong = [q for q in others if q["flagged"] and (q["a"], q["b"]) not in TEST_FLAGGED]
        print(f"flagged pairs involving the test class, other than its two copies: {len(wrong)}")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
