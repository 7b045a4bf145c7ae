"""Where student code runs: sandboxed worker processes (grader side, but ``boot.py``).

- ``worker.py``  a :class:`Worker`: one process per (submission, student module), started in
  the sandbox that ``isolation.py`` builds; requests out, checked answers back;
- ``boot.py``    runs *inside* the worker (copied into its scratch folder): reads its
  configuration, sets its limits, imports the student module, interprets the call programs;
- ``wire.py``    the frame format, the one module both sides use (copied for the worker);
- ``output.py``  the worker's printed output, cut into the output of each call;
- ``procs.py``   finding and killing every process a worker started;
- ``cgroup.py``  a memory and pids cgroup per worker, and the grader's own memory bound.

Isolation (see ``isolation.py`` for the methods and levels): the worker's world is built by
bubblewrap from what it needs (an allowlist), it runs under a fresh unprivileged uid without
capabilities, and, in every method:
- its scratch folder holds only the student files and the given files; a scrubbed
  environment, ``python -I -B`` (no PYTHONPATH, no user site, no cwd on sys.path); its
  configuration comes through the request pipe;
- resource limits set by the bootstrap before student code runs: address space (RLIMIT_AS),
  CPU seconds, file size, number of processes, open files, no core files;
- a per-call time limit enforced by the grader (the CPU time of all the worker's processes,
  from its cgroup where it has one; bounded on the wall clock too: ``Deadline``);
- a cgroup with the memory and pids controllers (v2 when its group really has them, else v1)
  when one can be made;
- the session id, the marker environment variable, the fresh uid, and, in the CLI process,
  the child-subreaper flag, to find every process it started; there, SIGTERM kills every
  worker before the process exits (``stop_on_sigterm``).
When a worker is closed (or a call fails) every process found by any of these is SIGKILLed, in a
loop, until none is left (with a PID namespace, killing bubblewrap ends them all). After every
call, processes other than the worker itself are killed.
"""
from autograder.sandbox.cgroup import GRADER_MEMORY, Cgroup, GraderGroup
from autograder.sandbox.procs import enable_subreaper
from autograder.sandbox.worker import (
    WALL_FACTOR,
    Deadline,
    Limits,
    Worker,
    WorkerFailure,
    stop_on_sigterm,
)

__all__ = ["GRADER_MEMORY", "WALL_FACTOR", "Cgroup", "Deadline", "GraderGroup", "Limits",
           "Worker", "WorkerFailure", "enable_subreaper", "stop_on_sigterm"]
