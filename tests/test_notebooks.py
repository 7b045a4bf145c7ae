"""The course notebooks: nbgrader structure of the sources, and end-to-end execution.

* ``test_source_notebook_structure`` (fast): every check cell of a source notebook is a valid
  nbgrader autograded test cell (unique ``check_<api>`` grade_id, locked, worth the points of
  its hidden checks) that holds only comments and the hidden block calling
  ``autograder.nbgrader_hook.grade("<api>")``, right after the locked 0-point test cell of the
  function's public checks (``public_<api>``); the expected API names are all there; inline
  questions are valid manually graded answer cells; the source is committed without outputs.
* ``test_release_notebook_executes`` (slow): the *release* notebook (``assignments/``) runs end
  to end (notebooks 03 and 04 in their short mode, see ``SHORT_MODE``) with nbclient in a
  scratch copy of the release where the reference student modules replace the stubs, as a
  student who solved everything would run it, two notebooks at a time (``AT_ONCE``). No cell
  may raise, and the graded check cells may write nothing to stderr and show no ``Out[]`` value
  (nbgrader treats stderr as a failure and a trailing value as a partial grade). The wall time
  is printed (never asserted; beside another notebook's run); the time budget is in
  docs/conventions.md.

Add a notebook in the course manifest (autograder/course.py): ``NOTEBOOKS`` and its check
cells come from there.
Notebooks whose source is not in the repository yet are skipped.

Environment knobs: ``SEQLAB_GRADING=1`` in the environment of pytest is passed on to the
kernel (short training runs); ``SEQLAB_NOTEBOOK_TIMEOUT`` overrides the per-cell timeout (600 s).
"""
import json
import os
import re
import time
from pathlib import Path

import pytest

from autograder import course
from seqlab_dev.notebooks import (
    CELL_TIMEOUT,
    NOTEBOOKS,
    RELEASE_DIR,
    SOURCE_DIR,
    kernel_env,
    read,
    scratch_release,
)

ROOT = Path(__file__).resolve().parent.parent

# The check cells each notebook must have, in order (grade_id = "check_" + name): the course
# manifest's.
EXPECTED_CHECKS = {course.notebook_file(key): [c.grade_id.removeprefix("check_")
                                              for c in course.check_cells() if c.notebook == key]
                   for key in course.NOTEBOOKS}

# Notebooks this test runs in their short mode (SEQLAB_GRADING=1), and why the full training
# would add no check here: the suite's time goes where it tests something.
SHORT_MODE = {
    "03_attention_captioning.ipynb": "no cell checks what the captioner learned (its full run "
                                     "is timed by benchmarks/notebooks.py and its quality by "
                                     "benchmarks/quality.py)",
    "04_transformer.ipynb": "no cell checks what the dates model or the captioner learned; "
                            "tests/test_dates.py trains the reference on the dates task and checks "
                            "that it learns it, and benchmarks/notebooks.py times the full run",
}


HIDDEN_BLOCK = ("### BEGIN HIDDEN TESTS\n"
                'from autograder.nbgrader_hook import grade; grade("{api}")\n'
                "### END HIDDEN TESTS")


def _present(name):
    path = SOURCE_DIR / name
    if not path.exists():
        pytest.skip(f"{name} is not in solutions/sequence_models/ yet")
    return path


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _check_cells(nb):
    """Autograded code test cells with points (the hidden line): nbgrader grade true, solution
    false, not a public check cell."""
    return [c for c in nb.cells if c.cell_type == "code" and _nbgrader(c).get("grade")
            and not _nbgrader(c).get("solution")
            and not _nbgrader(c).get("grade_id", "").startswith("public_")]


def _cli_points():
    """{check cell name: points of its hidden checks} (empty if there is no autograder yet)."""
    try:
        from autograder.checks import core
    except ImportError:
        return {}
    points = {}
    for check in core.select(None):
        name = check.cell.removeprefix("check_")
        points[name] = points.get(name, 0) + check.points
    return points


