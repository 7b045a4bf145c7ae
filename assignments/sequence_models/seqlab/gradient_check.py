"""Numeric gradients and error measures used by every check in the course (given code).

The numeric gradient uses centered differences, ``(f(x + h) - f(x - h)) / (2 h)``, in float64,
so its own error is about h**2 ~ 1e-10 of the second derivative: a correct analytic gradient
agrees with it to a relative error of about 1e-8 or better.
"""
import numpy as np


def rel_error(x, y):
    """Maximum relative error between two arrays (or scalars) of the same shape.

    Inputs:
    - x, y: arrays of any shape (the same for both), or scalars.

    Returns a float: ``max |x - y| / max(1e-8, |x| + |y|)`` over all entries. About 1e-7 or
    less means "equal up to round-off" in float64; 1e-2 or more means a bug.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: shapes differ, x has {x.shape} and y has {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, h=1e-5, verbose=False):
    """Numeric gradient of a scalar function ``f`` at ``x`` by centered differences.

    Inputs:
    - f: function taking an array shaped like x and returning a scalar.
    - x: float64 array of any shape; changed in place while probing, restored afterwards.
    - h: step size.
    - verbose: print each partial derivative.

    Returns grad, an array with the shape of x: ``grad[i] = d f / d x[i]``.
    """
    if x.dtype != np.float64:
        raise TypeError(f"eval_numerical_gradient: x must be float64 (got {x.dtype}); "
                        "numeric gradients in float32 are too noisy to check anything")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        fxph = float(f(x))
        x[ix] = old - h
        fxmh = float(f(x))
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numeric gradient of an array-valued function, contracted with an upstream gradient.

    For ``out = f(x)`` and an upstream gradient ``df = dL/dout`` (same shape as out), returns
    ``dL/dx = sum(df * d out / d x)`` by centered differences.

    Inputs:
    - f: function taking an array shaped like x and returning an array shaped like df.
    - x: float64 array of any shape; changed in place while probing, restored afterwards.
    - df: float64 array, the upstream gradient.
    - h: step size.

    Returns grad, an array with the shape of x.
    """
    if x.dtype != np.float64:
        raise TypeError(f"eval_numerical_gradient_array: x must be float64 (got {x.dtype})")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old - h
        neg = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad


def check_close(name, got, expected, tol=1e-7, what="relative error"):
    """Print one line comparing ``got`` with ``expected`` and return the relative error.

    Used by the notebooks' check cells: it says what was compared, the error found and the
    size of error to expect from a correct implementation. Raises AssertionError (with the
    same message) when the error is above ``tol`` or the shapes differ.

    Inputs:
    - name: what is compared, e.g. "next_h" or "dWx".
    - got, expected: arrays of the same shape.
    - tol: largest acceptable relative error.
    """
    got = np.asarray(got)
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: expected shape {expected.shape}, got {got.shape}")
    err = rel_error(got, expected)
    status = "OK " if err <= tol else "BAD"
    line = f"[{status}] {name:<12} {what}: {err:.2e}   (a correct implementation gives < {tol:.0e})"
    print(line)
    if err > tol:
        raise AssertionError(line)
    return err


FLOAT32_CAUSE = ("under NumPy 2 a NumPy scalar such as np.sqrt(H), or an array made with "
                 "np.zeros(shape) (float64 by default), turns float32 into float64; a Python "
                 "float (math.sqrt(H), 1.0), np.zeros_like(x) and np.zeros(shape, dtype=x.dtype) "
                 "do not")
"""The usual reason a function given float32 inputs returns float64."""


def check_float32(name, outputs, expected=None, rtol=2e-4, atol=2e-5):
    """Print one line saying whether every output of a float32 call is a float32 array.

    Used by the notebooks' check cells: the models train in float32, so every function must
    return float32 arrays (outputs and gradients) when its float inputs are float32. All wrong
    outputs are reported at once. Raises AssertionError (with the same message, naming each
    wrong output, its type or dtype, and the usual cause) when any output is not float32, or,
    given ``expected``, when its values are off.

    Inputs:
    - name: the function that was called, e.g. "lstm_step_forward".
    - outputs: dict {output name: what the function returned for it}, e.g.
      ``{"next_h": next_h, "next_c": next_c}``; the order is kept in the message.
    - expected: optional dict {output name: the same output computed in float64}; then the
      values must also agree: |got - expected| <= atol * max(1, max |expected|) +
      rtol * |expected| everywhere (float32 keeps about 7 significant digits).

    Returns None.
    """
    wrong = [f"{k} is {v.dtype}" if isinstance(v, np.ndarray) else f"{k} is {type(v).__name__}"
             for k, v in outputs.items()
             if not (isinstance(v, np.ndarray) and v.dtype == np.float32)]
    off = []
    for k, v in (expected or {}).items():
        got = outputs[k]
        if not (isinstance(got, np.ndarray) and got.dtype == np.float32):
            continue
        v = np.asarray(v, dtype=np.float64)
        if got.shape != v.shape:
            off.append(f"{k} has shape {got.shape}, expected {v.shape}")
        elif not np.all(np.abs(got - v) <= atol * max(1.0, np.max(np.abs(v), initial=0))
                        + rtol * np.abs(v)):
            off.append(f"{k} is off by up to {np.max(np.abs(got - v)):.1e}")
    if not wrong and not off:
        values = ", values as in float64" if expected else ""
        print(f"[OK ] {name}: float32 in -> float32 out ({', '.join(outputs)}){values}")
        return
    line = f"[BAD] {name}: "
    if wrong:
        line += (f"float32 in -> float32 out expected, but {', '.join(wrong)}. "
                 f"Usual cause: {FLOAT32_CAUSE}")
    if off:
        line += ("; " if wrong else "") + f"float32 values wrong: {'; '.join(off)}"
    print(line)
    raise AssertionError(line)


def check_unchanged(name, arrays, copies):
    """Print one line saying whether a function left the arrays it was given unchanged.

    Inputs:
    - name: the function that was called.
    - arrays: dict {argument name: array}, the arrays passed to the function (read after the
      call).
    - copies: dict {argument name: array}, copies of them made before the call.

    Returns None; raises AssertionError naming every argument that was modified.
    """
    changed = [k for k in arrays if not np.array_equal(arrays[k], copies[k])]
    if not changed:
        print(f"[OK ] {name}: inputs unchanged ({', '.join(arrays)})")
        return
    line = (f"[BAD] {name} modified its argument(s) {', '.join(changed)}: build new arrays "
            f"(x = x - m), never write into the ones you are given (x -= m, x[...] = ...)")
    print(line)
    raise AssertionError(line)
