"""The check framework: calls, results, comparisons, feedback, and the registry.

A :class:`Check` is one graded test (one entry of results.json). It belongs to one API name (its
``api``, which is also its first tag), runs in the worker of one student ``module``, and has:

- ``calls``: a function returning the list of :class:`Call` s to send to the worker. A call is a
  small program over named input arrays (see ``autograder/sandbox/boot.py``); inputs are drawn
  from a seeded numpy Generator, so every run sends the same bytes;
- ``evaluate``: a function ``(results, ctx) -> Outcome`` run in the grader process on the plain
  arrays that came back. It compares them with what the reference (imported in this process)
  computes on the same inputs, and explains any difference.

Check modules (``rnn.py``, ``lstm.py``...) build their checks with the specs of
``numpy_specs.py`` (numpy layers) or ``torch_specs.py`` (PyTorch), and register a builder with
:func:`register`; ``hints.py`` holds the known-mistake matching both use, ``twins.py`` the
PyTorch twins of the numpy layers.
"""
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

import numpy as np

from autograder import course

# ------------------------------------------------- what goes to the worker and what comes back

@dataclass
class Call:
    """One request: ``steps`` run over ``inputs`` (name -> array); ``returns`` are sent back."""
    steps: list
    returns: list
    inputs: dict = field(default_factory=dict)
    api: str = ""  # the API name whose code this call exercises (for strikes after a hang)


@dataclass
class Value:
    """One returned value: ``meta`` (what the worker saw) and ``array`` (None if not numeric)."""
    meta: dict
    array: np.ndarray | None

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "missing")

    def describe(self) -> str:
        m = self.meta
        kind = self.kind
        if kind == "missing":
            return "nothing (the call failed before producing it)"
        if kind == "none":
            return "None"
        if kind == "other":
            return f"a {m.get('type', 'object')}"
        if kind == "sequence":
            return f"a {m.get('type', 'list')} of length {m.get('length')}"
        dtype = m.get("dtype") or (np.dtype(m["dtype_np"]).name if m.get("dtype_np") else "?")
        what = {"tensor": "tensor", "ndarray": "array", "scalar": m.get("type", "scalar")}[kind]
        return f"{what} of shape {tuple(m.get('shape', ()))} and dtype {dtype}"


@dataclass
class Result:
    """What one call produced: values, the error of the failing step, the captured output, or
    the failure of the worker itself (timeout, crash)."""
    ok: bool = True
    error: dict | None = None
    values: dict = field(default_factory=dict)   # name -> Value
    json: dict = field(default_factory=dict)
    output: str = ""
    failure: tuple | None = None  # (kind, message) when the worker failed

    def value(self, name: str) -> Value:
        return self.values.get(name, Value({"kind": "missing"}, None))

    def array(self, name: str) -> np.ndarray | None:
        return self.value(name).array

    def problem(self) -> str | None:
        """A one-paragraph description of why the call did not complete, or None."""
        if self.failure is not None:
            return self.failure[1]
        if not self.error:
            return None
        err, where = self.error, self.error.get("where") or []
        text = str(err.get("message", "error"))
        if err.get("step") == "import":
            text = "importing your module failed: " + text
        elif where and err.get("label"):
            text = f"{err['label']} raised {text}"
        return text + "".join("\n    at " + w for w in where[-3:])


@dataclass
class Outcome:
    """What ``evaluate`` concluded: ``message`` as the student reads it, a ``hint``, and
    ``detail``: the message with the hidden expected values, for the instructor only ("" when
    it would say nothing more)."""
    passed: bool
    message: str = ""
    hint: str = ""
    detail: str = ""


class Failed(Exception):
    """Raised inside an ``evaluate`` to fail the check: ``message`` (what the student reads),
    ``hint``, and ``detail`` (the same message with the expected values; see :class:`Outcome`).
    Re-raise with all three: ``raise Failed(f.message, hint, f.detail)``."""

    def __init__(self, message, hint="", detail=""):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail


@dataclass
class Check:
    api: str
    title: str
    points: float
    module: str
    calls: Callable
    evaluate: Callable
    tags: tuple = ()
    visibility: str = "visible"
    id: str = ""
    cell: str = ""   # grade_id of its notebook check cell; default check_<api>

    def __post_init__(self):
        self.id = self.id or f"{self.api}: {self.title}"
        self.cell = self.cell or f"check_{self.api}"
        self._calls = None
        self._lock = threading.RLock()
        self._memo = {}

    @property
    def all_tags(self) -> tuple:
        return (self.api,) + tuple(t for t in self.tags if t != self.api)

    def get_calls(self) -> list[Call]:
        with self._lock:
            if self._calls is None:
                calls = self.calls()
                self._calls = calls if isinstance(calls, list) else [calls]
                for c in self._calls:
                    c.api = c.api or self.api
            return self._calls

    def memo(self, key, fn: Callable):
        """Memoize a grader-side computation (reference outputs, hint variants) per check."""
        with self._lock:
            if key not in self._memo:
                self._memo[key] = fn()
            return self._memo[key]


# ------------------------------------------------------------------------------------ registry

_builders = []  # (module, builder)
_checks = None
_checks_lock = threading.Lock()


def register(module: str) -> Callable:
    """Decorator: ``builder() -> list[Check]`` for the student module ``module``."""
    def deco(fn):
        _builders.append((module, fn))
        return fn
    return deco


def all_checks() -> list[Check]:
    """Every registered check, in a stable order (the manifest's module order, then definition
    order). Checks of a module whose reference file is missing are left out."""
    global _checks
    with _checks_lock:
        if _checks is None:
            from autograder import checks as _pkg  # noqa: F401  (imports the check modules)
            from autograder import reference
            out, seen = [], set()
            for module, builder in sorted(_builders,
                                          key=lambda b: course.STUDENT_MODULES.index(b[0])):
                if not reference.available(module):
                    continue
                for check in builder():
                    if check.id in seen:
                        raise ValueError(f"duplicate check id {check.id!r}")
                    seen.add(check.id)
                    out.append(check)
            _checks = out
        return list(_checks)


# The notebook of each check cell (its grade_id), from the course manifest
_CELL_NOTEBOOK = {c.grade_id: c.notebook for c in course.check_cells()}


def notebook_of(check: Check) -> str:
    """"01".."04": the notebook whose check cell (``check.cell``) holds ``check``."""
    return _CELL_NOTEBOOK.get(check.cell, "")


def notebook_key(name) -> str | None:
    """"01" for "1", "01", "nb01" or "01_rnn_captioning"; None if ``name`` names no notebook."""
    text = str(name).strip().lower().removeprefix("nb")
    return next((key for key, full in course.NOTEBOOKS.items()
                 if text in (key, key.lstrip("0"), full)), None)


def resolve_selection(names) -> tuple[set, set]:
    """API names, student module names ("rnn_layers" or "rnn_layers.py") and notebooks
    ("01", "02_lstm_captioning") -> (set of API names, set of notebook keys). Raises
    ValueError naming the unknown entries and what is known."""
    apis, notebooks, unknown = set(), set(), []
    modules = {c.module for c in all_checks()}
    for name in names:
        module = str(name).removesuffix(".py")
        if name in api_names():
            apis.add(name)
        elif module in modules:
            apis.update(c.api for c in all_checks() if c.module == module)
        elif notebook_key(name):
            notebooks.add(notebook_key(name))
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"unknown API name, module or notebook: {', '.join(map(str, unknown))}"
                         f"; known modules: {', '.join(sorted(modules))}; notebooks: "
                         f"{', '.join(course.NOTEBOOKS)}; API names: {', '.join(api_names())}")
    return apis, notebooks


