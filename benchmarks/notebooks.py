#!/usr/bin/env python
"""Wall time of each course notebook, run end to end with the solutions.

Each *release* notebook (``assignments/sequence_models/``, made by ``python -m autograder
release``) is executed with nbclient in a scratch copy of the release where the reference
student modules replace the stubs: what a student who solved everything would run. This is
the same set-up as ``tests/test_notebooks.py::test_release_notebook_executes`` (both use
``seqlab_dev.notebooks``), minus the assertions: here only the times are reported, never checked.

Notebooks whose source is not in ``solutions/sequence_models/`` yet are skipped; so is one
whose release is missing (run ``python -m autograder release``). A release older than its
source is timed but flagged ``stale``.

Reported per notebook: the end-to-end wall time (kernel start to last cell), the sum of the
cell execution times, and the slowest cells.

Usage:
    python benchmarks/notebooks.py                    # all notebooks, full training runs
    python benchmarks/notebooks.py --grading          # SEQLAB_GRADING=1: the short runs
    python benchmarks/notebooks.py --only 01,03 --json out.json
"""
import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from seqlab_dev import notebooks as NB


def _cell_seconds(cell):
    """Execution time of one executed cell from nbclient's timing metadata (None if absent)."""
    meta = cell.get("metadata", {}).get("execution", {})
    start, end = meta.get("iopub.execute_input"), meta.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def _label(cell):
    """A short name for a cell: its nbgrader grade_id, else its first non-blank line."""
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    return f"{gid}: {first[:60]}" if gid else first[:70]


def time_notebook(name, timeout, top):
    source, release = NB.SOURCE_DIR / name, NB.RELEASE_DIR / name
    if not source.exists():
        return {"notebook": name, "status": "skipped", "why": "no source notebook yet"}
    if not release.exists():
        return {"notebook": name, "status": "skipped",
                "why": "no release notebook: run `python -m autograder release`"}
    stale = release.stat().st_mtime < source.stat().st_mtime

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    with tempfile.TemporaryDirectory(prefix="seqlab-nb-bench-") as tmp:
        work = NB.scratch_release(Path(tmp))
        nb = NB.read(work / name)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(work)}})
        start = time.perf_counter()
        error, status = None, "ok"
        try:
            client.execute(env=NB.kernel_env(), cwd=str(work))
        except CellTimeoutError as err:            # a cell ran longer than --timeout
            error, status = str(err), "timeout"
        except (CellExecutionError, DeadKernelError) as err:
            error, status = str(err), "failed"
        wall = time.perf_counter() - start

    cells = [(_cell_seconds(c), _label(c)) for c in nb.cells if c.cell_type == "code"]
    timed = [(s, lbl) for s, lbl in cells if s is not None]
    result = {
        "notebook": name,
        "status": status,
        "wall_s": wall,
        "cells_s": sum(s for s, _ in timed),
        "code_cells": len(cells),
        "slowest_cells": [{"seconds": s, "cell": lbl}
                          for s, lbl in sorted(timed, key=lambda p: -p[0])[:top]],
        "stale_release": stale,
    }
    if error:
        result["error"] = error[-2000:]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grading", action="store_true",
                        help="set SEQLAB_GRADING=1 for the kernels (short training runs)")
    parser.add_argument("--only", help="comma-separated notebook prefixes, e.g. 01,04")
    parser.add_argument("--timeout", type=int, default=NB.CELL_TIMEOUT,
                        help=f"per-cell timeout in seconds (default {NB.CELL_TIMEOUT})")
    parser.add_argument("--top", type=int, default=3, help="slowest cells to list (default 3)")
    parser.add_argument("--json", metavar="OUT", help="write the results to this JSON file")
    args = parser.parse_args(argv)

    if args.grading:
        os.environ["SEQLAB_GRADING"] = "1"
    grading = os.environ.get("SEQLAB_GRADING", "") == "1"
    names = NB.NOTEBOOKS
    if args.only:
        prefixes = args.only.split(",")
        names = [n for n in names if any(n.startswith(p) for p in prefixes)]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"seqlab notebooks benchmark: SEQLAB_GRADING={'1' if grading else '0'}, "
          f"{os.cpu_count()} CPUs, load average at start {load:.2f}")
    results = []
    for name in names:
        print(f"  {name} ...", flush=True)
        r = time_notebook(name, args.timeout, args.top)
        results.append(r)
        if r["status"] == "skipped":
            print(f"    skipped: {r['why']}")
            continue
        flag = "  (release older than source: stale)" if r["stale_release"] else ""
        print(f"    {r['status']}: {r['wall_s']:.1f} s wall, {r['cells_s']:.1f} s in "
              f"{r['code_cells']} code cells{flag}")
        for c in r["slowest_cells"]:
            print(f"      {c['seconds']:7.1f} s  {c['cell']}")
        if r["status"] != "ok":
            lines = r["error"].strip().splitlines()
            print("    " + (lines[-1] if r["status"] == "failed" else lines[0])[:300])

    print()
    print(f"{'notebook':<34} {'status':<8} {'wall':>9}")
    for r in results:
        wall = f"{r['wall_s']:.1f} s" if "wall_s" in r else "-"
        print(f"{r['notebook']:<34} {r['status']:<8} {wall:>9}")

    if args.json:
        Path(args.json).write_text(json.dumps(
            {"grading": grading, "cpus": os.cpu_count(), "load_average_start": load,
             "notebooks": results}, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 1 if any(r["status"] in ("failed", "timeout") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
