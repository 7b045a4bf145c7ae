"""Text and figure checks of the student release: what a student reads must point at what they have.

The release (``assignments/sequence_models/``) travels alone: to a student's laptop in the bundle,
through nbgrader's exchange, into Gradescope. :func:`text_problems` rejects text that points
outside it or shows badly in a browser:

- a link or image (Markdown ``[..](target)`` / ``![..](target)``, HTML ``src=`` / ``href=``)
  whose target is not a shipped file inside the assignment folder (figures travel with the
  notebooks: ``images/NAME.png``);
- a file path in backticks (``seqlab/x.py``, ``datasets/x.py``) naming a file that is not shipped;
- an absolute path (``/home/...``, ``C:\\...``): it names a file on someone else's machine;
- the words "study note" (material the student does not have);
- CJK code points (shown as boxes in a browser without CJK fonts).

Web links (``https://...``), anchors (``#section``) and cell attachments are allowed.
"""
import json
import posixpath
import re
from collections.abc import Iterable

TEXT_SUFFIXES = (".py", ".ipynb", ".md", ".txt", ".cfg", ".toml", ".json")

_MD_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_LINK = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_CODE_PATH = re.compile(r"`((?:[\w.-]+/)+[\w-]+\.\w+)`")
_ABSOLUTE = re.compile(r"""(?:^|(?<=[\s`'"(\[=]))(?:/[\w.-]+(?:/[\w.-]+)+|~/[\w.-]+"""
                       r"""|[A-Za-z]:\\(?:[\w .-]+\\)+)""", re.MULTILINE)
_FORBIDDEN_WORDS = re.compile(r"study\s+notes?", re.IGNORECASE)
_CJK = re.compile("[\u1100-\u11ff\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u31ff"
                  "\u3200-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
                  "\U00020000-\U0003134f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _pieces(rel, data):
    """(where, kind, text) for every piece of text of a file: one per notebook cell."""
    text = data.decode("utf-8", errors="replace")
    if not rel.endswith(".ipynb"):
        yield rel, "markdown" if rel.endswith(".md") else "text", text
        return
    for index, cell in enumerate(json.loads(text)["cells"]):
        source = cell["source"]
        source = "".join(source) if isinstance(source, list) else source
        yield f"{rel} (cell {index})", cell["cell_type"], source


def _resolve(folder, target):
    """``target`` relative to ``folder`` (both posix, inside the assignment), or None when it
    leaves the assignment folder."""
    path = posixpath.normpath(posixpath.join(folder, target))
    return None if path == ".." or path.startswith("../") or path.startswith("/") else path


def _link_problem(folder, target, shipped):
    target = target.split("#", 1)[0].split("?", 1)[0]
    if not target or _SCHEME.match(target):  # an anchor, a web link, attachment:NAME
        return None
    if _ABSOLUTE.match(target):
        return None  # reported once, as an absolute path
    path = _resolve(folder, target)
    if path is None:
        return f"links to {target!r}, outside the assignment folder"
    if path not in shipped:
        return f"links to {target!r}, which is not shipped"
    return None


def text_problems(files: dict[str, bytes], also_shipped: Iterable[str] = ()) -> list[str]:
    """Problems of the release's text, as a list of ``"where: what"`` strings (empty when fine).

    Inputs:
    - files: {relative posix path (str) inside the assignment folder: bytes}, the whole release
      (every file, so that links can be checked against it)
    - also_shipped: paths the student also has, relative to the bundle's root (e.g.
      ``datasets/encoder.py``), which backticked paths may name
    """
    shipped = set(files)
    problems = []
    for rel in sorted(files):
        if not rel.endswith(TEXT_SUFFIXES):
            continue
        folder = posixpath.dirname(rel)
        for where, kind, text in _pieces(rel, files[rel]):
            for match in _FORBIDDEN_WORDS.finditer(text):
                problems.append(f"{where}: says {match.group(0)!r} (material the student "
                                "does not have)")
            cjk = sorted(set(_CJK.findall(text)))
            if cjk:
                problems.append(f"{where}: CJK characters {''.join(cjk[:8])!r} (boxes in a "
                                "browser without CJK fonts)")
            for match in _ABSOLUTE.finditer(text):
                problems.append(f"{where}: absolute path {match.group(0)!r}")
            if kind == "markdown":
                targets = _MD_LINK.findall(text) + _HTML_LINK.findall(text)
                for target in targets:
                    problem = _link_problem(folder, target, shipped)
                    if problem:
                        problems.append(f"{where}: {problem}")
            if kind in ("markdown", "code"):
                for path in _CODE_PATH.findall(text):
                    inside = _resolve(folder, path)
                    if inside not in shipped and path not in also_shipped:
                        problems.append(f"{where}: names `{path}`, which is not shipped")
    return problems


def image_links(notebook_bytes: bytes) -> list[str]:
    """Every image a notebook's Markdown cells show: a list of link targets (str), in order."""
    targets = []
    for _, kind, source in _pieces(".ipynb", notebook_bytes):
        if kind != "markdown":
            continue
        targets += re.findall(r"!\[[^\]\n]*\]\(\s*<?([^)\s>]+)", source)
        targets += re.findall(r"""<img[^>]*\bsrc\s*=\s*["']([^"']+)["']""", source, re.IGNORECASE)
    return targets
