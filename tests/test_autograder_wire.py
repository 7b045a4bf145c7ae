"""The grader's side of the wire, on hostile input (no worker process: unit tests).

Answer frames, answer contents, the output reader, submission walking, and what reaches the
instructor's terminal. Each hostile input is first shown to break the naive code it replaced
(the positive control), then to be refused cleanly.
"""
import io
import json
import os
import struct
import time
import zipfile

import numpy as np
import pytest

from autograder import cli, replies, report, sandbox, submission
from autograder.sandbox import WorkerFailure, wire
from autograder.sandbox.output import OutputReader

# ------------------------------------------------------------------------------ frames

def test_deep_header_is_refused_before_parsing():
    deep = b"[" * 100000 + b"]" * 100000
    with pytest.raises(RecursionError):  # positive control: what the decoder used to call
        json.loads(deep)
    with pytest.raises(ValueError, match="nests too deep"):
        wire.decode_header(b'{"a": ' + deep + b"}")
    # brackets inside strings do not count; ordinary headers pass
    header = {"ok": True, "text": "[" * 500, "values": {"a": {"shape": [2, 3]}}}
    assert wire.decode_header(json.dumps(header).encode()) == header
    for bad in (b"[1, 2]", b"\xff\xfe", b'{"a": '):
        with pytest.raises(ValueError):
            wire.decode_header(bad)


class _Pipe:
    """A Worker whose answer channel is a pipe filled by the test."""

    def __init__(self, data):
        self.worker = sandbox.Worker.__new__(sandbox.Worker)
        r, w = os.pipe()
        os.write(w, data)
        os.close(w)
        self.worker._resp_r = r
        self.worker.proc = None

    def receive(self, budget=2 ** 20):
        try:
            return self.worker._receive(sandbox.Deadline(5), budget)
        finally:
            os.close(self.worker._resp_r)


def _frame(header_bytes, data=b""):
    return struct.pack(">4sIQ", b"SQLW", len(header_bytes), len(data)) + header_bytes + data


@pytest.mark.parametrize("payload, message", [
    (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "malformed"),
    (b"not json", "malformed"),
    (b'"a string"', "malformed"),
])
def test_bad_frames_are_failures_of_the_call(payload, message):
    with pytest.raises(WorkerFailure, match=message) as exc:
        _Pipe(_frame(payload)).receive()
    assert exc.value.kind == "protocol"


def test_answer_over_the_byte_budget_is_refused_unread():
    # announces 200 MiB of values: refused from the frame head, nothing allocated
    head = struct.pack(">4sIQ", b"SQLW", 2, 200 * 2 ** 20) + b"{}"
    with pytest.raises(WorkerFailure, match="more than a call may return"):
        _Pipe(head).receive(budget=64 * 2 ** 20)


# ------------------------------------------------------------------------------ answers

def _answer(values, arrays=None, **extra):
    resp = {"ok": True, "error": None, "values": values, "json": {}}
    resp.update(extra)
    return resp, arrays or {}


def test_only_requested_values_are_kept():
    a = np.arange(6.0).reshape(2, 3)
    resp, arrays = _answer({
        "out": {"kind": "ndarray", "shape": [2, 3], "dtype_np": "<f8", "key": "v0"},
        "g.dx": {"kind": "ndarray", "shape": [2, 3], "dtype_np": "<f8", "key": "v0"},
        "unasked": {"kind": "ndarray", "shape": [2, 3], "dtype_np": "<f8", "key": "v0"}},
        {"v0": a})
    ok, error, values, _ = replies.decode(resp, arrays, ["out", "g.*"])
    assert ok and error is None
    assert sorted(values) == ["g.dx", "out"]
    assert values["out"][1] is a


@pytest.mark.parametrize("resp", [
    {"ok": True, "error": ["not", "a", "dict"], "values": {}},       # a bad import answer
    {"ok": "yes", "values": {}},
    {"ok": True, "values": []},
    {"ok": True, "values": {"out": ["meta"]}},
    {"ok": True, "values": {"out": {"kind": "pickle"}}},
    {"ok": True, "values": {"out": {"kind": "ndarray", "shape": [2, -1]}}},
    {"ok": True, "values": {"out": {"kind": "ndarray", "shape": "big"}}},
    {"ok": False, "error": {"message": 42}, "values": {}},
    {"ok": False, "error": {"where": [1, 2]}, "values": {}},
    {"ok": True, "values": {}, "json": []},
])
def test_malformed_answers_are_protocol_failures(resp):
    if isinstance(resp.get("error"), list):  # positive control: the runner used to call
        with pytest.raises(AttributeError):  # .get on it and lose the whole batch
            resp["error"].get("message")
    with pytest.raises(WorkerFailure) as exc:
        replies.decode(resp, {}, ["out"])
    assert exc.value.kind == "protocol"


def test_array_must_match_its_description():
    a = np.zeros((2, 3))
    resp, arrays = _answer({"out": {"kind": "ndarray", "shape": [3, 2], "key": "v0"}},
                           {"v0": a})
    with pytest.raises(WorkerFailure, match="shape"):
        replies.decode(resp, arrays, ["out"])


# ------------------------------------------------------------------------------ output

def _reader(chunks, keep=100):
    token = b"abc123"
    stream = io.BytesIO(b"".join(chunks))
    r = OutputReader(stream, keep, token)
    r.run()  # synchronously: the stream ends
    return r


