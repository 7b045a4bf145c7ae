"""nbgrader end to end on a temporary copy of the course: no student code runs under autograde.

One course folder (nbgrader_config.py, solutions/, autograder/, datasets/ linked), then:

1. ``nbgrader generate_assignment sequence_models`` must reproduce the committed release
   (assignments/sequence_models/, every file byte for byte: the notebooks from nbgrader, the .py
   stubs from the config's post-convert hook) and fill the gradebook.
2. Students are submitted: ``reference`` (the release with the reference modules, and an
   answer written in every inline question), ``untouched`` (the release as fetched), ``buggy``
   (the reference modules with one typical mistake per notebook, each touching exactly one check
   cell: ``BUGS``), ``cheater`` (a cell that replaces ``grade`` in its kernel), ``mallory`` (a
   cell that, run with the instructor's rights, would write the gradebook, edit
   ``autograder/``, print the reference solution and the hidden checks, and start a detached
   process) and ``nocheck`` (the reference with the cached results of one check removed).
   ``python -m autograder nbgrader-prepare`` grades them all in parallel, then one
   ``nbgrader autograde sequence_models`` records every student (mallory between the others),
   then ``generate_feedback`` and ``export``, while ``python -m autograder grade`` grades the
   reference, untouched and buggy modules for step 3. Wall times are reported.
3. Scores: the reference gets every autograded point (its answered questions wait for a manual
   grade), the untouched release, the cheater and mallory zero, the buggy one loses points in
   the bugs' cells only; cell by cell nbgrader's score equals ``python -m autograder grade``'s.
   nocheck's cell without a result scores 0 and the log says why.
4. The course tree is unchanged by prepare + autograde + feedback (per-file hashes), no process
   was started, and no line of the solutions or the hidden checks reaches any feedback page.
   The last test runs mallory's cell as a kernel would, to prove that the attack is real.
"""
import csv
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import course

pytestmark = pytest.mark.e2e   # nbgrader's whole workflow, kernels included
ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "sequence_models"
SOURCE_DIR = ROOT / "solutions" / ASSIGNMENT
RELEASE_DIR = ROOT / "assignments" / ASSIGNMENT
STUDENT_MODULES = list(course.STUDENT_MODULES)
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "cache",
                                     ".pytest_cache", "gradebook.db*")
COMMAND_TIMEOUT = 1200

# One typical mistake per notebook, touching exactly one check cell:
# notebook -> (module, text that must occur exactly once, replacement, grade_id of the cell).
# 02's bug is caught by the hidden checks only (the public checks pass), 01's and 03's already
# by the public checks, which cost nothing: the graded cell scores the hidden checks alone, with
# partial credit. A notebook without an entry is graded as the reference.
BUGS = {
    "01_rnn_captioning.ipynb": (
        "rnn_layers",  # softmax without subtracting the max: NaN for large scores
        "shifted = x - x.max(axis=2, keepdims=True)", "shifted = x",
        "check_temporal_softmax_loss"),
    "02_lstm_captioning.ipynb": (
        "lstm_layers",  # a float64 buffer in lstm_step_backward: float32 in, float64 out
        "da = np.empty_like(gates)\n    da[:, :H] = dc",
        "da = np.empty(gates.shape)\n    da[:, :H] = dc",
        "check_lstm_step_backward"),
    "03_attention_captioning.ipynb": (
        "attention_layers",  # the gradient of attn through the wrong weight matrix
        "dattn = da @ Wattn.T", "dattn = da @ Wh.T",
        "check_attention_lstm_step_backward"),
    "04_transformer.ipynb": (
        "transformer",  # greedy decoding keeps writing tokens after a row has ended
        "            next_token = next_token.masked_fill(finished, self.pad_idx)\n", "",
        "check_Transformer"),
}
STUDENTS = ("reference", "untouched", "buggy")
# The untouched release plus a cell of its own in the first notebook that replaces the hook in
# its kernel, so that every graded cell after it would pass: the scores must still be zero.
CHEATER = "cheater"
CHEAT = ('import autograder.nbgrader_hook as _hook\n'
         '_hook.grade = lambda *args, **kwargs: None   # "every hidden check passed"\n'
         'print(20.0)')
# Mallory's cell, as a kernel with the instructor's rights (cwd autograded/mallory/<assignment>/)
# would run it. No kernel runs it: the test asserts that none of it happened.
MALLORY = "mallory"
MALLORY_MARK = "mallory-was-here"
ATTACK = f'''import glob, os, sqlite3, subprocess
course = os.path.abspath("../../..")
db = sqlite3.connect(os.path.join(course, "gradebook.db"))
db.execute("UPDATE grade SET manual_score = 0, extra_credit = 50")   # every student's cells
db.commit()
with open(os.path.join(course, "autograder", "checks", "core.py"), "a") as f:
    f.write("\\n# {MALLORY_MARK}\\n")
for path in sorted(glob.glob(os.path.join(course, "solutions", "**", "*.py"), recursive=True)
                   + glob.glob(os.path.join(course, "autograder", "checks", "*.py"))):
    print(open(path).read())
mark = os.path.join(course, "{MALLORY_MARK}")
subprocess.Popen(["sh", "-c", "sleep 2; echo > " + mark], start_new_session=True)
'''
# The reference whose cached results lose the checks of one cell (NOCHECK): that cell scores 0.
NOCHECK = "nocheck"
NOCHECK_CELL = "check_rnn_step_forward"
ALL_STUDENTS = STUDENTS + (CHEATER, MALLORY, NOCHECK)
ANSWER = "The gradient flows back through every step, so the weights add up their contributions."


