"""nbgrader configuration for the seqlab course (the repository root is the course folder).

Instructor workflow (the full path, JupyterHub included: docs/nbgrader.md):
    nbgrader generate_assignment sequence_models --force   # == python -m autograder release,
                                                           #    and fills gradebook.db
    # copy submissions to submitted/<student>/sequence_models/ (or: nbgrader collect)
    nbgrader autograde sequence_models --force
    nbgrader generate_feedback sequence_models --force
    nbgrader export

What this file takes care of (each is a trap of a default nbgrader set-up; see docs/nbgrader.md):
* generate_assignment copies every non-notebook file of solutions/ verbatim into assignments/,
  i.e. the reference student modules with their solutions. A post-convert hook stubs them
  exactly as ``python -m autograder release`` does, so both commands write the same release.
* autograde copies the instructor's version of every non-notebook file over the student's, so
  by default it would grade the reference modules. ``Autograde.exclude_overwriting`` keeps the
  student modules (the given modules are still restored from solutions/).
* the hidden test cells import ``autograder.nbgrader_hook``: the kernel finds it through
  PYTHONPATH (the course root); a submitted folder named ``autograder`` is never copied.
* the grading kernels run with SEQLAB_GRADING=1 (training cells run a short version), and every
  cell has a time limit.
* a kernel that dies (os._exit, segfault, OOM) makes nbgrader abort the student's assignment and
  keep the previous run's scores; a pre-convert hook clears them first.
* the graded cells' scores must not depend on the student's kernel (which could replace the
  hook): the same pre-convert hook grades the submitted modules with the isolated grader before
  any notebook runs, and a preprocessor after Execute writes those results into every
  ``check_<api>`` cell.
"""
import os
import sys

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = "seqlab"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignments"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# Never copied from a submission (nor from solutions/): nbgrader's defaults, plus a folder named
# `autograder`, which would otherwise shadow the real one in the grading kernel (its cwd comes
# first on sys.path), and the data cache.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                            "autograder", "cache", ".DS_Store", "gradebook.db*", "*.egg-info"]

# --------------------------------------------------------------------------- generate_assignment

STUDENT_MODULES = ["rnn_layers", "lstm_layers", "attention_layers", "captioning", "transformer"]


def _stub_release(assignment=None, student=None, notebooks=None, **_):
    """post_convert_hook of generate_assignment: stub the solution regions of the .py files that
    nbgrader copied verbatim into assignments/<assignment>/ (autograder.release.stub_source, the
    function ``python -m autograder release`` uses). nbgrader logs a failing hook at INFO level
    and carries on, so on any error this removes the release and exits non-zero instead of
    leaving solutions in it."""
    import importlib.util
    import shutil
    from pathlib import Path

    release_root = Path(ROOT) / "assignments"
    folders = [release_root / assignment] if assignment and assignment not in ("*", ".") else \
        [p for p in release_root.iterdir() if p.is_dir()]
    try:
        spec = importlib.util.spec_from_file_location(
            "_seqlab_release", os.path.join(ROOT, "autograder", "release.py"))
        release = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(release)
        for folder in folders:
            for path in sorted(folder.rglob("*"), reverse=True):
                rel = path.relative_to(folder)
                if release._ignored(rel):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
                elif path.is_file() and path.suffix == ".py":
                    text = path.read_text(encoding="utf-8")
                    stubbed = release.stub_source(text, str(rel))
                    if stubbed != text:
                        path.write_text(stubbed, encoding="utf-8")
                    assert release.BEGIN not in stubbed and release.END not in stubbed
    except BaseException as exc:  # fail closed: no release rather than a release with solutions
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"[nbgrader_config] ERROR: could not stub the solution regions of the release "
              f"({type(exc).__name__}: {exc}); removed {', '.join(map(str, folders))}",
              file=sys.stderr)
        raise SystemExit(1)


c.GenerateAssignment.post_convert_hook = _stub_release

# --------------------------------------------------------------------------- autograde

# The student modules are .py files beside the notebooks. By default nbgrader copies the
# instructor's (source) version of every non-notebook file over the student's before grading,
# which would grade the reference code. Keep the students' own modules.
c.Autograde.exclude_overwriting = {
    "sequence_models": [f"seqlab/{m}.py" for m in STUDENT_MODULES],
}


def _forget_old_autograde(assignment=None, student=None, notebooks=None, **_):
    """pre_convert_hook of autograde: before a student's assignment is graded again, clear the
    automatic scores of the previous run (manual scores stay). When a run dies half way (a kernel
    killed by os._exit, a segfault or the OOM killer; a kernel that cannot be interrupted),
    nbgrader aborts that student's assignment, deletes autograded/<student>/<assignment>/ and
    keeps whatever the gradebook held, i.e. the previous run's scores. After this reset the cells
    the run did not reach score 0 and are flagged "needs manual grade", as on a first run."""
    import inspect
    from pathlib import Path

    from nbgrader.api import Gradebook, MissingEntry

    # nbgrader passes the command's ids (student "*" for all students); the notebooks being
    # graded are submitted/<student>/<assignment>/<name>.ipynb.
    folders = {Path(nb).parent for nb in notebooks or []}
    caller = inspect.currentframe().f_back.f_locals.get("self")
    coursedir = getattr(caller, "coursedir", None)
    db_url = getattr(coursedir, "db_url", None) or f"sqlite:///{ROOT}/gradebook.db"
    course_id = getattr(coursedir, "course_id", None) or "seqlab"
    try:
        with Gradebook(db_url, course_id) as gb:
            for folder in folders:
                try:
                    sub = gb.find_submission(folder.name, folder.parent.name)
                except MissingEntry:
                    continue
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        grade.auto_score = None
                        grade.needs_manual_grade = True
            gb.db.commit()
    except Exception as exc:  # nbgrader would log this at INFO level and keep stale scores
        print(f"[nbgrader_config] ERROR: could not clear the previous autograde scores of "
              f"{', '.join(map(str, folders))} ({type(exc).__name__}: {exc})", file=sys.stderr)
        raise SystemExit(1)


