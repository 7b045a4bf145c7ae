"""Isolation levels: what the grader reports is what the worker gets (the matrix).

Each row grades one probe submission with an explicit ``--allow-isolation none``, from a
private copy of the course, with an interpreter the worker's uid may not be able to read (a
venv in a 0700 folder, built here, so that CI covers it), or the world-readable shared venv:

- root with every capability (a development machine);
- root with Docker's default capabilities (``setpriv --bounding-set``), with and without a
  seccomp filter like Docker's default one (python3-seccomp: ``unshare``, ``setns``, ``mount``
  and ``clone`` with a ``CLONE_NEW*`` flag fail with EPERM);
- a normal user (a ``useradd`` account run with ``runuser``, the shared venv).

The probe (the release stub plus code) reports, from inside the worker, its effective
capabilities, its uid outside any user namespace, its namespaces and its cgroup; the test
turns these into the guarantees the worker really had and asserts that the level and the
missing guarantees in results.json are exactly those. The probe also tries to import the
autograder package (it never can) and to read the reference: wherever the level has a mount
namespace or an unprivileged uid it scores 0; at level 'none' it scores full marks (what
autograder/README.md says succeeds there).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest

from autograder import isolation
from seqlab_dev.testing import require_e2e

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.e2e


API = "rnn_step_forward"
DOCKER_CAPS = ("chown,dac_override,fowner,fsetid,kill,setgid,setuid,setpcap,net_bind_service,"
               "net_raw,sys_chroot,mknod,audit_write,setfcap")
SECCOMP = textwrap.dedent("""
    import errno, os, sys
    import seccomp
    f = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in ("unshare", "setns", "mount"):
        f.add_rule(seccomp.ERRNO(errno.EPERM), name)
    for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000, 0x00000080):   # CLONE_NEWNS, CGROUP, UTS, IPC, USER, PID, NET, TIME
        f.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag,
                                                                    flag))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")   # as Docker: glibc falls back to clone
    f.load()
    os.execvp(sys.argv[1], sys.argv[1:])
""")

PROBE = textwrap.dedent('''

    import json as _json
    import os as _os


    def _observe():
        status = open("/proc/self/status").read()
        cap = int(status.split("CapEff:")[1].split()[0], 16)
        ns = {}
        for name in ("mnt", "pid", "net", "ipc"):
            try:
                ns[name] = _os.readlink("/proc/self/ns/" + name)
            except OSError:
                ns[name] = "?"
        cgroup = "seqlab-" in open("/proc/self/cgroup").read()
        try:
            import autograder  # noqa: F401
            grader = True
        except ImportError:
            grader = False
        return {"cap": cap, "ns": ns, "cgroup": cgroup, "autograder": grader}


    _stolen = None
    for _path in ("@@REFERENCE@@",):
        try:
            with open(_path) as _f:
                _stolen = _f.read()
        except OSError:
            pass
    print("PROBE " + _json.dumps(_observe()))
    import time as _time
    _time.sleep(1.0)  # time for the test to see this process's uid from outside
    if _stolen:
        exec(compile(_stolen, "stolen", "exec"), globals())
''')


class WorkerUids(threading.Thread):
    """Seen from the host: the real uids of the worker interpreters under process ``pid``
    (inside nested user namespaces a process cannot tell its uid outside)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.uids = set()
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(0.05):
            children = {}
            for p in os.listdir("/proc"):
                try:
                    with open(f"/proc/{p}/stat", "rb") as f:
                        data = f.read()
                    children.setdefault(int(data[data.rindex(b")") + 2:].split()[1]),
                                        []).append(int(p))
                except (OSError, ValueError, IndexError):
                    continue
            todo = [self.pid]
            while todo:
                p = todo.pop()
                todo.extend(children.get(p, []))
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        argv = f.read().split(b"\0")
                    if b"python" not in os.path.basename(argv[0]) or \
                            not any(a.endswith(b"_seqlab_worker.py") for a in argv):
                        continue
                    with open(f"/proc/{p}/status") as f:
                        uid = int(f.read().split("Uid:")[1].split()[0])
                    self.uids.add(uid)
                except (OSError, ValueError, IndexError):
                    continue

    def stop(self):
        self.halt.set()
        self.join()
        return self.uids


def _host_ns():
    return {name: os.readlink("/proc/self/ns/" + name) for name in ("mnt", "pid", "net", "ipc")}


