"""Declarative checks for a numpy forward/backward pair (the CS231n layer convention).

One :class:`LayerSpec` describes a forward function, its backward function, how to draw
inputs, and an independent PyTorch float64 version of the forward. :func:`layer_checks` turns
it into the standard checks:

forward API name
  - values against the reference, float64, on every size of ``sizes`` (N=1, T=1, H != D...)
  - float32 inputs give float32 outputs, with the right values
  - large inputs (``large``): still the right, finite values
  - the inputs are not modified
backward API name
  - gradients against the reference backward, float64, on every size
  - gradients against PyTorch autograd of ``torch_forward`` (float64)
  - gradients against centered-difference numeric gradients of *your* forward
  - float32 upstream gradients give float32 gradients
  - the upstream gradient is not modified, and running backward twice on the same cache gives
    the same gradients (nothing in the cache was overwritten)

Known mistakes (``hints.Hint``, ``variant(inputs, douts)``) are variants computed in the
grader; when a failing result matches one, its message is added to the feedback.
"""
from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable, Optional

import numpy as np

from autograder import reference
from autograder.checks.core import (
    F32,
    F64,
    NUMERIC,
    SATURATION_HINT,
    Call,
    Check,
    Failed,
    Outcome,
    compare,
    import_torch,
    numeric_gradient,
    perturbations,
    require_array,
    require_right,
    seeded,
    sizes_str,
)
from autograder.checks.hints import matching_hint, require_unchanged


@dataclass
class LayerSpec:
    module: str
    forward: str
    inputs: list                  # forward argument names, in order
    outs: list                    # forward's returned names; "cache" for the cache
    make: Callable                # make(rng, **size) -> {input name: float64 / int array}
    sizes: list                   # list of size dicts; the first is the default
    backward: Optional[str] = None
    upstream: list = field(default_factory=list)   # forward outs that receive a gradient
    grads: list = field(default_factory=list)      # backward's returned names
    grad_of: list = field(default_factory=list)    # the forward input of each grad
    # (tensors...) -> the outputs of ``upstream``, first in its tuple (checks/twins.py)
    torch_forward: Optional[Callable] = None
    large: Optional[Callable] = None               # inputs -> large-magnitude inputs
    # an exponential inside (tanh, sigmoid, softmax): the large inputs reach saturation (|z| >
    # 710, where exp overflows in float64) and are graded in float64 and in float32
    saturating: bool = False
    int_inputs: tuple = ()
    forward_hints: list = field(default_factory=list)
    backward_hints: list = field(default_factory=list)
    seed: int = 0
    numeric_size: Optional[dict] = None            # small size for numeric gradients
    extra_forward_checks: list = field(default_factory=list)    # spec -> [Check]

    # --- derived ---------------------------------------------------------------------------
    @property
    def out_names(self) -> list[str]:
        return [o for o in self.outs if o != "cache"]

    def ref(self) -> ModuleType:
        return reference.module(self.module)

    def draw(self, size: dict, seed_offset: int = 0, dtype=np.float64,
             scale: Callable | None = None) -> dict:
        rng = seeded(self.seed * 1000 + seed_offset)
        inputs = self.make(rng, **size)
        if scale is not None:
            inputs = scale(inputs)
        return {k: (v.astype(dtype) if k not in self.int_inputs and v.dtype.kind == "f" else v)
                for k, v in inputs.items()}

    def ref_forward(self, inputs: dict) -> tuple[dict, object]:
        fn = getattr(self.ref(), self.forward)
        out = fn(*[np.array(inputs[k], copy=True) for k in self.inputs])
        out = out if isinstance(out, tuple) else (out,)
        return {name: np.asarray(v) for name, v in zip(self.outs, out) if name != "cache"}, \
            dict(zip(self.outs, out)).get("cache")

    def douts(self, inputs: dict, seed_offset: int = 0) -> dict:
        outs, _ = self.ref_forward({k: np.asarray(v, dtype=np.float64)
                                    if k not in self.int_inputs else v
                                    for k, v in inputs.items()})
        rng = seeded(self.seed * 1000 + 500 + seed_offset)
        return {"d" + name: rng.standard_normal(outs[name].shape) for name in self.upstream}

    def ref_backward(self, inputs: dict, douts: dict) -> dict:
        _, cache = self.ref_forward(inputs)
        fn = getattr(self.ref(), self.backward)
        out = fn(*[np.array(douts["d" + u], copy=True) for u in self.upstream], cache)
        out = out if isinstance(out, tuple) else (out,)
        return {g: np.asarray(v) for g, v in zip(self.grads, out)}

    def torch_grads(self, inputs: dict, douts: dict) -> dict:
        torch = import_torch()
        tensors = {}
        for k in self.inputs:
            v = inputs[k]
            if k in self.int_inputs:
                tensors[k] = torch.from_numpy(np.asarray(v, dtype=np.int64))
            else:
                tensors[k] = torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
        outs = self.torch_forward(*[tensors[k] for k in self.inputs])
        outs = (outs if isinstance(outs, tuple) else (outs,))[:len(self.upstream)]
        wrt = [tensors[k] for k in self.grad_of]
        grads = torch.autograd.grad(
            outs, wrt, grad_outputs=[torch.from_numpy(douts["d" + u]) for u in self.upstream],
            allow_unused=True)
        return {g: (np.zeros(inputs[k].shape) if t is None else t.numpy())
                for g, k, t in zip(self.grads, self.grad_of, grads)}

    # --- programs --------------------------------------------------------------------------
    def forward_step(self) -> dict:
        out = self.outs if len(self.outs) > 1 else self.outs[0]
        return {"op": "call", "fn": f"{self.module}.{self.forward}",
                "args": ["$" + k for k in self.inputs], "out": out, "label": self.forward}

    def backward_step(self, prefix: str = "") -> dict:
        out = [prefix + g for g in self.grads]
        return {"op": "call", "fn": f"{self.module}.{self.backward}",
                "args": ["$d" + u for u in self.upstream] + ["$cache"],
                "out": out if len(out) > 1 else out[0], "label": self.backward}


