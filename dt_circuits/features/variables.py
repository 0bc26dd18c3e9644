"""World-state variables: what a probe or a causal subspace is asked to find, computed from the grid state (and,
for the agent's own rollouts, which record no grid state, from the observation and the pose where those tell).

One registry (:data:`VARIABLES`); adding a variable is one function and one line. Each is a function of a
``GridState`` and the RTG (the ground truth the env knows, including what the agent cannot see), returning the
index of its value in ``Variable.values``. The view geometry is Minigrid's own (``get_view_coords``), checked
against rendered observations in the tests; Dynamic Obstacles sees through walls, so "in view" is geometry only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import GridState, front_kind
from dt_circuits.env.spec import DIR_TO_VEC, FRONT_VIEW_CELL, OBJECT, EnvSpec

#: (observation (7, 7, 3), RTG, pose (x, y, direction), spec) -> value index: a variable read from what a
#: rollout records, for states that carry no grid state (the agent's own rollouts)
ViewFn = Callable[[np.ndarray, float, np.ndarray, EnvSpec], int]


@dataclass(frozen=True)
class Variable:
    """A named discrete variable of (state, RTG): its values and the function giving a value's index; and, where
    the view and the pose determine it, the same variable read from an observation (``from_view``)."""

    name: str
    values: tuple[str, ...]
    fn: Callable[[GridState, float, EnvSpec], int]
    description: str
    from_view: ViewFn | None = None
    #: why ``from_view`` is None (what the view cannot tell)
    not_from_view: str = ""

    def __call__(self, state: GridState, rtg: float = 0.0, spec: EnvSpec = EnvSpec()) -> int:
        return self.fn(state, float(rtg), spec)


def view_coords(state: GridState, cell: tuple[int, int], spec: EnvSpec = EnvSpec()) -> tuple[int, int]:
    """Where world ``cell`` falls in the agent's view ([x, y], agent at (3, 6) facing up; may be outside 0..6)."""
    (ax, ay), (dx, dy) = state.agent_pos, DIR_TO_VEC[int(state.agent_dir)]
    rx, ry = -dy, dx  # Minigrid's right_vec
    size, half = spec.view_size, spec.view_size // 2
    tx, ty = ax + dx * (size - 1) - rx * half, ay + dy * (size - 1) - ry * half
    lx, ly = cell[0] - tx, cell[1] - ty
    return rx * lx + ry * ly, -(dx * lx + dy * ly)


def _in_view(state: GridState, cell: tuple[int, int], spec: EnvSpec) -> bool:
    vx, vy = view_coords(state, cell, spec)
    return 0 <= vx < spec.view_size and 0 <= vy < spec.view_size


def _front_object(state: GridState, rtg: float, spec: EnvSpec) -> int:
    kind = front_kind(state, spec)  # validates the state
    return ("ball", "goal", "wall", "empty").index("ball" if kind == "obstacle" else kind)


def _ball_in_front(state: GridState, rtg: float, spec: EnvSpec) -> int:
    return int(front_kind(state, spec) == "obstacle")


def _ball_within_2(state: GridState, rtg: float, spec: EnvSpec) -> int:
    front_kind(state, spec)
    ax, ay = state.agent_pos
    return int(any(abs(ox - ax) + abs(oy - ay) <= 2 for ox, oy in state.obstacles))


def _goal_visible(state: GridState, rtg: float, spec: EnvSpec) -> int:
    front_kind(state, spec)
    return int(_in_view(state, tuple(state.goal), spec))


def _goal_side(state: GridState, rtg: float, spec: EnvSpec) -> int:
    front_kind(state, spec)
    (ax, ay), (dx, dy) = state.agent_pos, DIR_TO_VEC[int(state.agent_dir)]
    gx, gy = state.goal[0] - ax, state.goal[1] - ay
    lateral, ahead = -dy * gx + dx * gy, dx * gx + dy * gy  # along right_vec, along dir_vec
    if lateral != 0:
        return 0 if lateral < 0 else 2
    return 1 if ahead > 0 else 3


def _rtg_sign(state: GridState, rtg: float, spec: EnvSpec) -> int:
    if not np.isfinite(rtg):
        raise ConfigError(f"RTG must be finite, got {rtg!r}")
    return int(np.sign(rtg)) + 1


# -- the same variables read from an observation and the agent's pose (on-policy states) -----------------------


def _front_cell(obs: np.ndarray) -> int:
    x, y = FRONT_VIEW_CELL
    return int(obs[x, y, 0])


_FRONT_NAMES = {OBJECT["ball"]: "ball", OBJECT["goal"]: "goal", OBJECT["wall"]: "wall", OBJECT["empty"]: "empty"}


def _front_object_seen(obs: np.ndarray, rtg: float, pose: np.ndarray, spec: EnvSpec) -> int:
    front = _front_cell(obs)
    if front not in _FRONT_NAMES:
        raise ConfigError(f"object index {front} in front: not a Dynamic Obstacles observation")
    return ("ball", "goal", "wall", "empty").index(_FRONT_NAMES[front])


def _ball_in_front_seen(obs: np.ndarray, rtg: float, pose: np.ndarray, spec: EnvSpec) -> int:
    return int(_front_cell(obs) == OBJECT["ball"])


def _goal_visible_seen(obs: np.ndarray, rtg: float, pose: np.ndarray, spec: EnvSpec) -> int:
    return int(bool((obs[..., 0] == OBJECT["goal"]).any()))


