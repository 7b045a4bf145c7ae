"""Check results, and every rendering of them: text, results.json, the terminal summary.

The grading produces one :class:`CheckResult` per check, once; this module renders it for each
reader. What a student reads (results.json, Gradescope, nbgrader's feedback) holds the
``message``, never the ``detail`` (the same message with the hidden expected values), which
only the instructor's terminal shows, with ``--verbose``. The JSON holds no timings and no
temporary paths, so grading the same submission twice gives identical files.
"""
import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from autograder import course

if TYPE_CHECKING:  # runner imports this module
    from autograder.runner import SubmissionResult

NOT_GRADED = ("NOT GRADED: this check could not run, twice (the second time in a fresh "
              "worker); it is not scored as your failure until the course staff regrade it. ")
PRINTED_LIMIT = 600  # characters of a check's printed output that its feedback shows


@dataclass
class CheckResult:
    """The result of one check of one submission.

    What the check is: ``id``, ``api`` (its group), ``title``, ``points``, ``tags`` (its API
    name first), ``visibility``, ``notebook`` ("01".."04") and ``cell`` (the name of its
    notebook check cell: the API name, or ``CaptioningRNN_lstm`` / ``_attention``). What it
    gave: ``passed``; ``message`` (why it failed, or a note when it passed), ``hint``,
    ``printed`` (what the student's code printed, at most ``PRINTED_LIMIT`` characters),
    ``detail`` (the message with the hidden expected values: instructor only, "" when it says
    nothing more), ``depends_on`` (failing API names this check also ran), ``could_not_run``
    (a timeout, a skipped call, an internal error) and ``not_graded`` (could not run twice).
    """
    id: str
    api: str
    title: str
    points: float
    tags: tuple
    visibility: str
    notebook: str
    cell: str
    passed: bool = False
    message: str = ""
    hint: str = ""
    printed: str = ""
    detail: str = ""
    depends_on: tuple = ()
    could_not_run: bool = False
    not_graded: bool = False

    @classmethod
    def of(cls, check, passed: bool = False, **fields) -> "CheckResult":
        """The result of ``check`` (a ``checks.core.Check``); ``fields``: what it gave."""
        from autograder.checks.core import notebook_of
        return cls(id=check.id, api=check.api, title=check.title, points=check.points,
                   tags=check.all_tags, visibility=check.visibility, notebook=notebook_of(check),
                   cell=check.cell.removeprefix("check_"), passed=passed, **fields)

    @property
    def score(self) -> float:
        return self.points if self.passed else 0.0


def clean_text(text: str, limit: int = 4000) -> str:
    """Text safe to show: no control characters (ANSI escapes, carriage returns...) but newline
    and tab; at most ``limit`` characters."""
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    if len(text) > limit:
        text = text[:limit] + "\n... (truncated)"
    return text