def _hook_api_names():
    """The API names ``autograder.nbgrader_hook.grade`` accepts (None if there is no hook yet)."""
    try:
        from autograder import nbgrader_hook
    except ImportError:
        return None
    names = set(getattr(nbgrader_hook, "MODULE_OF", {})) | set(getattr(nbgrader_hook, "PARTS", {}))
    return names or None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_source_notebook_structure(name):
    nb = read(_present(name))
    ids = [_nbgrader(c)["grade_id"] for c in nb.cells if "grade_id" in _nbgrader(c)]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"{name}: grade_id used more than once: {dupes}"

    for cell in nb.cells:
        meta = _nbgrader(cell)
        if meta:
            assert meta.get("schema_version") == 3, f"{name}: {meta} lacks schema_version 3"
            assert meta.get("grade_id"), (
                f"{name}: nbgrader cell without grade_id: {cell.source[:80]!r}")
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{name}: commit the source without outputs (cell {meta.get('grade_id')!r})")

    checks = _check_cells(nb)
    apis = []
    cli_points = _cli_points()
    for cell in checks:
        meta = _nbgrader(cell)
        gid = meta["grade_id"]
        assert gid.startswith("check_"), (
            f"{name}: graded test cell {gid!r} is not named check_<api>")
        api = gid[len("check_"):]
        apis.append(api)
        assert meta.get("locked") is True, f"{name}: {gid} must be locked"
        assert isinstance(meta.get("points"), (int, float)) and meta["points"] > 0, (
            f"{name}: {gid} needs points > 0, has {meta.get('points')!r}")
        # grade() returns the points earned as nbgrader's partial credit: the cell must be worth
        # exactly the points of its hidden checks, or nbgrader would refuse (more) or cap (less)
        if api in cli_points:
            assert meta["points"] == cli_points[api], (
                f"{name}: {gid} is worth {meta['points']} points, its hidden checks "
                f"{cli_points[api]} (python -m autograder grade --list)")
        src = cell.source.rstrip()
        block = HIDDEN_BLOCK.format(api=api)
        assert src.endswith(block), (
            f"{name}: {gid} must end with the hidden block\n{block}\n(got ...{src[-200:]!r})")
        visible = src[: -len(block)]
        assert "### BEGIN HIDDEN TESTS" not in visible, f"{name}: {gid} has two hidden blocks"
        code = [line for line in visible.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
        assert not code, (f"{name}: {gid} may hold only comments and the hidden block (a failing "
                          f"line there would zero the function's hidden score): {code[:3]}")
        # the public checks of the same function: the ungraded, locked cell just before it
        k = next(i for i, c in enumerate(nb.cells) if c is cell)
        public = nb.cells[k - 1] if k else None
        pmeta = _nbgrader(public) if public is not None else {}
        assert public is not None and public.cell_type == "code" and \
            pmeta.get("grade_id") == f"public_{api}", (
                f"{name}: {gid} must follow its public checks, a code cell public_{api}")
        # a test cell worth 0 points: nbgrader's Validate reports it when it fails, and it
        # never changes a score (the hidden checks alone do)
        assert pmeta.get("grade") is True and pmeta.get("points") == 0 and \
            pmeta.get("locked") is True and not pmeta.get("solution"), (
                f"{name}: public_{api} must be a locked test cell worth 0 points, has {pmeta}")
        assert public.source.strip(), f"{name}: public_{api} has no checks"
    assert len(apis) == len(set(apis)), f"{name}: one check cell per API name, got {apis}"
    known = _hook_api_names()
    if known is not None:
        unknown = [a for a in apis if a not in known]
        assert not unknown, (f"{name}: grade() would reject these API names (not in "
                             f"autograder.nbgrader_hook.MODULE_OF): {unknown}")
    if name in EXPECTED_CHECKS:
        assert apis == EXPECTED_CHECKS[name], (
            f"{name}: check cells {apis}, expected {EXPECTED_CHECKS[name]} in this order")

    for cell in nb.cells:
        meta = _nbgrader(cell)
        if cell.cell_type == "markdown" and meta.get("solution"):
            gid = meta["grade_id"]
            assert meta.get("grade") is True and meta.get("locked") is False, (
                f"{name}: answer cell {gid} must be grade: true, locked: false")
            assert isinstance(meta.get("points"), (int, float)) and meta["points"] > 0, (
                f"{name}: answer cell {gid} needs points")
            assert gid.startswith("q_"), f"{name}: answer cell {gid!r} is not named q_<name>"


# Notebooks executed at once: the numpy notebooks use one BLAS thread, so two of them keep the
# two cores busy; the wall times printed are then those of a run beside another one.
AT_ONCE = 2


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """{notebook: (executed notebook, wall seconds), or the exception its run raised} for every
    release notebook of NOTEBOOKS with a source, each run in its own scratch release, AT_ONCE
    at a time."""
    import asyncio

    from nbclient import NotebookClient

    async def run(name, slots):
        work = scratch_release(tmp_path_factory.mktemp(name.split("_")[0]))
        nb = read(work / name)
        client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                resources={"metadata": {"path": str(work)}})
        env = kernel_env()
        if name in SHORT_MODE:
            env["SEQLAB_GRADING"] = "1"
        async with slots:
            start = time.perf_counter()
            try:
                await client.async_execute(env=env, cwd=str(work))
            except Exception as err:   # reported by the notebook's own test
                return name, err
            return name, (nb, time.perf_counter() - start)

    async def run_all():
        slots = asyncio.Semaphore(AT_ONCE)
        names = [n for n in NOTEBOOKS if (SOURCE_DIR / n).exists() and (RELEASE_DIR / n).exists()]
        return dict(await asyncio.gather(*(run(n, slots) for n in names)))

    return asyncio.run(run_all())


