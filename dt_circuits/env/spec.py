"""The real MiniGrid Dynamic Obstacles environment, its constants, and the two observation encodings.

Everything that touches Minigrid's numbering lives here so that the rest of the package speaks in names
(``OBJECT["ball"]``, ``Action.FORWARD``) and a checkpoint can record exactly which env it was trained on.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid-* env ids with gymnasium)
import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX
from minigrid.envs import DynamicObstaclesEnv

from dt_circuits.core.errors import ConfigError, InvalidInputError

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"
#: DTI's registration of Minigrid's Memory task (MemoryDT's env; see ``dt_circuits.env.memory``).
MEMORY_ENV_ID = "MiniGrid-MemoryS7FixedStart-v0"
#: env id -> (family, grid size, number of obstacles): the envs a checkpoint may record.
ENVS: dict[str, tuple[str, int, int]] = {ENV_ID: ("dynamic-obstacles", 8, 4), MEMORY_ENV_ID: ("memory", 7, 0)}

OBJECT: dict[str, int] = dict(OBJECT_TO_IDX)
COLOR: dict[str, int] = dict(COLOR_TO_IDX)
STATE: dict[str, int] = dict(STATE_TO_IDX)

N_OBJECTS, N_COLORS, N_STATES = len(OBJECT), len(COLOR), len(STATE)
#: Depth of one cell in Minigrid's ``OneHotPartialObsWrapper`` layout: object bits, then colour, then state.
ONE_HOT_DEPTH = N_OBJECTS + N_COLORS + N_STATES
CHANNELS = ("object", "colour", "state")
#: Largest legal value per index channel, for input validation.
CHANNEL_MAX = (N_OBJECTS - 1, N_COLORS - 1, N_STATES - 1)


class Action(enum.IntEnum):
    """The three actions Dynamic Obstacles allows (Minigrid's left/right/forward)."""

    LEFT = 0
    RIGHT = 1
    FORWARD = 2


ACTION_NAMES = tuple(a.name.lower() for a in Action)


class Direction(enum.IntEnum):
    """Minigrid's agent_dir: 0 faces +x (right), 1 faces +y (down), 2 faces -x, 3 faces -y."""

    RIGHT = 0
    DOWN = 1
    LEFT = 2
    UP = 3


DIR_TO_VEC = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}


@dataclass(frozen=True)
class EnvSpec:
    """Everything that defines the environment a model was trained and is evaluated on.

    Recorded in every checkpoint manifest: max_steps changes the reward scale (1 - 0.9 * steps / max_steps) and
    the size of the time embedding, so a model evaluated with another max_steps is a different experiment.
    """

    env_id: str = ENV_ID
    size: int = 8
    n_obstacles: int = 4
    max_steps: int = 1000
    view_size: int = 7

    def __post_init__(self) -> None:
        if self.env_id not in ENVS:
            raise ConfigError(f"env_id {self.env_id!r} is not supported; only {' or '.join(map(repr, ENVS))}")
        _, size, n_obstacles = ENVS[self.env_id]
        if self.size != size:
            raise ConfigError(f"env size {self.size} does not match {self.env_id} ({size})")
        if self.view_size != 7:
            raise ConfigError(f"view_size {self.view_size} is not supported; only 7 (the post's view)")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ConfigError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        if self.n_obstacles != n_obstacles:
            raise ConfigError(f"n_obstacles {self.n_obstacles} does not match {self.env_id} ({n_obstacles})")

    @classmethod
    def for_env(cls, env_id: str, *, max_steps: int, view_size: int = 7) -> EnvSpec:
        """The spec of a known env id with its fixed size and obstacle count (an unknown id is refused)."""
        _, size, n_obstacles = ENVS.get(env_id, ("", cls.size, cls.n_obstacles))
        return cls(env_id=env_id, size=size, n_obstacles=n_obstacles, max_steps=max_steps, view_size=view_size)

    @property
    def family(self) -> str:
        """ "dynamic-obstacles" or "memory": which claims apply to a model trained on this env."""
        return ENVS[self.env_id][0]

    @property
    def goal_pos(self) -> tuple[int, int]:
        """Dynamic Obstacles always puts the goal in the bottom-right interior corner."""
        return (self.size - 2, self.size - 2)

    def make(self) -> DynamicObstaclesEnv:
        """A fresh, unwrapped env built through gymnasium's registry (so it is the registered env); the Memory
        env is DTI's registration, built directly (``dt_circuits.env.memory``)."""
        if self.env_id == MEMORY_ENV_ID:
            from dt_circuits.env.memory import MemoryS7FixedStart

            return MemoryS7FixedStart(max_steps=self.max_steps)  # type: ignore[return-value]
        env = gym.make(
            self.env_id,
            max_steps=self.max_steps,
            agent_view_size=self.view_size,
            disable_env_checker=True,
        )
        return env.unwrapped

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EnvSpec:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown env field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


#: The agent's own cell and the cell in front of it, in view coordinates [x, y].
AGENT_VIEW_CELL = (3, 6)
FRONT_VIEW_CELL = (3, 5)


def check_index_obs(obs: np.ndarray, *, what: str = "obs") -> None:
    """Raise InvalidInputError unless ``obs`` is (..., 7, 7, 3) integer index observations in range."""
    if obs.ndim < 3 or obs.shape[-3:] != (7, 7, 3):
        raise InvalidInputError(f"{what} must have shape (B, 7, 7, 3) [x, y, channel], got {tuple(obs.shape)}")
    if not np.issubdtype(obs.dtype, np.integer):
        raise InvalidInputError(f"{what} must hold integer Minigrid indices, got dtype {obs.dtype}")
    if obs.size and (obs.min() < 0 or any(obs[..., c].max() > m for c, m in enumerate(CHANNEL_MAX))):
        raise InvalidInputError(
            f"{what} has values outside Minigrid's ranges "
            f"(object 0..{CHANNEL_MAX[0]}, colour 0..{CHANNEL_MAX[1]}, state 0..{CHANNEL_MAX[2]})"
        )


def index_to_one_hot(obs: np.ndarray) -> np.ndarray:
    """Index obs (..., 7, 7, 3) -> Minigrid OneHotPartialObsWrapper layout (..., 7, 7, 20) uint8."""
    obs = np.asarray(obs)
    check_index_obs(obs)
    out = np.zeros(obs.shape[:-1] + (ONE_HOT_DEPTH,), dtype=np.uint8)
    offsets = np.array([0, N_OBJECTS, N_OBJECTS + N_COLORS])
    idx = obs.astype(np.int64) + offsets
    np.put_along_axis(out, idx, 1, axis=-1)
    return out


def one_hot_to_index(obs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`index_to_one_hot`; rejects arrays that are not exactly one bit per group."""
    obs = np.asarray(obs)
    if obs.ndim < 3 or obs.shape[-3:] != (7, 7, ONE_HOT_DEPTH):
        raise InvalidInputError(f"one-hot obs must have shape (B, 7, 7, {ONE_HOT_DEPTH}), got {obs.shape}")
    groups = np.split(obs, [N_OBJECTS, N_OBJECTS + N_COLORS], axis=-1)
    if any(not np.all(g.sum(axis=-1) == 1) for g in groups):
        raise InvalidInputError("one-hot obs must have exactly one bit set per object/colour/state group")
    return np.stack([g.argmax(axis=-1) for g in groups], axis=-1).astype(np.uint8)
