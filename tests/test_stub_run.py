"""No notebook calls a student function before that function's task.

A student runs a notebook from the top ("Run All") with its functions not written yet (the earlier
notebooks finished). The first cell that raises must be the public checks of the notebook's first
task, with that function's ``NotImplementedError``: a figure or demo that calls a later function
would stop the student before they reach any task.

- ``test_no_cell_calls_a_student_function_before_its_task`` (fast, static): for every release
  notebook, a code cell that calls a function of the student API comes after that function's
  public check cell (``public_<api>``).
- ``test_run_all_with_stubs_stops_at_the_first_task`` (e2e, nbclient): each release notebook
  run from the top in a copy of the release whose earlier notebooks' modules are the reference
  (two notebooks at a time).
"""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from autograder import course

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "assignments" / "sequence_models"
SOURCE = ROOT / "solutions" / "sequence_models"

# notebook -> the student modules finished before it (reference copies in the scratch release)
FINISHED_BEFORE = {course.notebook_file(key): [m for m, (nb, _) in course.API.items() if nb < key]
                   for key in course.NOTEBOOKS}
FIRST_TASK = {
    "01_rnn_captioning.ipynb": "rnn_step_forward",
    "02_lstm_captioning.ipynb": "lstm_step_forward",
    "03_attention_captioning.ipynb": "dot_product_attention_forward",
    "04_transformer.ipynb": "positional_encoding",
}


def _cells(name):
    return json.loads((RELEASE / name).read_text())["cells"]


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def _stubbed_functions(module):
    """The functions (and classes, for stubbed methods) whose bodies are stubs in the release."""
    text = (RELEASE / "seqlab" / f"{module}.py").read_text()
    names = re.findall(r'raise NotImplementedError\("([\w.]+): implement this', text)
    return {n.split(".")[0] for n in names}


def _task_order(cells):
    """{api name: index of its first public check cell} (CaptioningRNN_lstm and
    CaptioningRNN_attention count as CaptioningRNN)."""
    out = {}
    for i, cell in enumerate(cells):
        gid = _grade_id(cell)
        if gid.startswith("public_"):
            api = gid[len("public_"):].split("_lstm")[0].split("_attention")[0] \
                if gid.startswith("public_CaptioningRNN") else gid[len("public_"):]
            out.setdefault(api, i)
    return out


@pytest.mark.parametrize("name", list(FINISHED_BEFORE))
def test_no_cell_calls_a_student_function_before_its_task(name):
    cells = _cells(name)
    tasks = _task_order(cells)
    modules = course.STUDENT_MODULES
    unfinished = set()
    for module in modules:
        if module not in FINISHED_BEFORE[name]:
            unfinished |= _stubbed_functions(module)
    assert FIRST_TASK[name] in tasks
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or _grade_id(cell).startswith(("public_", "check_")):
            continue
        code = "\n".join(line.split("#")[0] for line in "".join(cell["source"]).splitlines())
        for function in sorted(unfinished):
            if re.search(rf"(?<![\w.]){re.escape(function)}\s*\(", code):
                task = tasks.get(function)
                if task is None or task > i:
                    problems.append(f"cell {i} ({_grade_id(cell) or 'no id'}) calls {function} "
                                    f"before its task (public check cell {task})")
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def stub_runs(tmp_path_factory):
    """{notebook: (the notebook as run, the exception its run raised or None)}: each release
    notebook run from the top in its own copy of the release, two at a time (nbclient's
    async_execute; one kernel at a time left a core idle)."""
    import asyncio

    import nbformat
    from nbclient import NotebookClient

    env = dict(os.environ, SEQLAB_GRADING="1", SEQLAB_DATA_DIR=str(ROOT / "datasets"),
               MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)

    async def run(name, slots):
        work = tmp_path_factory.mktemp(name.split("_")[0]) / "sequence_models"
        shutil.copytree(RELEASE, work, ignore=shutil.ignore_patterns("__pycache__", "cache"))
        for module in FINISHED_BEFORE[name]:
            shutil.copy2(SOURCE / "seqlab" / f"{module}.py", work / "seqlab" / f"{module}.py")
        nb = nbformat.read(str(work / name), as_version=4)
        client = NotebookClient(nb, timeout=600, kernel_name="python3")
        async with slots:
            try:
                await client.async_execute(env=env, cwd=str(work))
            except Exception as err:   # the expected stop, checked by the notebook's test
                return name, (nb, err)
        return name, (nb, None)

    async def run_all():
        slots = asyncio.Semaphore(2)
        return dict(await asyncio.gather(*(run(n, slots) for n in FINISHED_BEFORE)))

    return asyncio.run(run_all())


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(FINISHED_BEFORE))
def test_run_all_with_stubs_stops_at_the_first_task(name, stub_runs, report):
    from nbclient.exceptions import CellExecutionError

    nb, error_raised = stub_runs[name]
    if error_raised is not None and not isinstance(error_raised, CellExecutionError):
        raise error_raised
    assert isinstance(error_raised, CellExecutionError), f"{name}: Run All raised no error"
    failed = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                  and any(o.output_type == "error" for o in c.get("outputs", [])))
    error = next(o for o in nb.cells[failed].outputs if o.output_type == "error")
    api = FIRST_TASK[name]
    assert _grade_id(nb.cells[failed]) == f"public_{api}", (
        f"{name}: Run All stops at cell {failed} ({_grade_id(nb.cells[failed])}): "
        f"{error.ename}: {error.evalue}")
    assert (error.ename, error.evalue) == (
        "NotImplementedError", f"{api}: implement this (see the docstring)"), error_raised
    report(f"[stub run] {name}: stops at public_{api} (cell {failed})")
