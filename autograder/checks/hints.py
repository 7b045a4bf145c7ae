"""Known mistakes, for the numpy specs and the torch specs alike.

A :class:`Hint` computes, in the grader, what an implementation with one typical mistake returns
on the check's inputs; when a failing result matches it (and the mistake is visible on these
inputs), its message is added to the feedback.
"""
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from autograder.checks.core import Failed, matches


@dataclass
class Hint:
    """``variant(*args) -> {output name: array}``: what the mistake returns (``args``: the
    check's inputs and upstream gradients for a numpy layer, its data dict for a torch check);
    ``message``: shown when the student's outputs match the variant within ``tol``."""
    variant: Callable
    message: str
    tol: dict = field(default_factory=lambda: dict(rtol=1e-5, atol=1e-6))


def matching_hint(check, key, hints: list, args: tuple, result, names: list,
                  expected: dict) -> str:
    """The message of the first of ``hints`` whose variant the outputs ``names`` of ``result``
    match, skipping a variant equal to ``expected`` on these inputs (a right answer never gets
    a hint); "" if none does. Variants are memoized per check under ``key``; one that raises is
    skipped."""
    for i, hint in enumerate(hints):
        try:
            variant = check.memo((key, "hint", i), lambda h=hint: h.variant(*args))
        except Exception:
            continue
        relevant = [n for n in names if n in variant]
        if not relevant:
            continue
        if all(n in expected and matches(variant[n], expected[n], hint.tol) for n in relevant):
            continue  # indistinguishable from the right answer on these inputs
        if all(result.array(n) is not None and matches(result.array(n), variant[n], hint.tol)
               for n in relevant):
            return hint.message
    return ""


def require_unchanged(result, api: str, given: dict, message: str, hint: str = "",
                      prefix: str = "after.") -> None:
    """Raise Failed when the call did not complete, or when it wrote into an array of ``given``
    (name -> the array the function was given): the copy read back after the call (``prefix +
    name`` in ``result``) is missing or differs. ``message`` gets the changed names as
    ``{names}``."""
    if result.problem():
        raise Failed(f"{api} did not complete: {result.problem()}")
    changed = [name for name, before in given.items()
               if (after := result.array(prefix + name)) is None
               or not np.array_equal(before, after, equal_nan=True)]
    if changed:
        raise Failed(message.format(names=", ".join(changed)), hint)
