"""Does every submission that loses hidden points also fail a public test of that notebook?

    python tests/corpus/public_parity.py [--only NAME...] [--jobs 2]

Builds every mutation of ``buggy.py`` and every submission of ``realistic.py`` as a copy of the
course's ``seqlab`` package (the reference modules, one or more of them changed) with the public
tests, grades them all with the CLI, then runs the public tests of each notebook where a
submission lost points (``pytest tests -x -m nbNN``). Prints one line per submission and exits
with 1 when one loses hidden points but passes that notebook's public tests, unless it is listed
in ``EXCEPTIONS`` with the reason. Takes a few minutes (one pytest run per submission); not part
of the test suite.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from buggy import CORRECT, MUTATIONS, apply  # noqa: E402
from realistic import CORPUS, MODULES, module_text  # noqa: E402

SOURCE = ROOT / "solutions" / "sequence_models"

# name -> why the public tests cannot catch it (they only see behaviour a student can check
# without the reference values)
EXCEPTIONS = {}


def build(base):
    """{name: folder} of every submission, each a copy of seqlab/ and tests/."""
    folders = {}
    reference = {m: (SOURCE / "seqlab" / f"{m}.py").read_text(encoding="utf-8") for m in MODULES}
    subs = [(m.name, {m.module: apply(m, reference[m.module])}) for m in MUTATIONS + CORRECT]
    subs += [(s.name, {m: module_text(s, m, reference[m]) for m in MODULES}) for s in CORPUS]
    for name, texts in subs:
        folder = base / name
        shutil.copytree(SOURCE / "seqlab", folder / "seqlab",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(SOURCE / "tests", folder / "tests",
                        ignore=shutil.ignore_patterns("__pycache__"))
        for module, text in texts.items():
            (folder / "seqlab" / f"{module}.py").write_text(text, encoding="utf-8")
        folders[name] = folder
    return folders


def lost_notebooks(data):
    """The notebooks ("01".."04") of the checks a results.json failed."""
    from autograder.checks.core import all_checks, notebook_of
    by_name = {f"{c.api}: {c.title}": notebook_of(c) for c in all_checks()}
    return sorted({by_name[t["name"]] for t in data["tests"] if t["status"] == "failed"})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=[])
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        base = Path(tmp)
        folders = build(base / "subs")
        if args.only:
            folders = {k: v for k, v in folders.items() if k in args.only}
        out = base / "out"
        cmd = [sys.executable, "-m", "autograder", "grade", *map(str, folders.values()),
               "--out-dir", str(out), "--jobs", str(args.jobs), "--quiet"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            return 2
        for name, folder in folders.items():
            data = json.loads((out / f"{name}.json").read_text())
            books = lost_notebooks(data)
            if not books:
                print(f"{name:45s} full marks ({data['score']:g})")
                continue
            marks = " or ".join(f"nb{b}" for b in books)
            run = subprocess.run([sys.executable, "-m", "pytest", "tests", "-x", "-q",
                                  "-p", "no:cacheprovider", "-m", marks],
                                 cwd=folder, capture_output=True, text=True)
            failed = run.returncode != 0
            verdict = "public tests fail" if failed else (
                "EXCEPTION: " + EXCEPTIONS[name] if name in EXCEPTIONS
                else "PUBLIC TESTS PASS")
            bad += not failed and name not in EXCEPTIONS
            print(f"{name:45s} {data['score']:6g} / {data['max_score']:g}  notebooks {marks}: "
                  f"{verdict}")
    print(f"{bad} submission(s) lose hidden points but pass the public tests (not excepted)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
