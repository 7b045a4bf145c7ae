"""The reference solution, imported by file path under a private package name.

``load()`` imports ``solutions/sequence_models/seqlab`` as the package ``_seqlab_reference``.
While it loads, ``seqlab`` and ``seqlab.*`` resolve to the private package (so that the
reference's own absolute imports work) and any ``seqlab`` already imported in this process
(e.g. by a test's sys.path) is set aside and restored afterwards.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import threading
import types

from autograder import paths

PRIVATE = "_seqlab_reference"
_lock = threading.RLock()
_loaded = {}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``seqlab[.x]`` to ``_seqlab_reference[.x]`` in the thread that loads the
    reference, while it loads (``loading_thread``); for every other import it does nothing.

    It is installed once, when this module is imported, and never removed: adding and removing
    a finder while another thread imports (torch, say) can make that import skip a finder and
    fail half-way, leaving a partially initialised torch in that process."""

    loading_thread = None

    def find_spec(self, fullname, path=None, target=None):
        if self.loading_thread != threading.get_ident():
            return None
        if fullname == "seqlab" or fullname.startswith("seqlab."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(PRIVATE + spec.name[len("seqlab"):])

    def exec_module(self, module):
        pass


_ALIAS = _Alias()
sys.meta_path.insert(0, _ALIAS)


def _package():
    if PRIVATE in sys.modules:
        return sys.modules[PRIVATE]
    ref = paths.reference_dir()
    spec = importlib.util.spec_from_file_location(
        PRIVATE, ref / "__init__.py", submodule_search_locations=[str(ref)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules[PRIVATE] = pkg
    spec.loader.exec_module(pkg)
    return pkg


def module(name: str) -> types.ModuleType | None:
    """The reference module ``name`` (e.g. ``"rnn_layers"``), or None if it does not exist."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        source = paths.reference_dir() / f"{name}.py"
        if not source.exists():
            return None
        if "import torch" in source.read_text(encoding="utf-8"):
            from autograder.checks.core import import_torch
            import_torch()  # imported under its lock, never by two threads at once
        saved = {k: sys.modules.pop(k) for k in list(sys.modules)
                 if k == "seqlab" or k.startswith("seqlab.")}
        _ALIAS.loading_thread = threading.get_ident()
        try:
            _package()
            mod = importlib.import_module(f"{PRIVATE}.{name}")
        finally:
            _ALIAS.loading_thread = None
            # list(sys.modules) is one atomic copy: another grader thread may be importing
            # (torch, say) and adding to sys.modules while we look
            for k in [k for k in list(sys.modules) if k == "seqlab" or k.startswith("seqlab.")]:
                sys.modules.pop(k, None)
            sys.modules.update(saved)
        _loaded[name] = mod
        return mod


def available(name: str) -> bool:
    return (paths.reference_dir() / f"{name}.py").exists()