def select(only: list | None = None, notebooks: list | None = None) -> list[Check]:
    """The checks selected by ``only`` (API names, module names or notebooks; see
    :func:`resolve_selection`) and ``notebooks``; every check if both are empty. A check is
    selected by its group (``check.api``) or its notebook. (A check's other tags name the API
    names it also exercises, e.g. the forward function a backward check needs for its cache;
    they do not select it.)"""
    checks = all_checks()
    names = list(only or []) + list(notebooks or [])
    if not names:
        return checks
    apis, books = resolve_selection(names)
    return [c for c in checks if c.api in apis or notebook_of(c) in books]


def api_names() -> list[str]:
    """The API names that have checks, in the order of :func:`all_checks`."""
    return list(dict.fromkeys(c.api for c in all_checks()))


# -------------------------------------------------------------------- comparisons and feedback

F64 = dict(rtol=1e-6, atol=1e-8)      # any correct float64 implementation (order of ops...)
F32 = dict(rtol=2e-4, atol=2e-5)      # float32 results against a float64 reference
NUMERIC = dict(rtol=1e-5, atol=1e-6)  # analytic against centered differences (h = 1e-5)
LOOSE = dict(rtol=1e-5, atol=1e-6)    # float32 positional encodings inside a float64 model


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def max_error(got, expected, rtol: float, atol: float) -> tuple:
    """(ok, worst index, abs error there, normalised error). ``atol`` is relative to the
    largest magnitude of ``expected``, at least 1 (so the check works at any scale, and an
    output that is zero up to round-off, e.g. the gradient of a key bias, compares as zero
    whichever order of operations produced it)."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = _scale(expected)
    bound = atol * scale + rtol * np.abs(expected)
    diff = np.abs(got - expected)
    bad_nan = ~np.isfinite(got) & np.isfinite(expected)
    ratio = np.where(bad_nan, np.inf, diff / bound)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    both_nonfinite = ~np.isfinite(got) & ~np.isfinite(expected) & (got == expected)
    ratio = np.where(both_nonfinite, 0.0, ratio)
    if ratio.size == 0:
        return True, (), 0.0, 0.0
    idx = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    worst = float(ratio[idx])
    return worst <= 1.0, tuple(int(i) for i in idx), float(diff[idx]), worst


def _scale(expected):
    finite = np.abs(expected[np.isfinite(expected)]) if expected.size else np.zeros(0)
    return max(float(np.max(finite)) if finite.size else 0.0, 1.0)


FLOAT32_HINT = ("under NumPy 2 a NumPy scalar such as np.sqrt(H) or np.float64(...), and an "
                "array made with np.zeros(shape) / np.ones(shape) / np.empty(shape) (float64 by "
                "default), turn float32 into float64; a Python float (math.sqrt(H), 1.0) does "
                "not: use math.sqrt, np.zeros(shape, dtype=x.dtype) or np.zeros_like(x)")

SATURATION_HINT = ("exp() overflows to inf once |z| is large (beyond ~710 in float64, ~89 in "
                   "float32) and inf / inf is NaN: use np.tanh (not a formula with exp), the "
                   "given sigmoid, and subtract the row maximum before a softmax")


def require_array(result: Result, name: str, label: str | None = None, shape=None,
                  dtype: str | None = None, kinds=("ndarray",),
                  allow_scalar: bool = False) -> np.ndarray:
    """Return the array of value ``name`` or raise Failed explaining what came back instead.

    ``kinds``: accepted containers ("ndarray", "tensor"). ``dtype``: a numpy dtype name, or
    "floating", "integer", "bool"."""
    label = label or name
    problem = result.problem()
    v = result.value(name)
    if v.kind == "missing":
        raise Failed(f"{label}: the call did not complete: {problem}" if problem
                     else f"{label}: no value came back")
    if v.kind not in kinds and not (allow_scalar and v.kind == "scalar"):
        want = " or ".join({"ndarray": "a numpy array", "tensor": "a torch tensor"}[k]
                           for k in kinds)
        raise Failed(f"{label}: expected {want}, got {v.describe()}")
    if v.array is None:
        raise Failed(f"{label}: expected numbers, got {v.describe()}")
    arr = v.array
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise Failed(f"{label}: expected shape {fmt_shape(shape)}, got {fmt_shape(arr.shape)}")
    if dtype is not None:
        kinds_of = {"floating": "f", "integer": "iu", "bool": "b"}
        if not (arr.dtype.kind in kinds_of[dtype] if dtype in kinds_of
                else arr.dtype == np.dtype(dtype)):
            shown = v.meta.get("dtype") or arr.dtype.name
            raise Failed(f"{label}: expected dtype {dtype}, got {shown}"
                         + (" (float32 inputs must give float32 outputs)"
                            if dtype == "float32" else ""),
                         FLOAT32_HINT if dtype == "float32" and shown == "float64" else "")
    return arr


def compare(label: str, got, expected, tol: dict, context: str = "") -> None:
    """Raise Failed if ``got`` differs from ``expected`` beyond ``tol`` (a dict rtol/atol)."""
    expected = np.asarray(expected)
    got = np.asarray(got)
    if got.shape != expected.shape:
        raise Failed(f"{label}: expected shape {fmt_shape(expected.shape)}, "
                     f"got {fmt_shape(got.shape)}{context}")
    if expected.dtype.kind == "b" or got.dtype.kind == "b":
        diff = got.astype(bool) != expected.astype(bool)
        if diff.any():
            idx = tuple(int(i) for i in np.argwhere(diff)[0])
            _differ(f"{label}: {int(diff.sum())} of {diff.size} entries differ, e.g. at index "
                    f"{list(idx)} (you returned {bool(got[idx])}", bool(expected[idx]),
                    f"){context}")
        return
    if got.dtype.kind not in "biufc":
        raise Failed(f"{label}: expected numbers, got dtype {got.dtype}{context}")
    ok, idx, abs_err, ratio = max_error(got, expected, **tol)
    if not ok:
        n_bad = int(np.sum(~np.isclose(got.astype(np.float64), expected.astype(np.float64),
                                       rtol=tol["rtol"],
                                       atol=tol["atol"] * _scale(expected.astype(np.float64)),
                                       equal_nan=False)))
        where = f" at index {list(idx)}" if idx else ""
        g = got[idx] if idx else got
        if not np.isfinite(g):
            raise Failed(f"{label}: you returned {float(g):.6g}{where} where a finite value was "
                         f"expected ({n_bad} of {expected.size} entries wrong){context}")
        e = expected[idx] if idx else expected
        _differ(f"{label}: values differ from the expected ones: {n_bad} of {expected.size} "
                f"entries off, largest error {abs_err:.3g}{where} (you returned {float(g):.6g}",
                f"{float(e):.6g}", f"); tolerance: relative {tol['rtol']:g}{context}")


def _differ(head, expected, tail):
    """Raise Failed with ``head + tail`` for the student and ``head, expected <expected>
    tail`` as the instructor's detail: a hidden expected value never reaches a student."""
    raise Failed(head + tail, "", f"{head}, expected {expected}{tail}")


