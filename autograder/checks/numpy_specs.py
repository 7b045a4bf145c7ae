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
from typing import Callable, Optional

import numpy as np

from autograder import reference
from autograder.checks.core import (
    F32,
    F64,
    SATURATION_HINT,
    Call,
    Check,
    Failed,
    Outcome,
    compare,
    import_torch,
    non_finite,
    perturbations,
    require_array,
    require_numeric_grad,
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

    @property
    def out_names(self) -> list[str]:
        return [o for o in self.outs if o != "cache"]

    @property
    def grad_of(self) -> list[str]:
        """The inputs that get a gradient: all but the integer ones, in order."""
        return [k for k in self.inputs if k not in self.int_inputs]

    @property
    def grads(self) -> list[str]:
        """The backward's returned names: ``d<input>`` for each of :attr:`grad_of`."""
        return ["d" + k for k in self.grad_of]

    def draw(self, size: dict, seed_offset: int = 0, dtype=np.float64,
             scale: Callable | None = None) -> dict:
        inputs = self.make(seeded(self.seed * 1000 + seed_offset), **size)
        if scale is not None:
            inputs = scale(inputs)
        return {k: (v.astype(dtype) if k not in self.int_inputs and v.dtype.kind == "f" else v)
                for k, v in inputs.items()}

    def ref_forward(self, inputs: dict) -> tuple[dict, object]:
        fn = getattr(reference.module(self.module), self.forward)
        out = fn(*[np.array(inputs[k], copy=True) for k in self.inputs])
        out = out if isinstance(out, tuple) else (out,)
        return {name: np.asarray(v) for name, v in zip(self.outs, out) if name != "cache"}, \
            dict(zip(self.outs, out)).get("cache")

    def douts(self, inputs: dict, seed_offset: int = 0) -> dict:
        outs, _ = self.ref_forward(_float64(inputs))
        rng = seeded(self.seed * 1000 + 500 + seed_offset)
        return {"d" + name: rng.standard_normal(outs[name].shape) for name in self.upstream}

    def ref_backward(self, inputs: dict, douts: dict) -> dict:
        _, cache = self.ref_forward(inputs)
        fn = getattr(reference.module(self.module), self.backward)
        out = fn(*[np.array(douts["d" + u], copy=True) for u in self.upstream], cache)
        out = out if isinstance(out, tuple) else (out,)
        return {g: np.asarray(v) for g, v in zip(self.grads, out)}

    def torch_grads(self, inputs: dict, douts: dict) -> dict:
        torch = import_torch()
        tensors = {k: torch.from_numpy(np.asarray(inputs[k], dtype=np.int64))
                   if k in self.int_inputs else
                   torch.tensor(np.asarray(inputs[k], dtype=np.float64), requires_grad=True)
                   for k in self.inputs}
        outs = self.torch_forward(*[tensors[k] for k in self.inputs])
        outs = (outs if isinstance(outs, tuple) else (outs,))[:len(self.upstream)]
        wrt = [tensors[k] for k in self.grad_of]
        grads = torch.autograd.grad(
            outs, wrt, grad_outputs=[torch.from_numpy(douts["d" + u]) for u in self.upstream],
            allow_unused=True)
        return {g: (np.zeros(inputs[k].shape) if t is None else t.numpy())
                for g, k, t in zip(self.grads, self.grad_of, grads)}

    def forward_step(self) -> dict:
        out = self.outs if len(self.outs) > 1 else self.outs[0]
        return {"op": "call", "fn": f"{self.module}.{self.forward}",
                "args": ["$" + k for k in self.inputs], "out": out, "label": self.forward}

    def backward_step(self, prefix: str = "") -> dict:
        out = [prefix + g for g in self.grads]
        return {"op": "call", "fn": f"{self.module}.{self.backward}",
                "args": ["$d" + u for u in self.upstream] + ["$cache"],
                "out": out if len(out) > 1 else out[0], "label": self.backward}

    def forward_call(self, inputs: dict) -> Call:
        """The forward on ``inputs``; sends back its outputs."""
        return Call(steps=[self.forward_step()], returns=self.out_names, inputs=inputs)

    def backward_call(self, data: tuple, twice: bool = False) -> Call:
        """The forward, then the backward, on ``data`` = (inputs, upstream gradients); sends
        back the gradients. ``twice``: then copies of the upstream gradients and a second
        backward on the same cache (``again.<grad>``)."""
        inputs, douts = data
        steps = [self.forward_step(), self.backward_step()]
        returns = list(self.grads)
        if twice:
            steps += [{"op": "copy", "src": d, "out": "after." + d} for d in douts]
            steps.append(self.backward_step(prefix="again."))
            returns += ["again." + g for g in self.grads] + ["after." + d for d in douts]
        return Call(steps=steps, returns=returns, inputs=dict(inputs, **douts))


def scaled(**factors: float) -> Callable:
    """``inputs -> inputs`` with each input named in ``factors`` multiplied by its factor: a
    spec's ``large``."""
    return lambda inputs: {k: v * factors[k] if k in factors else v for k, v in inputs.items()}


def compare_outputs(check: Check, key: str, result, names: list, expected: dict, tol: dict,
                    dtype: str, context: str, hints=(), inputs=None, douts=None,
                    nan_hint: str = "") -> None:
    """Require each output in ``names`` to be an ndarray of ``expected[name]``'s shape and
    ``dtype``, with values within ``tol``. On failure, look for a matching known mistake, else
    give ``nan_hint`` if an output holds an inf or a NaN."""
    try:
        for name in names:
            exp = expected[name]
            arr = require_array(result, name, shape=np.shape(exp), dtype=dtype)
            compare(name, arr, exp, tol, context)
    except Failed as f:
        hint = f.hint or matching_hint(check, key, hints, (inputs, douts), result, names,
                                       expected)
        if not hint and any(non_finite(result.array(n)) for n in names):
            hint = nan_hint
        raise Failed(f.message, hint, f.detail) from None


def _run(evaluate: Callable) -> Callable:
    """Wrap an evaluate body: Failed -> failing Outcome, completion -> passing Outcome."""
    def wrapped(results, check):
        try:
            return Outcome(True, evaluate(results, check) or "")
        except Failed as f:
            return Outcome(False, f.message, f.hint, f.detail)
    return wrapped


def case(data: Callable, call: Callable, evaluate: Callable, what: str = "",
         expected: Callable | None = None, **fields) -> Check:
    """A :class:`Check` (``fields``: api, title, points, module...) of one case: the worker runs
    ``call(data())``; ``evaluate(data(), result, check)`` returns the message of a pass or
    raises Failed (``data()`` draws seeded inputs, the same each time; memoized here).
    ``what``: for a property check, the property: it counts only when the same call's outputs
    ``expected(data()) -> {name: array}`` are right too (``require_right``)."""
    def calls():
        return call(data())

    def evaluate_data(results, check):
        inputs = check.memo("data", data)
        message = evaluate(inputs, results[0], check)
        if what:
            right = check.memo("expected", lambda: expected(inputs))
            require_right(results[0], list(right), right, F64, what)
        return message

    return Check(calls=calls, evaluate=_run(evaluate_data), **fields)


def _float64(arrays: dict) -> dict:
    return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in arrays.items()}