def clean_line(text: object, limit: int = 300) -> str:
    """A student-derived string (a file name, a message) made safe for one line of a terminal:
    every control character, newlines included, becomes '?'."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def rounded(x: float) -> float:
    """``x`` as results.json writes points: a float rounded to 4 decimals."""
    return round(float(x), 4)


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON to ``path``, atomically (see ``write_text``)."""
    write_text(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n", path)


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder (mode 0644),
    then a rename, so a reader never sees half a file."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".seqlab-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def error_json(message: str) -> dict:
    """A valid results.json for a grading run that could not complete."""
    return {"score": 0.0, "output": clean_text("The autograder failed: " + message),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def note_dependencies(results: list) -> None:
    """Where a failed check also ran student functions (its other tags) that fail their own
    checks, record them (``depends_on``): its feedback says so first ("depends on X, which
    fails its own checks: fix X first"), so that the student looks where the bug is.
    ``results``: the CheckResults of one submission; changed in place."""
    failing = {r.api for r in results if not r.passed}
    for r in results:
        if not r.passed and not r.not_graded:
            r.depends_on = tuple(t for t in r.tags[1:] if t in failing and t != r.api)


def headline(r: CheckResult, verbose: bool = False) -> str:
    """Why a failed check failed: NOT GRADED or the dependency note, then the message (the
    detail, with the expected values, when ``verbose``)."""
    text = r.detail if verbose and r.detail else r.message
    if r.not_graded:
        return NOT_GRADED + text
    if r.depends_on:
        one = len(r.depends_on) == 1
        text = (f"depends on {', '.join(r.depends_on)}, which "
                f"{'fails its' if one else 'fail their'} own checks: fix "
                f"{'it' if one else 'them'} first. " + text)
    return text


def feedback(r: CheckResult, label: bool = True, hint: bool = True) -> str:
    """The feedback text of one check, as results.json holds it: "passed" or "FAILED: "
    (``label``) with the headline, the "Hint: " line (``hint``), what the code printed."""
    if r.passed:
        lines = ["passed" + (f": {r.message}" if r.message else "")]
    else:
        lead = "FAILED: " if label and not r.not_graded else ""
        lines = [lead + headline(r)]
        if r.hint and hint:
            lines.append(f"Hint: {r.hint}")
    if r.printed:
        lines.append("Your code printed:\n" + r.printed)
    return "\n".join(lines)


def printed_text(outputs: Iterable[str]) -> str:
    """What a check's calls printed (``outputs``: their texts), stripped, at most
    ``PRINTED_LIMIT`` characters ("" when nothing was printed)."""
    text = "".join(o for o in outputs if o).strip()
    return text[:PRINTED_LIMIT] + " ..." if len(text) > PRINTED_LIMIT else text


def results_json(sub_result: "SubmissionResult", visibility: str = "visible",
                 isolation=None) -> dict:
    """Gradescope's results.json of one submission (a ``runner.SubmissionResult``): one test
    per check. ``isolation``: the isolation.Isolation the grading ran under (written into
    ``extra_data``)."""
    tests = [{
        "name": f"{r.api}: {r.title}",
        "score": rounded(r.score),
        "max_score": rounded(r.points),
        "status": "passed" if r.passed else "failed",
        "output": clean_text(feedback(r)),
        "tags": list(r.tags),
        "visibility": r.visibility if r.visibility else visibility,
        "extra_data": {"cell": r.cell},
    } for r in sub_result.results]
    data = {
        "score": rounded(sub_result.score),
        "max_score": rounded(sub_result.max_score),
        "output": clean_text("\n".join(submission_notes(sub_result))),
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if isolation is not None:
        data["extra_data"] = {"isolation": isolation.as_json()}
    return data


def submission_notes(sub_result: "SubmissionResult") -> list[str]:
    """The lines about the whole submission: where each module was found, what is missing,
    the loader's problems, the checks NOT GRADED, the total."""
    sub = sub_result.submission
    lines = [f"found {mod}.py at {clean_line(sub.found_at[mod])}" for mod in sorted(sub.found_at)]
    lines += [f"{mod}.py not found in the submission" for mod in sub.missing]
    lines += [clean_line(p, 1000) for p in sub.problems]
    not_graded = [r for r in sub_result.results if r.not_graded]
    if not_graded:
        lines.append(f"{len(not_graded)} check(s) could not run and are NOT GRADED yet (scored 0 "
                     f"until the course staff regrade): "
                     + "; ".join(f"{r.api}: {r.title}" for r in not_graded[:10]))
    lines.append(f"total: {rounded(sub_result.score):g} / {rounded(sub_result.max_score):g}")
    return lines


def summary(sub_result: "SubmissionResult", verbose: bool = False, quiet: bool = False) -> str:
    """Readable summary: the total, a total per notebook, then per API name the points and
    what failed and why (each hint once). CaptioningRNN's checks are shown under the notebook
    of their cell type. Without ``verbose``: at most three failed checks per API name and no
    expected values (as the student sees them); ``quiet``: the total line only."""
    sub = sub_result.submission
    head = (f"== {clean_line(sub.name)}: {rounded(sub_result.score):g} / "
            f"{rounded(sub_result.max_score):g} points")
    not_graded = [r for r in sub_result.results if r.not_graded]
    if not_graded:
        head += f"   NOT GRADED: {len(not_graded)} check(s) could not run twice: regrade"
    if quiet:
        return head
    out = [head] + [f"   note: {clean_line(p)}" for p in sub.problems]
    books = {}
    for r in sub_result.results:
        books.setdefault(r.notebook, {}).setdefault(r.api, []).append(r)
    width = max((len(a) for g in books.values() for a in g), default=10)
    for book in sorted(books):
        groups = books[book]
        rs_all = [r for rs in groups.values() for r in rs]
        out.append(f" notebook {course.NOTEBOOKS.get(book, book or '?')}: "
                   f"{rounded(sum(r.score for r in rs_all)):g} / "
                   f"{rounded(sum(r.points for r in rs_all)):g}")
        for api, rs in groups.items():
            got = sum(r.score for r in rs)
            total = sum(r.points for r in rs)
            failed = [r for r in rs if not r.passed]
            mark = "ok " if not failed else "BAD"
            part = ""
            if api == "CaptioningRNN":
                part = {"01": " (cell_type='rnn' and vocabulary checks)",
                        "02": " (cell_type='lstm')", "03": " (cell_type='attention')"}.get(book, "")
            out.append(f"  [{mark}] {api:<{width}}  {got:5.2f} / {total:5.2f}"
                       + (f"   ({len(failed)} of {len(rs)} checks failed)" if failed else "")
                       + part)
            hints = set()
            for r in failed[: (len(failed) if verbose else 3)]:
                out.append(f"        - {r.title}: {clean_line(_first_line(headline(r, verbose)))}")
                hint = _first_line(r.hint)
                if hint and hint not in hints:
                    hints.add(hint)
                    out.append(f"          {clean_line('Hint: ' + hint)}")
            if len(failed) > 3 and not verbose:
                out.append(f"        ... and {len(failed) - 3} more (--verbose lists them)")
    return "\n".join(out)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def record(sub_result: "SubmissionResult", notes: Iterable[str] = ()) -> dict:
    """The results of one submission as JSON data, without the details (the nbgrader result
    cache holds it): ``notes`` then :func:`submission_notes`, and each CheckResult but its
    ``detail`` under ``tests``."""
    return {"notes": list(notes) + submission_notes(sub_result),
            "tests": [{k: v for k, v in asdict(r).items() if k != "detail"}
                      for r in sub_result.results]}


def from_record(data: dict) -> list:
    """The CheckResults of a :func:`record`."""
    return [CheckResult(**t) for t in data["tests"]]


@dataclass
class CellReport:
    """What a graded notebook cell says: ``lines`` (printed), the points ``earned`` of
    ``total``, and ``error``: the AssertionError's message when no check passed or there is
    no result (0 points), else None."""
    lines: list
    earned: float
    total: float
    error: str = None


def nbgrader_cell(cell: str, results: list) -> CellReport:
    """The graded cell ``check_<cell>`` of ``results`` (one submission's CheckResults): how many
    of its hidden checks passed, and for each failed one its title, the first line of why
    (never an expected value) and its hint."""
    rs = [r for r in results if r.cell == cell]
    if not rs:
        return CellReport([f"{cell}: no result"], 0.0, 0.0,
                          f"{cell}: the autograder produced no result")
    failed = [r for r in rs if not r.passed]
    got = sum(rounded(r.score) for r in rs)
    total = sum(rounded(r.points) for r in rs)
    lines = [f"{cell}: {len(rs) - len(failed)} of {len(rs)} hidden checks passed "
             f"({got:g} / {total:g} points)"]
    for r in failed:
        lines.append(f"  - {r.title}: {_first_line(headline(r))[:240]}")
        if r.hint:
            lines.append("    " + f"Hint: {_first_line(r.hint)}"[:240])
    error = None
    if failed and got <= 0:
        error = f"{cell}: {len(failed)} of {len(rs)} hidden checks failed"
    return CellReport(lines, float(got), float(total), error)


# --------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*\[\]|])")


def md_text(text: str) -> str:
    """Plain text made literal in Markdown (special characters escaped, ``<`` and ``>`` and
    ``&`` as entities, so that ``<NULL>`` shows as written)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_block(text: str) -> str:
    """A fenced code block that shows ``text`` verbatim (a fence longer than any in it)."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}text\n{text}\n{fence}"


def markdown(results: list, hold_hints: bool = False) -> str:
    """Markdown feedback of one function's CheckResults (Gradescope's test output): how many
    checks passed, then each failed check with its feedback in a code block; with
    ``hold_hints`` without the hints (:func:`markdown_hints` shows them later)."""
    passed = sum(r.passed for r in results)
    lines = [f"**{passed} of {len(results)} checks passed** "
             f"({sum(rounded(r.score) for r in results):g} / "
             f"{sum(rounded(r.points) for r in results):g} points)"]
    for r in results:
        if r.passed:
            continue
        text = feedback(r, label=False, hint=not hold_hints)
        lines += ["", f"**Failed: {md_text(r.title)}** "
                      f"({rounded(r.score):g} / {rounded(r.points):g})",
                  "", md_block(text.strip() or "(no feedback)")]
    if hold_hints and any(r.hint for r in results if not r.passed):
        lines += ["", "_Hints for these checks are shown after the due date._"]
    return "\n".join(lines)


def markdown_hints(results: list) -> str:
    """Markdown list of the hints of one function's failed checks ("" when there is none)."""
    return "\n".join(f"- **{md_text(r.title)}**: {md_text(r.hint)}"
                     for r in results if not r.passed and r.hint)
