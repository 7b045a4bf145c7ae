"""The HTML report of ``python -m autograder similarity``.

One self-contained file (inline CSS, no script, nothing fetched) that a browser opens from disk:
the settings, how the scores are spread, the ranked list of pairs with a score per module, and
for each listed pair and module the two files side by side with the matched regions marked.
Everything taken from a submission (names, paths, code) is HTML-escaped: the report shows
student text, it never lets it act. The same inputs give the same bytes (no times, no paths of
the machine that made it).
"""
from html import escape
from pathlib import Path

from autograder import course, report
from autograder.similarity import Inputs, Settings, module_score

MAX_ROWS = 200    # pairs listed in the ranked table (the JSON output has every pair)
MAX_DETAILS = 50  # of these, the first pairs shown side by side
CONTEXT = 8       # unmatched lines shown around each matched region

CSS = Path(__file__).with_name("similarity_report.css").read_text()  # the report's style


def _pct(x):
    return f"{100 * x:.0f}%"


def highlighted(code: str, slices) -> str:
    """``code`` (str) as escaped HTML with each matched region (``slices``: (2, R) int array of
    raw start/end offsets) wrapped in ``<mark class="match">``; runs of unmatched lines longer
    than 2 * ``CONTEXT`` are shortened to ``...``."""
    from copydetect.utils import highlight_overlap
    if slices.shape[1] == 0:
        return escape(code)
    text, _ = highlight_overlap(code, slices, '<mark class="match">', "</mark>",
                                truncate=CONTEXT, escape_html=True)
    return text


def _distribution(pairs):
    bins = [0] * 10
    for p in pairs:
        for x in p.matches.values():
            bins[min(int(module_score(x, p.kind) * 10), 9)] += 1
    rows = "".join(f"<tr><td>{10 * i}-{10 * i + 10}%</td><td class='num'>{n}</td></tr>"
                   for i, n in enumerate(bins))
    return ("<h2>How the scores are spread</h2><p class='note'>Every (pair, module) "
            "comparison, by score. Honest work sits at the bottom; a gap above it is where "
            "the threshold belongs.</p><table><tr><th>score</th><th>comparisons</th></tr>"
            f"{rows}</table>")


def _listed(pairs):
    """[(rank, pair)] of the table: the first MAX_ROWS pairs with any match."""
    return [(rank, p) for rank, p in enumerate(pairs[:MAX_ROWS], 1) if p.score > 0]


def _table(listed, settings):
    head = "".join(f"<th>{escape(m)}</th>" for m in course.STUDENT_MODULES)
    rows = []
    for rank, p in listed:
        cells = []
        for m in course.STUDENT_MODULES:
            x = p.matches.get(m)
            if x is None:
                cells.append("<td class='num'>-</td>")
                continue
            cls = "num hot" if m in p.flagged else "num"
            label = _pct(module_score(x, p.kind))
            if x.overlap and rank <= MAX_DETAILS:
                label = f"<a href='#p{rank}-{m}'>{label}</a>"
            cells.append(f"<td class='{cls}'>{label}</td>")
        flag = "flagged" if p.flagged else ""
        rows.append(f"<tr class='{flag}'><td class='num'>{rank}</td><td>{escape(p.a)}</td>"
                    f"<td>{escape(p.b)}</td><td>{p.kind}</td><td class='num'>{_pct(p.score)}"
                    f"</td>{''.join(cells)}<td>{'yes' if p.flagged else ''}</td></tr>")
    return ("<h2>Pairs, ranked</h2><p class='note'>Score of a module: the share of a student's "
            "own code (release text excluded) found in the other file; between two students "
            "the higher of the two shares, against the corpus the student's share (best "
            f"corpus file). Flagged: score at least {_pct(settings.threshold)} and at least "
            f"{settings.min_match} matching characters after normalisation. Pairs with no "
            f"match, and pairs ranked below {MAX_ROWS}, are only in the JSON output (--json); "
            f"the first {MAX_DETAILS} are shown side by side below."
            "</p><table><tr><th>#</th><th>submission</th><th>compared with</th><th>kind</th>"
            f"<th>score</th>{head}<th>flagged</th></tr>{''.join(rows)}</table>")


def _details(listed):
    out = ["<h2>Matched regions</h2><p class='note'>Marked: code found in both files (names "
           "and strings may differ: they are normalised before matching).</p>"]
    for rank, p in listed[:MAX_DETAILS]:
        for m, x in p.matches.items():
            if not x.overlap:
                continue
            out.append(
                f"<section class='pair' id='p{rank}-{m}'><h3>#{rank} {escape(p.a)} ~ "
                f"{escape(p.b)}: {escape(m)} {_pct(module_score(x, p.kind))}"
                f"{' (flagged)' if m in p.flagged else ''}</h3><div class='sides'>"
                f"<div class='side'><h4>{escape(p.a)}: {escape(x.a.path)} "
                f"({_pct(x.score_a)} matched)</h4><pre class='code'>"
                f"{highlighted(x.a.code, x.slices_a)}</pre></div>"
                f"<div class='side'><h4>{escape(p.b)}: {escape(x.b.path)} "
                f"({_pct(x.score_b)} matched)</h4><pre class='code'>"
                f"{highlighted(x.b.code, x.slices_b)}</pre></div></div></section>")
    return "".join(out)


def render(pairs, inputs, settings) -> str:
    """The report as a str of HTML. ``pairs``: ranked [similarity.Pair]; ``inputs``:
    similarity.Inputs; ``settings``: similarity.Settings."""
    listed = _listed(pairs)
    flagged = sum(1 for p in pairs if p.flagged)
    problems = "".join(f"<li>{escape(x)}</li>" for x in inputs.problems)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>seqlab similarity report</title>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<style>\n{CSS}</style></head><body><h1>seqlab similarity report</h1>"
        f"<p>{len(inputs.students)} submission(s), {len(inputs.corpus)} corpus source(s), "
        f"{len(pairs)} pair(s); <strong>{flagged} flagged</strong>.</p>"
        f"<p class='note'>Settings: threshold {settings.threshold:g}, minimum match "
        f"{settings.min_match} characters, k-gram {settings.noise}, window {settings.window}, "
        f"common-code cut {settings.common:g}. A flag is a reason to read both files, not "
        "a verdict.</p>"
        + (f"<h2>Notes</h2><ul>{problems}</ul>" if problems else "")
        + _distribution(pairs) + _table(listed, settings) + _details(listed)
        + "</body></html>\n")


def write(path: str | Path, pairs: list, inputs: Inputs, settings: Settings) -> None:
    """Render the report and write it to ``path`` (replaced atomically)."""
    report.write_text(render(pairs, inputs, settings), path)
