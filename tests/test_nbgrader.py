"""nbgrader end to end, as a JupyterHub course runs it (issue 8), on a temporary copy of the course.

One course folder (nbgrader_config.py, solutions/, autograder/, datasets/ linked), then:

1. ``nbgrader generate_assignment sequence_models`` must reproduce the committed release
   (assignments/sequence_models/, every file byte for byte: the notebooks from nbgrader, the .py
   stubs from the config's post-convert hook) and fill the gradebook.
2. Three students are submitted: ``reference`` (the release with the reference modules, and an
   answer written in every inline question), ``untouched`` (the release as fetched) and ``buggy``
   (the reference modules with one typical mistake per notebook, each touching exactly one check
   cell: ``BUGS``). Each is autograded by its own ``nbgrader autograde --student`` (wall time
   reported), then ``nbgrader generate_feedback`` and ``nbgrader export``.
3. Scores: the reference gets every autograded point (its answered questions wait for a manual
   grade, unscored), the untouched release zero, the buggy one loses points in the bugs' cells
   only. Cell by cell, nbgrader's score equals the score of ``python -m autograder grade
   --out-dir`` run on the same autograded folders, partial credit included (tests mapped to
   check cells by ``CELL_OF``).
4. A fourth student, ``cheater`` (the untouched release plus a cell that replaces ``grade`` in
   its kernel), still scores zero: the graded cells' outputs come from the isolated grader's run
   before any kernel started (nbgrader_config.py).
5. The feedback HTML of each notebook exists and shows of the hidden tests only the one hidden
   line and the hook's summary: no line of the checks' source, no detail line of a failed check.

Everything runs in grading mode (SEQLAB_GRADING=1, set by nbgrader_config.py): the training
cells run a short version. The notebooks are those of solutions/sequence_models/ (a new one joins
by itself; give it an entry in BUGS to have the buggy student exercise it too).
"""
import csv
import fnmatch
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

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "sequence_models"
SOURCE_DIR = ROOT / "solutions" / ASSIGNMENT
RELEASE_DIR = ROOT / "assignments" / ASSIGNMENT
STUDENT_MODULES = ["rnn_layers", "lstm_layers", "attention_layers", "captioning", "transformer"]
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
    from autograder.release import IGNORED
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(fnmatch.fnmatch(part, pat) for part in rel.parts
                                   for pat in IGNORED):
            out[rel.as_posix()] = p.read_bytes()
    return out


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
    if student in ("untouched", CHEATER):
        if student == CHEATER:
            nbformat = _nbformat()
            first = sub / notebooks[0]
            nb = nbformat.read(str(first), as_version=4)
            k = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
            nb.cells.insert(k + 1, nbformat.v4.new_code_cell(CHEAT))
            nbformat.write(nb, str(first))
        return
    for mod in STUDENT_MODULES:
        src = course / "solutions" / ASSIGNMENT / "seqlab" / f"{mod}.py"
        if src.exists():
            shutil.copy(src, sub / "seqlab" / f"{mod}.py")
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

    walls = {}
    for student in STUDENTS + (CHEATER,):
        _make_student(course, student, notebooks)
        _, walls[student] = _nbgrader(course, "autograde", ASSIGNMENT, f"--student={student}",
                                      "--force")
    _, t_feedback = _nbgrader(course, "generate_feedback", ASSIGNMENT, "--force")
    _nbgrader(course, "export", "--to=grades.csv")
    _, t_cli = _run(course, ["-m", "autograder", "grade", "--quiet", "--out-dir", "cli",
                             *[f"autograded/{s}" for s in STUDENTS]], "python -m autograder grade")

    for student in STUDENTS + (CHEATER,):
        report(f"[nbgrader] autograde of {student!r} ({len(notebooks)} notebooks): "
               f"{walls[student]:.1f} s wall")
    report(f"[nbgrader] generate_assignment {t_generate:.1f} s, generate_feedback "
           f"(4 students) {t_feedback:.1f} s, autograder CLI (3 students) {t_cli:.1f} s")
    return course, notebooks


@pytest.fixture(scope="module")
def cells(course):
    """{notebook: {grade_id: (points, kind)}} from the release."""
    path, notebooks = course
    return {nb: _graded_cells(path / "assignments" / ASSIGNMENT / nb) for nb in notebooks}


