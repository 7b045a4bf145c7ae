"""The release is generated from solutions/, is in sync, stubs every solution, leaks nothing."""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from autograder import course, paths
from autograder import release as R
from seqlab_dev.testing import BACKGROUND

ROOT = R.ROOT
RELEASE = R.RELEASE_DIR
STUDENT_MODULES = list(course.STUDENT_MODULES)


def test_stub_source_names_functions_and_methods():
    src = (
        "class Net:\n"
        "    def forward(self, x):\n"
        '        """Doc stays."""\n'
        "        y = None\n"
        "        ### BEGIN SOLUTION\n"
        "        y = x * 2\n"
        "        ### END SOLUTION\n"
        "        return y\n"
        "\n"
        "def f(a):\n"
        "    ### BEGIN SOLUTION\n"
        "    return a\n"
        "    ### END SOLUTION\n"
    )
    out = R.stub_source(src)
    assert "x * 2" not in out and "return a\n" not in out
    assert '        raise NotImplementedError("Net.forward: implement this' in out
    assert '    raise NotImplementedError("f: implement this' in out
    assert '"""Doc stays."""' in out and "        return y\n" in out
    compile(out, "<stub>", "exec")


@pytest.mark.parametrize("bad", [
    "### BEGIN SOLUTION\nx = 1\n",
    "x = 1\n### END SOLUTION\n",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
])
def test_stub_source_rejects_unbalanced_markers(bad):
    with pytest.raises(R.ReleaseError):
        R.stub_source(bad)


class ReleaseRuns:
    """The slow parts of this module, started at the start of the session (``start_early``,
    see tests/conftest.py) so that they run while the rest of the suite does: the release
    computed from solutions/ (nbgrader runs once for the module; in a thread, which waits for
    nbgrader's process) and the public tests run twice (processes, see ``_public_runs``)."""

    def __init__(self, base):
        self.public = _public_runs(base)
        self.built = self.error = None
        self.thread = threading.Thread(target=self._build, daemon=True)
        self.thread.start()

    def _build(self):
        try:
            self.built = R.build_release()
        except BaseException as exc:  # raised again by collect(), in the test that reads it
            self.error = exc

    def collect(self):
        self.thread.join(timeout=600)
        assert not self.thread.is_alive(), "nbgrader did not finish in 10 minutes"
        if self.error is not None:
            raise self.error
        return self

    def stop(self):
        for run in self.public.values():
            run.stop()


def start_early(base, wanted):
    return ReleaseRuns(base)


@pytest.fixture(scope="module")
def release_runs(early):
    return early.collect()


@pytest.fixture(scope="module")
def built(release_runs):
    """The release computed from solutions/ once."""
    return release_runs.built


@pytest.fixture(scope="module")
def public_runs(release_runs):
    return release_runs.public


def test_release_is_in_sync_with_solutions(built):
    changed = R.release(check=True, wanted=built, doc=R.API_DOC)
    assert not changed, ("assignments/ is out of date; run `python -m autograder release` and "
                         f"commit. Differing files: {[str(c) for c in changed]}")


def test_release_twice_changes_nothing(tmp_path, built):
    out = tmp_path / "release"
    first = R.release(release_dir=out, wanted=built)
    assert first, "the first release into an empty folder writes files"
    (out / "stale_file.py").write_text("x = 1\n")  # a file the source no longer has
    assert R.release(release_dir=out, wanted=built) == [Path("stale_file.py")]
    assert not (out / "stale_file.py").exists()
    assert R.release(release_dir=out, wanted=built) == []


def test_every_student_module_is_stubbed():
    for path in sorted((RELEASE / "seqlab").glob("*.py")):
        text = path.read_text()
        assert R.BEGIN not in text and R.END not in text, path
    for name in STUDENT_MODULES:
        src = R.SOURCE_DIR / "seqlab" / f"{name}.py"
        if src.exists():
            assert R.BEGIN in src.read_text(), f"{src} has no solution region"
            assert "NotImplementedError" in (RELEASE / "seqlab" / f"{name}.py").read_text()


