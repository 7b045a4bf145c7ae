"""The hidden tests of the nbgrader notebooks: ``grade(api_name)``.

A hidden test cell ends with::

    ### BEGIN HIDDEN TESTS
    from autograder.nbgrader_hook import grade; grade("rnn_step_forward")
    ### END HIDDEN TESTS

(The kernel needs the course root on its PYTHONPATH.) The name is an API name
or, for the captioner that notebooks 01-03 each extend, ``CaptioningRNN`` (the RNN captioner and
the checks that name no cell type), ``CaptioningRNN_lstm`` or ``CaptioningRNN_attention`` (the
checks of that cell type): see ``course.cell_name``.

The kernel's cwd is the assignment folder (``solutions/sequence_models/``); ``grade`` shows the
results of the student modules of ``./seqlab/`` as ``nbgrader autograde`` records them:
``nbgrader_prepare.results``, from the course's result cache (``nbgrader_cache``), graded first
when the cache lacks them -- in a fresh grader process (so nothing the notebook did to this
kernel -- patched numpy, a fake module -- takes part in the comparisons) that runs the student
code in isolated workers. The hidden line sits alone in its graded cell, after the notebook's
public checks of the same function (a 0-point cell), so that a failing public check cannot zero
the function's score: the hidden checks alone decide it, as in the CLI.

``grade`` runs when the instructor runs the source notebooks (``solutions/``); students never
see the hidden line. ``nbgrader autograde`` runs no notebook: its preprocessor
(``autograder.nbgrader_preprocessors.IsolatedResults``) gives each graded cell the outputs
``grade`` would leave, from the same results.
"""
import os
import subprocess
import sys
from pathlib import Path

from autograder import course, nbgrader_prepare, paths, report

MODULE_OF = course.MODULE_OF
# Check cells that grade a part of an API name's checks: notebook 02's CaptioningRNN cell grades
# the LSTM captioner, notebook 03's the attention captioner; notebook 01's (plain
# "CaptioningRNN") the RNN captioner and the vocabulary checks.
PARTS = {"CaptioningRNN_lstm": "CaptioningRNN", "CaptioningRNN_attention": "CaptioningRNN"}


def grade(api_name: str, folder: str | Path | None = None,
          timeout: float = 10) -> float | None:
    """Grade ``api_name`` (a name of the student API, or a part of ``PARTS``) in ``folder``
    (default: ./seqlab); ``timeout``: seconds per call into student code.

    Prints to stdout (never stderr, never reference values; ``report.nbgrader_cell``) how many
    of its hidden checks passed and, per failed check, why and the hint, then tells nbgrader
    the score of the cell, which is the CLI's score of the same checks (partial credit):

    * every check passed: returns None (nbgrader gives the cell its full points);
    * some passed: returns the points earned, a float, which the cell shows as its value and
      nbgrader reads as a partial grade (so the cell's points must equal the checks' points,
      as ``tests/test_notebooks.py`` ensures);
    * none passed: raises AssertionError (short message), zero points."""
    if PARTS.get(api_name, api_name) not in MODULE_OF:
        raise ValueError("grade: unknown API name %r" % (api_name,))
    folder = Path(folder) if folder is not None else Path.cwd() / "seqlab"
    cell = report.nbgrader_cell(api_name, _results(folder, timeout))
    print("\n".join(cell.lines))
    sys.stdout.flush()
    if cell.error:
        raise AssertionError(cell.error)
    return None if cell.earned == cell.total else cell.earned


def _results(folder, timeout):
    """The CheckResults of the modules of ``folder``: cached, or graded by a fresh process."""
    found = nbgrader_prepare.results(folder, grade_missing=False)
    if found is None:
        root = paths.course_root()
        code = ("import sys; sys.path.insert(0, %r); from autograder import nbgrader_prepare, "
                "sandbox; sandbox.enable_subreaper(); sandbox.stop_on_sigterm(); "
                "nbgrader_prepare.results(%r, timeout=%r)"
                % (str(root), str(folder), float(timeout)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=root, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
        found = nbgrader_prepare.results(folder, grade_missing=False)
        if found is None:
            raise AssertionError("the autograder could not run (status %d); please tell the "
                                 "course staff" % proc.returncode)
    return found
