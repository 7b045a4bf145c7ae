"""Helpers that the course's tests and benchmarks share (development only; never shipped).

Installed with the grader by ``pip install -e .`` (requirements-dev.txt), so that tests and
benchmarks import them by name:

- :mod:`seqlab_dev.notebooks`: run a release notebook end to end with the reference modules;
- :mod:`seqlab_dev.similarity_class`: the sample class of the similarity report;
- :mod:`seqlab_dev.testing`: ``require_e2e`` and ``grade_at_once`` (grader runs side by side).

``ROOT`` is the repository: this package sits at its top, next to ``autograder/``.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