def _run(code, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_stub_release_imports_and_stubs_name_themselves():
    code = r"""
import importlib, inspect, os, sys
names = %r
for mod_name in names:
    try:
        mod = importlib.import_module("seqlab." + mod_name)
    except ModuleNotFoundError:
        continue
    assert mod.__file__.startswith(os.getcwd()), mod.__file__  # the release, not solutions/
    src = inspect.getsource(mod)
    for fname, fn in inspect.getmembers(mod, inspect.isfunction):
        if fn.__module__ != mod.__name__:
            continue
        if ('raise NotImplementedError("%%s:' %% fname) not in src:
            continue
        n = len(inspect.signature(fn).parameters)
        try:
            fn(*([None] * n))
        except NotImplementedError as err:
            assert fname in str(err), (fname, str(err))
            print("stub ok", mod_name, fname)
        except (TypeError, ValueError) as err:
            # input validation that runs before the stub (a clear error for None inputs)
            print("validated", mod_name, fname, err)
        else:
            raise AssertionError(fname + " did not raise NotImplementedError")
""" % (STUDENT_MODULES,)
    proc = _run(code, RELEASE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stub ok rnn_layers rnn_step_forward" in proc.stdout


class _PublicPytest:
    """The public tests run as a student runs them (``pytest -q tests ...`` in ``cwd``), in a
    subprocess started now; ``result()`` waits for it: (exit status, output)."""

    def __init__(self, cwd, log, *args):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["COLUMNS"] = "80"
        self.log = open(log, "w+")
        self.proc = subprocess.Popen(
            BACKGROUND + [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def result(self):
        code = self.proc.wait(timeout=300)
        self.log.seek(0)
        return code, self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _public_runs(base):
    """The public tests, run twice at once: on the untouched release, and on a copy where
    rnn_step_forward is implemented wrongly, with ``-m nb01`` (notebook 01 only)."""
    work = base / "sequence_models"
    shutil.copytree(RELEASE, work)
    module = work / "seqlab" / "rnn_layers.py"
    stub = '    raise NotImplementedError("rnn_step_forward: implement this (see the docstring)")'
    text = module.read_text()
    assert stub in text
    module.write_text(text.replace(stub, "    return np.zeros((x.shape[0], b.shape[0])), None"))
    runs = {}
    try:
        runs["untouched"] = _PublicPytest(RELEASE, base / "untouched.log", "tests")
        runs["nb01"] = _PublicPytest(work, base / "nb01.log", "tests", "-m", "nb01")
    except BaseException:
        for run in runs.values():
            run.stop()
        raise
    return runs


def _stubbed_functions():
    names = set()
    for path in (RELEASE / "seqlab").glob("*.py"):
        names |= set(re.findall(r'raise NotImplementedError\("([\w.]+): implement this',
                                path.read_text()))
    return names


def test_public_tests_on_the_untouched_release_say_what_is_left_in_one_line_per_function(
        public_runs):
    rc, out = public_runs["untouched"].result()
    assert rc == 1, out  # tests not passed (not 2 = a collection error)
    assert "Traceback" not in out and "Error" not in out and "FAILED" not in out, out
    stubs = _stubbed_functions()
    assert len(stubs) >= 30, stubs
    progress = re.compile(r"^[.n]+\s*\[\s*\d+%\]$")
    notebook_line = re.compile(r"^notebook (0\d)_\w+: \d+ of \d+ tests pass; not implemented yet:$")
    function_line = re.compile(r"^    ([\w.]+)  \((1 test waits|\d+ tests wait) for it\)$")
    notebooks, listed = [], []
    lines = out.strip().splitlines()
    for line in lines:
        if progress.match(line) or "what is done and what is left" in line:
            continue
        if notebook_line.match(line):
            notebooks.append(notebook_line.match(line).group(1))
        elif function_line.match(line):
            listed.append((notebooks[-1], function_line.match(line).group(1)))
        else:
            # pytest adds "(h:mm:ss)" to the duration of a run over a minute
            assert re.match(r"^\d+ passed, \d+ not implemented yet in [\d.]+s"
                            r"( \(\d+:\d\d:\d\d\))?$", line), line
    assert notebooks == ["01", "02", "03", "04"], out
    assert len(listed) == len(set(listed)), "a function listed twice under one notebook"
    assert {name for _, name in listed} <= stubs, out
    assert ("01", "rnn_step_forward") == listed[0], out
    assert ("02", "lstm_step_forward") in listed and ("04", "causal_mask") in listed, out
    # at most one line per function, plus a few lines of progress, headers and totals
    assert len(lines) <= len(stubs) + 8, out


def test_public_tests_select_a_notebook_and_show_real_failures_in_full(public_runs):
    rc, out = public_runs["nb01"].result()
    assert rc == 1, out
    # the wrong rnn_step_forward is a real failure, shown with its assertion
    assert "FAILED tests/test_01_rnn_layers.py::test_rnn_step_forward_known_values" in out, out
    assert "assert" in out
    assert "rnn_step_forward  (" not in out, out  # no longer listed as not implemented
    assert "rnn_forward  (" in out and "notebook 01_rnn_captioning" in out, out
    assert "notebook 02" not in out and "lstm" not in out, out  # -m nb01: notebook 01 only


def _solution_lines():
    """Distinctive lines that occur only inside solution regions of the source."""
    inside, outside = set(), set()
    for path in R.SOURCE_DIR.rglob("*.py"):
        if paths.ignored(path.relative_to(R.SOURCE_DIR)):
            continue
        active = False
        for line in path.read_text().splitlines():
            s = line.strip()
            if s.startswith(R.BEGIN):
                active = True
            elif s.startswith(R.END):
                active = False
            elif len(s) >= 24 and not s.startswith("#"):
                (inside if active else outside).add(s)
    # Lines an instructor wrote into a visible notebook cell are deliberate hints, not leaks
    # (e.g. notebook 02 shows the two-line recurrence of lstm_backward in its prose).
    for path in R.SOURCE_DIR.glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            active = False
            for line in "".join(cell["source"]).splitlines():
                s = line.strip()
                if s.startswith((R.BEGIN, course.BEGIN_HIDDEN)):
                    active = True
                elif s.startswith((R.END, course.END_HIDDEN)):
                    active = False
                elif not active:
                    outside.add(s)
                    outside.add(s.split("#")[0].strip())
    return {line for line in inside
            if line not in outside and line.split("#")[0].strip() not in outside}


def test_bundle_leaks_no_solution(tmp_path, built):
    out = tmp_path / "student.zip"
    names = R.bundle(out, wanted=built)
    assert "README.md" in names and "requirements.txt" in names
    assert any(n.startswith("assignments/sequence_models/seqlab/") for n in names)
    assert not any(n.startswith(("autograder/", "solutions/", "tests/")) for n in names)
    assert not any("/cache/" in n for n in names)
    lines = _solution_lines()
    assert lines, "no solution lines found to look for"
    with zipfile.ZipFile(out) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            if not name.endswith((".py", ".ipynb", ".md", ".txt", ".json")):
                continue
            text = data.decode("utf-8", errors="replace")
            assert R.BEGIN not in text and "BEGIN HIDDEN TESTS" not in text, name
            for line in lines:
                assert line not in text, f"{name} leaks a solution line: {line[:60]}"
    # the bundle is reproducible
    out2 = tmp_path / "again.zip"
    R.bundle(out2, wanted=built)
    assert out.read_bytes() == out2.read_bytes()


# ---------------------------------------------------------------- what the student sees

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_image_of_every_release_notebook_travels_with_it():
    """Figures are linked inside the assignment folder (JupyterLab serves only the folder it is
    started in; an nbgrader exchange copy holds only the assignment folder)."""
    from autograder.release_text import image_links
    seen = set()
    notebooks = sorted(RELEASE.glob("*.ipynb"))
    assert len(notebooks) == 4
    for notebook in notebooks:
        links = image_links(notebook.read_bytes())
        assert links, f"{notebook.name} shows no figure"
        for link in links:
            assert not link.startswith(("/", "http:", "https:", "..")), (notebook.name, link)
            target = (RELEASE / link).resolve()
            assert target.is_relative_to(RELEASE.resolve()), (notebook.name, link)
            assert target.is_file(), f"{notebook.name}: {link} does not exist in the release"
            assert target.read_bytes().startswith(PNG_MAGIC), (notebook.name, link)
            seen.add(target.name)
    # every figure the script draws is shown somewhere, and the release carries no other
    assert seen == {p.name for p in (RELEASE / "images").glob("*.png")}
    assert len(seen) == 9


def _files(**texts):
    return {name: text.encode() for name, text in texts.items()}


def _notebook(*markdown):
    return json.dumps({"cells": [{"cell_type": "markdown", "source": m, "metadata": {}}
                                 for m in markdown], "metadata": {}, "nbformat": 4,
                       "nbformat_minor": 5})


@pytest.mark.parametrize("text,problem", [
    ("![a figure](../../images/rnn.png)", "outside the assignment folder"),
    ("![a figure](images/missing.png)", "not shipped"),
    ('<img src="/home/someone/rnn.png">', "absolute path"),
    ("the order is part of the API (`/home/instructor/course/API.md`)",
     "absolute path '/home/instructor/course/API.md'"),
    ("see `C:\\Users\\me\\notes.md`", "absolute path"),
    ("[the notes](docs/notes.md)", "not shipped"),
    ("as `seqlab/missing_module.py` says", "`seqlab/missing_module.py`, which is not shipped"),
    ("The study note this course grew from says", "'study note'"),
    ("one line: *加入注意力机制之后*", "CJK characters"),
    ("in Korean: 주의", "CJK characters"),
])
def test_release_text_check_rejects(text, problem):
    files = _files(**{"01_nb.ipynb": _notebook("fine text", text)})
    files["images/rnn.png"] = PNG_MAGIC
    problems = R.text_problems(files)
    assert len(problems) == 1 and problem in problems[0], problems
    assert problems[0].startswith("01_nb.ipynb (cell 1): ")


def test_release_text_check_accepts_what_is_shipped():
    files = _files(**{
        "01_nb.ipynb": _notebook(
            "![a figure](images/rnn.png) and <img src='images/rnn.png' width=300>",
            "[PyTorch's docs](https://pytorch.org/docs/) and [below](#section-2), "
            "`seqlab/rnn_layers.py`, `datasets/encoder.py`, shapes $N/T$, 1/2 of a/b/c, "
            "`pytest tests -q`, `x[:, 0]`"),
        "seqlab/rnn_layers.py": '"""Find ``<ancestor>/datasets/x.json``; a dict {"a": "b"}."""\n',
    })
    files["images/rnn.png"] = PNG_MAGIC
    assert R.text_problems(files, also_shipped={"datasets/encoder.py"}) == []


def test_release_refuses_text_that_points_outside_and_writes_nothing(tmp_path):
    wanted = {Path("01_nb.ipynb"): _notebook("![x](../../images/rnn.png)").encode()}
    with pytest.raises(R.ReleaseError, match="outside the assignment folder"):
        R.release(release_dir=tmp_path / "release", wanted=wanted)
    assert not (tmp_path / "release").exists()


def test_committed_release_passes_the_text_check():
    # raises ReleaseError listing the problems
    R.check_text({rel: (RELEASE / rel).read_bytes() for rel in paths.packed_files(RELEASE)})


BUNDLE_OUTSIDE_THE_RELEASE = [
    "README.md",
    "datasets/build_captioning.py",
    "datasets/encoder.py",
    "datasets/seqlab_datasets.json",
    "datasets/shapes.py",
    "datasets/shapes_encoder.npz",
    "requirements.txt",
]
BUNDLE_RELEASE = [
    "01_rnn_captioning.ipynb", "02_lstm_captioning.ipynb", "03_attention_captioning.ipynb",
    "04_transformer.ipynb", "API.md",
    "images/attention.png", "images/attention_masks.png", "images/lstm.png", "images/lstm1.png",
    "images/multihead.png", "images/rnn.png", "images/rnn_step_graph.png",
    "images/teacher_forcing.png", "images/transformer.png",
    "seqlab/__init__.py", "seqlab/analysis.py", "seqlab/data.py", "seqlab/dates.py",
    "seqlab/gradient_check.py", "seqlab/metrics.py", "seqlab/solver.py",
    "seqlab/torch_utils.py", "seqlab/visualize.py",
    "tests/conftest.py", "tests/test_01_rnn_layers.py", "tests/test_01_to_03_captioning.py",
    "tests/test_02_lstm_layers.py", "tests/test_03_attention_layers.py",
    "tests/test_04_transformer.py",
] + [f"seqlab/{module}.py" for module in course.STUDENT_MODULES]


def test_bundle_file_list_is_pinned(tmp_path, built):
    """Exactly what a student needs: no instructor script (make_figures, train_encoder,
    check_features), no cache, no nbgrader."""
    names = R.bundle(tmp_path / "student.zip", wanted=built)
    expected = sorted(BUNDLE_OUTSIDE_THE_RELEASE
                      + [f"assignments/sequence_models/{n}" for n in BUNDLE_RELEASE])
    assert names == expected
    with zipfile.ZipFile(tmp_path / "student.zip") as zf:
        requirements = zf.read("requirements.txt").decode()
        readme = zf.read("README.md").decode()
        init = zf.read("assignments/sequence_models/seqlab/__init__.py").decode()
    assert "nbgrader" not in requirements and "torch==" in requirements
    assert "TODO" not in init
    # the bundle has no Validate button: the README says what validates the student's work
    assert "check cells" in readme and "pytest tests -q" in readme and "Validate" in readme


def _minimum_python(text):
    match = re.search(r'requires-python\s*=\s*">=\s*(3\.\d+)"', text)
    assert match, "pyproject.toml has no requires-python = \">=3.N\""
    return match.group(1)


def test_python_version_promised_everywhere_is_the_same():
    """pyproject's requires-python, the README, the student README and the Gradescope set-up
    name one minimum Python, and this interpreter (the tested one) satisfies it."""
    minimum = _minimum_python((ROOT / "pyproject.toml").read_text())
    for doc in ("README.md", "docs/student_README.md"):
        text = (ROOT / doc).read_text()
        assert f"Python {minimum} or newer" in text, doc
        other = set(re.findall(r"Python (3\.\d+)", text)) - {minimum}
        assert not other, f"{doc} names Python {other} beside {minimum}"
    assert sys.version_info >= tuple(int(p) for p in minimum.split("."))


def test_readme_cpu_torch_pin_matches_requirements():
    pin = re.search(r"^torch==([\w.]+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    for doc in ("README.md", "docs/student_README.md"):
        text = (ROOT / doc).read_text()
        assert f"pip install torch=={pin} --index-url https://download.pytorch.org/whl/cpu" in text
    # CI's install must never depend on PyTorch's index
    assert "download.pytorch.org" not in (ROOT / ".ci" / "run").read_text()
    assert "download.pytorch.org" not in (ROOT / "requirements.txt").read_text()


@pytest.mark.e2e
def test_release_check_runs_from_a_venv_that_is_not_activated(shared_venv):
    """nbgrader runs `alembic` by name: without an activated venv it was not on PATH."""
    env = {"PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(shared_venv / "bin" / "python"), "-m", "autograder", "release",
                           "--check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "release is up to date" in proc.stdout
