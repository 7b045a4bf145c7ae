"""Gradescope's view of a grading run: one test per graded function, in notebook order, in Markdown.

``python -m autograder grade ... --json RESULTS`` writes one test per hidden check (about 200).
On Gradescope ``run_autograder`` adds ``--gradescope-config gradescope_config.json``, and the
grader writes RESULTS as a student reads it best (:func:`for_gradescope`):

- one test per graded function, as the notebooks' graded cells split them (``CaptioningRNN``
  once per notebook, by cell type), named ``01 · rnn_step_forward`` and numbered ``1.1``,
  ``1.2``, ... in the order of the notebooks (the order is read from the notebooks' graded cells
  when the bundle is built);
- ``output_format: "md"``: a line of how many checks passed, then each failed check with its
  feedback in a code block (``report.markdown``);
- the instructor's visibility policy (chosen when the bundle is built): one visibility for every
  test, and optionally the hints held back until the due date. Gradescope's visibility hides a
  whole test, so held-back hints go into a separate 0-point test per function, marked
  ``after_due_date``, and the graded test shows no hint;
- ``extra_data``: the versions the grade was computed with (Python, numpy, torch, a digest of
  the hidden checks) and the isolation level of the student's code.

Scores are never changed: the sum of the tests is the raw total, check by check.
"""
import hashlib
import json
import platform
import re
from importlib import metadata
from pathlib import Path

from autograder import report

VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
HINTS = ("with_feedback", "after_due_date")
CONFIG_NAME = "gradescope_config.json"
_GRADED_CELL = re.compile(r"^check_(\w+)$")


# ---------------------------------------------------------------- the configuration

def notebook_order(notebooks) -> list:
    """The graded cells of the notebooks, in order: ``[[notebook stem, [cell name, ...]], ...]``.

    Input: paths of the source (or release) notebooks, in course order. A graded cell has the
    nbgrader grade_id ``check_<name>``; ``<name>`` is a CheckResult's ``cell``.
    """
    order = []
    for path in notebooks:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = []
        for cell in nb["cells"]:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
            match = _GRADED_CELL.match(grade_id)
            if match and cell["cell_type"] == "code":
                cells.append(match.group(1))
        order.append([Path(path).stem, cells])
    return order


def make_config(notebooks: list, visibility: str = "visible",
                hints: str = "with_feedback") -> dict:
    """The configuration ``run_autograder`` reads (a dict, written as gradescope_config.json)."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility: expected one of {VISIBILITIES}, got {visibility!r}")
    if hints not in HINTS:
        raise ValueError(f"hints: expected one of {HINTS}, got {hints!r}")
    return {"visibility": visibility, "hints": hints, "order": notebook_order(notebooks)}


# ---------------------------------------------------------------- versions

def versions() -> dict:
    """The versions a grade is computed with: Python, numpy, torch and a digest of the hidden
    checks (sha256 of ``autograder/checks/*.py``, first 12 hex digits)."""
    out = {"python": platform.python_version()}
    for package in ("numpy", "torch"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    folder = Path(__file__).resolve().parent / "checks"
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out["checks"] = digest.hexdigest()[:12]
    return out


# ---------------------------------------------------------------- the transformation

def for_gradescope(results: list, config: dict, notes=(), isolation=None,
                   visibility: str = "visible", grader_versions: dict | None = None) -> dict:
    """Gradescope's results.json of one submission, one test per graded function.

    Inputs:
    - results: the submission's ``report.CheckResult`` s
    - config: the dict of :func:`make_config`
    - notes: the lines about the whole submission (``report.submission_notes``)
    - isolation: the isolation.Isolation the grading ran under
    - visibility: of the whole result (the tests' visibility is the config's)
    - grader_versions: the dict of :func:`versions` (computed when None)

    Returns a dict in Gradescope's results.json schema, whose score is the raw total.
    """
    test_visibility = config.get("visibility", "visible")
    hold_hints = config.get("hints") == "after_due_date"
    groups = {}
    for r in results:
        groups.setdefault(r.cell, []).append(r)

    numbering = {}
    for n, (nb, cells) in enumerate(config.get("order", []), start=1):
        for f, cell in enumerate(cells, start=1):
            numbering[cell] = (n, f, nb[:2])
    extra = [c for c in groups if c not in numbering]  # a check no notebook grades: last
    for f, cell in enumerate(extra, start=1):
        numbering[cell] = (len(config.get("order", [])) + 1, f, "other")

    tests = []
    for cell in sorted(groups, key=lambda c: numbering[c][:2]):
        n, f, label = numbering[cell]
        rs = groups[cell]
        name = f"{label} · {cell}"
        tests.append({
            "number": f"{n}.{f}",
            "name": name,
            "score": round(sum(report.rounded(r.score) for r in rs), 4),
            "max_score": round(sum(report.rounded(r.points) for r in rs), 4),
            "status": "passed" if all(r.passed for r in rs) else "failed",
            "output": report.clean_text(report.markdown(rs, hold_hints), limit=20000),
            "output_format": "md",
            "tags": [rs[0].api],
            "visibility": test_visibility,
        })
        hints = report.markdown_hints(rs) if hold_hints else ""
        if hints:
            tests.append({
                "number": f"{n}.{f}.1",
                "name": f"{name}: hints",
                "score": 0.0,
                "max_score": 0.0,
                "output": report.clean_text(hints, limit=20000),
                "output_format": "md",
                "tags": tests[-1]["tags"],
                "visibility": "after_due_date",
            })

    lines = report.clean_text("\n".join(notes)).splitlines()
    extra_data = {"isolation": isolation.as_json() if isolation is not None
                  else "not reported by this grader"}
    extra_data["versions"] = grader_versions if grader_versions is not None else versions()
    extra_data["visibility_policy"] = {"tests": test_visibility,
                                       "hints": config.get("hints", "with_feedback")}
    return {
        "score": report.rounded(sum(r.score for r in results)),  # the total is set in Gradescope
        "output": "\n".join(f"- {report.md_text(line)}" for line in lines if line),
        "output_format": "md",
        "test_output_format": "md",
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "extra_data": extra_data,
        "tests": tests,
    }
