"""The sample class of the similarity report (``tests/corpus/similarity/class/``).

Each student's file holds function bodies only; :func:`student_module` puts them into the
release's stub as a student fills it in. Used by tests/test_similarity.py (which asserts who is
flagged) and benchmarks/similarity_speed.py (which times a larger class built around it).
"""
import ast
import re

from autograder import paths
from seqlab_dev import ROOT

CORPUS = ROOT / "tests" / "corpus" / "similarity"
STUDENTS = ("alice", "bob", "carol", "dave", "erin", "frank")


def fill_stub(stub: str, bodies: str) -> str:
    """The release stub ``stub`` with each ``raise NotImplementedError("<name>...`` line
    replaced by the body of function <name> in ``bodies`` (Python functions)."""
    lines = bodies.splitlines()
    out = stub
    for node in ast.parse(bodies).body:
        if isinstance(node, ast.FunctionDef):
            body = "\n".join(lines[node.body[0].lineno - 1:node.end_lineno])
            pattern = re.compile(r'^    raise NotImplementedError\("%s\b[^\n]*$' % node.name,
                                 re.M)
            out, n = pattern.subn(lambda _, body=body: body, out)
            assert n == 1, f"no stub line for {node.name} in the release"
    return out


def modules_of(name: str) -> list[str]:
    """The student modules the class gives student ``name`` (sorted module names)."""
    return sorted(p.stem for p in (CORPUS / "class" / name).glob("*.py"))


def student_module(name: str, module: str = "rnn_layers") -> str:
    """The text of student ``name``'s ``module``: the release stub with their bodies."""
    stub = (paths.release_dir() / f"{module}.py").read_text(encoding="utf-8")
    return fill_stub(stub, (CORPUS / "class" / name / f"{module}.py").read_text())
