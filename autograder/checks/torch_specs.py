"""Declarative checks of a PyTorch student module (the torch counterpart of numpy_specs).

One :class:`TorchSpec` describes an API name: the worker steps that call it on a case's data,
what the reference returns (``expect``), which outputs are compared and how (``outputs``) and
the known mistakes (``hints``). :meth:`TorchSpec.check` turns one case (a title, points and a
``data`` function; any field of the spec may be overridden for the case) into a ``Check``:

- the call starts with a ``substitute`` step: the student's functions and classes the API name
  depends on (``substituted``) are replaced by PyTorch library calls (autograder/substitutes.py),
  so that a bug costs the points of the function it is in only;
- every output of ``outputs`` must come back as a tensor of the expected shape and dtype kind,
  within its tolerance, at the positions a correct implementation answers for;
- ``extra(d, result, expected)`` asserts properties that need no reference (gated on the same
  call's right values with ``require_right``);
- on failure the feedback gets the hint of the first known mistake the outputs match, or
  ``nan_hint`` when the failure is a NaN.

:meth:`TorchSpec.unchanged` adds "does not modify its inputs". Below: one builder per worker
operation (``tensor``, ``call``, ``module``, ``grad``, ``substitute``) and the reference side
(parameters drawn with numpy, the reference module holding them).
"""
import ast
import math
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Callable, Optional

import numpy as np

from autograder import paths, reference
from autograder.checks.core import (
    F64,
    Call,
    Check,
    Failed,
    compare,
    import_torch,
    require_array,
    require_right,
    seeded,
)
from autograder.checks.hints import matching_hint, require_unchanged
from autograder.checks.numpy_specs import _run

MODULE = "transformer"


@dataclass(kw_only=True)
class TorchSpec:
    api: str
    steps: Callable                            # d -> the steps that call the API name
    expect: Optional[Callable] = None          # d -> {output name: expected array}
    outputs: list = field(default_factory=list)  # [(name, tol, dtype kind or None[, where])]
    returns: Optional[list] = None             # names sent back; default: those of outputs
    hints: list = field(default_factory=list)  # [hints.Hint]: variant(d) -> {name: array}
    extra: Optional[Callable] = None           # (d, result, expected): raise Failed
    nan_hint: str = ""                         # the hint of a failure that is a NaN
    substituted: tuple = ()                    # dependencies a library call replaces
    uses: tuple = ()                           # dependencies that run as written (tags)

    def check(self, title: str, points: float, data: Callable, **case) -> Check:
        """The check of one case: ``data() -> dict`` (numpy arrays, sent to the worker, and
        settings; ``state``: {parameter name: array}, sent as ``sd.<name>`` for ``module``;
        ``_ctx`` is appended to messages); ``case``: fields of this spec to override."""
        spec = replace(self, **case)
        first = [substitute(spec.substituted)] if spec.substituted else []
        returns = spec.returns if spec.returns is not None else [o[0] for o in spec.outputs]

        def calls():
            d = data()
            arrays = {k: v for k, v in d.items() if isinstance(v, np.ndarray)}
            arrays.update({"sd." + k: v for k, v in d.get("state", {}).items()})
            return Call(steps=first + spec.steps(d), returns=list(returns),
                        inputs=arrays)

        def evaluate(results, check):
            d = check.memo("data", data)
            r = results[0]
            expected = check.memo("expected", lambda: spec.expect(d)) if spec.expect else {}
            try:
                for name, tol, kind, *where in spec.outputs:
                    exp = expected[name]
                    arr = require_array(r, name, label=name.replace("out.", ""),
                                        shape=exp.shape, dtype=kind, kinds=("tensor",))
                    if where:
                        pos = where[0](d)
                        arr, exp = arr[pos], exp[pos]
                    compare(name.replace("out.", ""), arr, exp, tol, d.get("_ctx", ""))
                if spec.extra is not None:
                    spec.extra(d, r, expected)
            except Failed as f:
                hint = f.hint or (spec.nan_hint if spec.nan_hint and "nan" in f.message else
                                  matching_hint(check, "torch", spec.hints, (d,), r,
                                                [o[0] for o in spec.outputs], expected))
                raise Failed(f.message, hint, f.detail) from None
            return "matches" + d.get("_ctx", "")

        return Check(api=spec.api, title=title, points=points, module=MODULE, calls=calls,
                     evaluate=_run(evaluate), tags=tuple(spec.uses))

    def unchanged(self, data: Callable, names: list, outs: list) -> Check:
        """"does not modify its inputs": the tensors made from ``d[name]`` for ``names`` are
        sent back after the call, awarded only when the same call's ``outs`` are right."""
        def extra(d, r, expected):
            require_unchanged(r, self.api, {n: d[n] for n in names if n in d},
                              f"{self.api} modified its input(s) {{names}} in place",
                              "use out-of-place operations (masked_fill, not masked_fill_; "
                              "x = x + y, not x += y) on the tensors you are given", "t.")
            require_right(r, outs, expected, F64, "\"does not modify its inputs\"",
                          kinds=("tensor",))

        return self.check("does not modify its inputs", 0.5, data, outputs=[], hints=[],
                          nan_hint="", extra=extra, returns=["t." + n for n in names] + outs)


