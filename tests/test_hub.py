"""A JupyterHub course played from the shell: the instructor (this process's user, root) and two
student accounts (``useradd``) share nbgrader's exchange folder, as on a hub.

The course folder is a copy of this repository's (config, solutions, autograder; the data
linked); students run the world-readable venv (``shared_venv``; the instructor's interpreter
may live in a private home) with their own ``~/.jupyter/nbgrader_config.py``
(docs/student_nbgrader_config.py, exchange folder adapted) and ``SEQLAB_DATA_DIR`` pointing
at the shared data that ``python -m autograder data`` built. Then, as docs/nbgrader.md says:
``generate_assignment``, ``release_assignment``; each student ``fetch_assignment``, checks the
fetched copy (its figures are there and are PNG images, the data loads without write access to
the shared folder) and puts the reference modules in. Ann ``submit``s; ``collect``; the due date
passes (set in the gradebook; late submissions score zero: ``penalty_method = "zero"``); bob
``submit``s with his clock set to the year 2000 (the exchange then holds his claim);
``collect --update``, ``nbgrader-prepare``, ``autograde``, ``generate_feedback``,
``release_feedback``, ``export``; each student ``fetch_feedback``.

Asserted: ann gets every autograded point; bob's forged time changes nothing: his submission
time is when collect saw it, so he is late and scores zero (raw score all autograded points);
each student can read their own feedback, which shows the checks' summary and names no path of
the course; students cannot read the course folder.
Needs root, useradd/userdel, runuser and the shared venv: skipped without them, failed under CI.
"""
import csv
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import course
from seqlab_dev.testing import require_e2e

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "sequence_models"
STUDENT_MODULES = list(course.STUDENT_MODULES)
# both hand in the reference modules; ann before the due date, bob after it, claiming 2000
ANN, BOB = "seqlab-ann", "seqlab-bob"
STUDENTS = (ANN, BOB)
FORGED = "2000-01-01 00:00:00.000000 UTC"
TIMEOUT = 900


def _require_root_tools():
    missing = [t for t in ("useradd", "userdel", "runuser") if shutil.which(t) is None]
    if os.geteuid() != 0 or missing:
        require_e2e("the hub test needs root and " + ", ".join(
            missing or ["useradd", "userdel", "runuser"]))


def _run(cmd, cwd, env, what):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (f"{what} failed (exit {proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


class Hub:
    """The machine: a world-traversable base folder with the exchange, the shared data and
    the course (the instructor's, private); students in their homes."""

    def __init__(self, base, venv):
        self.base, self.venv = base, venv
        self.exchange = base / "exchange"
        self.data = base / "data"
        self.course = base / "instructor" / "course"
        self.instructor_config = base / "instructor" / "jupyter"

    def instructor(self, *args, what=None):
        """Run ``python args`` as the instructor, in the course folder."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER"))}
        env.update(JUPYTER_CONFIG_DIR=str(self.instructor_config),
                   PYDEVD_DISABLE_FILE_VALIDATION="1",
                   PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
        return _run([sys.executable, *args], self.course, env, what or " ".join(args[:3]))

    def student(self, user, *args, what=None):
        """Run ``python args`` (the shared venv) as ``user``, in their home, with a clean
        environment as a hub's single-user server has."""
        home = pwd.getpwnam(user).pw_dir
        env = ["env", "-i", f"HOME={home}", f"USER={user}", f"LOGNAME={user}", "LANG=C.UTF-8",
               f"PATH={self.venv / 'bin'}:/usr/bin:/bin", f"SEQLAB_DATA_DIR={self.data}",
               "PYDEVD_DISABLE_FILE_VALIDATION=1"]
        cmd = ["runuser", "-u", user, "--", *env, str(self.venv / "bin" / "python"), *args]
        return _run(cmd, home, None, what or f"{user}: {' '.join(args[:3])}")


def _add_user(name):
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True,
                       capture_output=True)
    home = Path(pwd.getpwnam(name).pw_dir)
    return home