def CELL_OF(test):
    """The check cell (grade_id) that a test of the CLI's results.json belongs to: check_<API
    name>, except the CaptioningRNN checks of the LSTM and attention cells, which notebooks 02 and
    03 grade (check_CaptioningRNN_lstm / _attention)."""
    api = test["tags"][0]
    m = re.search(r"cell_type='(lstm|attention)'", test["name"])
    if api == "CaptioningRNN" and m:
        return f"check_CaptioningRNN_{m.group(1)}"
    return f"check_{api}"


# --------------------------------------------------------------------------- helpers

def _nbformat():
    return pytest.importorskip("nbformat")


def _release_files(folder):
    """{relative path: bytes} of a release folder, without what the release never holds."""
    from autograder.paths import packed_files
    return {rel.as_posix(): (folder / rel).read_bytes() for rel in packed_files(folder)}


def _meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _graded_cells(nb_path):
    """{grade_id: (points, kind)} of a notebook: kind 'check' (autograded test cell with the
    hidden line), 'public' (the 0-point test cell of a function's public checks, there so that
    nbgrader's Validate reports them) or 'manual' (an answer cell)."""
    nb = _nbformat().read(str(nb_path), as_version=4)
    out = {}
    for cell in nb.cells:
        m = _meta(cell)
        if m.get("grade"):
            kind = ("manual" if m.get("solution") else
                    "public" if m["grade_id"].startswith("public_") else "check")
            out[m["grade_id"]] = (float(m["points"]), kind)
    return out


