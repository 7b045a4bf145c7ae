"""Command line: ``python -m autograder COMMAND ...``.

Commands
  release              regenerate assignments/sequence_models/ from solutions/sequence_models/
  bundle OUT.zip       write the student bundle (release + datasets + images + README)
  grade SUBMISSION...  grade submissions (folders or zips) with the hidden checks
  gradescope OUT.zip   build a Gradescope autograder bundle
  similarity SUBMISSION... [--corpus FOLDER] [--out REPORT.html]
                       code similarity across the class and against known solutions
  nbgrader-prepare A   grade an nbgrader course's submissions of assignment A in parallel
                       and cache the results for `nbgrader autograde A`
  data FOLDER          build the students' shared, world-readable copy of the data
"""
import os
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command in ("release", "bundle"):
        from autograder import release
        return release.main([command] + rest)
    if command == "grade":
        from autograder import cli
        return cli.main(rest)
    if command == "similarity":
        from autograder import similarity
        return similarity.main(rest)
    if command == "gradescope":
        from autograder import gradescope
        return gradescope.main(rest)
    if command == "data":
        from autograder import shared_data
        return shared_data.main(rest)
    if command == "nbgrader-prepare":
        from autograder import nbgrader_prepare
        return nbgrader_prepare.main(rest)
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


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
