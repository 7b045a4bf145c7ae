"""The reference modules are imported before the grader starts its threads. Importing one puts
a finder in front of ``sys.meta_path`` for a moment; an import in another thread at that moment
can skip the path finder (torch's import in the warm-up thread failed, then every
``import torch`` of the process: all PyTorch-autograd checks NOT GRADED on a busy machine)."""
import shutil
import threading
from pathlib import Path

from autograder import reference, runner

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "solutions" / "sequence_models" / "seqlab"


def test_references_load_before_any_grader_thread(tmp_path, monkeypatch):
    folder = tmp_path / "student"
    folder.mkdir()
    for m in ("rnn_layers", "lstm_layers"):
        shutil.copy(REF / f"{m}.py", folder / f"{m}.py")
    monkeypatch.setattr(reference, "_loaded", {})  # every module is imported again
    real, loads, caller = reference.module, [], threading.current_thread()

    def module(name):
        if name not in reference._loaded:  # this call changes sys.meta_path
            loads.append((name, threading.current_thread() is caller))
        return real(name)

    monkeypatch.setattr(reference, "module", module)
    [res] = runner.grade([str(folder)], runner.Options(only=["lstm_step_backward"], jobs=2))
    assert res.score == res.max_score > 0
    assert loads and loads[0][0] == "lstm_layers"
    assert all(on_caller for _, on_caller in loads), loads  # not in a grader thread