def scaled(factor: float, keys: tuple, then: Callable | None = None) -> Callable:
    """``inputs -> inputs`` with those named in ``keys`` multiplied by ``factor`` (then
    ``then`` applied): a spec's ``large``."""
    def f(inputs):
        out = {k: v * factor if k in keys else v for k, v in inputs.items()}
        return then(out) if then else out
    return f


# ---------------------------------------------------------------------------------------------
# evaluation helpers
# ---------------------------------------------------------------------------------------------

def compare_outputs(check: Check, key: str, result, names: list, expected: dict, tol: dict,
                    dtype: str, context: str, hints=(), inputs=None, douts=None) -> None:
    """Require each output in ``names`` to be an ndarray of ``expected[name]``'s shape and
    ``dtype``, with values within ``tol``. On failure, look for a matching known mistake."""
    try:
        for name in names:
            exp = expected[name]
            arr = require_array(result, name, shape=np.shape(exp), dtype=dtype)
            compare(name, arr, exp, tol, context)
    except Failed as f:
        hint = f.hint or matching_hint(check, key, hints, (inputs, douts), result, names,
                                       expected)
        raise Failed(f.message, hint, f.detail) from None


def _run(evaluate: Callable) -> Callable:
    """Wrap an evaluate body: Failed -> failing Outcome, completion -> passing Outcome."""
    def wrapped(results, check):
        try:
            msg = evaluate(results, check)
            return Outcome(True, msg or "")
        except Failed as f:
            return Outcome(False, f.message, f.hint, f.detail)
    return wrapped


def _non_finite(arr):
    return arr is not None and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr))


# ---------------------------------------------------------------------------------------------
# the standard checks
# ---------------------------------------------------------------------------------------------

def check_of(spec: LayerSpec, api: str, title: str, points: float, calls: Callable,
             evaluate: Callable) -> Check:
    """A check of ``api`` (the spec's forward or backward; a backward check also runs the
    forward, its tag)."""
    return Check(api=api, title=title, points=points, module=spec.module, calls=calls,
                 evaluate=_run(evaluate), tags=(spec.forward,) if api == spec.backward else ())


def forward_checks(spec: LayerSpec) -> list[Check]:
    """The forward's checks: 3 points of values over the sizes, 1 each for float32, large
    inputs and unchanged inputs, then ``spec.extra_forward_checks``."""
    checks = [_forward_value_check(spec, size, i, np.float64, 3.0 / len(spec.sizes))
              for i, size in enumerate(spec.sizes)]
    checks.append(_forward_value_check(spec, spec.sizes[0], 100, np.float32, 1.0,
                                       title_extra="float32 in -> float32 out"))
    if spec.large is not None and spec.saturating:
        for dtype in (np.float64, np.float32):
            checks.append(_forward_value_check(
                spec, spec.sizes[0], 200, dtype, 0.5, scale=spec.large,
                title_extra=f"saturation: large inputs, {np.dtype(dtype).name}"))
    elif spec.large is not None:
        checks.append(_forward_value_check(spec, spec.sizes[0], 200, np.float64, 1.0,
                                           scale=spec.large, title_extra="large inputs"))
    checks.append(_forward_unchanged_check(spec, 1.0))
    for extra in spec.extra_forward_checks:
        checks.extend(extra(spec))
    assert all(c.api == spec.forward for c in checks)
    return checks