def require_right(result: Result, names: list, expected: dict, tol: dict, what: str,
                  kinds=("ndarray",), positions=None, names_as=None) -> None:
    """Gate of a self-consistency check (inputs unchanged, gradients vs numeric gradients of
    your own function, causality...): such a property holds for any function, even one that
    returns zeros, so it is awarded only when the same call's outputs ``names`` match
    ``expected`` (within ``tol``). ``positions``: an optional boolean array; only the entries
    where it is True are compared (outputs a correct implementation is responsible for).
    ``names_as``: the names the values came back under, if not ``names``.
    Raises Failed otherwise."""
    for k, name in enumerate(names):
        exp = np.asarray(expected[name])
        label = name.replace("out.", "")
        try:
            arr = require_array(result, names_as[k] if names_as else name, label=label,
                                shape=exp.shape, kinds=kinds, allow_scalar=True)
            if positions is not None:
                arr, exp = arr[positions], exp[positions]
            compare(label, arr, exp, tol)
        except Failed as f:
            lead = f"{what} counts only when the same call returns the right values, and it " \
                   "does not: "
            raise Failed(lead + f.message, "fix the values checks of this function first",
                         lead + f.detail if f.detail else "") from None


def non_finite(arr) -> bool:
    """True if ``arr`` (None when no array came back) holds an inf or a NaN."""
    return arr is not None and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr))


