"""The release is generated from solutions/, is in sync, stubs every solution, leaks nothing."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import release as R

ROOT = R.ROOT
RELEASE = R.RELEASE_DIR
STUDENT_MODULES = ["rnn_layers", "lstm_layers", "attention_layers", "captioning", "transformer"]


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


@pytest.fixture(scope="module")
def built():
    """The release computed from solutions/ once (nbgrader runs once for the module)."""
    return R.build_release()


def test_release_is_in_sync_with_solutions(built):
    changed = R.release(check=True, wanted=built)
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


def _public_pytest(cwd, *args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["COLUMNS"] = "80"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def _stubbed_functions():
    names = set()
    for path in (RELEASE / "seqlab").glob("*.py"):
        names |= set(re.findall(r'raise NotImplementedError\("([\w.]+): implement this',
                                path.read_text()))
    return names


def test_public_tests_on_the_untouched_release_say_what_is_left_in_one_line_per_function():
    rc, out = _public_pytest(RELEASE, "tests")
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
            assert re.match(r"^\d+ passed, \d+ not implemented yet in [\d.]+s$", line), line
    assert notebooks == ["01", "02", "03", "04"], out
    assert len(listed) == len(set(listed)), "a function listed twice under one notebook"
    assert {name for _, name in listed} <= stubs, out
    assert ("01", "rnn_step_forward") == listed[0], out
    assert ("02", "lstm_step_forward") in listed and ("04", "causal_mask") in listed, out
    # at most one line per function, plus a few lines of progress, headers and totals
    assert len(lines) <= len(stubs) + 8, out


def test_public_tests_select_a_notebook_and_show_real_failures_in_full(tmp_path):
    work = tmp_path / "sequence_models"
    shutil.copytree(RELEASE, work)
    module = work / "seqlab" / "rnn_layers.py"
    stub = '    raise NotImplementedError("rnn_step_forward: implement this (see the docstring)")'
    text = module.read_text()
    assert stub in text
    module.write_text(text.replace(stub, "    return np.zeros((x.shape[0], b.shape[0])), None"))
    rc, out = _public_pytest(work, "tests", "-m", "nb01")
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
        if R._ignored(path.relative_to(R.SOURCE_DIR)):
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
                if s.startswith((R.BEGIN, R.HIDDEN_BEGIN)):
                    active = True
                elif s.startswith((R.END, R.HIDDEN_END)):
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
