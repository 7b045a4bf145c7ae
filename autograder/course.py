"""The course manifest: the one place that names the course's parts.

Everything else (the grader, the release, the integrations, the tests and the benchmarks) reads
these names from here; ``tests/test_course.py`` fails when a list of them is spelled out
anywhere else. Standard library only, no import of numpy or torch: a notebook kernel, nbgrader's
configuration and a Gradescope start-up read it.

Adding an API name: add it to its module in :data:`API` (in notebook order), write the function,
its public test, its check cases, its mutation and its notebook cells (``public_<name>`` and
``check_<name>``).
"""
from dataclasses import dataclass

ASSIGNMENT = "sequence_models"   # the folder under solutions/ and assignments/
PACKAGE = "seqlab"               # the Python package of the assignment

# The notebooks, by key ("01"), as file stems.
NOTEBOOKS = {
    "01": "01_rnn_captioning",
    "02": "02_lstm_captioning",
    "03": "03_attention_captioning",
    "04": "04_transformer",
}

# The student modules, in grading order, each with the notebook that grades it and its API
# names (functions and classes) in the order of that notebook's check cells.
API = {
    "rnn_layers": ("01", (
        "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
        "word_embedding_forward", "word_embedding_backward",
        "temporal_affine_forward", "temporal_affine_backward", "temporal_softmax_loss")),
    "lstm_layers": ("02", (
        "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward")),
    "attention_layers": ("03", (
        "dot_product_attention_forward", "dot_product_attention_backward",
        "attention_lstm_step_forward", "attention_lstm_step_backward",
        "attention_lstm_forward", "attention_lstm_backward")),
    "captioning": ("01", ("CaptioningRNN",)),
    "transformer": ("04", (
        "positional_encoding", "causal_mask", "padding_mask", "scaled_dot_product_attention",
        "MultiHeadAttention", "FeedForward", "EncoderLayer", "DecoderLayer", "Transformer",
        "CaptioningTransformer")),
}

STUDENT_MODULES = tuple(API)
API_NAMES = tuple(name for _, names in API.values() for name in names)
MODULE_OF = {name: module for module, (_, names) in API.items() for name in names}

# CaptioningRNN is graded in three notebooks, one cell per cell type (a check's ``cell_type``);
# its checks that name no cell type belong to notebook 01's cell.
CAPTIONING_API = "CaptioningRNN"
CAPTIONING_CELLS = {"rnn": "01", "lstm": "02", "attention": "03"}

# Markers of the nbgrader source: solution regions (stubbed in the release) and hidden tests
# (removed from it).
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)

# File and folder name patterns (fnmatch) never packed: into the release, the student bundle,
# the Gradescope bundle, nbgrader's copies, the students' shared data.
PACK_IGNORE = ("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache", "cache",
               ".DS_Store", "gradebook.db*", "*.egg-info")
# Folders never walked when a submission is loaded (hidden folders are skipped too).
SUBMISSION_SKIP = frozenset({"__MACOSX", ".ipynb_checkpoints", "__pycache__", ".git",
                             "node_modules"})


@dataclass(frozen=True)
class CheckCell:
    """A graded cell of a notebook: ``grade_id`` (``check_<name>``) in ``notebook`` ("01")
    grades the checks of ``api``; for CaptioningRNN only those of ``cell_type``."""
    notebook: str
    grade_id: str
    api: str
    cell_type: str | None = None


def notebook_file(key: str) -> str:
    """The file name of notebook ``key`` ("01" -> "01_rnn_captioning.ipynb")."""
    return NOTEBOOKS[key] + ".ipynb"


def cell_name(api: str, cell_type: str | None = None) -> str:
    """The name of the check cell of ``api`` (its grade_id less ``check_``): the API name, or
    for CaptioningRNN's LSTM and attention cells ``CaptioningRNN_lstm`` / ``_attention``."""
    if api == CAPTIONING_API and cell_type in CAPTIONING_CELLS and cell_type != "rnn":
        return f"{api}_{cell_type}"
    return api


def notebook_of(api: str, cell_type: str | None = None) -> str:
    """The notebook key ("01".."04") whose check cell grades ``api`` (and ``cell_type``)."""
    if api == CAPTIONING_API:
        return CAPTIONING_CELLS.get(cell_type or "rnn", "01")
    return API[MODULE_OF[api]][0]


def check_cells() -> list[CheckCell]:
    """Every graded check cell of the course, notebook by notebook, in cell order."""
    cells = []
    for _module, (_, names) in API.items():
        for api in names:
            types = CAPTIONING_CELLS if api == CAPTIONING_API else (None,)
            for cell_type in types:
                cells.append(CheckCell(notebook_of(api, cell_type),
                                       "check_" + cell_name(api, cell_type), api, cell_type))
    order = {module: i for i, module in enumerate(API)}
    return sorted(cells, key=lambda c: (c.notebook, order[MODULE_OF[c.api]]))
