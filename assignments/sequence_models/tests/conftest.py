"""Public tests: run them from the assignment folder with ``pytest tests``.

Puts the assignment folder (the parent of tests/) first on sys.path so that ``import seqlab``
finds *your* package, whichever folder pytest is started from.
"""
import sys
from pathlib import Path

ASSIGNMENT_DIR = Path(__file__).resolve().parent.parent
if str(ASSIGNMENT_DIR) not in sys.path:
    sys.path.insert(0, str(ASSIGNMENT_DIR))
