"""The course manifest (autograder/course.py) is the one place that names the course's parts.

A *copy of the contract* is, in a Python file of the repository: a list, tuple or set literal,
or the keys of a dict literal whose values are all plain constants (a lookup table), that holds

- 3 or more distinct student module names (``rnn_layers``, ``rnn_layers.py`` or
  ``seqlab/rnn_layers.py`` count alike), or
- every API name of one student module that has 3 or more (a module's whole API).

A smaller selection (the functions a check also runs, the names one test grades) is a test's
own data, not a copy. Not scanned: the manifest itself, the generated release (assignments/)
and the student package with its public tests (solutions/): they are what the manifest
describes, and what students receive cannot read the grader's manifest.
"""
import ast
import json
import os
from pathlib import Path

from autograder import course

ROOT = Path(__file__).resolve().parent.parent
NOT_SCANNED = {"assignments", "solutions"}
MANIFEST = ROOT / "autograder" / "course.py"
# Files that still hold a copy, owned by work in progress; this list only shrinks.
ALLOWED = set()


def _name(node):
    """The module or API name a string constant spells, else None."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    text = node.value.removeprefix(f"{course.PACKAGE}/")
    return text.removesuffix(".py") if text.endswith(".py") else text


def _collections(tree):
    """The element lists of every list/tuple/set literal and of every constant-valued dict's
    keys in a parsed file: (line, [element nodes])."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            yield node.lineno, node.elts
        elif isinstance(node, ast.Dict) and all(isinstance(v, ast.Constant) for v in node.values):
            yield node.lineno, [k for k in node.keys if k is not None]


def copies(text):
    """Lines of ``text`` (Python source) where a copy of the contract starts (see above)."""
    whole = [set(names) for _, names in course.API.values() if len(names) >= 3]
    found = []
    for line, elements in _collections(ast.parse(text)):
        names = {_name(e) for e in elements} - {None}
        if len(names & set(course.STUDENT_MODULES)) >= 3 or any(api <= names for api in whole):
            found.append(line)
    return sorted(found)


def _python_files():
    for folder, subdirs, files in os.walk(ROOT):
        rel = Path(folder).relative_to(ROOT)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")
                            and not (rel == Path(".") and d in NOT_SCANNED)
                            and d not in course.PACK_IGNORE)
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(folder) / name


def test_the_scan_finds_copies():
    assert copies('MODULES = ["rnn_layers", "lstm_layers.py", "seqlab/captioning.py"]') == [1]
    assert copies('X = {"rnn_layers": "01",\n "lstm_layers": "02", "captioning": "01"}') == [1]
    assert copies("\n\nfor a in (" + ", ".join(map(repr, course.API["lstm_layers"][1])) + "):\n"
                  "    pass") == [3]
    assert copies('USES = ("rnn_forward", "rnn_backward", "lstm_forward")') == []
    assert copies('DEPENDS = {"rnn_layers": {"a"}, "lstm_layers": set(), "captioning": set()}') \
        == []
    assert copies('MODULE_OF = {m: "x" for m in course.STUDENT_MODULES}') == []


def test_no_copy_of_the_module_or_api_names_outside_the_manifest():
    files = list(_python_files())
    assert ROOT / "autograder" / "runner.py" in files and len(files) > 50  # not vacuous
    found = {}
    for path in files:
        if path == MANIFEST:
            continue
        lines = copies(path.read_text(encoding="utf-8"))
        if lines:
            found[path.relative_to(ROOT).as_posix()] = lines
    unexpected = {p: lines for p, lines in found.items() if p not in ALLOWED}
    assert not unexpected, ("lists of the course's module or API names outside "
                            f"autograder/course.py (read them from it): {unexpected}")
    fixed = ALLOWED - set(found)
    assert not fixed, f"no copy left in {sorted(fixed)}: remove them from ALLOWED"


def test_the_manifest_matches_the_notebooks_check_cells():
    """Every check cell (grade_id ``check_*``) of each source notebook, in order, is the
    manifest's."""
    source = ROOT / "solutions" / course.ASSIGNMENT
    for key in course.NOTEBOOKS:
        nb = json.loads((source / course.notebook_file(key)).read_text(encoding="utf-8"))
        ids = [cell["metadata"].get("nbgrader", {}).get("grade_id", "") for cell in nb["cells"]]
        have = [i for i in ids if i.startswith("check_")]
        assert have == [c.grade_id for c in course.check_cells() if c.notebook == key], key


def test_the_manifest_matches_the_reference_modules():
    """Each API name is defined at the top level of its module, and each module exists."""
    ref = ROOT / "solutions" / course.ASSIGNMENT / course.PACKAGE
    for module, (_, names) in course.API.items():
        tree = ast.parse((ref / f"{module}.py").read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert set(names) <= defined, (module, set(names) - defined)


def test_captioning_cells():
    assert course.notebook_of("CaptioningRNN") == "01"
    assert course.notebook_of("CaptioningRNN", "lstm") == "02"
    assert course.cell_name("CaptioningRNN", "attention") == "CaptioningRNN_attention"
    assert course.cell_name("CaptioningRNN", "rnn") == "CaptioningRNN"
    assert course.notebook_of("lstm_forward") == "02"
    assert len(course.API_NAMES) == len(set(course.API_NAMES)) == len(course.MODULE_OF)


def test_the_manifest_imports_nothing_but_the_standard_library():
    tree = ast.parse(MANIFEST.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"dataclasses"}, imported
