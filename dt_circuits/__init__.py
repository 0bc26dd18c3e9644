"""dt-circuits: circuit hypotheses about small Decision Transformers on MiniGrid Dynamic Obstacles, as tests.

The pipeline, one sub-package per stage: ``env`` (the real env, grid states, state families) ->
``trajectories`` (offline data) -> ``dt`` (the hooked DT, checkpoints) -> ``training`` / ``evaluation`` ->
``analysis`` (interpretability primitives) -> ``claims`` (hypotheses run as tests; the pytest plugin).
``core`` holds what every stage uses. The names below are loaded on first use, so importing the package (and
``dt-circuits --help``) does not load torch.
"""

import os
from importlib import import_module
from typing import Any

# OpenMP worker threads spin-wait by default; with two threads on a loaded 2-core machine that spinning
# made training ~25x slower. Passive waiting costs nothing measurable when the machine is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_EXPORTS = {
    "import_dti": "dt_circuits.dt.checkpoint",
    "load_checkpoint": "dt_circuits.dt.checkpoint",
    "save_checkpoint": "dt_circuits.dt.checkpoint",
    "ACTION_NAMES": "dt_circuits.env.spec",
    "Action": "dt_circuits.env.spec",
    "EnvSpec": "dt_circuits.env.spec",
    "CheckpointError": "dt_circuits.core.errors",
    "ConfigError": "dt_circuits.core.errors",
    "DTCircuitsError": "dt_circuits.core.errors",
    "InvalidInputError": "dt_circuits.core.errors",
    "InvalidStateError": "dt_circuits.core.errors",
    "DecisionTransformer": "dt_circuits.dt.model",
    "DTConfig": "dt_circuits.dt.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dt_circuits' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
