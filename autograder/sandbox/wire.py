"""The wire format between the grader and a worker, shared by both sides.

A frame is ``MAGIC, header length, data length`` (``HEAD``), a UTF-8 JSON header (a dict whose
``arrays`` entry is the table ``[name, dtype, shape, offset, nbytes]`` of the arrays) and the
raw bytes of those arrays. Only plain numeric dtypes travel; nothing is ever pickled. After each
answer the worker writes ``marker(token, n)`` into its output, so that the grader gives each call
the output it printed (``output.py``).

The worker imports this file as ``_seqlab_wire`` (a copy in its scratch folder: it cannot
import the autograder package), before any student code runs; the functions it uses are bound
then, so student code that patches ``json`` cannot change what the worker sends.
"""
import json
import re
import struct

import numpy as np

MAGIC = b"SQLW"
HEAD = struct.Struct(">4sIQ")
MAX_HEADER = 4 * 2 ** 20       # bytes of a frame's JSON header
MAX_NESTING = 64               # brackets deep in a frame's JSON header
MAX_REQUEST = 512 * 2 ** 20    # bytes of a request (header and arrays)
ALLOWED_DTYPES = frozenset({"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8",
                            "<f2", "<f4", "<f8", "<c8", "<c16"})

_dumps, _loads = json.dumps, json.loads  # taken before student code runs (worker side)


def pack(header: dict, arrays: dict) -> bytes:
    """One frame: ``header`` (JSON-able dict) and ``arrays`` ({name: numeric ndarray})."""
    table, blobs, offset = [], [], 0
    for name, arr in arrays.items():
        data = arr.tobytes()
        table.append([name, arr.dtype.str, list(arr.shape), offset, len(data)])
        blobs.append(data)
        offset += len(data)
    head = _dumps(dict(header, arrays=table)).encode("utf-8")
    return HEAD.pack(MAGIC, len(head), offset) + head + b"".join(blobs)


def sizes(head: bytes, max_header: int = MAX_HEADER) -> tuple:
    """(header length, data length) of a frame's first ``HEAD.size`` bytes. Raises ValueError
    when the magic is wrong or the header is longer than ``max_header``."""
    magic, hlen, dlen = HEAD.unpack(head)
    if magic != MAGIC or hlen > max_header:
        raise ValueError("not a frame")
    return hlen, dlen


def decode_header(raw: bytes) -> dict:
    """A frame's JSON header -> dict. Raises ValueError when it is not UTF-8 JSON of an object,
    or nests brackets deeper than MAX_NESTING (checked before parsing, so that the parser cannot
    recurse without bound)."""
    text = raw.decode("utf-8")
    brackets = re.sub(r'[^\[\]{}]', "", re.sub(r'"(?:[^"\\]|\\.)*"', "", text))
    depth = 0
    for ch in brackets:
        depth += 1 if ch in "[{" else -1
        if depth > MAX_NESTING:
            raise ValueError("the header nests too deep")
    header = _loads(text)
    if not isinstance(header, dict):
        raise ValueError("the header is not an object")
    return header


def unpack_arrays(table: list, data: bytes) -> dict:
    """{name: array} of a frame's array table and data. Only plain numeric dtypes whose size
    matches their shape; malformed entries are dropped (the value then reads as missing)."""
    out = {}
    if not isinstance(table, list):
        return out
    for entry in table:
        try:
            name, dtype, shape, off, nbytes = entry
            if dtype not in ALLOWED_DTYPES:
                continue
            dt = np.dtype(dtype)
            shape = tuple(int(s) for s in shape)
            count = int(np.prod(shape)) if shape else 1
            if count * dt.itemsize != nbytes or off < 0 or off + nbytes > len(data):
                continue
            arr = np.frombuffer(data, dtype=dt, count=count, offset=int(off)).reshape(shape)
            out[str(name)] = arr.copy()
        except (ValueError, TypeError):
            continue
    return out


def marker_prefix(token: bytes) -> bytes:
    """What every end-of-output marker of a worker with ``token`` starts with."""
    return b"\x00\x00" + token + b":"


def marker(token: bytes, number: int) -> bytes:
    """The marker the worker writes into its output after answer ``number`` (from 1)."""
    return marker_prefix(token) + b"%d\x00\x00" % number
