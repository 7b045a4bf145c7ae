"""Gradescope's view of a grading run: one test per graded function, in notebook order, in Markdown.

``python -m autograder grade ... --json RAW`` writes one test per hidden check (about 200).
On Gradescope ``run_autograder`` then calls ``python -m autograder.gradescope_results RAW
--config gradescope_config.json``, which rewrites RAW in place as a student reads it best:

- one test per graded function, as the notebooks' graded cells split them (``CaptioningRNN``
  once per notebook, by cell type), named ``01 · rnn_step_forward`` and numbered ``1.1``,
  ``1.2``, ... in the order of the notebooks (the order is read from the notebooks' graded cells
  when the bundle is built);
- ``output_format: "md"``: a line of how many checks passed, then each failed check with its
  feedback in a code block (values and shapes keep their layout);
- the instructor's visibility policy (chosen when the bundle is built): one visibility for every
  test, and optionally the hints held back until the due date. Gradescope's visibility hides a
  whole test, so held-back hints go into a separate 0-point test per function, marked
  ``after_due_date``, and the graded test shows no hint;
- ``extra_data``: the versions the grade was computed with (Python, numpy, torch, a digest of
  the hidden checks) and the isolation level of the student's code (as the grader reported it).

Scores are never changed: the sum of the tests is the raw total, check by check.
"""
import argparse
import hashlib
import json
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

from autograder import report
from autograder.nbgrader_hook import cell_name

VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
HINTS = ("with_feedback", "after_due_date")
CONFIG_NAME = "gradescope_config.json"
_GRADED_CELL = re.compile(r"^check_(\w+)$")


# ---------------------------------------------------------------- the configuration

def notebook_order(notebooks):
    """The graded cells of the notebooks, in order: ``[[notebook stem, [cell name, ...]], ...]``.

    Input: paths of the source (or release) notebooks, in course order. A graded cell has the
    nbgrader grade_id ``check_<name>``; ``<name>`` is what :func:`cell_name` gives a test.
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


def make_config(notebooks, visibility="visible", hints="with_feedback"):
    """The configuration ``run_autograder`` reads (a dict, written as gradescope_config.json)."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility: expected one of {VISIBILITIES}, got {visibility!r}")
    if hints not in HINTS:
        raise ValueError(f"hints: expected one of {HINTS}, got {hints!r}")
    return {"visibility": visibility, "hints": hints, "order": notebook_order(notebooks)}


# ---------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")


def md_text(text):
    """Plain text made literal in Markdown (special characters escaped, ``<`` and ``>`` and
    ``&`` as entities, so that ``<NULL>`` shows as written)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_block(text):
    """A fenced code block that shows ``text`` verbatim (a fence longer than any in it)."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def _points(x):
    return f"{x:g}"


def _split_hints(output):
    """(feedback without its "Hint: " lines, [hint lines]) of one check's output."""
    kept, hints = [], []
    for line in output.splitlines():
        (hints if line.startswith("Hint: ") else kept).append(line)
    return "\n".join(kept), hints


def _feedback(checks, hold_hints):
    """Markdown feedback of one function's checks, and its held-back hints ([(title, hint)])."""
    passed = sum(t["status"] == "passed" for t in checks)
    score = sum(t["score"] for t in checks)
    total = sum(t["max_score"] for t in checks)
    lines = [f"**{passed} of {len(checks)} checks passed** ({_points(score)} / "
             f"{_points(total)} points)"]
    held = []
    for t in checks:
        if t["status"] == "passed":
            continue
        title = t["name"].split(": ", 1)[-1]
        text = t.get("output", "")
        if hold_hints:
            text, hints = _split_hints(text)
            held += [(title, h) for h in hints]
        if text.startswith("FAILED: "):
            text = text[len("FAILED: "):]
        lines.append("")
        lines.append(f"**Failed: {md_text(title)}** ({_points(t['score'])} / "
                     f"{_points(t['max_score'])})")
        lines.append("")
        lines.append(md_block(text.strip() or "(no feedback)"))
    if held:
        lines.append("")
        lines.append("_Hints for these checks are shown after the due date._")
    return "\n".join(lines), held


# ---------------------------------------------------------------- versions

def versions(checks_dir=None):
    """The versions a grade is computed with: Python, numpy, torch and a digest of the hidden
    checks (sha256 of ``autograder/checks/*.py``, first 12 hex digits)."""
    out = {"python": platform.python_version()}
    for package in ("numpy", "torch"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    folder = Path(checks_dir or Path(__file__).resolve().parent / "checks")
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out["checks"] = digest.hexdigest()[:12]
    return out


# ---------------------------------------------------------------- the transformation

def for_gradescope(raw, config, grader_versions=None):
    """Rewrite a raw results.json (one test per hidden check) as Gradescope's users expect it.

    Inputs:
    - raw: the dict ``python -m autograder grade --json`` writes
    - config: the dict of :func:`make_config`
    - grader_versions: the dict of :func:`versions` (computed when None)

    Returns a new dict in Gradescope's results.json schema, with the same total score.
    """
    visibility = config.get("visibility", "visible")
    hold_hints = config.get("hints") == "after_due_date"
    groups = {}
    for test in raw.get("tests", []):
        groups.setdefault(cell_name(test), []).append(test)

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
        checks = groups[cell]
        output, held = _feedback(checks, hold_hints)
        score = round(sum(t["score"] for t in checks), 4)
        max_score = round(sum(t["max_score"] for t in checks), 4)
        name = f"{label} · {cell}"
        tests.append({
            "number": f"{n}.{f}",
            "name": name,
            "score": score,
            "max_score": max_score,
            "status": "passed" if all(t["status"] == "passed" for t in checks) else "failed",
            "output": report._clean(output, limit=20000),
            "output_format": "md",
            "tags": [checks[0]["tags"][0]] if checks[0].get("tags") else [],
            "visibility": visibility,
        })
        if held:
            hint_lines = [f"- **{md_text(title)}**: {md_text(hint[len('Hint: '):])}"
                          for title, hint in held]
            tests.append({
                "number": f"{n}.{f}.1",
                "name": f"{name}: hints",
                "score": 0.0,
                "max_score": 0.0,
                "output": report._clean("\n".join(hint_lines), limit=20000),
                "output_format": "md",
                "tags": tests[-1]["tags"],
                "visibility": "after_due_date",
            })

    summary = [f"- {md_text(line)}" for line in raw.get("output", "").splitlines() if line]
    extra_data = dict(raw.get("extra_data") or {})
    extra_data.setdefault("isolation", "not reported by this grader")
    extra_data["versions"] = grader_versions if grader_versions is not None else versions()
    extra_data["visibility_policy"] = {"tests": visibility,
                                       "hints": config.get("hints", "with_feedback")}
    return {
        "score": raw.get("score", 0.0),  # the total points are set in Gradescope's settings
        "output": "\n".join(summary),
        "output_format": "md",
        "test_output_format": "md",
        "visibility": raw.get("visibility", "visible"),
        "stdout_visibility": "hidden",
        "extra_data": extra_data,
        "tests": tests,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m autograder.gradescope_results",
        description="Rewrite a raw results.json in place for Gradescope (one test per "
                    "function, notebook order, Markdown feedback, visibility policy).")
    parser.add_argument("results", help="results.json written by `python -m autograder grade`")
    parser.add_argument("--config", required=True, help=f"the bundle's {CONFIG_NAME}")
    args = parser.parse_args(argv)
    raw = json.loads(Path(args.results).read_text(encoding="utf-8"))
    config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    report.write_json(for_gradescope(raw, config), args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
