"""dt-circuits: circuit hypotheses about small Decision Transformers on MiniGrid Dynamic Obstacles, as tests.

Pipeline: ``env`` -> ``scenarios`` / ``rollout`` (states and trajectories) -> ``model`` (the hooked DT)
-> ``checkpoint`` (our safetensors format, DTI import) -> ``claims/`` (hypotheses run as tests).
"""

import os

# OpenMP worker threads spin-wait by default; with two threads on a loaded 2-core machine that spinning
# made training ~25x slower. Passive waiting costs nothing measurable when the machine is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dt_circuits.checkpoint import import_dti, load_checkpoint, save_checkpoint
from dt_circuits.env import ACTION_NAMES, Action, EnvSpec
from dt_circuits.errors import (
    CheckpointError,
    ConfigError,
    DTCircuitsError,
    InvalidInputError,
    InvalidStateError,
)
from dt_circuits.model import DecisionTransformer, DTConfig

__all__ = [
    "ACTION_NAMES",
    "Action",
    "CheckpointError",
    "ConfigError",
    "DTCircuitsError",
    "DTConfig",
    "DecisionTransformer",
    "EnvSpec",
    "InvalidInputError",
    "InvalidStateError",
    "import_dti",
    "load_checkpoint",
    "save_checkpoint",
]