def _guarantees(probe, grader_uid):
    """The guarantees of 'full' that the probe's observations show."""
    have = set()
    if probe["cap"] == 0:
        have.add("no capabilities")
    host = _host_ns()
    names = {"mnt": "mount namespace", "pid": "PID namespace", "net": "network namespace",
             "ipc": "IPC namespace"}
    for key, guarantee in names.items():
        if probe["ns"][key] != host[key]:
            have.add(guarantee)
    if probe["outside_uids"] and not probe["outside_uids"] & {0, grader_uid}:
        have.add("unprivileged uid")
    if probe["cgroup"]:
        have.add("memory and pids cgroup")
    return have


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A private copy of the course (mode 0700: what run_autograder makes of Gradescope's),
    a probe submission, and a venv inside a 0700 folder (an interpreter other uids cannot
    read, like a pyenv in root's home)."""
    if os.geteuid() != 0:
        pytest.skip("the matrix needs root (it builds the rows itself)")
    for tool in ("bwrap", "setpriv", "runuser", "useradd"):
        if shutil.which(tool) is None:
            require_e2e(f"{tool} is not installed (.ci/run installs it)")
    base = tmp_path_factory.mktemp("matrix")
    os.chmod(base, 0o755)
    copy = base / "course"
    for part in ("autograder", "solutions/sequence_models/seqlab",
                 "assignments/sequence_models/seqlab"):
        shutil.copytree(ROOT / part, copy / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    reference = copy / "solutions/sequence_models/seqlab/rnn_layers.py"
    sub = base / "probe"
    sub.mkdir()
    stub = (ROOT / "assignments/sequence_models/seqlab/rnn_layers.py").read_text()
    (sub / "rnn_layers.py").write_text(stub + PROBE.replace("@@REFERENCE@@", str(reference)))
    private = base / "private"
    private.mkdir(mode=0o700)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(private / "venv")], check=True)
    return dict(base=base, copy=copy, sub=sub, private_python=private / "venv/bin/python")


def _grade(course, name, python, prefix=(), user=None):
    out = course["base"] / f"{name}.json"
    cmd = [str(python), "-m", "autograder", "grade", str(course["sub"]), "--json", str(out),
           "--only", API, "--jobs", "1", "--allow-isolation", "none"]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8"}
    if user is not None:
        prefix = ["runuser", "-u", user, "--"]
        for path in (course["base"],):
            subprocess.run(["chown", "-R", user, str(path)], check=True)
    proc = subprocess.Popen(list(prefix) + cmd, cwd=course["copy"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watcher = WorkerUids(proc.pid)
    watcher.start()
    _, stderr = proc.communicate(timeout=300)
    uids = watcher.stop()
    assert proc.returncode == 0, stderr[-3000:]
    data = json.loads(out.read_text())
    probes = [json.loads(line[len("PROBE "):]) for t in data["tests"]
              for line in t["output"].splitlines() if line.startswith("PROBE ")]
    assert probes, data["tests"][0]["output"][:2000]
    probes[0]["outside_uids"] = uids
    score = sum(t["score"] for t in data["tests"])
    total = sum(t["max_score"] for t in data["tests"])
    return data["extra_data"]["isolation"], probes[0], score, total


def _check_row(reported, probe, score, total, grader_uid):
    have = _guarantees(probe, grader_uid)
    missing = [g for g in isolation.GUARANTEES if g not in have]
    assert reported["missing"] == missing, (reported, probe)
    expected_level = "full" if not missing else ("none" if reported["method"] == "plain"
                                                 else "reduced")
    assert reported["level"] == expected_level
    hidden = "mount namespace" in have or "unprivileged uid" in have
    assert not probe["autograder"], "the worker imported the autograder package"
    if hidden:
        assert score == 0, "the probe read the reference although the level hides it"
    else:
        assert score == total  # level none: the course is open to student code (documented)


def _docker(course, python, seccomp):
    prefix = ["setpriv", f"--bounding-set=-all,+{DOCKER_CAPS.replace(',', ',+')}",
              "--inh-caps=-all"]
    if seccomp:
        if not Path("/usr/bin/python3").exists() or subprocess.run(
                ["/usr/bin/python3", "-c", "import seccomp"], capture_output=True).returncode:
            require_e2e("python3-seccomp is not installed (.ci/run installs it)")
        prefix = ["/usr/bin/python3", "-c", SECCOMP] + prefix
    return prefix


def test_root_with_every_capability(course, report):
    reported, probe, score, total = _grade(course, "root", course["private_python"])
    report(f"isolation, root, all capabilities, 0700 interpreter: {reported}")
    _check_row(reported, probe, score, total, 0)
    assert reported["level"] == "full"


@pytest.mark.parametrize("seccomp", [False, True], ids=["caps", "caps+seccomp"])
@pytest.mark.parametrize("interpreter", ["0700", "shared"])
def test_root_in_a_docker_like_container(course, shared_venv, report, seccomp, interpreter):
    python = course["private_python"] if interpreter == "0700" else shared_venv / "bin/python"
    reported, probe, score, total = _grade(
        course, f"docker-{seccomp}-{interpreter}", python, prefix=_docker(course, python,
                                                                          seccomp))
    report(f"isolation, Docker capabilities{' + seccomp' if seccomp else ''}, {interpreter} "
           f"interpreter: {reported}")
    _check_row(reported, probe, score, total, 0)
    if seccomp and interpreter == "shared":  # what the Gradescope bundle gets
        assert reported["method"] == "uid" and reported["level"] == "reduced"


def test_normal_user(course, shared_venv, report):
    user = "seqlabgr" + os.urandom(3).hex()
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                   check=True)
    base = Path(tempfile.mkdtemp(prefix="seqlab-user-"))  # outside pytest's 0700 folders
    try:
        os.chmod(base, 0o755)
        shutil.copytree(course["copy"], base / "course")
        (base / "probe").mkdir()
        stub = (ROOT / "assignments/sequence_models/seqlab/rnn_layers.py").read_text()
        reference = base / "course/solutions/sequence_models/seqlab/rnn_layers.py"
        (base / "probe/rnn_layers.py").write_text(stub + PROBE.replace("@@REFERENCE@@",
                                                                       str(reference)))
        mine = dict(course, base=base, copy=base / "course", sub=base / "probe")
        uid = int(subprocess.run(["id", "-u", user], capture_output=True, text=True,
                                 check=True).stdout)
        reported, probe, score, total = _grade(mine, "user", shared_venv / "bin/python",
                                               user=user)
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    report(f"isolation, normal user: {reported}")
    _check_row(reported, probe, score, total, uid)
    assert reported["level"] != "full"


def test_gradescope_level_stops_what_it_claims(course, shared_venv, report):
    """The escapes of tests/corpus/hostile.py at the level Gradescope's container gives
    (Docker's capabilities and seccomp filter, a world-readable interpreter, the course
    private): with the explicit flag, no escape that a reported guarantee claims to stop
    works; the others are what autograder/README.md lists for that level."""
    sys.path.insert(0, str(ROOT / "tests" / "corpus"))
    import hostile
    base = course["base"] / "escapes"
    tag = "seqlab-matrix-" + os.urandom(4).hex()
    listener = hostile.Listener()
    listener.start()
    reference = course["copy"] / "solutions/sequence_models/seqlab/rnn_layers.py"
    handle, handle_type = hostile.file_handle(reference)
    fill = dict(COURSE=course["copy"], REFERENCE=reference, HANDLE=handle,
                HANDLE_TYPE=handle_type, PORT=listener.port, CLASSMATE="classmate-" + tag,
                SHM_KEY=0x5E000000 + int.from_bytes(os.urandom(3), "big"), TAG=tag)
    texts = {"stub": (ROOT / "assignments/sequence_models/seqlab/rnn_layers.py").read_text(),
             "reference": reference.read_text()}
    paths = []
    for name, (_, kind) in hostile.ESCAPES.items():
        (base / name).mkdir(parents=True)
        (base / name / "rnn_layers.py").write_text(hostile.escape_source(name, texts[kind], fill))
        paths.append(str(base / name))
    (base / fill["CLASSMATE"]).mkdir()
    (base / fill["CLASSMATE"] / "rnn_layers.py").write_text(texts["reference"])
    paths.append(str(base / fill["CLASSMATE"]))
    os.chmod(course["copy"], 0o700)  # as run_autograder makes the course folder
    python = shared_venv / "bin/python"
    cmd = _docker(course, python, True) + [
        str(python), "-m", "autograder", "grade", *paths, "--out-dir", str(base / "out"),
        "--only", hostile.ESCAPE_API, "--jobs", "2", "--timeout", "4",
        "--allow-isolation", "reduced"]
    shm_before = hostile.shm_keys()
    try:
        proc = subprocess.run(cmd, cwd=course["copy"], capture_output=True, text=True,
                              timeout=300, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                "LANG": "C.UTF-8"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = {n: json.loads((base / "out" / f"{n}.json").read_text())
                   for n in list(hostile.ESCAPES) + [fill["CLASSMATE"]]}
        run = dict(results=results, connections=listener.take(),
                   shm=fill["SHM_KEY"] in hostile.shm_keys() - shm_before,
                   files=hostile.tagged_files(tag))
    finally:
        listener.stop()
        subprocess.run(["ipcrm", "-M", str(fill["SHM_KEY"])], capture_output=True)
        for path in hostile.tagged_files(tag):
            os.unlink(path)
    reported = results[fill["CLASSMATE"]]["extra_data"]["isolation"]
    have = set(isolation.GUARANTEES) - set(reported["missing"])
    worked = [n for n in hostile.ESCAPES if hostile.escape_effect(run, n)]
    report(f"isolation {reported['level']} ({reported['method']}): escapes that work: "
           f"{', '.join(worked) or 'none'}")
    for name in hostile.ESCAPES:
        if any(need <= have for need in hostile.STOPPED_BY[name]):
            assert name not in worked, f"{name} works although the level claims to stop it"
    got, total = hostile.escape_score(results[fill["CLASSMATE"]], hostile.ESCAPE_API)
    assert got == total > 0
