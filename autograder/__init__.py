"""seqlab autograder (instructor only; never shipped to students).

Entry point: ``python -m autograder {release,bundle,grade,gradescope} ...``.
"""