# --- worker steps: one builder per operation (autograder/sandbox/boot.py) --------------------

def tensor(name: str, dtype: str | None = None, grad: bool = False) -> dict:
    """Input array ``name`` as the tensor ``t.<name>`` (of ``dtype``; ``grad``: requiring
    gradients)."""
    return {"op": "tensor", "src": name, "out": "t." + name, "dtype": dtype,
            "requires_grad": grad}


def call(fn: str, args: list, out, kwargs: dict | None = None, label: str | None = None) -> dict:
    """``out = fn(*args, **kwargs)``; "$name" refers to a value, "$m.method" to a method."""
    return {"op": "call", "fn": fn, "args": args, "out": out, "kwargs": kwargs or {},
            "label": label or fn.lstrip("$").replace(MODULE + ".", "")}


def module(cls: str, args: list, kwargs: dict | None = None, out: str = "m",
           dtype: str = "float64", train: bool = False) -> dict:
    """``out = cls(*args, **kwargs)`` of the student module, moved to ``dtype``, loaded with the
    input arrays named "sd." + parameter name, in eval mode (``train``: train mode)."""
    return {"op": "module", "cls": f"{MODULE}.{cls}", "args": args, "kwargs": kwargs or {},
            "out": out, "dtype": dtype, "eval": not train, "state": "sd."}


def grad(y: str, dy: str, wrt: list, params: str | None = None) -> dict:
    """Backward of ``y`` with upstream ``dy``: ``g.<name>`` the gradient of each tensor of
    ``wrt``, ``g.param.<name>`` those of module ``params``' parameters."""
    return {"op": "grad", "y": y, "dy": dy, "wrt": wrt, "params": params, "out": "g"}


SUBSTITUTES_FILE = paths.autograder_dir() / "substitutes.py"


def substitutes_source(names) -> str:
    """The source a worker executes for the library substitutes ``names`` (API names): the
    imports, the private helpers of ``substitutes.py`` and the definitions of those names only
    (the file read as text: the grader need not import torch for it)."""
    text = SUBSTITUTES_FILE.read_text()
    nodes = [n for n in ast.parse(text).body if not isinstance(n, ast.Expr)]   # (docstring)
    missing = set(names) - {getattr(n, "name", None) for n in nodes}
    if missing:
        raise KeyError("no library substitute for %s" % sorted(missing))
    keep = [n for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))
            or n.name.startswith("_") or n.name in names]
    return "\n\n\n".join(ast.get_source_segment(text, n) for n in keep) + "\n"


def substitute(names) -> dict:
    """For the rest of the call, the student's ``names`` are the library substitutes."""
    return {"op": "substitute", "module": MODULE, "names": list(names),
            "source": substitutes_source(names)}


# --- the reference side ----------------------------------------------------------------------

def ref() -> ModuleType:
    return reference.module(MODULE)


def _new_ref(cls: str, args: list, kwargs: dict | None):
    import_torch().manual_seed(0)
    return getattr(ref(), cls)(*args, **(kwargs or {}))


def draw_state(seed: int, cls: str, args: list, kwargs: dict | None = None) -> dict:
    """The parameters of the reference ``cls(*args, **kwargs)``, drawn with numpy: matrices
    ~ N(0, 1/fan_in), LayerNorm weights ~ 1, biases small; embeddings ~ N(0, 1/d)."""
    rng = seeded(seed)
    out = {}
    for name, p in _new_ref(cls, args, kwargs).named_parameters():
        shape = tuple(p.shape)
        if len(shape) >= 2:
            out[name] = rng.standard_normal(shape) / math.sqrt(shape[-1])
        elif "norm" in name and name.endswith(".weight"):
            out[name] = 1 + 0.2 * rng.standard_normal(shape)
        else:
            out[name] = 0.2 * rng.standard_normal(shape)
    return out


def ref_module(cls: str, args: list, kwargs: dict | None, state: dict):
    """The reference module in float64 with the given parameters, eval mode."""
    torch = import_torch()
    m = _new_ref(cls, args, kwargs).to(torch.float64)
    own = dict(m.named_parameters())
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(torch.from_numpy(v))
    return m.eval()


def np_(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def t_(a):
    return import_torch().from_numpy(np.array(a, copy=True))
