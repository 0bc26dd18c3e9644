"""The TransformerLens names this package builds on, imported without running TL's package ``__init__`` files.

TransformerLens 4's package ``__init__`` (and those of ``transformer_lens.utilities`` and
``transformer_lens.conversion_utils``, which ``hook_points`` reaches) import the Hugging Face stack: transformers,
datasets, pandas, pyarrow. That is ~2 s of every cold process on this project's machines (issue 29: a claims run
started ~4.6 s before its first claim), for four classes that need none of it.

So the first import of TransformerLens in a process, when it is ours, loads each TL *package* it passes through
as a deferred package: the real module object, under its real name, with its real ``__path__``, whose ``__init__``
has not run yet. A name the ``__init__`` would bind by a plain ``from .sub import name`` (read from its source, at
module level) resolves by importing only that submodule, which is what the ``__init__`` itself would bind; any
other name (``TransformerBridge``, ``__all__``, ``dir()``, a removed-in-4.0 name) first runs the real ``__init__``
in the module's own namespace, exactly once, so from then on the package is TransformerLens as its authors wrote it.
A user who imports ``transformer_lens`` after us gets the same classes (``transformer_lens.HookedRootModule is
dt_circuits.dt.tl.HookedRootModule``) and, on first use of anything else, the whole package; a user who imported
it before us is left alone (tests/test_tl_import.py). Every other import of TransformerLens in ``dt_circuits`` goes
through this module (ruff's banned-api rule, TID251).
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_ROOT = "transformer_lens"
#: where a deferred package keeps its state (a name TL never binds)
_STATE = "__dt_circuits_deferred_init__"


class DeferredInitPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first use of a name it defines other than by a plain import."""

    def __getattr__(self, name: str) -> Any:
        state = self.__dict__.get(_STATE)
        if state is None or state["ran"]:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        where = state["names"].get(name)
        if where is not None:
            module = importlib.import_module(where[0])
            return module if where[1] is None else getattr(module, where[1])
        self.run_init()
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # the import system binds each loaded submodule on its package; where the __init__ binds that name to a
        # member of the submodule instead (`from .HookedRootModule import HookedRootModule`), bind what it would
        state = self.__dict__.get(_STATE)
        if state is not None and not state["ran"] and isinstance(value, types.ModuleType):
            where = state["names"].get(name)
            if where is not None and where[1] is not None and where[0] == value.__name__ == f"{self.__name__}.{name}":
                value = getattr(value, where[1])
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        self.run_init()
        return super().__dir__()  # the package's own __dir__ when its __init__ defines one

    def run_init(self) -> None:
        """Run the package's own ``__init__`` in its namespace, once (what its import would have done)."""
        state = self.__dict__.get(_STATE)
        if state is None or state["ran"]:
            return
        state["ran"] = True
        exec(state["loader"].get_code(self.__name__), self.__dict__)


def _plain_imports(spec: importlib.machinery.ModuleSpec) -> dict[str, tuple[str, str | None]]:
    """name -> (module, attribute or None for the module itself) for every module-level ``from ... import name``
    of the package's ``__init__`` (the last binding wins, as when it runs); conditional and star imports are
    left to the ``__init__`` itself."""
    source = spec.loader.get_source(spec.name)  # type: ignore[union-attr]
    names: dict[str, tuple[str, str | None]] = {}
    for node in ast.parse(source or "").body:
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            parts = spec.name.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1])
            module = f"{base}.{node.module}" if node.module else base
        else:
            module = node.module or ""
        for alias in node.names:
            if alias.name == "*":
                continue
            bound = alias.asname or alias.name
            names[bound] = (f"{module}.{alias.name}", None) if node.module is None else (module, alias.name)
    return names


class _DeferringFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds TransformerLens packages where the path finder does, and loads them as deferred packages."""

    def __init__(self) -> None:
        self.real: dict[str, importlib.machinery.ModuleSpec] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _ROOT and not fullname.startswith(_ROOT + "."):
            return None
        real = importlib.machinery.PathFinder.find_spec(fullname, path)
        if real is None or real.submodule_search_locations is None or not isinstance(real.origin, str):
            return None  # a plain module (or not found): the usual import
        self.real[fullname] = real
        return importlib.util.spec_from_file_location(
            fullname, real.origin, loader=self, submodule_search_locations=list(real.submodule_search_locations)
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        real = self.real[module.__name__]
        module.__class__ = DeferredInitPackage
        module.__dict__[_STATE] = {"names": _plain_imports(real), "loader": real.loader, "ran": False}


@contextmanager
def _deferred_package_inits() -> Iterator[None]:
    finder = _DeferringFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


if _ROOT not in sys.modules:  # imported before us (by the user, or TL's own way): it stays as it is
    with _deferred_package_inits():
        importlib.import_module(f"{_ROOT}.hook_points")
        importlib.import_module(f"{_ROOT}.HookedRootModule")
        importlib.import_module(f"{_ROOT}.ActivationCache")
        importlib.import_module(f"{_ROOT}.FactoredMatrix")

from transformer_lens import ActivationCache, FactoredMatrix, HookedRootModule  # noqa: E402
from transformer_lens.hook_points import HookPoint  # noqa: E402

__all__ = ["ActivationCache", "DeferredInitPackage", "FactoredMatrix", "HookPoint", "HookedRootModule"]
