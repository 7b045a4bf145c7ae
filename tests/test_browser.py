"""The release in a real browser, as a student sees it: JupyterLab started as the README says,
driven by Playwright in Debian's Chromium (``/usr/bin/chromium``; no browser is downloaded).

- Each release notebook opens, and every figure it shows is scrolled into view (JupyterLab 4
  renders off-screen cells lazily) and displayed (``naturalWidth > 0``: the file was served).
- Notebook 01, run from the top with the stubs ("Run All Cells"), stops at the first task's
  ``NotImplementedError`` and nowhere earlier.
- With the reference modules in place, notebook 01 runs to the end without an error
  (``SEQLAB_GRADING=1``: the notebook's short training runs).

Screenshots are written to ``$SEQLAB_TEST_ARTIFACTS`` (default: the test's temporary folder),
never into the repository. Marked e2e; CI installs chromium and Playwright (``.ci/run``).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from autograder import course
from seqlab_dev.testing import require_e2e

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "assignments" / "sequence_models"
SOURCE = ROOT / "solutions" / "sequence_models"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
STUDENT_MODULES = list(course.STUDENT_MODULES)
TOKEN = "seqlab-browser-test"

pytestmark = pytest.mark.e2e


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A student's copy of the release (repository layout: assignments/sequence_models)."""
    if not Path(CHROMIUM).exists():
        require_e2e(f"{CHROMIUM} is not installed (Debian's chromium; .ci/run installs it)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        require_e2e("playwright is not installed (requirements-dev.txt)")
    base = tmp_path_factory.mktemp("student")
    work = base / "assignments" / "sequence_models"
    shutil.copytree(RELEASE, work,
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    return base


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory):
    """``jupyter lab assignments/sequence_models/`` (the README's command, plus what a headless
    test needs: no browser, a known token and port, a private Jupyter config)."""
    port = _free_port()
    home = tmp_path_factory.mktemp("jupyter")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               SEQLAB_DATA_DIR=str(ROOT / "datasets"), SEQLAB_GRADING="1",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)
    log = open(home / "jupyter.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "assignments/sequence_models/", "--no-browser",
         f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0",
         f"--LabApp.workspaces_dir={home / 'workspaces'}"]
        + (["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
        cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                log.close()
                pytest.fail("JupyterLab did not start:\n"
                            + (home / "jupyter.log").read_text()[-3000:])
            time.sleep(0.5)
    yield {"url": url, "dir": course / "assignments" / "sequence_models"}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, lab):
    """One JupyterLab page for the module (loading JupyterLab is the slow part)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{lab['url']}/lab?token={TOKEN}&reset", timeout=120_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=120_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    page.wait_for_function("() => window.jupyterapp.commands.hasCommand('docmanager:open')",
                           timeout=120_000)
    yield page
    page.close()


@pytest.fixture
def artifacts(tmp_path):
    folder = Path(os.environ.get("SEQLAB_TEST_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _api(lab, method, path):
    request = urllib.request.Request(f"{lab['url']}/api/{path}?token={TOKEN}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


def _open(page, lab, name):
    """Open the notebook in JupyterLab (File > Open) with a fresh kernel: earlier notebooks are
    closed and their kernels shut down."""
    page.evaluate("""() => { for (const w of Array.from(window.jupyterapp.shell.widgets('main')))
                                 w.dispose(); }""")  # no "save changes?" dialog
    for session in _api(lab, "GET", "sessions"):
        _api(lab, "DELETE", f"sessions/{session['id']}")
    page.evaluate("name => window.jupyterapp.commands.execute('docmanager:open', {path: name})",
                  name)
    page.wait_for_function(
        """name => {
            const w = window.jupyterapp.shell.currentWidget;
            return w && w.context && w.context.path.endsWith(name) && w.context.isReady
                && w.content.widgets.length > 0;
        }""", arg=name, timeout=120_000)


def _notebook_images(name):
    from autograder.release_text import image_links
    return image_links((RELEASE / name).read_bytes())


@pytest.mark.parametrize("name", ["01_rnn_captioning.ipynb", "02_lstm_captioning.ipynb",
                                  "03_attention_captioning.ipynb", "04_transformer.ipynb"])
def test_every_figure_is_displayed(page, lab, name, artifacts):
    expected = _notebook_images(name)
    assert expected, f"{name} shows no figure"
    _open(page, lab, name)
    shown = page.evaluate(
        """async () => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            const shown = [];
            for (let i = 0; i < nb.widgets.length; i++) {
                const cell = nb.widgets[i];
                const source = cell.model.sharedModel.getSource();
                if (cell.model.type !== 'markdown' || !source.includes('![')) continue;
                await nb.scrollToItem(i, 'start');
                const t0 = Date.now();
                let imgs = [];
                while (Date.now() - t0 < 30000) {
                    imgs = Array.from(cell.node.querySelectorAll('.jp-RenderedMarkdown img'));
                    if (imgs.length && imgs.every(im => im.complete)) break;
                    await new Promise(r => setTimeout(r, 100));
                }
                for (const im of imgs) {
                    im.scrollIntoView();
                    const r = im.getBoundingClientRect();
                    shown.push({src: im.getAttribute('src'), alt: im.alt, cell: i,
                                width: im.naturalWidth,
                                visible: r.bottom > 0 && r.top < window.innerHeight});
                }
            }
            return shown;
        }""")
    page.screenshot(path=str(artifacts / f"{Path(name).stem}-last-figure.png"))
    assert len(shown) == len(expected), (expected, shown)
    for figure in shown:
        assert figure["width"] > 0, f"{name}: figure not displayed (404?): {figure}"
        assert figure["visible"], f"{name}: figure never scrolled into view: {figure}"
    assert [f["src"].split("?")[0].split("/files/")[-1] for f in shown] == expected, shown


def _run_all(page, timeout_s=600):
    """Run All Cells through JupyterLab's own command (it returns when the run ends, at the end
    or at the first error), then save the notebook with its outputs."""
    page.wait_for_function(
        """() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;
                   return s.isReady && s.session && s.session.kernel
                       && s.session.kernel.status === 'idle'; }""", timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status
                 === 'idle'""", timeout=timeout_s * 1000)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")


