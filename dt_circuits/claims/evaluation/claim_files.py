"""Claim files: which ``*.py`` in a folder are claims, and importing one for its ``CLAIM``.

Below the claim language on purpose: the evaluation needs the shipped claims' family size (how many tests they
make) without knowing the Claim class, and :mod:`dt_circuits.claims.suite.discovery` adds the type check and
the folder rules on top. Free of torch at import time: the pytest plugin asks it which files are claims in
every run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from dt_circuits.core.errors import ConfigError

_IMPORTED: dict[Path, Any] = {}


def claim_files(directory: Path) -> list[Path]:
    """The claim files in ``directory``: ``*.py`` not starting with ``_``, ``conftest`` or ``test_``."""
    return sorted(
        p for p in Path(directory).glob("*.py") if not p.name.startswith(("_", "conftest", "test_")) and p.is_file()
    )


def import_claim_file(path: Path) -> Any:
    """The ``CLAIM`` a claim file defines, imported once per file; a file without one is a ConfigError naming it."""
    key = Path(path).resolve()
    if key not in _IMPORTED:
        spec = importlib.util.spec_from_file_location(f"dt_circuits_claims.{key.stem}", key)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot import claim file {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if getattr(module, "CLAIM", None) is None:
            raise ConfigError(f"claim file {path} does not define CLAIM = Claim(...)")
        _IMPORTED[key] = module.CLAIM
    return _IMPORTED[key]