@pytest.fixture(scope="module")
def hub(shared_venv, report):
    _require_root_tools()
    if subprocess.run([str(shared_venv / "bin" / "python"), "-c", "import nbgrader"],
                      capture_output=True).returncode != 0:
        require_e2e(f"nbgrader is not installed in the shared venv {shared_venv}")
    base = Path(tempfile.mkdtemp(prefix="seqlab-hub-"))
    base.chmod(0o755)
    hub = Hub(base, shared_venv)
    added = []
    try:
        hub.exchange.mkdir()
        hub.exchange.chmod(0o1777)
        (base / "instructor").mkdir(mode=0o700)
        hub.instructor_config.mkdir()
        (hub.instructor_config / "nbgrader_config.py").write_text(
            f'c = get_config()\nc.CourseDirectory.course_id = "seqlab"\n'
            f'c.Exchange.root = "{hub.exchange}"\n'
            'c.LateSubmissionPlugin.penalty_method = "zero"\n')
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
        hub.course.mkdir()
        shutil.copy2(ROOT / "nbgrader_config.py", hub.course / "nbgrader_config.py")
        for folder in ("solutions", "autograder"):
            shutil.copytree(ROOT / folder, hub.course / folder, ignore=ignore, symlinks=True)
        # the data only feeds `python -m autograder data` (which copies it): no second copy
        (hub.course / "datasets").symlink_to(ROOT / "datasets")
        student_config = (ROOT / "docs" / "student_nbgrader_config.py").read_text()
        assert '"/srv/nbgrader/exchange"' in student_config
        for user in STUDENTS:
            home = _add_user(user)
            added.append(user)
            jupyter = home / ".jupyter"
            jupyter.mkdir(exist_ok=True)
            (jupyter / "nbgrader_config.py").write_text(
                student_config.replace('"/srv/nbgrader/exchange"', f'"{hub.exchange}"'))
            subprocess.run(["chown", "-R", f"{user}:{user}", str(jupyter)], check=True)
        yield hub
    finally:
        for user in added:
            subprocess.run(["userdel", "--remove", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _png_references(notebook):
    import nbformat
    nb = nbformat.read(str(notebook), as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return re.findall(r"\]\(([^)\s]+\.png)\)", text)


CHECK_FETCHED = """
import json, os, sys
from pathlib import Path
folder = Path.home() / "sequence_models"
missing, not_png = [], []
for rel in json.loads(sys.argv[1]):
    path = folder / rel
    if not path.is_file():
        missing.append(rel)
    elif path.read_bytes()[:8] != b"\\x89PNG\\r\\n\\x1a\\n":
        not_png.append(rel)
sys.path.insert(0, str(folder))
from seqlab.data import load_captioning_data
data = load_captioning_data(max_train=10)
print(json.dumps({"missing": missing, "not_png": not_png,
                  "train": int(data["train_captions"].shape[0]),
                  "course_readable": os.access(sys.argv[2], os.R_OK)}))
"""

WORK = """
import shutil, sys
from pathlib import Path
folder = Path.home() / "sequence_models" / "seqlab"
for name in sys.argv[1:]:
    shutil.copy(name, folder / Path(name).name)
"""

# as the student: {feedback page: (shows the checks' summary, names a path under the hub's base)}
READ_FEEDBACK = """
import json, pathlib, sys
pages = (pathlib.Path.home() / "sequence_models" / "feedback").rglob("*.html")
print(json.dumps({p.name: ("hidden checks passed" in p.read_text(encoding="utf-8"),
                           sys.argv[1] in p.read_text(encoding="utf-8")) for p in pages}))
"""


def test_a_hub_course_from_release_to_feedback(hub, report):
    import time
    t0 = time.monotonic()
    # the shared data, world-readable, where students read it (one command)
    hub.instructor("-m", "autograder", "data", str(hub.data))
    hub.instructor("-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force",
                   "--log-level=WARN")
    hub.instructor("-m", "nbgrader", "release_assignment", ASSIGNMENT, "--force",
                   "--log-level=WARN")
    release = hub.course / "assignments" / ASSIGNMENT
    figures = sorted({p for nb in release.glob("*.ipynb") for p in _png_references(nb)})
    assert figures, "no figure referenced by the notebooks"

    # the reference modules, readable by the students for this test only
    ref = hub.base / "reference"
    ref.mkdir()
    for mod in STUDENT_MODULES:
        shutil.copy(ROOT / "solutions" / ASSIGNMENT / "seqlab" / f"{mod}.py", ref / f"{mod}.py")
        (ref / f"{mod}.py").chmod(0o644)
    ref.chmod(0o755)

    import json
    for user in STUDENTS:
        hub.student(user, "-m", "nbgrader", "fetch_assignment", ASSIGNMENT, "--log-level=WARN")
        check = json.loads(hub.student(user, "-c", CHECK_FETCHED, json.dumps(figures),
                                       str(hub.course)).stdout.strip().splitlines()[-1])
        assert check["missing"] == [] and check["not_png"] == [], (user, check)
        assert check["train"] == 10 and check["course_readable"] is False, (user, check)
        if user == STUDENTS[0]:   # every home has the same config file: checked once
            timeout = hub.student(user, "-c", "from nbgrader.apps import NbGraderApp; "
                                  "from nbgrader.preprocessors import Execute; a = NbGraderApp(); "
                                  "a.initialize([]); print(Execute(parent=a).timeout)")
            assert timeout.stdout.split()[-1] == "600", timeout.stdout   # Validate's cell limit
        hub.student(user, "-c", WORK, *[str(ref / f"{m}.py") for m in STUDENT_MODULES])

    hub.student(ANN, "-m", "nbgrader", "submit", ASSIGNMENT, "--log-level=WARN")
    hub.instructor("-m", "nbgrader", "collect", ASSIGNMENT, "--log-level=WARN")
    due = _set_due_date_now(hub)
    hub.student(BOB, "-c", FORGE_SUBMIT, FORGED, ASSIGNMENT)
    hub.instructor("-m", "nbgrader", "collect", ASSIGNMENT, "--update", "--log-level=WARN")
    for user in STUDENTS:
        assert (hub.course / "submitted" / user / ASSIGNMENT / "01_rnn_captioning.ipynb").is_file()
    hub.instructor("-m", "autograder", "nbgrader-prepare", ASSIGNMENT, "--jobs", "2", "--quiet")
    hub.instructor("-m", "nbgrader", "autograde", ASSIGNMENT, "--force", "--log-level=WARN")
    hub.instructor("-m", "nbgrader", "generate_feedback", ASSIGNMENT, "--force",
                   "--log-level=WARN")
    hub.instructor("-m", "nbgrader", "release_feedback", ASSIGNMENT, "--log-level=WARN")
    hub.instructor("-m", "nbgrader", "export", "--to=grades.csv", "--log-level=WARN")

    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{hub.course / 'gradebook.db'}", "seqlab") as gb:
        times = {u: gb.find_submission(ASSIGNMENT, u).timestamp for u in STUDENTS}
    assert times[ANN] <= due < times[BOB], (times, due)
    with open(hub.course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    autograded = float(rows[ANN]["max_score"]) - _manual_points(release)
    assert float(rows[ANN]["score"]) == autograded, rows
    assert float(rows[ANN]["late_submission_penalty"]) == 0, rows
    assert float(rows[BOB]["raw_score"]) == autograded and float(rows[BOB]["score"]) == 0, rows

    for user in STUDENTS:
        hub.student(user, "-m", "nbgrader", "fetch_feedback", ASSIGNMENT, "--log-level=WARN")
        pages = json.loads(hub.student(user, "-c", READ_FEEDBACK, str(hub.base))
                           .stdout.strip().splitlines()[-1])
        assert sorted(pages) == sorted(p.stem + ".html" for p in release.glob("*.ipynb")), (
            user, pages)
        for name, (summary, course_path) in pages.items():
            assert summary and not course_path, (user, name, summary, course_path)
    report(f"[hub] release -> feedback with 2 student accounts: {time.monotonic() - t0:.1f} s")


# bob's own `nbgrader submit`, with his clock set to the year 2000 (the exchange's folder name and
# its timestamp.txt then claim it)
FORGE_SUBMIT = """
import sys
from nbgrader.apps import NbGraderApp
from nbgrader.exchange.abc import exchange
forged, assignment = sys.argv[1:]

def set_timestamp(self):
    self.timestamp = forged

exchange.Exchange.set_timestamp = set_timestamp
sys.argv = ["nbgrader", "submit", assignment, "--log-level=WARN"]
NbGraderApp.launch_instance()
"""


def _set_due_date_now(hub):
    """Set the assignment's due date in the gradebook to now (UTC, naive as nbgrader keeps it)."""
    import datetime

    from nbgrader.api import Gradebook
    due = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    with Gradebook(f"sqlite:///{hub.course / 'gradebook.db'}", "seqlab") as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=due)
    return due


def _manual_points(release):
    """Points of the inline questions (graded by hand, unscored here)."""
    import nbformat
    total = 0.0
    for nb in release.glob("*.ipynb"):
        for cell in nbformat.read(str(nb), as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and meta.get("solution"):
                total += float(meta.get("points", 0))
    return total
