"""Results in Gradescope's ``results.json`` schema, and the readable summary.

The JSON holds no timings and no temporary paths, so grading the same submission twice gives
identical files, and no hidden expected values (``core.redact``): it is what the student reads.
"""
import json
import os
import tempfile

from autograder.checks.core import redact


def _clean(text, limit=4000):
    """Text safe to show: no control characters (ANSI escapes, carriage returns...) but newline
    and tab; at most ``limit`` characters."""
    text = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    if len(text) > limit:
        text = text[:limit] + "\n... (truncated)"
    return text


def clean_line(text, limit=300):
    """A student-derived string (a file name, a message) made safe for one line of a terminal:
    every control character, newlines included, becomes '?'."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def _r(x):
    return round(float(x), 4)


def results_json(sub_result, visibility="visible", isolation=None):
    """Gradescope's results.json of one submission. ``isolation``: the isolation.Isolation the
    grading ran under (written into ``extra_data``)."""
    sub = sub_result.submission
    tests = []
    for r in sub_result.results:
        c = r.check
        tests.append({
            "name": f"{c.api}: {c.title}",
            "score": _r(r.score),
            "max_score": _r(c.points),
            "status": "passed" if r.passed else "failed",
            "output": _clean(redact(r.output)),
            "tags": list(c.all_tags),
            "visibility": c.visibility if c.visibility else visibility,
        })
    lines = []
    for mod in sorted(sub.found_at):
        lines.append(f"found {mod}.py at {clean_line(sub.found_at[mod])}")
    for mod in sub.missing:
        lines.append(f"{mod}.py not found in the submission")
    for p in sub.problems:
        lines.append(clean_line(p, 1000))
    not_graded = [r for r in sub_result.results if getattr(r, "not_graded", False)]
    if not_graded:
        lines.append(f"{len(not_graded)} check(s) could not run and are NOT GRADED yet (scored 0 "
                     f"until the course staff regrade): "
                     + "; ".join(f"{r.check.api}: {r.check.title}" for r in not_graded[:10]))
    lines.append(f"total: {_r(sub_result.score):g} / {_r(sub_result.max_score):g}")
    data = {
        "score": _r(sub_result.score),
        "max_score": _r(sub_result.max_score),
        "output": _clean("\n".join(lines)),
        "visibility": visibility,
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if isolation is not None:
        data["extra_data"] = {"isolation": isolation.as_json()}
    return data


def write_json(data, path):
    """Write ``data`` as indented JSON to ``path``, atomically (see ``write_text``)."""
    write_text(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n", path)


def write_text(text, path):
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
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def error_json(message):
    """A valid results.json for a grading run that could not complete."""
    return {"score": 0.0, "output": _clean("The autograder failed: " + message),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def note_dependencies(results):
    """Where a failed check also ran student functions (its other tags) that fail their own
    checks, say so first in its feedback ("depends on X, which fails its own checks: fix X
    first"), so that the student looks where the bug is. ``results``: the CheckResults of one
    submission; changed in place."""
    failing = {r.check.api for r in results if not r.passed}
    for r in results:
        if r.passed or getattr(r, "not_graded", False):
            continue
        deps = [t for t in r.check.all_tags[1:] if t in failing and t != r.check.api]
        if not deps:
            continue
        one = len(deps) == 1
        note = (f"depends on {', '.join(deps)}, which {'fails its' if one else 'fail their'} "
                f"own checks: fix {'it' if one else 'them'} first. ")
        if r.output.startswith("FAILED: "):
            r.output = "FAILED: " + note + r.output[len("FAILED: "):]
        else:
            r.output = "FAILED: " + note + r.output


def _reason(output):
    """(first line without "FAILED: ", the "Hint: " line or "") of a check's feedback."""
    lines = output.splitlines()
    first = lines[0] if lines else ""
    first = first[len("FAILED: "):] if first.startswith("FAILED: ") else first
    hint = next((line for line in lines if line.startswith("Hint: ")), "")
    return first, hint


def summary(sub_result, verbose=False, quiet=False):
    """Readable summary: the total, a total per notebook, then per API name the points and
    what failed and why (each hint once). CaptioningRNN's checks are shown under the notebook
    of their cell type. Without ``verbose``: at most three failed checks per API name and no
    expected values (as the student sees them); ``quiet``: the total line only."""
    from autograder.checks.core import NOTEBOOKS, notebook_of
    sub = sub_result.submission
    head = (f"== {clean_line(sub.name)}: {_r(sub_result.score):g} / "
            f"{_r(sub_result.max_score):g} points")
    not_graded = [r for r in sub_result.results if getattr(r, "not_graded", False)]
    if not_graded:
        head += f"   NOT GRADED: {len(not_graded)} check(s) could not run twice: regrade"
    if quiet:
        return head
    out = [head]
    for p in sub.problems:
        out.append(f"   note: {clean_line(p)}")
    books = {}
    for r in sub_result.results:
        books.setdefault(notebook_of(r.check), {}).setdefault(r.check.api, []).append(r)
    width = max((len(a) for g in books.values() for a in g), default=10)
    for book in sorted(books):
        groups = books[book]
        rs_all = [r for rs in groups.values() for r in rs]
        out.append(f" notebook {NOTEBOOKS.get(book, book or '?')}: "
                   f"{_r(sum(r.score for r in rs_all)):g} / "
                   f"{_r(sum(r.check.points for r in rs_all)):g}")
        for api, rs in groups.items():
            got = sum(r.score for r in rs)
            total = sum(r.check.points for r in rs)
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
                reason, hint = _reason(r.output if verbose else redact(r.output))
                out.append(f"        - {r.check.title}: {clean_line(reason)}")
                if hint and hint not in hints:
                    hints.add(hint)
                    out.append(f"          {clean_line(hint)}")
            if len(failed) > 3 and not verbose:
                out.append(f"        ... and {len(failed) - 3} more (--verbose lists them)")
    return "\n".join(out)
