"""The student API contract (``API.md``), written from the reference modules' docstrings.

:func:`markdown` reads ``seqlab/<module>.py`` of the source as text (nothing is imported, so
neither numpy nor torch is needed) and writes, for every student module of the course manifest,
its docstring, then for every API name its signature and docstring (for a class: the
constructor and every public method). ``python -m autograder release`` writes the result to
``docs/API.md`` and ships it with the release as ``API.md``; the docstrings stay the one source.
"""
import ast
import inspect
from pathlib import Path

from autograder import course

# what API.md says before the modules: what the contract is and what the hidden checks grade
HEADER = Path(__file__).with_name("api_header.md").read_text(encoding="utf-8")


def _doc(node: ast.AST) -> str:
    return inspect.cleandoc(ast.get_docstring(node, clean=False) or "(no docstring)")


def _args(func: ast.FunctionDef, method: bool) -> str:
    args = ast.unparse(func.args)
    return args.removeprefix("self").removeprefix(", ") if method else args


def _block(text: str) -> list[str]:
    return ["```text", text, "```", ""]


def _methods(cls: ast.ClassDef) -> list[ast.FunctionDef]:
    return [n for n in cls.body if isinstance(n, ast.FunctionDef)
            and (n.name == "__init__" or not n.name.startswith("_"))]


def _entry(node: ast.AST) -> list[str]:
    """The section of one API name (a function or a class)."""
    if isinstance(node, ast.FunctionDef):
        return [f"### `{node.name}({_args(node, False)})`", ""] + _block(_doc(node))
    methods = _methods(node)
    init = next((m for m in methods if m.name == "__init__"), None)
    lines = [f"### `class {node.name}({_args(init, True) if init else ''})`", ""]
    lines += _block(_doc(node))
    for method in methods:
        if method.name == "__init__":
            if ast.get_docstring(method):
                lines += ["Constructor:", ""] + _block(_doc(method))
            continue
        lines += [f"#### `{node.name}.{method.name}({_args(method, True)})`", ""]
        lines += _block(_doc(method))
    return lines


def markdown(source_dir: Path) -> str:
    """The text of API.md for the assignment source ``source_dir`` (``solutions/<assignment>``).

    Raises KeyError naming an API name that its module does not define at its top level.
    """
    lines = [HEADER]
    for module, (_notebook, names) in course.API.items():
        path = source_dir / course.PACKAGE / f"{module}.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        books = sorted({c.notebook for c in course.check_cells() if c.api in names})
        where = f"notebook{'s' if len(books) > 1 else ''} {', '.join(books)}"
        lines += [f"## `{course.PACKAGE}/{module}.py` ({where})", ""]
        lines += _block(_doc(tree))
        for name in names:
            if name not in defs:
                raise KeyError(f"{path.name} defines no {name}")
            lines += _entry(defs[name])
    return "\n".join(lines).rstrip("\n") + "\n"
