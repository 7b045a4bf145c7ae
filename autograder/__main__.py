"""``python -m autograder COMMAND ...``: see :mod:`autograder.cli`."""
import os
import sys

from autograder.cli import main


def _exit_now(status):
    """End the process without the interpreter's teardown of torch and sympy (0.4-0.6 s of CPU
    after a grade, more than grading one numpy module): every result file is written and
    closed by then; only the standard streams need a flush."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status or 0)


if __name__ == "__main__":
    status = main()
    if sys.argv[1:2] == ["grade"]:
        _exit_now(status)
    sys.exit(status)