def _executed(lab, name):
    """(grade_id or index, execution_count, error name and value) of every code cell, saved."""
    nb = json.loads((lab["dir"] / name).read_text())
    rows = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        errors = [f"{o['ename']}: {o['evalue']}" for o in cell.get("outputs", [])
                  if o["output_type"] == "error"]
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", str(i))
        rows.append((gid, cell.get("execution_count"), errors))
    return rows


def test_notebook01_with_stubs_stops_at_the_first_task(page, lab, artifacts):
    name = "01_rnn_captioning.ipynb"
    _open(page, lab, name)
    _run_all(page)
    page.evaluate("""async () => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        const i = nb.widgets.findIndex(c => c.model.getMetadata('nbgrader')
            && c.model.getMetadata('nbgrader').grade_id === 'public_rnn_step_forward');
        await nb.scrollToItem(i, 'start');
        nb.widgets[i].node.scrollIntoView({block: 'center'});
    }""")
    page.screenshot(path=str(artifacts / "01-stubs-run-all.png"))
    rows = _executed(lab, name)
    first = next(i for i, (_, _, errors) in enumerate(rows) if errors)
    gid, count, errors = rows[first]
    assert gid == "public_rnn_step_forward", rows[: first + 1]
    assert errors == ["NotImplementedError: rnn_step_forward: implement this (see the docstring)"]
    assert all(count is not None for _, count, _ in rows[:first]), "a cell before it did not run"
    assert all(count is None for _, count, _ in rows[first + 1:]), "Run All went past the error"


def test_notebook01_with_the_reference_runs_to_the_end(page, lab, artifacts, report):
    name = "01_rnn_captioning.ipynb"
    for module in STUDENT_MODULES:
        shutil.copy2(SOURCE / "seqlab" / f"{module}.py", lab["dir"] / "seqlab" / f"{module}.py")
    _open(page, lab, name)
    start = time.perf_counter()
    _run_all(page)
    page.screenshot(path=str(artifacts / "01-reference-run-all.png"))
    report(f"[browser] notebook 01 with the reference, Run All (SEQLAB_GRADING=1): "
           f"{time.perf_counter() - start:.1f} s")
    rows = _executed(lab, name)
    assert [r for r in rows if r[2]] == [], "cells raised"
    assert all(count is not None for _, count, _ in rows), [r for r in rows if r[1] is None]
