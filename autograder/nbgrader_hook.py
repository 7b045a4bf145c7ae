"""The hidden tests of the nbgrader notebooks: ``grade(api_name)``.

A hidden test cell ends with::

    ### BEGIN HIDDEN TESTS
    from autograder.nbgrader_hook import grade; grade("rnn_step_forward")
    ### END HIDDEN TESTS

(The kernel needs the course root on its PYTHONPATH.) The name is an API name
or, for the captioner that notebooks 01-03 each extend, ``CaptioningRNN`` (the RNN captioner and
the checks that name no cell type), ``CaptioningRNN_lstm`` or ``CaptioningRNN_attention`` (the
checks of that cell type): see :func:`cell_name`.

The kernel's cwd is the assignment folder (``solutions/sequence_models/``); ``grade`` grades the
student module files of ``./seqlab/`` with the same hidden checks as
``python -m autograder grade``, in a fresh grader process (so nothing the notebook did to this
kernel -- patched numpy, a fake module -- takes part in the comparisons) that runs the student
code in isolated workers. It prints a short summary to stdout (never stderr, never reference
values) and gives the cell the CLI's score of ``api_name``: full points when every check
passes, the points earned as the cell's value (nbgrader's partial credit) when some pass, an
AssertionError (zero) when none does. The hidden line sits alone in its graded cell, after the
notebook's public checks of the same function (a 0-point cell), so that a failing public check
cannot zero the function's score: the hidden checks alone decide it, as in the CLI.

``grade`` runs when the instructor runs the source notebooks (``solutions/``); students never
see the hidden line. ``nbgrader autograde`` runs no notebook: its preprocessor
(``autograder.nbgrader_preprocessors.IsolatedResults``) gives each graded cell
``cell_outputs`` of the isolated grader's results, the outputs ``grade`` would leave.

The first call for an API name grades every API name of its student module at once and keeps
the results in this module for the next calls (same files, same kernel), so a notebook costs
one grading run per module. This file uses the standard library only.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder import course

COURSE_ROOT = Path(__file__).resolve().parent.parent

MODULE_OF = course.MODULE_OF
STUDENT_FILES = tuple(f"{m}.py" for m in course.STUDENT_MODULES)

_cache = {}  # (module, fingerprint of the student files) -> results.json data

# Check cells that grade a part of an API name's checks: notebook 02's CaptioningRNN cell grades
# the LSTM captioner, notebook 03's the attention captioner; notebook 01's (plain
# "CaptioningRNN") the RNN captioner and the vocabulary checks.
PARTS = {"CaptioningRNN_lstm": "CaptioningRNN", "CaptioningRNN_attention": "CaptioningRNN"}


def cell_name(test):
    """The name of the check cell (``grade(name)``, grade_id ``check_<name>``) that a
    results.json test belongs to: its check's cell (``extra_data.cell``); the API name
    (``tags[0]``) for a test that names no cell."""
    return (test.get("extra_data") or {}).get("cell") or (test.get("tags") or [None])[0]


def _fingerprint(folder):
    h = hashlib.sha256()
    for name in STUDENT_FILES:
        p = folder / name
        h.update(name.encode())
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    return h.hexdigest()


def _run_grader(folder, apis, timeout):
    with tempfile.TemporaryDirectory(prefix="seqlab-hook-") as tmp:
        out = os.path.join(tmp, "results.json")
        args = [str(folder), "--json", out, "--quiet", "--jobs", "2", "--timeout", str(timeout)]
        for a in apis:
            args += ["--only", a]
        code = ("import sys; sys.path.insert(0, %r); from autograder.cli import main; "
                "sys.exit(main(%r))" % (str(COURSE_ROOT), ["grade"] + args))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=900)
        if not os.path.exists(out):
            raise AssertionError("the autograder could not run (status %d); please tell the "
                                 "course staff" % proc.returncode)
        with open(out, encoding="utf-8") as f:
            return json.load(f)


_REVEALING = re.compile(r"\s*\(you returned [^)]*\)")


def _short(text):
    """First line of a check's feedback without the values it compared."""
    first = text.splitlines()[0] if text else ""
    first = first[len("FAILED: "):] if first.startswith("FAILED: ") else first
    first = _REVEALING.sub("", first)
    return first[:240]


