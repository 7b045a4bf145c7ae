"""Root conftest: settings for the whole test session (loaded before any test imports torch).

OMP_WAIT_POLICY=PASSIVE stops OpenMP worker threads (torch) from spin-waiting; on a 2-core
machine shared with notebook kernels and grader workers, spinning threads make every torch call
several times slower. It changes no result. Child processes (kernels, workers) inherit it.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
