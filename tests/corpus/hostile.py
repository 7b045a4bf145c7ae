"""Hostile submissions: the reference ``rnn_layers.py`` with one or two functions replaced by
code that attacks the grader. Each entry: the code appended to the reference module (a later
``def`` replaces the reference one), the API names it may break, and the API names graded in
the test (all others selected must keep full marks).

Used by tests/test_autograder_hostile.py.
"""

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
    while True:                         # eats memory until the limit stops it
        hog.append(_np.ones(50_000_000))
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

# name -> (appended code, API names it may break, root only)
HOSTILE = {
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
