"""The release hands out no reference code: no solution line appears verbatim in what students get.

A "solution line" is any line between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` in
``solutions/`` (the ``.py`` modules and the notebooks' model answers) with 20 or more non-blank
characters once whitespace is collapsed. The test looks for each of them inside every line of the
release's notebooks, ``.py`` modules and public tests.
"""
import json
import re

from autograder import course
from autograder import release as R

SOLUTIONS = R.ROOT / "solutions" / "sequence_models"
RELEASE = R.RELEASE_DIR

# Lines a student is given on purpose, because they reveal nothing of a solution (control flow of
# the scaffolding the student fills in). Each entry: the collapsed line, and why it may appear.
ALLOWED = {
    'if self.cell_type == "attention":':
        "captioning.py scaffolding dispatches on the cell type outside the solution regions",
    "for t in range(max_length):":
        "a loop header over time steps; every decoder has one",
}

# Leaks known and being rewritten: (release file, line). An entry that no longer leaks must go.
PENDING = set()

MIN_CHARS = 20


def collapse(line):
    """One line with runs of whitespace made single spaces and the ends stripped."""
    return re.sub(r"\s+", " ", line).strip()


def texts(path):
    """The texts of a file: each cell's source for a notebook, else the whole file."""
    if path.suffix == ".ipynb":
        return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]
    return [path.read_text()]


def solution_lines():
    """{collapsed line: file name} for every long enough line inside a solution region."""
    lines = {}
    for path in sorted(SOLUTIONS.rglob("*")):
        if path.suffix not in (".py", ".ipynb"):
            continue
        for text in texts(path):
            inside = False
            for line in text.splitlines():
                if "BEGIN SOLUTION" in line:
                    inside = True
                elif "END SOLUTION" in line:
                    inside = False
                elif inside:
                    c = collapse(line)
                    if len(c.replace(" ", "")) >= MIN_CHARS:
                        lines.setdefault(c, path.name)
    return lines


def leaks(release=RELEASE):
    """Sorted (release file, solution line, where the line comes from) for every leak found."""
    wanted = {c: src for c, src in solution_lines().items() if c not in ALLOWED}
    found = set()
    for path in sorted(release.rglob("*")):
        if path.suffix not in (".py", ".ipynb") or ".ipynb_checkpoints" in path.parts:
            continue
        for text in texts(path):
            for line in text.splitlines():
                c = collapse(line)
                for sol, src in wanted.items():
                    if sol in c:
                        found.add((str(path.relative_to(release)), sol, src))
    return sorted(found)


def test_the_scan_finds_solution_lines_to_look_for():
    """The scan is not vacuous: it collects the reference code of every student module."""
    sources = set(solution_lines().values())
    for module in course.STUDENT_MODULES:
        assert f"{module}.py" in sources


def test_no_solution_line_appears_in_the_release():
    found = leaks()
    gone = PENDING - {(where, line) for where, line, _ in found}
    assert not gone, f"no longer leaking, remove from PENDING: {sorted(gone)}"
    problems = [leak for leak in found if leak[:2] not in PENDING]
    assert not problems, "solution lines handed out in the release:\n" + "\n".join(
        f"  {where}: {line!r} (from {src})" for where, line, src in problems)


def test_the_scan_would_catch_a_leak(tmp_path):
    """Positive control: a release file quoting one solution line is reported."""
    line = next(c for c in solution_lines() if c not in ALLOWED)
    fake = tmp_path / "release"
    fake.mkdir()
    (fake / "leak.py").write_text(f"# the answer:\n    {line}\n")
    assert [(w, s) for w, s, _ in leaks(fake)] == [("leak.py", line)]
