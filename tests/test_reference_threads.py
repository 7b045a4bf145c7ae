"""Loading the reference never changes ``sys.meta_path``: its ``seqlab`` alias finder is installed
once and acts only in the thread that loads. Adding and removing a finder while another grader
thread imported torch could make that import skip a finder and leave torch half-imported (every
PyTorch-autograd check an internal grader error, on a busy machine only)."""
import sys
import threading

from autograder import reference


def test_loading_a_reference_leaves_the_finders_alone(monkeypatch):
    monkeypatch.setattr(reference, "_loaded", {})  # rnn_layers is imported again
    monkeypatch.delitem(sys.modules, f"{reference.PRIVATE}.rnn_layers", raising=False)
    before = list(sys.meta_path)
    during = []
    real_package = reference._package

    def package():  # called while the module loads
        during.append(list(sys.meta_path))
        return real_package()

    monkeypatch.setattr(reference, "_package", package)
    assert reference.module("rnn_layers").rnn_step_forward
    assert during == [before] and sys.meta_path == before


def test_the_alias_ignores_imports_of_other_threads():
    alias = reference._ALIAS
    assert alias.find_spec("seqlab.rnn_layers") is None  # nobody is loading
    found = []
    alias.loading_thread = threading.get_ident()
    try:
        worker = threading.Thread(target=lambda: found.append(alias.find_spec("seqlab.rnn_layers")))
        worker.start()
        worker.join()
        mine = alias.find_spec("seqlab.rnn_layers")
    finally:
        alias.loading_thread = None
    assert found == [None] and mine is not None
