"""Scripted policies for Dynamic Obstacles: each one is a behaviour the DT must reproduce at some RTG.

Table 1 of the post names three RTG-modulated behaviours; each policy here produces one of them:

- :class:`GoalSeeker` (RTG ~ 0.9): shortest path to the goal, never walks into a ball or wall.
- :class:`Survivor` (RTG 0): wanders but never walks into a ball, a wall or the goal -> times out.
- :class:`Crasher` (RTG -1): heads for a ball (or a wall) and walks into it, never onto the goal.
- :class:`DelayedSeeker` (0 < RTG < 0.9): survives for a random number of steps, then seeks the goal, so
  successes come in many lengths (the post's Fig. 4 spread of positive rewards).

The env's collision rule makes these imitable from the agent's view: a step is fatal exactly when the agent
moves forward while the cell in front (before the balls move) holds a ball or a wall. Policies read the real
env state (privileged, like an expert), plan with a breadth-first search over (x, y, direction) poses that
re-runs every step because balls move, and take every random choice from the generator they are handed, so an
episode is a pure function of its seed. :class:`EpsilonGreedy` adds uniform action noise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from minigrid.envs import DynamicObstaclesEnv

from dt_circuits.env.spec import DIR_TO_VEC, Action

Pose = tuple[int, int, int]


class Policy(Protocol):
    """``act(env, rng) -> action``; ``reset(rng)`` at the start of every episode."""

    name: str

    def reset(self, rng: np.random.Generator) -> None: ...

    def act(self, env: DynamicObstaclesEnv, rng: np.random.Generator) -> int: ...


def cell_type(env: DynamicObstaclesEnv, x: int, y: int) -> str:
    """'wall' / 'ball' / 'goal' / 'empty' for a grid cell."""
    obj = env.grid.get(x, y)
    return "empty" if obj is None else obj.type


def front_type(env: DynamicObstaclesEnv) -> str:
    fx, fy = env.front_pos
    return cell_type(env, int(fx), int(fy))


def plan(
    env: DynamicObstaclesEnv,
    passable: Callable[[str], bool],
    is_target: Callable[[Pose], bool],
    rng: np.random.Generator,
) -> int | None:
    """First action of a shortest path from the agent's pose to a target pose, or None if there is none.

    Ties between equally short paths are broken at random (``rng``), so scripted data is not one fixed route.
    """
    start: Pose = (int(env.agent_pos[0]), int(env.agent_pos[1]), int(env.agent_dir))
    if is_target(start):
        return -1  # already there: the caller decides the final action
    first: dict[Pose, int] = {start: -1}
    queue = deque([start])
    while queue:
        pose = queue.popleft()
        x, y, d = pose
        dx, dy = DIR_TO_VEC[d]
        moves = [
            (int(Action.LEFT), (x, y, (d - 1) % 4)),
            (int(Action.RIGHT), (x, y, (d + 1) % 4)),
            (int(Action.FORWARD), (x + dx, y + dy, d)),
        ]
        for k in rng.permutation(3):
            action, nxt = moves[k]
            if nxt in first:
                continue
            if action == Action.FORWARD and not passable(cell_type(env, nxt[0], nxt[1])):
                continue
            first[nxt] = first[pose] if first[pose] != -1 else action
            if is_target(nxt):
                return first[nxt]
            queue.append(nxt)
    return None


def safe_turn(rng: np.random.Generator) -> int:
    return int(rng.choice([Action.LEFT, Action.RIGHT]))


@dataclass
class GoalSeeker:
    """Shortest path to the goal around balls; if balls cut every path, turn and wait (never a fatal step)."""

    name: str = "seeker"

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def act(self, env: DynamicObstaclesEnv, rng: np.random.Generator) -> int:
        goal = (env.width - 2, env.height - 2)  # Dynamic Obstacles never moves the goal
        action = plan(env, lambda t: t in ("empty", "goal"), lambda p: (p[0], p[1]) == goal, rng)
        if action is None or action == -1:
            return safe_turn(rng) if front_type(env) in ("wall", "ball") else int(Action.FORWARD)
        return action


@dataclass
class Survivor:
    """Random walk that never steps into a ball, a wall or the goal: it times out (reward 0).

    ``p_forward`` is the chance of moving when the cell ahead is empty; otherwise it turns left or right.
    """

    p_forward: float = 0.5
    name: str = "survivor"

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def act(self, env: DynamicObstaclesEnv, rng: np.random.Generator) -> int:
        if front_type(env) == "empty" and rng.random() < self.p_forward:
            return int(Action.FORWARD)
        return safe_turn(rng)


@dataclass
class Crasher:
    """Goes for a ball (``target='ball'``) or the nearest wall (``'wall'``) and walks into it (reward -1).

    It never steps onto the goal; if no ball can be reached it falls back to the nearest wall.
    """

    target: str = "ball"
    name: str = "crasher"

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def act(self, env: DynamicObstaclesEnv, rng: np.random.Generator) -> int:
        kinds = ("ball",) if self.target == "ball" else ("wall",)
        for wanted in (kinds, ("wall",)):
            if front_type(env) in wanted:
                return int(Action.FORWARD)

            def faces(p: Pose, wanted: tuple[str, ...] = wanted) -> bool:
                dx, dy = DIR_TO_VEC[p[2]]
                return cell_type(env, p[0] + dx, p[1] + dy) in wanted

            action = plan(env, lambda t: t == "empty", faces, rng)
            if action is not None and action != -1:
                return action
        return safe_turn(rng)


@dataclass
class DelayedSeeker:
    """Survives for a random number of steps (uniform in [min_delay, max_delay)), then seeks the goal.

    Successes then arrive after many delays, so positive rewards spread over (0.1, ~0.85) like the post's data.
    ``min_delay`` keeps the top of the reward range (RTG ~0.9) to direct seekers: a DT conditioned on 0.9 then
    copies the direct route instead of a wander, which would carry it into (RTG, time) pairs no data has.
    """

    min_delay: int = 0
    max_delay: int = 300
    p_forward: float = 0.5
    name: str = "delayed"

    def __post_init__(self) -> None:
        self._survivor = Survivor(self.p_forward)
        self._seeker = GoalSeeker()
        self._delay = 0

    def reset(self, rng: np.random.Generator) -> None:
        self._delay = int(rng.integers(self.min_delay, max(self.min_delay + 1, self.max_delay)))

    def act(self, env: DynamicObstaclesEnv, rng: np.random.Generator) -> int:
        inner = self._survivor if env.step_count < self._delay else self._seeker
        return inner.act(env, rng)


@dataclass
class EpsilonGreedy:
    """With probability ``epsilon`` a uniformly random action instead of the policy's (may be fatal)."""

    policy: Policy
    epsilon: float = 0.0

    @property
    def name(self) -> str:
        return self.policy.name

    def reset(self, rng: np.random.Generator) -> None:
        self.policy.reset(rng)

    def act(self, env: DynamicObstaclesEnv, rng: np.random.Generator) -> int:
        if self.epsilon > 0 and rng.random() < self.epsilon:
            return int(rng.integers(0, 3))
        return self.policy.act(env, rng)


#: Policy constructors by name, for mixes written as text (``seeker:0.3:eps=0.05``).
POLICIES: dict[str, Callable[..., Policy]] = {
    "seeker": GoalSeeker,
    "survivor": Survivor,
    "crasher": lambda **kw: Crasher(target="ball", name="crasher", **kw),
    "wall-crasher": lambda **kw: Crasher(target="wall", name="wall-crasher", **kw),
    "delayed": DelayedSeeker,
}
