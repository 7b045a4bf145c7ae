"""Hidden checks, one group per API name of the student API (the docstrings of the student
modules); see core.py.

Importing this package registers every check module. To add checks for a new API name, write a
builder in the module of its student file (or a new module listed here) decorated with
``@register("<student module>")`` that returns a list of ``Check``.
"""
from autograder.checks import rnn  # noqa: F401

for _name in ("lstm", "attention", "captioning", "transformer"):
    try:
        __import__(f"autograder.checks.{_name}")
    except ModuleNotFoundError as _exc:  # a check module not written yet
        if _exc.name != f"autograder.checks.{_name}":
            raise