def _forward_value_check(spec, size, offset, dtype, points, scale=None, title_extra=""):
    dname = np.dtype(dtype).name
    ctx = f" ({sizes_str(**size)}, {dname})"
    title = (title_extra + f" ({sizes_str(**size)})") if title_extra else \
        f"values vs reference ({sizes_str(**size)}, {dname})"

    def inputs():
        return spec.draw(size, offset, dtype, scale)

    def calls():
        return Call(steps=[spec.forward_step()], returns=spec.out_names, inputs=inputs())

    def evaluate(results, check):
        inp = check.memo("inputs", inputs)
        expected = check.memo("expected", lambda: spec.ref_forward(
            {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inp.items()})[0])
        tol = F64 if dtype == np.float64 else F32
        try:
            compare_outputs(check, "fwd", results[0], spec.out_names, expected, tol, dname, ctx,
                            spec.forward_hints, inp, None)
        except Failed as f:
            saturated = scale is not None and any(
                _non_finite(results[0].array(n)) for n in spec.out_names)
            raise Failed(f.message, f.hint or (SATURATION_HINT if saturated else ""),
                         f.detail) from None
        return f"outputs match{ctx}"

    return check_of(spec, spec.forward, title, points, calls, evaluate)


def _forward_unchanged_check(spec, points):
    size = spec.sizes[0]

    def inputs():
        return spec.draw(size, 300)

    def calls():
        # copy steps read the (possibly modified) arrays the function was given
        steps = [spec.forward_step()] + [{"op": "copy", "src": k, "out": "after." + k}
                                         for k in spec.inputs]
        return Call(steps=steps, returns=["after." + k for k in spec.inputs] + spec.out_names,
                    inputs=inputs())

    def evaluate(results, check):
        inp = check.memo("inputs", inputs)
        r = results[0]
        require_unchanged(r, spec.forward, {k: inp[k] for k in spec.inputs},
                          f"{spec.forward} modified its argument(s) {{names}}; a function must "
                          "not write into the arrays it is given (use e.g. `x = x - m`, not "
                          "`x -= m`)")
        expected = check.memo("expected", lambda: spec.ref_forward(inp)[0])
        require_right(r, spec.out_names, expected, F64, "\"does not modify its inputs\"")
        return "inputs unchanged"

    return check_of(spec, spec.forward, "does not modify its inputs", points, calls, evaluate)


def backward_checks(spec: LayerSpec) -> list[Check]:
    """The backward's checks: 3 points of gradients over the sizes, 1 each against PyTorch
    autograd, numeric gradients, float32 and unchanged upstream gradient and cache."""
    checks = [_backward_check(spec, size, 400 + i, np.float64, 3.0 / len(spec.sizes),
                              "reference") for i, size in enumerate(spec.sizes)]
    if spec.torch_forward is not None:
        checks.append(_backward_check(spec, spec.sizes[0], 450, np.float64, 1.0, "torch"))
    checks.append(_numeric_check(spec, 1.0))
    checks.append(_backward_check(spec, spec.sizes[0], 470, np.float32, 1.0, "reference",
                                  title_extra="float32 in -> float32 out"))
    checks.append(_backward_unchanged_check(spec, 1.0))
    return checks


def _grad_data(spec, size, offset, dtype=np.float64):
    """() -> (inputs, upstream gradients) drawn for ``size``, both in ``dtype``."""
    def data():
        inp = spec.draw(size, offset, dtype)
        return inp, {k: v.astype(dtype) for k, v in spec.douts(inp, offset).items()}
    return data


def _backward_call(spec, inp, douts, twice=False):
    steps = [spec.forward_step(), spec.backward_step()]
    returns = list(spec.grads)
    if twice:
        steps += [{"op": "copy", "src": d, "out": "after." + d} for d in douts]
        steps.append(spec.backward_step(prefix="again."))
        returns += ["again." + g for g in spec.grads] + ["after." + d for d in douts]
    return Call(steps=steps, returns=returns, inputs=dict(inp, **douts))