def _env(course):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER"))}
    env["JUPYTER_CONFIG_DIR"] = str(course.parent / "jupyter_config")  # no user config
    env["JUPYTER_RUNTIME_DIR"] = str(course.parent / "jupyter_runtime")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def _run(course, args, what):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=course, env=_env(course),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, (f"{what} failed (exit {proc.returncode}):\n"
                                  f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc, wall


def _nbgrader(course, *args):
    return _run(course, ["-m", "nbgrader", *args, "--log-level=WARN"], "nbgrader " + args[0])


def _patch_once(text, old, new, where):
    n = text.count(old)
    assert n == 1, f"{where}: the bug's text occurs {n} times (expected once): {old!r}"
    return text.replace(old, new)


def _make_student(course, student, notebooks):
    sub = course / "submitted" / student / ASSIGNMENT
    shutil.copytree(course / "assignments" / ASSIGNMENT, sub)
    if student in ("untouched", CHEATER, MALLORY):
        if student in (CHEATER, MALLORY):
            nbformat = _nbformat()
            first = sub / notebooks[0]
            nb = nbformat.read(str(first), as_version=4)
            k = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
            nb.cells.insert(k + 1, nbformat.v4.new_code_cell(CHEAT if student == CHEATER
                                                            else ATTACK))
            nbformat.write(nb, str(first))
        return
    for mod in STUDENT_MODULES:
        src = course / "solutions" / ASSIGNMENT / "seqlab" / f"{mod}.py"
        if src.exists():
            shutil.copy(src, sub / "seqlab" / f"{mod}.py")
    if student == NOCHECK:   # other bytes than the reference's: a cache entry of its own
        with open(sub / "seqlab" / "rnn_layers.py", "a") as f:
            f.write("\n# resubmitted\n")
    if student == "reference":
        nbformat = _nbformat()
        for name in notebooks:
            nb = nbformat.read(str(sub / name), as_version=4)
            for cell in nb.cells:
                if _meta(cell).get("solution") and cell.cell_type == "markdown":
                    cell.source = ANSWER
            nbformat.write(nb, str(sub / name))
    if student == "buggy":
        for name in notebooks:
            if name in BUGS:
                mod, old, new, _ = BUGS[name]
                path = sub / "seqlab" / f"{mod}.py"
                path.write_text(_patch_once(path.read_text(), old, new, f"{name} {mod}.py"))


HOOK_LINE = re.compile(r'from autograder\.nbgrader_hook import grade; grade\("\w+"\)')


def _hidden_blocks(text):
    """The lines between each BEGIN / END HIDDEN TESTS pair of a page's text, without the line
    numbers and arrows of a traceback that quotes the cell."""
    blocks, block = [], None
    for line in text.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            block = []
        elif "END HIDDEN TESTS" in line and block is not None:
            blocks.append(block)
            block = None
        elif block is not None and line.strip():
            block.append(re.sub(r"^\s*(-*>)?\s*\d*\s*", "", line).strip())
    return blocks


def _html_text(path):
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<style.*?</style>|<script.*?</script>", " ", text, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


# The course's own files: what autograde must leave as it is.
WORKING = {"submitted", "autograded", "feedback", "gradebook.db", "gradebook.db-journal",
           "nbgrader_results", "cli", "grades.csv", "datasets"}


def _tree_hashes(course):
    """{relative path: sha256} of every file of the course folder but nbgrader's working folders,
    the result cache, the CLI's output, the data (a link) and __pycache__."""
    out = {}
    for p in sorted(course.rglob("*")):
        rel = p.relative_to(course)
        if rel.parts[0] in WORKING or "__pycache__" in rel.parts:
            continue
        if p.is_file() or p.is_symlink():
            out[rel.as_posix()] = hashlib.sha256(
                p.read_bytes() if p.is_file() else os.readlink(p).encode()).hexdigest()
    return out


DROP_CHECKS = """
import sys
from autograder import nbgrader_cache, nbgrader_prepare
seqlab, cell = sys.argv[1:]
sub = nbgrader_prepare.load_modules(seqlab)
cache = nbgrader_cache.ResultCache()
key = nbgrader_cache.submission_key(sub.files)
data = cache.get(key)
assert data is not None, "nbgrader-prepare left no result for " + seqlab
kept = [t for t in data["tests"] if "check_" + t["cell"] != cell]
assert len(kept) < len(data["tests"]), "no test of " + cell
cache.put(key, dict(data, tests=kept))
"""


def _drop_cached_checks(course, student, cell):
    """Remove every check of ``cell`` from the cached results of ``student``'s modules (with
    the course's own autograder package, whose identity keys the cache)."""
    _run(course, ["-c", DROP_CHECKS, f"submitted/{student}/{ASSIGNMENT}/seqlab", cell],
         "dropping cached checks")


# --------------------------------------------------------------------------- the course run

@pytest.fixture(scope="module")
def course(tmp_path_factory, report):
    pytest.importorskip("nbgrader")
    if not list(SOURCE_DIR.glob("*.ipynb")):
        pytest.skip("no notebook in solutions/sequence_models/ yet")
    course = tmp_path_factory.mktemp("nbgrader") / "course"
    course.mkdir()
    shutil.copy2(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(SOURCE_DIR, course / "solutions" / ASSIGNMENT, ignore=COPY_IGNORE)
    shutil.copytree(ROOT / "autograder", course / "autograder", ignore=COPY_IGNORE)
    (course / "datasets").symlink_to(ROOT / "datasets")   # shares the built data cache

    _, t_generate = _nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    notebooks = sorted(p.name for p in (course / "assignments" / ASSIGNMENT).glob("*.ipynb"))

    # build (or load) the data once, so that the first student's time is its own
    _run(course / "assignments" / ASSIGNMENT,
         ["-c", "from seqlab.data import load_captioning_data; load_captioning_data()"],
         "building the captioning data")

    for student in ALL_STUDENTS:
        _make_student(course, student, notebooks)
    before = _tree_hashes(course)
    _, t_prepare = _run(course, ["-m", "autograder", "nbgrader-prepare", ASSIGNMENT, "--jobs", "2",
                                 "--quiet"], "python -m autograder nbgrader-prepare")
    # the CLI grades the same student modules meanwhile (nbgrader's commands below keep one
    # core busy): the submitted ones, which autograde keeps
    # (test_autograde_keeps_the_student_modules)
    cli_log = open(course.parent / "cli.log", "w+")
    t_cli = time.perf_counter()
    cli = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "--quiet", "--out-dir",
                            "cli", *[f"submitted/{s}" for s in STUDENTS]], cwd=course,
                           env=_env(course), stdout=cli_log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, text=True)
    try:
        _drop_cached_checks(course, NOCHECK, NOCHECK_CELL)
        log, t_autograde = _nbgrader(course, "autograde", ASSIGNMENT, "--force")
        _, t_feedback = _nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
        _nbgrader(course, "export", "--to=grades.csv")
        code = cli.wait(timeout=COMMAND_TIMEOUT)
        t_cli = time.perf_counter() - t_cli
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        cli_log.seek(0)
        cli_output = cli_log.read()
        cli_log.close()
    assert code == 0, f"python -m autograder grade failed (exit {code}):\n{cli_output[-6000:]}"
    after = _tree_hashes(course)

    n = len(ALL_STUDENTS)
    report(f"[nbgrader] {n} students, {len(notebooks)} notebooks each: nbgrader-prepare "
           f"--jobs 2 {t_prepare:.1f} s, nbgrader autograde {t_autograde:.1f} s "
           f"({t_autograde / n:.1f} s per student)")
    report(f"[nbgrader] generate_assignment {t_generate:.1f} s, generate_feedback "
           f"({n} students) {t_feedback:.1f} s, autograder CLI (3 students, meanwhile) "
           f"{t_cli:.1f} s")
    course_run = {"log": log.stdout + log.stderr, "before": before, "after": after}
    return course, notebooks, course_run