def check_of(spec: LayerSpec, api: str, title: str, points: float, data: Callable,
             call: Callable, evaluate: Callable, what: str = "") -> Check:
    """A :func:`case` of ``api``, the spec's forward (``data()``: its inputs) or backward
    (``data()``: inputs and upstream gradients; the check also runs the forward, its tag).
    ``what``: for a property check, the property (see :func:`case`)."""
    backward = api == spec.backward
    expected = (lambda d: spec.ref_backward(*d)) if backward else \
        (lambda d: spec.ref_forward(d)[0])
    return case(data, call, evaluate, what, expected, api=api, title=title, points=points,
                module=spec.module, tags=(spec.forward,) if backward else ())


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
    return checks


def _forward_value_check(spec, size, offset, dtype, points, scale=None, title_extra=""):
    dname = np.dtype(dtype).name
    ctx = f" ({sizes_str(**size)}, {dname})"

    def evaluate(inp, r, check):
        expected = check.memo("expected", lambda: spec.ref_forward(_float64(inp))[0])
        compare_outputs(check, "fwd", r, spec.out_names, expected,
                        F64 if dtype == np.float64 else F32, dname, ctx, spec.forward_hints, inp,
                        None, SATURATION_HINT if scale else "")
        return f"outputs match{ctx}"

    title = f"{title_extra} ({sizes_str(**size)})" if title_extra else f"values vs reference{ctx}"
    return check_of(spec, spec.forward, title, points,
                    lambda: spec.draw(size, offset, dtype, scale), spec.forward_call, evaluate)


def _forward_unchanged_check(spec, points):
    def call(inputs):
        # copy steps read the (possibly modified) arrays the function was given
        steps = [spec.forward_step()] + [{"op": "copy", "src": k, "out": "after." + k}
                                         for k in spec.inputs]
        return Call(steps=steps, returns=["after." + k for k in spec.inputs] + spec.out_names,
                    inputs=inputs)

    def evaluate(inp, r, check):
        require_unchanged(r, spec.forward, {k: inp[k] for k in spec.inputs},
                          f"{spec.forward} modified its argument(s) {{names}}; a function must "
                          "not write into the arrays it is given (use e.g. `x = x - m`, not "
                          "`x -= m`)")
        return "inputs unchanged"

    return check_of(spec, spec.forward, "does not modify its inputs", points,
                    lambda: spec.draw(spec.sizes[0], 300), call, evaluate,
                    "\"does not modify its inputs\"")


