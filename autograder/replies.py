"""Checking a worker's answer (grader side). Every answer is treated as hostile.

A worker answers each call with a JSON header and arrays (see ``sandbox/wire.py``). The header
should say whether the call succeeded (``ok``), the error of the step that failed, and, for
each value the call asked for, what came back (``kind``, ``type``, ``shape``...) with the key
of its array. ``decode`` keeps only the values the call asked for, checks every field's type
and that each array has the shape and dtype its description claims, and turns anything
malformed into a ``WorkerFailure("protocol")`` of that call.
"""
from typing import Callable

from autograder.checks import core
from autograder.sandbox import WorkerFailure

KINDS = {"missing", "none", "tensor", "ndarray", "scalar", "sequence", "other"}
_META_TYPES = {"kind": str, "type": str, "dtype": str, "dtype_np": str, "length": int,
               "requires_grad": bool, "unconvertible": bool, "error": str, "key": str,
               "shape": list}
_ERROR_TYPES = {"type": str, "message": str, "where": list, "step": (int, str), "label": str}
MAX_TEXT = 4000
MAX_DIMS = 32


def _bad(what):
    return WorkerFailure("protocol", f"the worker sent a malformed answer ({what})")


def wanted(name: str, returns: list) -> bool:
    """True when value ``name`` was asked for by ``returns`` (names, or ``prefix.*``)."""
    for r in returns:
        if r == name or (r.endswith(".*") and name.startswith(r[:-1])):
            return True
    return False


def _meta(name, meta):
    if not isinstance(meta, dict):
        raise _bad(f"value {name!r} is not described by an object")
    out = {}
    for key, value in meta.items():
        typ = _META_TYPES.get(key)
        if typ is None:
            continue  # unknown fields are dropped
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise _bad(f"field {key!r} of value {name!r}")
        if isinstance(value, str):
            value = value[:200]
        out[key] = value
    if out.get("kind", "missing") not in KINDS:
        raise _bad(f"kind of value {name!r}")
    shape = out.get("shape")
    if shape is not None and (len(shape) > MAX_DIMS or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise _bad(f"shape of value {name!r}")
    return out


def _error(error):
    if error is None:
        return None
    if not isinstance(error, dict):
        raise _bad("error")
    out = {}
    for key, value in error.items():
        typ = _ERROR_TYPES.get(key)
        if typ is None:
            continue
        if not isinstance(value, typ):
            raise _bad(f"error field {key!r}")
        if key == "where":
            if not all(isinstance(x, str) for x in value):
                raise _bad("error field 'where'")
            value = [x[:MAX_TEXT] for x in value[-10:]]
        elif isinstance(value, str):
            value = value[:MAX_TEXT]
        out[key] = value
    return out


def decode(resp: dict, arrays: dict, returns: list) -> tuple:
    """Check one answer. ``resp``: its header (a dict); ``arrays``: {key: ndarray};
    ``returns``: the names the call asked for. Returns (ok, error dict or None,
    {name: (meta, array or None)}, json dict). Raises WorkerFailure("protocol")."""
    if not isinstance(resp, dict):
        raise _bad("not an object")
    ok = resp.get("ok")
    if not isinstance(ok, bool):
        raise _bad("'ok' is not true or false")
    error = _error(resp.get("error"))
    raw_values = resp.get("values", {})
    if not isinstance(raw_values, dict):
        raise _bad("'values' is not an object")
    values = {}
    for name, meta in raw_values.items():
        if not wanted(name, returns):
            continue  # never asked for: dropped
        meta = _meta(name, meta)
        arr = None
        key = meta.get("key")
        if key is not None:
            arr = arrays.get(key)  # None when its dtype is not a plain numeric one
            if arr is not None and "shape" in meta and list(arr.shape) != meta["shape"]:
                raise _bad(f"value {name!r} has shape {arr.shape}, described as "
                           f"{tuple(meta['shape'])}")
            if arr is not None and "dtype_np" in meta and arr.dtype.str != meta["dtype_np"]:
                raise _bad(f"value {name!r} has another dtype than described")
        values[name] = (meta, arr)
    js = resp.get("json", {})
    if not isinstance(js, dict):
        raise _bad("'json' is not an object")
    return ok, error, values, js


def result(resp: dict, arrays: dict, returns: list, output: str,
           scrub: Callable[[str], str]) -> core.Result:
    """The checked core.Result of one answer (``decode``; raises WorkerFailure when it is
    malformed): only the values the call asked for (``returns``), and ``scrub`` (a function
    that removes the scratch folder's path) applied to every text."""
    ok, error, values, js = decode(resp, arrays, returns)
    if error:
        error = {k: (scrub(v) if isinstance(v, str) else
                     [scrub(x) for x in v] if isinstance(v, list) else v)
                 for k, v in error.items()}
    return core.Result(ok=ok, error=error,
                       values={k: core.Value(m, a) for k, (m, a) in values.items()},
                       json=js, output=scrub(output))


def import_message(error: dict | None) -> str:
    """What a failed import answer says: the error's message and its last three places."""
    error = error or {}
    msg = error.get("message") or "import failed"
    where = error.get("where") or []
    if where:
        msg += "\n    at " + "\n    at ".join(where[-3:])
    return msg