@pytest.fixture(scope="module")
def cells(course):
    """{notebook: {grade_id: (points, kind)}} from the release."""
    path, notebooks, _ = course
    return {nb: _graded_cells(path / "assignments" / ASSIGNMENT / nb) for nb in notebooks}


@pytest.fixture(scope="module")
def grades(course):
    """{student: {grade_id: (auto_score, manual_score, max_score, needs_manual_grade)}}, and
    under "extra_credit" the extra credits set on any cell."""
    from nbgrader.api import Gradebook
    path, _, _ = course
    out = {"extra_credit": []}
    with Gradebook(f"sqlite:///{path / 'gradebook.db'}", "seqlab") as gb:
        for student in ALL_STUDENTS:
            sub = gb.find_submission(ASSIGNMENT, student)
            out[student] = {g.name: (g.auto_score, g.manual_score, g.max_score,
                                     g.needs_manual_grade)
                            for nb in sub.notebooks for g in nb.grades}
            out["extra_credit"] += [(student, g.name, g.extra_credit) for nb in sub.notebooks
                                    for g in nb.grades if g.extra_credit is not None]
    return out


def _bug_cells(notebooks):
    return {BUGS[nb][3] for nb in notebooks if nb in BUGS}


# --------------------------------------------------------------------------- tests

def test_generate_assignment_reproduces_the_release(course):
    path, _, _ = course
    generated = _release_files(path / "assignments" / ASSIGNMENT)
    committed = _release_files(RELEASE_DIR)
    assert sorted(generated) == sorted(committed), (
        "nbgrader generate_assignment and the committed release hold different files: "
        f"only generated {sorted(set(generated) - set(committed))}, "
        f"only committed {sorted(set(committed) - set(generated))}")
    differ = [rel for rel in generated if generated[rel] != committed[rel]]
    assert not differ, (f"nbgrader generate_assignment differs from the committed release in "
                        f"{differ}; run `python -m autograder release` (or the nbgrader command) "
                        "and commit assignments/")
    for rel, data in generated.items():
        assert b"### BEGIN SOLUTION" not in data and b"BEGIN HIDDEN TESTS" not in data, rel


def test_autograde_keeps_the_student_modules(course):
    """exclude_overwriting: the buggy student's modules are graded, not the instructor's; the
    given modules are the instructor's."""
    path, notebooks, _ = course
    graded = path / "autograded" / "buggy" / ASSIGNMENT / "seqlab"
    submitted = path / "submitted" / "buggy" / ASSIGNMENT / "seqlab"
    for mod in STUDENT_MODULES:
        assert (graded / f"{mod}.py").read_bytes() == (submitted / f"{mod}.py").read_bytes(), mod
    for name in notebooks:
        if name in BUGS:
            mod, _, new, _ = BUGS[name]
            assert new in (graded / f"{mod}.py").read_text()
    assert (graded / "data.py").read_bytes() == \
        (path / "solutions" / ASSIGNMENT / "seqlab" / "data.py").read_bytes()


def _cli_cell_scores(path, student):
    """{grade_id: (score, max_score)} of ``python -m autograder grade`` on a student's files."""
    data = json.loads((path / "cli" / f"{student}.json").read_text())
    out = {}
    for test in data["tests"]:
        gid = CELL_OF(test)
        got, most = out.get(gid, (0.0, 0.0))
        out[gid] = (got + test["score"], most + test["max_score"])
    return out