def _hook_module():
    """autograder/nbgrader_hook.py of this course, loaded by path once (standard library only)."""
    if "hook" in _LOADED:
        return _LOADED["hook"]
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "_seqlab_nbgrader_hook", os.path.join(ROOT, "autograder", "nbgrader_hook.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _LOADED["hook"] = module
    return module


_LOADED = {}
# (assignment, student) -> results.json data of the isolated grader, or the reason it failed
_ISOLATED = {}


def _grade_outside_the_kernel(assignment=None, student=None, notebooks=None, **_):
    """Grade the submitted student modules with the isolated grader *before* any of the
    student's notebooks runs: the graded cells' outputs are then replaced with these results
    (``IsolatedCheckCells``), so nothing the student's kernel does (replacing ``grade``, printing
    a number, rewriting a module half way) changes a score."""
    from pathlib import Path
    for folder in sorted({Path(nb).parent for nb in notebooks or []}):
        key = (folder.name, folder.parent.name)
        seqlab = folder / "seqlab"
        if not seqlab.is_dir():
            _ISOLATED[key] = "the submission has no seqlab/ folder"
            continue
        try:
            _ISOLATED[key] = _hook_module().grade_all(seqlab)
        except Exception as exc:  # fail closed: the graded cells of this student score zero
            _ISOLATED[key] = f"the isolated grader could not run ({type(exc).__name__}: {exc})"
            print(f"[nbgrader_config] ERROR: {key[1]}: {_ISOLATED[key]}", file=sys.stderr)


def _before_each_student(**kwargs):
    _forget_old_autograde(**kwargs)
    _grade_outside_the_kernel(**kwargs)


c.Autograde.pre_convert_hook = _before_each_student

# The grading kernels' environment, set around each notebook's execution only (this file is also
# loaded by the formgrader inside the instructor's Jupyter server, whose own kernels must not run
# in grading mode):
# * the hidden test cells run `from autograder.nbgrader_hook import grade`: the course root on
#   PYTHONPATH (after the kernel's cwd, autograded/<student>/sequence_models/, where `seqlab` is);
# * training cells run a short version (seqlab.data.GRADING reads SEQLAB_GRADING);
# * no debugger warning on the kernel's stderr (Python 3.11 frozen modules);
# * the hidden line does not grade again in the kernel (SEQLAB_GRADED_OUTSIDE_KERNEL): the
#   graded cells' outputs are IsolatedCheckCells', from the run before the kernel started.
def _grading_env():
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != ROOT]
    return {"PYTHONPATH": os.pathsep.join([ROOT] + paths), "SEQLAB_GRADING": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1", "SEQLAB_GRADED_OUTSIDE_KERNEL": "1"}


def _grading_execute():
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import Execute

    class GradingExecute(Execute):
        """nbgrader's Execute (its settings apply) with the grading environment."""

        def preprocess(self, nb, resources=None, km=None):
            env = _grading_env()
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                return super().preprocess(nb, resources, km)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    from nbformat import from_dict
    from nbgrader.preprocessors import NbGraderPreprocessor

    class IsolatedCheckCells(NbGraderPreprocessor):   # (nbconvert's base is disabled by default)
        """After the kernel ran: every graded cell ``check_<name>`` gets the outputs that the
        isolated grader's results (computed before the kernel started) give it, whatever the
        kernel printed there. Its score is then the CLI's, on the files as submitted."""

        def preprocess(self, nb, resources):
            info = resources.get("nbgrader", {})
            data = _ISOLATED.get((info.get("assignment"), info.get("student")))
            hook = _hook_module()
            known = set(hook.MODULE_OF) | set(hook.PARTS)
            for cell in nb.cells:
                meta = cell.get("metadata", {}).get("nbgrader", {})
                gid = meta.get("grade_id", "")
                name = gid[len("check_"):]
                if (cell.cell_type != "code" or not meta.get("grade") or meta.get("solution")
                        or not gid.startswith("check_") or name not in known):
                    continue
                if isinstance(data, dict):
                    outputs = hook.cell_outputs(name, data)
                else:
                    why = data or "the isolated grader did not run for this submission"
                    outputs = [{"output_type": "error", "ename": "AssertionError",
                                "evalue": why, "traceback": ["AssertionError: " + why]}]
                cell.outputs = [from_dict(o) for o in outputs]
            return nb, resources

    default = Autograde.class_traits()["autograde_preprocessors"].default()
    assert Execute in default, default
    out = []
    for p in default:
        out += [GradingExecute, IsolatedCheckCells] if p is Execute else [p]
    return out


c.Autograde.autograde_preprocessors = _grading_execute()

# Per-cell time limit (Execute's settings apply to GradingExecute). Under grading the longest cell
# of the reference takes about 8 s of CPU (03's comparison of three models; the first hidden test
# cell of a module, which grades the whole module in isolated workers, about 2.5 s): a student's
# slow but correct code gets a wide margin, even on a loaded machine. A cell past the limit is
# interrupted and scores zero, and the notebook goes on.
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True
