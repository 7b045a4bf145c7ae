"""The editable install (``pip install -e .``, in requirements-dev.txt) and the sandbox.

The grader and the development helpers are installed in editable mode: site-packages holds a
``.pth`` file that installs a finder mapping ``autograder`` and ``seqlab_dev`` to this
repository. ``python -I`` (the worker's interpreter flags) ignores PYTHONPATH, the user's
site-packages and the current folder, but still runs the ``.pth`` files of site-packages (only
``-S`` skips them): the finder is installed inside every worker too. What keeps student code
out is the sandbox, which shows the worker its scratch folder and the interpreter's folders,
never the repository, so the finder points at folders that do not exist there.

- the grader's environment has the install, pointing into this repository, and the finder
  comes from site-packages (``-I`` keeps it, ``-S`` drops it);
- the students' environment (the shared venv that ``.ci/run`` builds) holds no grader;
- a probe submission graded in the sandbox has the finder loaded but can import neither
  package and read no file of the repository (the reference, a check, pyproject.toml); under
  ``--allow-isolation none`` (documented as no isolation) the same probe reads them all: the
  positive control.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from seqlab_dev.testing import require_e2e

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("autograder", "seqlab_dev")
# files a student must never read: the reference, a check, the course's configuration
SECRETS = ("solutions/sequence_models/seqlab/rnn_layers.py", "autograder/checks/rnn.py",
           "pyproject.toml")
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "LANG": "C.UTF-8"}

PROBE = textwrap.dedent('''

    import json as _json
    import os as _os
    import sys as _sys


    def _observe(root, secrets):
        """Kept short: the report shows 600 characters of a check's printed output."""
        mapping = {}
        for name, mod in list(_sys.modules.items()):
            if name.startswith("__editable__"):
                mapping.update(getattr(mod, "MAPPING", {}))
        seen = {"finder": any("__editable__" in getattr(f, "__module__", "")
                              for f in _sys.meta_path),
                "mapped": sorted(mapping.values()), "I": _sys.flags.isolated,
                "root": _os.path.exists(root)}
        for name in ("autograder", "seqlab_dev"):
            try:
                seen[name] = __import__(name).__file__
            except ImportError:
                seen[name] = None
        paths = [_os.path.join(root, s) for s in secrets]
        paths += [_os.path.join(p, "checks", "rnn.py") for p in mapping.values()
                  if p.endswith("autograder")]
        seen["read"] = 0
        for path in paths:
            try:
                with open(path) as f:
                    seen["read"] += len(f.read(64)) > 0
            except OSError:
                pass
        return seen


    print("PROBE " + _json.dumps(_observe(@@ROOT@@, @@SECRETS@@)))
''')


def _python(*args, python=None, cwd):
    return subprocess.run([str(python or sys.executable), *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=120)


def _where(python, cwd, *flags):
    """{package: file it imports from, or None} under ``python <flags>``, run in ``cwd``."""
    code = ("import importlib.util, json; print(json.dumps({n: getattr(importlib.util."
            "find_spec(n), 'origin', None) for n in %r}))" % (PACKAGES,))
    proc = _python(*flags, "-c", code, python=python, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """This interpreter imports the grader from this repository with no help (no PYTHONPATH,
    run outside the repository): the editable install of the README's set-up."""
    where = _where(None, tmp_path_factory.mktemp("elsewhere"), "-I")
    if not all(where.values()):
        require_e2e("the course is not installed in this environment "
                    "(pip install -r requirements.txt -r requirements-dev.txt)")
    return where


def test_install_is_editable_and_comes_from_site_packages(installed, tmp_path):
    for name in PACKAGES:  # editable: the repository's files, not a copy in site-packages
        assert Path(installed[name]) == ROOT / name / "__init__.py", installed
    # `python -I` runs the .pth files of site-packages; `-S` (no site) is what drops them
    assert _where(None, tmp_path, "-I", "-S") == {name: None for name in PACKAGES}
    # the reference package is not installed: `seqlab` is whatever folder a student works in
    proc = _python("-I", "-c", "import seqlab", cwd=tmp_path)
    assert proc.returncode != 0 and "No module named 'seqlab'" in proc.stderr


def test_students_environment_holds_no_grader(shared_venv, tmp_path):
    where = _where(shared_venv / "bin" / "python", tmp_path, "-I")
    assert where == {name: None for name in PACKAGES}, (
        f"the students' environment {shared_venv} can import the grader: {where}")


def _grade_probe(tmp_path, isolation, method=None):
    """Grade the probe (the release stub plus PROBE) with ``--allow-isolation isolation``
    from outside the repository; -> (the isolation reported, the probe's observations)."""
    sub = tmp_path / "probe" / "seqlab"
    sub.mkdir(parents=True)
    stub = (ROOT / "assignments/sequence_models/seqlab/rnn_layers.py").read_text()
    probe = PROBE.replace("@@ROOT@@", repr(str(ROOT))).replace("@@SECRETS@@", repr(SECRETS))
    (sub / "rnn_layers.py").write_text(stub + probe)
    out = tmp_path / "results.json"
    env = dict(ENV, SEQLAB_ISOLATION_METHOD=method) if method else ENV
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(sub.parent), "--json", str(out),
         "--only", "rnn_step_forward", "--jobs", "1", "--allow-isolation", isolation],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    probes = [json.loads(line[len("PROBE "):]) for t in data["tests"]
              for line in t["output"].splitlines() if line.startswith("PROBE ")]
    assert probes, data["tests"][0]["output"][:2000]
    return data["extra_data"]["isolation"], probes[0]


def test_sandboxed_worker_cannot_reach_the_installed_grader(installed, tmp_path, report):
    isolation, probe = _grade_probe(tmp_path, "reduced")
    report(f"install: the probe in the sandbox ({isolation['level']}): {probe}")
    if "mount namespace" in isolation["missing"]:
        require_e2e(f"no mount namespace here ({isolation}): the sandbox cannot hide the "
                    "repository")
    assert probe["I"] == 1, probe                            # the worker runs `python -I`
    assert str(ROOT / "autograder") in probe["mapped"], probe  # and site loaded the finder
    assert probe["autograder"] is None and probe["seqlab_dev"] is None, probe  # to no avail
    assert probe["read"] == 0 and not probe["root"], probe


def test_without_isolation_the_probe_reads_the_repository(installed, tmp_path, report):
    """Positive control of the probe, and what ``--allow-isolation none`` means
    (autograder/README.md): the worker runs as the grader, on the grader's file system."""
    isolation, probe = _grade_probe(tmp_path, "none", method="plain")
    report(f"install: the probe without isolation: {probe}")
    assert isolation["level"] == "none", isolation
    assert probe["root"] and probe["read"] == len(SECRETS) + 1, probe
    # the worker's boot drops the install's finder at every level: no import by name
    assert not probe["finder"] and probe["autograder"] is None, probe
