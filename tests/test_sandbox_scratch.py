"""Two workers of one submission (two modules graded in two threads) share its scratch folder:
both must get the one group that may read it (a second chown would lock the first out)."""
import os
import threading

import pytest

from autograder.sandbox import procs


def _start(barrier, folder, got):
    barrier.wait()
    got.append(procs.scratch_group(folder))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown of the scratch folder needs root")
def test_threads_starting_workers_at_once_share_one_scratch_group(tmp_path):
    for attempt in range(50):
        folder = tmp_path / f"s{attempt}"
        folder.mkdir()
        barrier = threading.Barrier(4)
        got = []
        threads = [threading.Thread(target=_start, args=(barrier, folder, got))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(got)) == 1, f"attempt {attempt}: groups {got}"
        assert os.stat(folder).st_gid == got[0]