def matches(got, expected, tol: dict | None = None) -> bool:
    """True if ``got`` equals ``expected`` within ``tol`` (shape included). Used for hints."""
    tol = tol or dict(rtol=1e-5, atol=1e-6)
    try:
        got = np.asarray(got)
        expected = np.asarray(expected)
        if got.shape != expected.shape:
            return False
        if expected.dtype.kind == "b":
            return bool(np.array_equal(got.astype(bool), expected))
        return max_error(got, expected, **tol)[0]
    except (TypeError, ValueError):
        return False


_torch_lock = threading.Lock()


def import_torch() -> ModuleType:
    """torch for the grader process: one thread (small tensors; two threads on two busy cores
    are ten times slower). One thread imports it while the others wait: two threads importing
    torch's submodules at once can see a partially initialised module (an ImportError in the
    evaluation of a check, so a grade that depended on the machine's load)."""
    with _torch_lock:
        import torch
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
    return torch


NUMERIC_STEP = 1e-5


def perturbations(x) -> np.ndarray:
    """(2n, *x.shape) float64: x + h e_i and x - h e_i (h = NUMERIC_STEP) for every entry i,
    interleaved."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    stack = np.repeat(x.reshape(1, -1), 2 * n, axis=0)
    idx = np.arange(n)
    stack[2 * idx, idx] += NUMERIC_STEP
    stack[2 * idx + 1, idx] -= NUMERIC_STEP
    return stack.reshape((2 * n,) + x.shape)


def numeric_gradient(shape, outputs: list, douts: list) -> np.ndarray:
    """Centered differences from the outputs at ``perturbations``: ``outputs`` is a list of
    (2n, *out_shape) arrays (or (2n,) scalars), ``douts`` the matching upstream gradients.
    Returns d sum_j <douts[j], f_j(x)> / dx, of shape ``shape``. Computed in the grader."""
    total = None
    for out, d in zip(outputs, douts):
        out = np.asarray(out, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        if out.shape[1:] != d.shape:
            raise Failed(f"the forward returned shape {fmt_shape(out.shape[1:])}; expected "
                         f"{fmt_shape(d.shape)}")
        proj = np.tensordot(out, d, axes=d.ndim) if d.ndim else out * d
        total = proj if total is None else total + proj
    grad = (total[0::2] - total[1::2]) / (2 * NUMERIC_STEP)
    return grad.reshape(shape)


def require_numeric_grad(result: Result, name: str, shape, outs: list, douts: list, what: str,
                         context: str, label: str | None = None) -> None:
    """Raise Failed unless the float64 gradient ``name`` (of ``shape``) agrees with the centered
    differences (:func:`numeric_gradient`) of the stacks of outputs that came back as ``outs``
    against the upstream gradients ``douts``. ``what``: the function the stacks evaluate, for
    the message when one is missing ("your loss at perturbed scores")."""
    label = label or name
    arr = require_array(result, name, label=label, shape=shape, dtype="float64")
    stacks = [result.array(o) for o in outs]
    if any(s is None for s in stacks):
        raise Failed(f"could not evaluate {what}: {result.problem()}")
    compare(label, arr, numeric_gradient(shape, stacks, douts), NUMERIC, context)


def seeded(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def sizes_str(**sizes) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())