def _backward_check(spec, size, offset, dtype, points, against, title_extra=""):
    dname = np.dtype(dtype).name
    ctx = f" ({sizes_str(**size)}, {dname})"
    if title_extra:
        title = f"{title_extra} ({sizes_str(**size)})"
    elif against == "torch":
        title = f"gradients vs PyTorch autograd of the forward ({sizes_str(**size)}, float64)"
    else:
        title = f"gradients vs reference ({sizes_str(**size)}, {dname})"

    data = _grad_data(spec, size, offset, dtype)

    def calls():
        return _backward_call(spec, *data())

    def evaluate(results, check):
        inp, d = check.memo("data", data)
        inp64 = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inp.items()}
        d64 = {k: v.astype(np.float64) for k, v in d.items()}
        if against == "torch":
            expected = check.memo("expected", lambda: spec.torch_grads(inp64, d64))
        else:
            expected = check.memo("expected", lambda: spec.ref_backward(inp64, d64))
        tol = F64 if dtype == np.float64 else F32
        compare_outputs(check, "bwd", results[0], spec.grads, expected, tol, dname, ctx,
                        spec.backward_hints, inp64, d64)
        return f"gradients match{ctx}"

    return check_of(spec, spec.backward, title, points, calls, evaluate)


def _numeric_check(spec, points):
    size = spec.numeric_size or spec.sizes[0]
    ctx = f" ({sizes_str(**size)}, float64)"
    data = _grad_data(spec, size, 490)
    picks = [spec.outs.index(u) if len(spec.outs) > 1 else None for u in spec.upstream]

    def calls():
        inp, d = data()
        call = _backward_call(spec, inp, d)
        for k in spec.grad_of:
            call.inputs["stack." + k] = perturbations(inp[k])
            call.steps.append({"op": "map_inputs", "fn": f"{spec.module}.{spec.forward}",
                               "args": ["$" + a for a in spec.inputs], "wrt": k,
                               "stack": "stack." + k, "picks": picks, "out": "f." + k,
                               "label": spec.forward})
        call.returns = list(spec.grads) + [f"f.{k}.{j}" for k in spec.grad_of
                                           for j in range(len(picks))]
        return call

    def evaluate(results, check):
        r = results[0]
        inp, d = check.memo("data", data)
        for g, k in zip(spec.grads, spec.grad_of):
            arr = require_array(r, g, shape=inp[k].shape, dtype="float64")
            outs = [r.array(f"f.{k}.{j}") for j in range(len(picks))]
            if any(o is None for o in outs):
                raise Failed(f"could not evaluate your {spec.forward} at perturbed inputs: "
                             f"{r.problem()}")
            num = numeric_gradient(inp[k].shape, outs, [d["d" + u] for u in spec.upstream])
            compare(g, arr, num, NUMERIC,
                    f"{ctx}; compared with centered differences of your own {spec.forward}")
        expected = check.memo("expected", lambda: spec.ref_backward(inp, d))
        require_right(r, spec.grads, expected, F64, "agreeing with numeric gradients")
        return f"analytic and numeric gradients agree{ctx}"

    return check_of(spec, spec.backward, f"gradients vs numeric gradients of your forward "
                  f"({sizes_str(**size)})", points, calls, evaluate)


def _backward_unchanged_check(spec, points):
    api = spec.backward
    data = _grad_data(spec, spec.sizes[0], 480)

    def calls():
        return _backward_call(spec, *data(), twice=True)

    def evaluate(results, check):
        r = results[0]
        inp, d = check.memo("data", data)
        require_unchanged(r, api, d, f"{api} modified the upstream gradient {{names}} it was "
                          "given; the caller may still need it",
                          "an in-place update such as `dout *= ...` or `dout[...] -= ...` "
                          "writes into the caller's array: compute a new array instead "
                          "(`d = dout * ...`) or copy it first")
        for g in spec.grads:
            a, b = r.array(g), r.array("again." + g)
            if a is None or b is None or a.shape != b.shape or not np.array_equal(a, b):
                raise Failed(f"{api}: calling it twice with the same cache gave a different "
                             f"{g}: the first call modified the cache (or kept state)",
                             hint="do not update arrays stored in the cache in place")
        expected = check.memo("expected", lambda: spec.ref_backward(inp, d))
        require_right(r, spec.grads, expected, F64,
                      "\"does not modify the upstream gradient or the cache\"")
        return "upstream gradient and cache unchanged"

    return check_of(spec, api, "does not modify the upstream gradient or the cache", points,
                  calls, evaluate)


def layer_checks(spec: LayerSpec) -> list[Check]:
    """The standard checks of ``spec``'s forward, then of its backward (if any)."""
    checks = forward_checks(spec)
    if spec.backward:
        checks += backward_checks(spec)
    return checks