def backward_checks(spec: LayerSpec) -> list[Check]:
    """The backward's checks: 3 points of gradients over the sizes, 1 each against PyTorch
    autograd, numeric gradients, float32 and unchanged upstream gradient and cache."""
    checks = [_backward_check(spec, size, 400 + i, np.float64, 3.0 / len(spec.sizes))
              for i, size in enumerate(spec.sizes)]
    if spec.torch_forward is not None:
        checks.append(_backward_check(spec, spec.sizes[0], 450, np.float64, 1.0, torch=True))
    checks.append(_numeric_check(spec, 1.0))
    checks.append(_backward_check(spec, spec.sizes[0], 470, np.float32, 1.0,
                                  title_extra="float32 in -> float32 out"))
    checks.append(_backward_unchanged_check(spec, 1.0))
    return checks


def _grad_data(spec, size, offset, dtype=np.float64):
    """() -> (inputs, upstream gradients) drawn for ``size``, both in ``dtype``."""
    def data():
        inp = spec.draw(size, offset, dtype)
        return inp, {k: v.astype(dtype) for k, v in spec.douts(inp, offset).items()}
    return data


def _backward_check(spec, size, offset, dtype, points, torch=False, title_extra=""):
    """Gradients against the reference backward's, or PyTorch autograd's (``torch``)."""
    dname = np.dtype(dtype).name
    ctx = f" ({sizes_str(**size)}, {dname})"
    vs = "PyTorch autograd of the forward" if torch else "reference"
    title = f"{title_extra} ({sizes_str(**size)})" if title_extra else f"gradients vs {vs}{ctx}"

    def evaluate(data, r, check):
        inp, d = _float64(data[0]), _float64(data[1])
        grads = spec.torch_grads if torch else spec.ref_backward
        expected = check.memo("expected", lambda: grads(inp, d))
        compare_outputs(check, "bwd", r, spec.grads, expected,
                        F64 if dtype == np.float64 else F32, dname, ctx, spec.backward_hints,
                        inp, d)
        return f"gradients match{ctx}"

    return check_of(spec, spec.backward, title, points, _grad_data(spec, size, offset, dtype),
                    spec.backward_call, evaluate)


def _numeric_check(spec, points):
    size = spec.numeric_size or spec.sizes[0]
    ctx = f" ({sizes_str(**size)}, float64)"
    picks = [spec.outs.index(u) if len(spec.outs) > 1 else None for u in spec.upstream]

    def numeric_call(data):
        call = spec.backward_call(data)
        for k in spec.grad_of:
            call.inputs["stack." + k] = perturbations(data[0][k])
            call.steps.append({"op": "map_inputs", "fn": f"{spec.module}.{spec.forward}",
                               "args": ["$" + a for a in spec.inputs], "wrt": k,
                               "stack": "stack." + k, "picks": picks, "out": "f." + k,
                               "label": spec.forward})
        call.returns = list(spec.grads) + [f"f.{k}.{j}" for k in spec.grad_of
                                           for j in range(len(picks))]
        return call

    def evaluate(data, r, check):
        inp, d = data
        for g, k in zip(spec.grads, spec.grad_of):
            require_numeric_grad(r, g, inp[k].shape, [f"f.{k}.{j}" for j in range(len(picks))],
                                 [d["d" + u] for u in spec.upstream],
                                 f"your {spec.forward} at perturbed inputs",
                                 f"{ctx}; compared with centered differences of your own "
                                 f"{spec.forward}")
        return f"analytic and numeric gradients agree{ctx}"

    return check_of(spec, spec.backward, f"gradients vs numeric gradients of your forward "
                    f"({sizes_str(**size)})", points, _grad_data(spec, size, 490), numeric_call,
                    evaluate,
                    "agreeing with numeric gradients")


def _backward_unchanged_check(spec, points):
    api = spec.backward

    def evaluate(data, r, check):
        require_unchanged(r, api, data[1], f"{api} modified the upstream gradient {{names}} it "
                          "was given; the caller may still need it",
                          "an in-place update such as `dout *= ...` or `dout[...] -= ...` "
                          "writes into the caller's array: compute a new array instead "
                          "(`d = dout * ...`) or copy it first")
        for g in spec.grads:
            a, b = r.array(g), r.array("again." + g)
            if a is None or b is None or a.shape != b.shape or not np.array_equal(a, b):
                raise Failed(f"{api}: calling it twice with the same cache gave a different "
                             f"{g}: the first call modified the cache (or kept state)",
                             hint="do not update arrays stored in the cache in place")
        return "upstream gradient and cache unchanged"

    return check_of(spec, api, "does not modify the upstream gradient or the cache", points,
                    _grad_data(spec, spec.sizes[0], 480),
                    lambda data: spec.backward_call(data, twice=True), evaluate,
                    "\"does not modify the upstream gradient or the cache\"")


def layer_checks(spec: LayerSpec) -> list[Check]:
    """The standard checks of ``spec``'s forward, then of its backward (if any)."""
    checks = forward_checks(spec)
    if spec.backward:
        checks += backward_checks(spec)
    return checks