def test_output_reader_gives_each_answer_its_own_output():
    m = lambda n: b"\x00\x00abc123:%d\x00\x00" % n  # noqa: E731
    data = b"first\n" + m(1) + b"second\n" + m(2) + b"third, after the last answer"
    for size in (1, 3, 7, len(data)):  # any chunking of the stream
        stream = io.BytesIO(data)
        stream.read1 = lambda n, s=stream, k=size: s.read(min(n, k))
        r = OutputReader(stream, 100, b"abc123")
        r.run()
        assert r.segment(2, time.monotonic()) == "second\n"
        assert r.segment(1, time.monotonic()) == "first\n"
        assert r.rest() == "third, after the last answer"


def test_output_reader_keeps_a_head_and_strips_control_characters():
    r = _reader([b"\x1b[31mred\r" + b"x" * 500 + b"\x00\x00abc123:1\x00\x00"], keep=50)
    text = r.segment(1, time.monotonic())
    assert "\x1b" not in text and "\r" not in text
    assert text.startswith("[31mred") and "more bytes of output dropped" in text


def test_unmarked_answer_has_no_output_of_its_own():
    r = _reader([b"printed by 1, whose marker failed" + b"\x00\x00abc123:2\x00\x00"])
    assert r.segment(1, time.monotonic()) is None
    assert r.segment(2, time.monotonic()) == "printed by 1, whose marker failed"


# ------------------------------------------------------------------------------ submissions

def test_deep_folder_is_walked_within_limits(tmp_path):
    folder = tmp_path / "deep"
    path = str(folder)
    os.mkdir(path)
    for _ in range(1000):  # (pathlib's mkdir(parents=True) recurses too deep itself)
        path += "/d"
        os.mkdir(path)
    with open(path + "/rnn_layers.py", "w") as f:
        f.write("x = 1\n")
    (folder / "rnn_layers.py").write_text("y = 2\n")
    with pytest.raises(RecursionError):  # positive control: a recursive walk fails
        def walk(p):
            for c in p.iterdir():
                if c.is_dir():
                    walk(c)
        walk(folder)
    try:
        sub = submission.load(folder)
    finally:  # iteratively: pytest's own clean-up would recurse too deep
        os.unlink(path + "/rnn_layers.py")
        while path != str(folder):
            os.rmdir(path)
            path = os.path.dirname(path)
    assert sub.files == {"rnn_layers": b"y = 2\n"}
    assert any("nested deeper" in p for p in sub.problems)


def test_entry_budget_is_shared_by_nested_zips(tmp_path):
    problems = []
    budget = submission.Budget(problems, entries=5)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(4):
            zf.writestr(f"f{i}.txt", "x")
    with zipfile.ZipFile(buf) as zf:
        assert len(submission.zip_entries(zf, budget)) == 4
        assert len(submission.zip_entries(zf, budget)) == 1  # the second zip: one left
    assert problems == ["the submission has too many files; the rest were ignored"]


# ------------------------------------------------------------------------------ reports

def test_student_strings_are_safe_to_print():
    name = "alice\n== bob: 100 / 100 points\x1b[2J"
    line = report.clean_line(name)
    assert "\n" not in line and "\x1b" not in line
    assert line.startswith("alice?== bob")


def test_colliding_output_names_are_refused(tmp_path, capsys):
    for name in ("alice smith", "alice_smith"):
        (tmp_path / name).mkdir()
    code = cli.main(["grade", str(tmp_path / "alice smith"), str(tmp_path / "alice_smith"),
                     "--out-dir", str(tmp_path / "out"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "would both write 'alice_smith.json'" in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ isolation

def test_allowlist_covers_the_course_inside_a_bound_folder(tmp_path):
    """An installed course (the package inside an interpreter's site-packages) is covered by
    an empty folder; the worker's own folders come after the fresh /tmp."""
    from autograder import isolation
    site = tmp_path / "site-packages"
    (site / "autograder").mkdir(parents=True)
    args = isolation.bwrap_args("bwrap", [str(site)], [str(site / "autograder")],
                                tmp_path, None)
    flat = " ".join(args)
    assert f"--tmpfs {site / 'autograder'}" in flat
    assert flat.index("--tmpfs /tmp") < flat.index(f"--ro-bind {site} {site}") < \
        flat.index(f"--tmpfs {site / 'autograder'}")
    assert "--unshare-net" in args and "--unshare-pid" in args and "--unshare-ipc" in args
    assert "--unshare-user" not in args  # as root: a fresh uid by setpriv, not a user ns


@pytest.mark.parametrize("method, cgroup, level, missing", [
    ("bwrap", True, "full", []),
    ("uid+bwrap", True, "full", []),
    ("bwrap-userns", False, "reduced", ["unprivileged uid", "memory and pids cgroup"]),
    ("uid", True, "reduced", ["mount namespace", "PID namespace", "network namespace",
                              "IPC namespace"]),
    ("plain", True, "none", ["no capabilities", "mount namespace", "PID namespace",
                             "network namespace", "IPC namespace", "unprivileged uid"]),
])
def test_levels_follow_their_definitions(method, cgroup, level, missing):
    from autograder import isolation
    got = isolation.level_of(method, cgroup)
    assert (got.level, got.missing) == (level, missing)
    isolation.require(got, level)  # accepted when asked for explicitly
    if level != "full":
        with pytest.raises(isolation.IsolationTooLow, match="--allow-isolation"):
            isolation.require(got, "full")  # the default refuses it
