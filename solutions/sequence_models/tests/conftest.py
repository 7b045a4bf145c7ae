"""Public tests: run them from the assignment folder with ``pytest tests -q``.

- Puts the assignment folder (the parent of tests/) first on sys.path so that ``import seqlab``
  finds *your* package, whichever folder pytest is started from.
- Test files are named by notebook (``test_01_...`` for notebook 01) and run in notebook
  order. Each test is marked with its notebook, so ``pytest tests -q -m nb01`` runs the tests of
  notebook 01 only (the captioning model's tests belong to the notebook of their ``cell_type``).
- A test that stops at a function you have not written yet (its stub raises
  ``NotImplementedError("<function>: implement this ...")``) is reported as "not implemented
  yet" in one short line per function, not as a failure with a traceback. It still counts as
  not passed: pytest's exit status stays 1 until every test passes. Real failures (wrong
  values, shapes, errors) are shown in full as usual.
"""
import re
import sys
from pathlib import Path

import pytest

ASSIGNMENT_DIR = Path(__file__).resolve().parent.parent
if str(ASSIGNMENT_DIR) not in sys.path:
    sys.path.insert(0, str(ASSIGNMENT_DIR))

NOTEBOOKS = {"01": "01_rnn_captioning", "02": "02_lstm_captioning",
             "03": "03_attention_captioning", "04": "04_transformer"}
# The captioning model's tests are parametrized by cell type; each is built in one notebook.
CELL_TYPE_NOTEBOOK = {"rnn": "01", "lstm": "02", "attention": "03"}
_FILE_NOTEBOOK = re.compile(r"^test_(\d\d)_")
_STUB = re.compile(r"^([A-Za-z_][\w.]*): implement this")

_NOTEBOOK_OF = pytest.StashKey[dict]()  # nodeid -> "01".."04"
TODO_CATEGORY = "not implemented yet"


def notebook_of(item):
    """The notebook ("01".."04") a collected test belongs to, or None for a file not named by one.

    Input: a pytest item. The notebook comes from the ``cell_type`` parameter when the test has
    one, else from the file name ``test_NN_...``.
    """
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("cell_type") in CELL_TYPE_NOTEBOOK:
        return CELL_TYPE_NOTEBOOK[callspec.params["cell_type"]]
    match = _FILE_NOTEBOOK.match(item.path.name)
    return match.group(1) if match else None


def stub_name(excinfo):
    """The unwritten function's name when ``excinfo`` is a stub's NotImplementedError, else None."""
    if excinfo is None or not excinfo.errisinstance(NotImplementedError):
        return None
    match = _STUB.match(str(excinfo.value))
    return match.group(1) if match else None


def pytest_configure(config):
    for number, name in NOTEBOOKS.items():
        config.addinivalue_line("markers", f"nb{number}: a public test of notebook {name}")
    config.stash[_NOTEBOOK_OF] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark each test with its notebook and run the tests in notebook order (stable): within a
    notebook, its own files first, then the tests it shares with others (the captioning model)."""
    notebook = config.stash[_NOTEBOOK_OF]
    for item in items:
        number = notebook_of(item)
        if number is not None:
            item.add_marker(f"nb{number}")
            notebook[item.nodeid] = number
    def order(item):
        number = notebook.get(item.nodeid, "99")
        own_file = _FILE_NOTEBOOK.match(item.path.name)
        return number, own_file is None or own_file.group(1) != number

    items.sort(key=order)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    name = stub_name(call.excinfo)
    if name is not None and report.failed:
        report.longrepr = f"{TODO_CATEGORY}: {name}"
        report.seqlab_todo = name
    return report


def pytest_report_teststatus(report, config):
    if getattr(report, "seqlab_todo", None):
        return TODO_CATEGORY, "n", "NOT IMPLEMENTED YET"
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Per notebook: how many tests pass, and one line per function that is not written yet."""
    notebook = config.stash.get(_NOTEBOOK_OF, {})
    passed, todo, seen = {}, {}, {}
    for category, reports in terminalreporter.stats.items():
        for report in reports:
            number = notebook.get(getattr(report, "nodeid", None))
            if number is None or getattr(report, "when", None) not in ("setup", "call"):
                continue
            seen.setdefault(number, set()).add(report.nodeid)
            if category == "passed" and report.when == "call":
                passed[number] = passed.get(number, 0) + 1
            if category == TODO_CATEGORY:
                names = todo.setdefault(number, {})
                names[report.seqlab_todo] = names.get(report.seqlab_todo, 0) + 1
    total = {number: len(nodeids) for number, nodeids in seen.items()}
    if not todo:
        return
    write = terminalreporter.write_line
    terminalreporter.section("what is done and what is left", sep="-")
    for number in sorted(total):
        left = todo.get(number, {})
        write(f"notebook {NOTEBOOKS[number]}: {passed.get(number, 0)} of {total[number]} "
              f"tests pass" + ("; not implemented yet:" if left else ""))
        for name, count in left.items():
            waits = "1 test waits" if count == 1 else f"{count} tests wait"
            write(f"    {name}  ({waits} for it)")
