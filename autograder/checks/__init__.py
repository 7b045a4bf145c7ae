"""Hidden checks, one group per API name of the student API (the docstrings of the student
modules); see core.py.

Importing this package registers every check module. To add checks for a new API name, write a
builder in the module of its student file (or a new module imported here) decorated with
``@register("<student module>")`` that returns a list of ``Check``.
"""
from autograder.checks import attention, captioning, lstm, rnn, transformer  # noqa: F401