def test_export_scores(course, cells, report):
    path, notebooks, _ = course
    auto = sum(p for nb in cells.values() for p, kind in nb.values() if kind == "check")
    total = sum(p for nb in cells.values() for p, _ in nb.values())
    cli = _cli_cell_scores(path, "buggy")
    bugs = _bug_cells(notebooks)
    lost = sum(most - got for gid, (got, most) in cli.items())
    assert 0 < lost and all(cli[g][0] < cli[g][1] for g in bugs), cli
    assert all(got == most for g, (got, most) in cli.items() if g not in bugs), (
        "the CLI takes points off the buggy student outside the bugs' cells")
    with open(path / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    got = {s: float(rows[s]["score"]) for s in STUDENTS}
    report("[nbgrader] export: " + ", ".join(f"{s} {got[s]:g}" for s in STUDENTS)
           + f" of {auto:g} autograded points; the buggy one lost "
           + ", ".join(f"{g} {cli[g][0]:g}/{cli[g][1]:g}" for g in sorted(bugs)))
    want = {"reference": auto, "untouched": 0.0, "buggy": auto - lost}
    assert got == pytest.approx(want, abs=1e-9), (
        f"export scores {got}; expected reference {auto} (all autograded points), untouched 0, "
        f"buggy {auto - lost} (the points its bugs lose in the CLI)")
    assert all(float(rows[s]["max_score"]) == total for s in STUDENTS)


def test_cells_agree_with_the_autograder_cli(course, cells, grades):
    """Cell by cell, nbgrader's score is the CLI's score of the same checks (partial credit
    included); only the bugs' cells lose points, and the untouched release scores zero."""
    path, notebooks, _ = course
    expected_failures = {"reference": set(), "untouched": None, "buggy": _bug_cells(notebooks)}
    check_ids = {gid for nb in cells.values() for gid, (_, kind) in nb.items() if kind == "check"}
    for student in STUDENTS:
        cli = _cli_cell_scores(path, student)
        missing = sorted(check_ids - set(cli))
        assert not missing, f"check cells with no CLI test (update CELL_OF?): {missing}"
        disagree = []
        for gid in sorted(check_ids):
            auto, manual, max_score, needs = grades[student][gid]
            assert not needs, (student, gid, auto, needs)
            assert max_score == cli[gid][1], (
                f"{gid} is worth {max_score} in nbgrader, {cli[gid][1]} in the CLI")
            if auto is None or abs(auto - cli[gid][0]) > 1e-9:
                disagree.append(f"{gid} (nbgrader {auto}, CLI {cli[gid][0]})")
        assert not disagree, f"{student}: nbgrader and the CLI disagree on " + ", ".join(disagree)
        failed = {g for g in check_ids if cli[g][0] < cli[g][1]}
        want = expected_failures[student]
        if want is None:
            zero = {g for g in check_ids if cli[g][0] == 0}
            assert zero == check_ids, f"{student}: cells with points {sorted(check_ids - zero)}"
        else:
            assert failed == want, (f"{student}: cells that lost points {sorted(failed)}, "
                                    f"expected {sorted(want)}")
    public = {gid for nb in cells.values() for gid, (_, kind) in nb.items() if kind == "public"}
    assert public, "no public check cell found"
    for student in STUDENTS:
        for gid in public:
            auto, _, max_score, needs = grades[student][gid]
            assert max_score == 0 and auto == 0 and not needs, (student, gid, auto, max_score)
    buggy = grades["buggy"]
    partial = [g for g in _bug_cells(notebooks) if 0 < buggy[g][0] < buggy[g][2]]
    assert partial, "no bug earned partial credit: the partial-credit path is not exercised"


# Validates the notebook in each folder given (one nbgrader start for all; Validate runs each
# in a fresh kernel whose cwd is that folder) and prints one JSON line per folder.
VALIDATE = """
import json, os, sys, nbformat
from nbgrader.validator import Validator
name = "02_lstm_captioning.ipynb"
for folder in sys.argv[1:]:
    path = os.path.join(folder, name)
    ids = {c.source: c.metadata.get("nbgrader", {}).get("grade_id")
           for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"}
    result = Validator().validate(path)     # failing cells come back as their source
    print(json.dumps({k: [ids.get(c["source"], "answer cell") for c in cells]
                      for k, cells in result.items()}))
"""


def test_validate_reports_failing_public_checks(tmp_path):
    """nbgrader's Validate (the students' button) reports the 0-point public check cells that
    fail, and nothing for a correct solution: on the untouched release of notebook 02 it lists
    every public_* cell (and the unanswered questions), with the reference modules none."""
    pytest.importorskip("nbgrader")
    untouched, solved = tmp_path / "untouched" / ASSIGNMENT, tmp_path / "solved" / ASSIGNMENT
    for work in (untouched, solved):
        shutil.copytree(RELEASE_DIR, work, ignore=COPY_IGNORE)
    for mod in STUDENT_MODULES:
        shutil.copy(SOURCE_DIR / "seqlab" / f"{mod}.py", solved / "seqlab" / f"{mod}.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER"))}
    env.update(PYTHONPATH=str(ROOT), SEQLAB_DATA_DIR=str(ROOT / "datasets"), SEQLAB_GRADING="1",
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter_config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter_runtime"),
               PYDEVD_DISABLE_FILE_VALIDATION="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([sys.executable, "-c", VALIDATE, str(untouched), str(solved)],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.strip().splitlines()[-2:]]
    failed_untouched, failed_solved = (sorted(r.get("failed", [])) for r in results)

    nb = _nbformat().read(str(untouched / "02_lstm_captioning.ipynb"), as_version=4)
    public = {_meta(c)["grade_id"] for c in nb.cells
              if _meta(c).get("grade_id", "").startswith("public_")}
    questions = {_meta(c)["grade_id"] for c in nb.cells if _meta(c).get("solution")
                 and c.cell_type == "markdown"}
    unanswered = ["answer cell"] * len(questions)
    assert public and questions and failed_untouched == sorted(list(public) + unanswered)
    assert failed_solved == unanswered


def test_a_kernel_cannot_change_its_scores(course, cells):
    """The cheater's cell would replace ``grade`` in a kernel: no kernel runs it and the graded
    cells' outputs come from the isolated grader, so its score is the untouched release's, zero,
    and its graded cells show the real summary."""
    path, notebooks, _ = course
    with open(path / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(rows[CHEATER]["score"]) == 0.0, rows[CHEATER]
    nb = _nbformat().read(str(path / "autograded" / CHEATER / ASSIGNMENT / notebooks[0]),
                          as_version=4)
    assert any(c.source == CHEAT for c in nb.cells), "the cheating cell was not graded"
    graded = [c for c in nb.cells if _meta(c).get("grade_id", "").startswith("check_")]
    assert graded
    for cell in graded:
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert re.search(r"0 of \d+ hidden checks passed", text), (_meta(cell)["grade_id"], text)
        assert any(o.output_type == "error" for o in cell.outputs)


def test_inline_questions_are_left_to_the_grader(cells, grades):
    manual = {gid for nb in cells.values() for gid, (_, kind) in nb.items() if kind == "manual"}
    assert manual, "no inline question found"
    for gid in manual:
        auto, score, _, needs = grades["reference"][gid]   # answered: waits for a manual grade
        assert auto is None and score is None and needs, (gid, grades["reference"][gid])
        auto, score, _, needs = grades["untouched"][gid]   # unanswered: zero, nothing to grade
        assert auto == 0.0 and not needs, (gid, grades["untouched"][gid])


def test_feedback_shows_no_hidden_test_detail(course, cells):
    path, notebooks, _ = course
    # the checks' source: every substantial line of autograder/checks/*.py that the student
    # does not see anyway
    check_lines = {line.strip() for f in (ROOT / "autograder" / "checks").glob("*.py")
                   for line in f.read_text().splitlines() if len(line.strip()) >= 25}
    nbformat = _nbformat()
    for student in STUDENTS:
        # what the student sees anyway: the release notebook's cells and their own modules
        own = "\n".join(p.read_text() for p in
                        (path / "submitted" / student / ASSIGNMENT / "seqlab").glob("*.py"))
        shown_anyway = {}
        for name in notebooks:
            nb = nbformat.read(str(path / "assignments" / ASSIGNMENT / name), as_version=4)
            shown_anyway[name] = own + "\n".join(cell.source for cell in nb.cells)
        data = json.loads((path / "cli" / f"{student}.json").read_text())
        details = set()   # the lines of a failed check's feedback after its first (printed ...)
        for test in data["tests"]:
            if test["status"] != "passed":
                lines = test.get("output", "").splitlines()
                details |= {ln.strip() for ln in lines[1:]
                            if len(ln.strip()) >= 12 and not ln.startswith("Hint: ")}
        for name in notebooks:
            page = path / "feedback" / student / ASSIGNMENT / name.replace(".ipynb", ".html")
            assert page.is_file(), f"no feedback {page.relative_to(path)}"
            text = _html_text(page)
            n_checks = sum(kind == "check" for _, kind in cells[name].values())
            blocks = _hidden_blocks(text)   # the cells' source, and tracebacks quoting it
            assert len(blocks) >= n_checks, (student, name, len(blocks), n_checks)
            for block in blocks:
                assert len(block) == 1 and HOOK_LINE.fullmatch(block[0]), (
                    f"{student} {name}: a hidden region in the feedback holds {block}")
            leaked = sorted(ln for ln in check_lines if ln in text and ln not in shown_anyway[name])
            assert not leaked, f"{student} {name}: check source in the feedback: {leaked[:5]}"
            # a traceback line quoting the student's own module is not a hidden detail
            shown = sorted(d for d in details if d in text and d not in shown_anyway[name])
            assert not shown, f"{student} {name}: hidden-check details in the feedback: {shown[:5]}"
            # the value the student returned, never the expected one
            expected = re.findall(r"\(you returned [^)]*expected[^)]*\)", text)
            assert not expected, f"{student} {name}: expected values in the feedback: {expected}"
    # where only the hidden checks catch a bug, their summary reaches the feedback
    shown = []
    for name in notebooks:
        if name in BUGS:
            api = BUGS[name][3][len("check_"):]
            page = path / "feedback" / "buggy" / ASSIGNMENT / name.replace(".ipynb", ".html")
            text = _html_text(page)
            shown += re.findall(rf"{api}: (\d+) of (\d+) hidden checks passed", text)
    assert any(int(a) < int(b) for a, b in shown), "no failed hidden check is summarised"


def _export_rows(path):
    with open(path / "grades.csv", newline="") as f:
        return {r["student_id"]: r for r in csv.DictReader(f)}


def test_no_student_code_ran(course, cells, grades):
    """Mallory's cell never ran: she scores 0; the students graded before her (buggy, cheater)
    and after her (nocheck, reference, untouched) keep their scores (test_export_scores,
    test_cells_agree_with_the_autograder_cli) and no cell has a manual score or extra credit;
    the course's files are unchanged (per-file hashes before prepare, after feedback); no
    process was left behind; her cell has no output in the autograded notebook."""
    path, notebooks, run = course
    assert sorted(ALL_STUDENTS).index(MALLORY) not in (0, len(ALL_STUDENTS) - 1)
    rows = _export_rows(path)
    assert float(rows[MALLORY]["score"]) == 0.0, rows[MALLORY]
    checks = {g for nb in cells.values() for g, (_, kind) in nb.items() if kind == "check"}
    for student in ALL_STUDENTS:
        manual = {g: v[1] for g, v in grades[student].items() if v[1] is not None}
        assert not manual, f"{student}: manual scores {manual}"
        assert all(grades[student][g][0] is not None for g in checks), student
    assert grades["extra_credit"] == []
    before, after = run["before"], run["after"]
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert before and not changed, f"autograde changed the course: {changed}"
    assert not (path / MALLORY_MARK).exists(), "a process started by a submission ran"
    nb = _nbformat().read(str(path / "autograded" / MALLORY / ASSIGNMENT / notebooks[0]),
                          as_version=4)
    attack = [c for c in nb.cells if c.source == ATTACK]
    assert len(attack) == 1 and attack[0].outputs == [], "mallory's cell is not as submitted"


def test_a_cell_without_result_scores_zero(course, cells, grades):
    """nocheck's cached results lack the checks of NOCHECK_CELL: that cell scores 0 (not the
    full points nbgrader gives a graded cell without output), every other check cell keeps
    the reference's full points, and the autograde log has an ERROR line naming the cell."""
    path, _, run = course
    checks = {g: p for nb in cells.values() for g, (p, kind) in nb.items() if kind == "check"}
    got = {g: grades[NOCHECK][g][0] for g in checks}
    assert got[NOCHECK_CELL] == 0.0
    assert all(got[g] == checks[g] for g in checks if g != NOCHECK_CELL), got
    errors = [ln for ln in run["log"].splitlines() if "ERROR" in ln and NOCHECK_CELL in ln]
    assert errors and all(NOCHECK in ln for ln in errors), run["log"][-3000:]
    assert not any("ERROR" in ln for ln in run["log"].splitlines() if NOCHECK not in ln), (
        "ERROR lines for other students: " + run["log"][-3000:])


def _significant(line):
    return len(re.sub(r"\s", "", line)) >= 20


def test_no_solution_or_check_line_in_any_feedback(course):
    """No line of the reference solutions (modules and notebooks) or of the hidden checks with
    20 or more non-blank characters appears in any student's feedback, except the lines the
    student sees anyway (the release, their own submitted modules) and the check cells' one
    hidden line (``grade("<api>")``, which nbgrader's feedback shows)."""
    path, notebooks, _ = course
    nbformat = _nbformat()
    secret = set()
    sources = list((path / "solutions").rglob("*.py"))
    sources += list((path / "autograder" / "checks").glob("*.py"))
    for f in sources:
        secret |= {ln.strip() for ln in f.read_text().splitlines() if _significant(ln)}
    for f in (path / "solutions" / ASSIGNMENT).glob("*.ipynb"):
        for cell in nbformat.read(str(f), as_version=4).cells:
            secret |= {ln.strip() for ln in cell.source.splitlines() if _significant(ln)}
    release = "\n".join(p.read_text() for p in (path / "assignments" / ASSIGNMENT).rglob("*")
                        if p.suffix in (".py", ".ipynb"))
    release += "\n".join(c.source for name in notebooks for c in nbformat.read(
        str(path / "assignments" / ASSIGNMENT / name), as_version=4).cells)
    secret = {ln for ln in secret if ln not in release and not HOOK_LINE.fullmatch(ln)}
    assert len(secret) > 100, "too few secret lines: the test would not see a leak"
    pages = 0
    for student in ALL_STUDENTS:
        own = "\n".join(p.read_text() for p in
                        (path / "submitted" / student / ASSIGNMENT / "seqlab").glob("*.py"))
        for page in (path / "feedback" / student / ASSIGNMENT).glob("*.html"):
            pages += 1
            text = _html_text(page)
            leaked = sorted(ln for ln in secret if ln in text and ln not in own)
            assert not leaked, f"{student} {page.name}: secret lines in the feedback: {leaked[:5]}"
            assert str(path) not in text, f"{student} {page.name} names the course's path"
    assert pages == len(ALL_STUDENTS) * len(notebooks)


def test_prepare_regrades_only_a_changed_submission(course):
    """After a resubmission (other bytes in one module of one student) nbgrader-prepare grades
    that student only; the others come from the cache."""
    path, _, _ = course
    with open(path / "submitted" / "untouched" / ASSIGNMENT / "seqlab" / "lstm_layers.py",
              "a") as f:
        f.write("\n# resubmitted\n")
    proc, _ = _run(path, ["-m", "autograder", "nbgrader-prepare", ASSIGNMENT, "--quiet"],
                   "nbgrader-prepare again")
    n = len(ALL_STUDENTS)
    assert f"{n} submission(s) of {ASSIGNMENT}: 1 graded, {n - 1} already" in proc.stdout, (
        proc.stdout)


def test_a_graders_override_is_kept_and_logged(course):
    """nbgrader's grader override (manual_score, extra_credit on an autograded cell) survives a
    new autograde of the student and is listed in its log."""
    from nbgrader.api import Gradebook
    path, _, _ = course
    db = f"sqlite:///{path / 'gradebook.db'}"
    with Gradebook(db, "seqlab") as gb:
        grade = gb.find_grade(NOCHECK_CELL, "01_rnn_captioning", ASSIGNMENT, "buggy")
        grade.manual_score, grade.extra_credit = 1.0, 0.5
        gb.db.commit()
    proc, _ = _nbgrader(path, "autograde", ASSIGNMENT, "--student=buggy", "--force")
    with Gradebook(db, "seqlab") as gb:
        grade = gb.find_grade(NOCHECK_CELL, "01_rnn_captioning", ASSIGNMENT, "buggy")
        assert (grade.manual_score, grade.extra_credit, grade.score) == (1.0, 0.5, 1.5)
    assert re.search(rf"WARNING.*buggy/{ASSIGNMENT}/01_rnn_captioning: cell {NOCHECK_CELL} "
                     r"has a grader's override: manual_score 1.0, extra_credit 0.5",
                     proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[-3000:]


def test_the_attack_cell_works_when_run(course):
    """Mallory's cell, run as a kernel with the instructor's rights would run it (last: it
    damages the course): it does write the gradebook, edit autograder/, print the reference
    solution and start a process. So test_no_student_code_ran can fail."""
    path, _, _ = course
    core_before = (path / "autograder" / "checks" / "core.py").read_bytes()
    proc, _ = _run(path / "autograded" / MALLORY / ASSIGNMENT, ["-c", ATTACK], "the attack")
    assert (path / "autograder" / "checks" / "core.py").read_bytes() != core_before
    assert "### BEGIN SOLUTION" in proc.stdout
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{path / 'gradebook.db'}", "seqlab") as gb:
        sub = gb.find_submission(ASSIGNMENT, "reference")
        assert all(g.extra_credit == 50 for nb in sub.notebooks for g in nb.grades)
    for _ in range(300):
        if (path / MALLORY_MARK).exists():
            break
        time.sleep(0.1)
    assert (path / MALLORY_MARK).exists(), "the detached process did not run"


# --------------------------------------------------------------------------- the config's hooks

MINI_CELLS = [("setup", "from mod import f\nopen('ran', 'w').close()", None),
              ("public_f", "assert f() == 1", 0), ("t1", "assert f() == 1", 1)]


def test_config_fails_closed(tmp_path):
    """On a one-notebook course that uses the project's nbgrader_config.py:
    * without the course's autograder package the config cannot load: generate_assignment
      exits 1 and writes no release (nbgrader would otherwise ignore the config and copy the
      module's solution);
    * generate_assignment with it stubs the module's solution region;
    * autograde runs no cell (the setup cell would create a file) and a graded cell with points
      that is no autograder check cell scores 0, not nbgrader's full points for a cell without
      output, with an ERROR line in the log; the 0-point cell gets a note, and 0."""
    pytest.importorskip("nbgrader")
    nbformat = _nbformat()
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    src = course / "solutions" / "ps1"
    src.mkdir(parents=True)
    config = (ROOT / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(
        config + '\nc.CourseDirectory.course_id = "mini"\n'
                 'c.Autograde.exclude_overwriting = {"ps1": ["mod.py"]}\n')
    (src / "mod.py").write_text("def f():\n    ### BEGIN SOLUTION\n    return 1\n"
                                "    ### END SOLUTION\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for gid, code, points in MINI_CELLS:
        meta = {"grade": points is not None, "grade_id": gid, "locked": True,
                "schema_version": 3, "solution": False}
        if points is not None:
            meta["points"] = points
        nb.cells.append(nbformat.v4.new_code_cell(code, metadata={"nbgrader": meta}))
    nbformat.write(nb, str(src / "ps1.ipynb"))

    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "ps1",
                           "--force", "--log-level=ERROR"], cwd=course, env=_env(course),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert proc.returncode != 0 and "cannot load the course's autograder" in proc.stderr, (
        proc.stderr[-2000:])
    assert not (course / "assignments").exists()

    shutil.copytree(ROOT / "autograder", course / "autograder", ignore=COPY_IGNORE)
    _nbgrader(course, "generate_assignment", "ps1", "--force")
    released = (course / "assignments" / "ps1" / "mod.py").read_text()
    assert "BEGIN SOLUTION" not in released and "raise NotImplementedError" in released

    sub = course / "submitted" / "kim" / "ps1"
    sub.mkdir(parents=True)
    shutil.copy(course / "assignments" / "ps1" / "ps1.ipynb", sub / "ps1.ipynb")
    (sub / "mod.py").write_text("def f():\n    return 1\n")
    proc, _ = _nbgrader(course, "autograde", "ps1", "--force")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "mini") as gb:
        s = gb.find_submission("ps1", "kim")
        got = {g.name: (g.auto_score, g.needs_manual_grade) for n in s.notebooks for g in n.grades}
    assert got == {"public_f": (0.0, False), "t1": (0.0, False)}, got
    assert re.search(r"ERROR.*kim/ps1/ps1: graded cell 't1' is not an autograder check",
                     proc.stderr), proc.stderr[-2000:]
    assert not list(course.rglob("ran")), "a cell of the submitted notebook was executed"
    graded = nbformat.read(str(course / "autograded" / "kim" / "ps1" / "ps1.ipynb"), as_version=4)
    outputs = {_meta(c).get("grade_id"): c.outputs for c in graded.cells}
    assert outputs["setup"] == [] and outputs["public_f"][0]["text"].startswith("Public checks")
    assert outputs["t1"][0]["output_type"] == "error"