@pytest.mark.e2e
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_notebook_executes(name, executed, report):
    from nbclient.exceptions import CellExecutionError

    _present(name)
    release_nb = RELEASE_DIR / name
    if not release_nb.exists():
        pytest.fail(f"{name} has a source but no release; run `python -m autograder release`")
    assert "### BEGIN HIDDEN TESTS" not in json.dumps(read(release_nb)), (
        f"release {name} carries hidden tests")

    result = executed[name]
    if isinstance(result, CellExecutionError):
        pytest.fail(f"{name} failed:\n{result}")
    if isinstance(result, Exception):
        raise result
    nb, wall = result
    grading = os.environ.get("SEQLAB_GRADING", "") == "1" or name in SHORT_MODE
    report(f"[notebook] {name}: {wall:.1f} s wall"
           f"{' (SEQLAB_GRADING=1)' if grading else ''}, {AT_ONCE} notebooks at a time")

    problems = []
    # every test cell, the 0-point public ones included (a value there would be a partial grade
    # above its 0 points, which nbgrader refuses, and stderr would fail nbgrader's Validate)
    tests = [c for c in nb.cells if c.cell_type == "code" and _nbgrader(c).get("grade")
             and not _nbgrader(c).get("solution")]
    for cell in tests:
        gid = _nbgrader(cell)["grade_id"]
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr":
                problems.append(f"{gid} wrote to stderr: {out.text[:300]!r}")
            if out.output_type == "execute_result":
                problems.append(f"{gid} shows a value (nbgrader would read it as a partial "
                                f"grade): {str(out.get('data', {}))[:200]}")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_hidden_block_pattern_matches_conventions():
    """The block this test requires is the one documented in docs/conventions.md."""
    text = (ROOT / "docs" / "conventions.md").read_text()
    block = HIDDEN_BLOCK.format(api="rnn_step_forward")
    assert re.sub(r"\s+", " ", block) in re.sub(r"\s+", " ", text)