def grade(api_name, folder=None, timeout=10):
    """Grade ``api_name`` (a name of the student API) in ``folder`` (default: ./seqlab).

    Prints one line per check group and the reason of each failed check, then tells nbgrader
    the score of the cell, which is the CLI's score of the same checks (partial credit):

    * every check passed: returns None (nbgrader gives the cell its full points);
    * some passed: returns the points earned, a float, which the cell shows as its value and
      nbgrader reads as a partial grade (so the cell's points must equal the checks' points,
      as ``tests/test_notebooks.py`` ensures);
    * none passed: raises AssertionError (short message), zero points."""
    base = PARTS.get(api_name, api_name)
    if base not in MODULE_OF:
        raise ValueError("grade: unknown API name %r" % (api_name,))
    folder = Path(folder) if folder is not None else Path.cwd() / "seqlab"
    module = MODULE_OF[base]
    key = (module, str(folder.resolve()), _fingerprint(folder))
    if key not in _cache:
        apis = [a for a, m in MODULE_OF.items() if m == module]
        _cache[key] = _run_grader(folder, apis, timeout)
    v = verdict(api_name, _cache[key])
    print("\n".join(v["lines"]))
    sys.stdout.flush()
    if v["error"]:
        raise AssertionError(v["error"])
    return None if v["earned"] == v["total"] else float(v["earned"])


def verdict(api_name, data):
    """What the graded cell of ``api_name`` says, from results.json ``data``: a dict with
    ``lines`` (the summary printed to stdout), ``earned`` and ``total`` points, and ``error``
    (the AssertionError message when nothing passed or there is no result, else None)."""
    tests = [t for t in data.get("tests", []) if cell_name(t) == api_name]
    if not tests:
        last = data.get("output", "").splitlines()[-1:]
        return {"lines": ["%s: no result (%s)" % (api_name, last)], "earned": 0.0, "total": 0.0,
                "error": "%s: the autograder produced no result" % api_name}
    failed = [t for t in tests if t.get("status") != "passed"]
    got = sum(t.get("score", 0) for t in tests)
    total = sum(t.get("max_score", 0) for t in tests)
    lines = ["%s: %d of %d hidden checks passed (%g / %g points)"
             % (api_name, len(tests) - len(failed), len(tests), got, total)]
    for t in failed:
        title = t["name"].split(": ", 1)[-1]
        lines.append("  - %s: %s" % (title, _short(t.get("output", ""))))
        hint = next((l for l in t.get("output", "").splitlines() if l.startswith("Hint: ")), "")
        if hint:
            lines.append("    " + hint[:240])
    error = None
    if failed and got <= 0:
        error = "%s: %d of %d hidden checks failed" % (api_name, len(failed), len(tests))
    return {"lines": lines, "earned": float(got), "total": float(total), "error": error}


def cell_outputs(api_name, data):
    """The nbformat (v4) outputs of the graded cell of ``api_name``, as ``grade`` would leave
    them: the summary on stdout, then the points earned (partial credit) or the error."""
    v = verdict(api_name, data)
    outputs = [{"output_type": "stream", "name": "stdout", "text": "\n".join(v["lines"]) + "\n"}]
    if v["error"]:
        outputs.append({"output_type": "error", "ename": "AssertionError", "evalue": v["error"],
                        "traceback": ["AssertionError: " + v["error"]]})
    elif v["earned"] < v["total"]:
        outputs.append({"output_type": "execute_result", "execution_count": None,
                        "metadata": {}, "data": {"text/plain": repr(v["earned"])}})
    return outputs