@pytest.fixture(scope="module")
def grades(course):
    """{student: {grade_id: (auto_score, manual_score, max_score, needs_manual_grade)}}."""
    from nbgrader.api import Gradebook
    path, _ = course
    out = {}
    with Gradebook(f"sqlite:///{path / 'gradebook.db'}", "seqlab") as gb:
        for student in STUDENTS:
            sub = gb.find_submission(ASSIGNMENT, student)
            out[student] = {g.name: (g.auto_score, g.manual_score, g.max_score,
                                     g.needs_manual_grade)
                            for nb in sub.notebooks for g in nb.grades}
    return out


def _bug_cells(notebooks):
    return {BUGS[nb][3] for nb in notebooks if nb in BUGS}


# --------------------------------------------------------------------------- tests

def test_generate_assignment_reproduces_the_release(course):
    path, _ = course
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
    path, notebooks = course
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
    path, notebooks = course
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
    report(f"[nbgrader] export: " + ", ".join(f"{s} {got[s]:g}" for s in STUDENTS)
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
    path, notebooks = course
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
    partial = [g for g in _bug_cells(notebooks) if 0 < grades["buggy"][g][0] < grades["buggy"][g][2]]
    assert partial, "no bug earned partial credit: the partial-credit path is not exercised"


VALIDATE = """
import json, nbformat
from nbgrader.validator import Validator
name = "02_lstm_captioning.ipynb"
ids = {c.source: c.metadata.get("nbgrader", {}).get("grade_id")
       for c in nbformat.read(name, as_version=4).cells if c.cell_type == "code"}
result = Validator().validate(name)     # failing cells come back as their source
print(json.dumps({k: [ids.get(c["source"], "answer cell") for c in cells]
                  for k, cells in result.items()}))
"""


def test_validate_reports_failing_public_checks(tmp_path):
    """nbgrader's Validate (the students' button) reports the 0-point public check cells that
    fail, and nothing for a correct solution: on the untouched release of notebook 02 it lists
    every public_* cell (and the unanswered questions), with the reference modules none."""
    pytest.importorskip("nbgrader")
    work = tmp_path / ASSIGNMENT
    shutil.copytree(RELEASE_DIR, work, ignore=COPY_IGNORE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER"))}
    env.update(PYTHONPATH=str(ROOT), SEQLAB_DATA_DIR=str(ROOT / "datasets"), SEQLAB_GRADING="1",
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter_config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter_runtime"),
               PYDEVD_DISABLE_FILE_VALIDATION="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))

    def failed():
        proc = subprocess.run([sys.executable, "-c", VALIDATE], cwd=work, env=env,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return sorted(json.loads(proc.stdout.strip().splitlines()[-1]).get("failed", []))

    nb = _nbformat().read(str(work / "02_lstm_captioning.ipynb"), as_version=4)
    public = {_meta(c)["grade_id"] for c in nb.cells if _meta(c).get("grade_id", "").startswith("public_")}
    questions = {_meta(c)["grade_id"] for c in nb.cells if _meta(c).get("solution")
                 and c.cell_type == "markdown"}
    unanswered = ["answer cell"] * len(questions)
    assert public and questions and failed() == sorted(list(public) + unanswered)
    for mod in STUDENT_MODULES:
        shutil.copy(SOURCE_DIR / "seqlab" / f"{mod}.py", work / "seqlab" / f"{mod}.py")
    assert failed() == unanswered


def test_a_kernel_cannot_change_its_scores(course, cells):
    """The cheater replaced ``grade`` in its kernel: with the graded cells' outputs taken from
    the isolated grader's run before the kernel started, its score is the untouched release's,
    zero, and its graded cells show the real summary."""
    path, notebooks = course
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
    path, notebooks = course
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
        details = set()
        for test in data["tests"]:
            if test["status"] != "passed":
                lines = test.get("output", "").splitlines()
                m = re.search(r"\(you returned [^)]*\)", lines[0] if lines else "")
                if m:
                    details.add(m.group(0))
                details |= {l.strip() for l in lines[1:]
                            if len(l.strip()) >= 12 and not l.startswith("Hint: ")}
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
            leaked = sorted(l for l in check_lines if l in text and l not in shown_anyway[name])
            assert not leaked, f"{student} {name}: check source in the feedback: {leaked[:5]}"
            # a traceback line quoting the student's own module is not a hidden detail
            shown = sorted(d for d in details if d in text and d not in shown_anyway[name])
            assert not shown, f"{student} {name}: hidden-check details in the feedback: {shown[:5]}"
    # where only the hidden checks catch a bug, their summary reaches the feedback
    shown = []
    for name in notebooks:
        if name in BUGS:
            api = BUGS[name][3][len("check_"):]
            page = path / "feedback" / "buggy" / ASSIGNMENT / name.replace(".ipynb", ".html")
            text = _html_text(page)
            shown += re.findall(rf"{api}: (\d+) of (\d+) hidden checks passed", text)
    assert any(int(a) < int(b) for a, b in shown), "no failed hidden check is summarised"


# --------------------------------------------------------------------------- the config's hooks

MINI_CELLS = [("setup", "from mod import f", None), ("t1", "assert f() == 1", 1),
              ("t2", "assert f() + 1 == 2", 1),
              ("env", 'import os, autograder.nbgrader_hook\n'   # the grading kernel's environment
                      'assert os.environ["SEQLAB_GRADING"] == "1"\n'
                      'assert "autograded" not in autograder.nbgrader_hook.__file__', 1)]


def test_config_hooks_fail_closed_and_forget_stale_grades(tmp_path):
    """On a one-notebook course that uses the project's nbgrader_config.py:
    * generate_assignment without autograder/release.py (the stubbing hook cannot run) exits 1
      and leaves no release, rather than a release with the module's solution;
    * the grading kernel runs with SEQLAB_GRADING=1 and imports the course's autograder, not
      a folder of that name in the submission;
    * a kernel killed by os._exit on a rerun does not leave the previous run's scores: the
      cells score nothing and wait for a manual grade (the autograde pre-convert hook)."""
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
        if points:
            meta["points"] = points
        nb.cells.append(nbformat.v4.new_code_cell(code, metadata={"nbgrader": meta}))
    nbformat.write(nb, str(src / "ps1.ipynb"))

    proc = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "ps1",
                           "--force", "--log-level=ERROR"], cwd=course, env=_env(course),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert proc.returncode != 0 and "could not stub" in proc.stderr, proc.stderr[-2000:]
    assert not (course / "assignments" / "ps1").exists()

    shutil.copytree(ROOT / "autograder", course / "autograder", ignore=COPY_IGNORE)
    _nbgrader(course, "generate_assignment", "ps1", "--force")
    released = (course / "assignments" / "ps1" / "mod.py").read_text()
    assert "BEGIN SOLUTION" not in released and "raise NotImplementedError" in released

    sub = course / "submitted" / "kim" / "ps1"
    sub.mkdir(parents=True)
    shutil.copy(course / "assignments" / "ps1" / "ps1.ipynb", sub / "ps1.ipynb")

    def scores():
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "mini") as gb:
            s = gb.find_submission("ps1", "kim")
            return s.score, {g.name: (g.auto_score, g.needs_manual_grade)
                             for n in s.notebooks for g in n.grades}

    (sub / "mod.py").write_text("def f():\n    return 1\n")
    (sub / "autograder").mkdir()   # a submitted `autograder` must not shadow the real one
    (sub / "autograder" / "__init__.py").write_text("")
    (sub / "autograder" / "nbgrader_hook.py").write_text("def grade(name):\n    pass\n")
    _nbgrader(course, "autograde", "ps1", "--force")
    assert scores() == (3.0, {"t1": (1.0, False), "t2": (1.0, False), "env": (1.0, False)})

    (sub / "mod.py").write_text("import os\n\ndef f():\n    os._exit(3)\n")
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "ps1", "--force",
                           "--log-level=ERROR"], cwd=course, env=_env(course),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert proc.returncode != 0 and "error processing assignment" in proc.stderr
    assert scores() == (0.0, {"t1": (None, True), "t2": (None, True), "env": (None, True)})
