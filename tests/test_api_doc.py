"""docs/API.md, the student API contract: a section for every API name of the course manifest,
with the signature of the reference implementation (checked against ``inspect.signature`` of
the imported reference, independently of how the document is generated)."""
import ast
import inspect
import re
from pathlib import Path

import pytest

from autograder import api_doc, course, reference

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "API.md"
SECTION = re.compile(r"^### `(?:class )?(\w+)\((.*)\)`$", re.MULTILINE)
METHOD = re.compile(r"^#### `(\w+)\.(\w+)\((.*)\)`$", re.MULTILINE)


def _documented(args, namespace):
    """[(name, kind, default)] of a documented argument list; defaults evaluated in the
    reference module's namespace (``np.float32`` is numpy's float32)."""
    fn = ast.parse(f"def f({args}): pass").body[0].args
    out = []
    plain = fn.posonlyargs + fn.args
    defaults = [None] * (len(plain) - len(fn.defaults)) + fn.defaults
    for arg, default in zip(plain, defaults):
        out.append((arg.arg, "positional", default))
    if fn.vararg:
        out.append((fn.vararg.arg, "*", None))
    for arg, default in zip(fn.kwonlyargs, fn.kw_defaults):
        out.append((arg.arg, "keyword", default))
    if fn.kwarg:
        out.append((fn.kwarg.arg, "**", None))
    return [(name, kind, inspect.Parameter.empty if d is None
             else eval(compile(ast.Expression(d), "<API.md>", "eval"), namespace))
            for name, kind, d in out]


_KIND = {inspect.Parameter.POSITIONAL_ONLY: "positional",
         inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
         inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.KEYWORD_ONLY: "keyword",
         inspect.Parameter.VAR_KEYWORD: "**"}


def _actual(fn):
    return [(p.name, _KIND[p.kind], p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.fixture(scope="module")
def doc():
    return DOC.read_text(encoding="utf-8")


def test_every_api_name_has_one_section(doc):
    assert [name for name, _ in SECTION.findall(doc)] == list(course.API_NAMES)


@pytest.mark.parametrize("api", course.API_NAMES)
def test_section_signature_is_the_reference_signature(doc, api):
    module = reference.module(course.MODULE_OF[api])
    obj = getattr(module, api)
    args = dict(SECTION.findall(doc))[api]
    assert _documented(args, vars(module)) == _actual(obj), (api, args)
    if inspect.isclass(obj):
        methods = {m: a for cls, m, a in METHOD.findall(doc) if cls == api}
        public = {m for m, v in vars(obj).items() if inspect.isfunction(v) and m[0] != "_"}
        assert set(methods) == public, api
        for name, margs in methods.items():
            assert _documented(margs, vars(module)) == _actual(getattr(obj, name))[1:], \
                (api, name)


def test_the_signature_check_can_fail():
    namespace = {"np": __import__("numpy")}
    assert _documented("x, y=2", namespace) != _actual(lambda x, y=3: None)
    assert _documented("x, *, y=2", namespace) != _actual(lambda x, y=2: None)
    assert _documented("x, y=2", namespace) == _actual(lambda x, y=2: None)


def test_the_doc_is_written_from_the_docstrings(doc):
    """docs/API.md is what ``python -m autograder release`` writes from solutions/."""
    assert doc == api_doc.markdown(ROOT / "solutions" / course.ASSIGNMENT), (
        "docs/API.md is out of date: run `python -m autograder release`")
    assert "float32 in -> float32 out" in doc and "Inputs unchanged" in doc