def _goal_side_seen(obs: np.ndarray, rtg: float, pose: np.ndarray, spec: EnvSpec) -> int:
    x, y, d = (int(v) for v in pose)
    return _goal_side(GridState((x, y), d, (), spec.goal_pos), rtg, spec)


def _rtg_sign_seen(obs: np.ndarray, rtg: float, pose: np.ndarray, spec: EnvSpec) -> int:
    return _rtg_sign(None, rtg, spec)  # type: ignore[arg-type]


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable(
            "front_object",
            ("ball", "goal", "wall", "empty"),
            _front_object,
            "what is in the cell in front",
            _front_object_seen,
        ),  # fmt: skip
        Variable("ball_in_front", ("no", "yes"), _ball_in_front, "a ball in the cell in front", _ball_in_front_seen),
        Variable(
            "ball_within_2",
            ("no", "yes"),
            _ball_within_2,
            "a ball within Manhattan distance 2 (seen or not)",
            not_from_view="a ball behind the agent is out of its view",
        ),  # fmt: skip
        Variable("goal_visible", ("no", "yes"), _goal_visible, "the goal inside the 7x7 view", _goal_visible_seen),
        Variable(
            "goal_side",
            ("left", "ahead", "right", "behind"),
            _goal_side,
            "the goal's side in the agent's frame (ahead / behind: on the agent's line)",
            _goal_side_seen,  # the goal never moves: the pose is enough
        ),
        Variable("rtg_sign", ("negative", "zero", "positive"), _rtg_sign, "the sign of the RTG", _rtg_sign_seen),
    )
}


def variable(name: str) -> Variable:
    """The registered variable ``name`` (ConfigError naming the known ones otherwise)."""
    if name not in VARIABLES:
        raise ConfigError(f"unknown variable {name!r}; known: {', '.join(VARIABLES)}")
    return VARIABLES[name]


def labels(name: str, states: Sequence[GridState], rtgs: Sequence[float] | np.ndarray) -> np.ndarray:
    """The variable's value index for each (state, RTG) pair, as an int64 array."""
    var = variable(name)
    rtgs = np.broadcast_to(np.asarray(rtgs, dtype=np.float64), (len(states),))
    return np.array([var(s, r) for s, r in zip(states, rtgs, strict=True)], dtype=np.int64)


def view_labels(
    name: str, obs: np.ndarray, rtgs: Sequence[float] | np.ndarray, poses: np.ndarray, spec: EnvSpec = EnvSpec()
) -> np.ndarray:
    """The variable's value index for states known only by what a rollout records: each observation (N, 7, 7, 3),
    RTG and pose (N, 3); ConfigError for a variable the view and the pose cannot tell."""
    var = variable(name)
    if var.from_view is None:
        raise ConfigError(f"variable {name!r} cannot be read from an observation: {var.not_from_view}")
    obs, poses = np.asarray(obs), np.asarray(poses)
    rtgs = np.broadcast_to(np.asarray(rtgs, dtype=np.float64), (len(obs),))
    if obs.ndim != 4 or obs.shape[1:] != (7, 7, 3) or poses.shape != (len(obs), 3):
        raise ConfigError(f"observations {obs.shape} and poses {poses.shape}: expected (N, 7, 7, 3) and (N, 3)")
    return np.array([var.from_view(o, float(r), p, spec) for o, r, p in zip(obs, rtgs, poses, strict=True)],
                    dtype=np.int64)  # fmt: skip


# -- MiniGrid Memory (MemoryDT) ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryStep:
    """What the Memory env knows at one step: the layout, and whether the instruction object is in the frame the
    agent sees now (Memory's walls occlude, so "in view" means drawn in the observation, not geometry)."""

    instruction: str  # "key" | "ball": the object in the start room
    top: str  # the object of the target at the top of the far room
    instruction_seen: bool


@dataclass(frozen=True)
class MemoryVariable:
    """A named discrete variable of a Memory step."""

    name: str
    values: tuple[str, ...]
    fn: Callable[[MemoryStep], int]
    description: str

    def __call__(self, step: MemoryStep) -> int:
        return self.fn(step)


MEMORY_VARIABLES: dict[str, MemoryVariable] = {
    v.name: v
    for v in (
        MemoryVariable(
            "instruction",
            ("key", "ball"),
            lambda s: ("key", "ball").index(s.instruction),
            "the instruction object (shown in the start room only)",
        ),
        MemoryVariable(
            "instruction_in_view",
            ("no", "yes"),
            lambda s: int(s.instruction_seen),
            "the instruction object drawn in the current frame",
        ),
        MemoryVariable(
            "correct_side",
            ("left", "right"),
            lambda s: 0 if s.top == s.instruction else 1,
            "where the matching target is: the top (a left turn from the corridor) or the bottom",
        ),
    )
}


def memory_variable(name: str) -> MemoryVariable:
    """The registered Memory variable ``name`` (ConfigError naming the known ones otherwise)."""
    if name not in MEMORY_VARIABLES:
        raise ConfigError(f"unknown Memory variable {name!r}; known: {', '.join(MEMORY_VARIABLES)}")
    return MEMORY_VARIABLES[name]


def memory_labels(name: str, steps: Sequence[MemoryStep]) -> np.ndarray:
    """The Memory variable's value index for each step, as an int64 array (ConfigError for an unknown name)."""
    var = memory_variable(name)
    return np.array([var(s) for s in steps], dtype=np.int64)
