"""Stepping the real env from what the page shows, so play is the env's own dynamics, not a re-implementation.

Dynamic Obstacles: the state is a :class:`GridState` (agent pose and balls); a step puts a real env into it
(:class:`StateRenderer`), seeds the env's RNG from (seed, timestep) so the balls' moves are reproducible from the
URL, and calls the env's ``step``. Memory: the episode is its reset seed and the actions taken, replayed in DTI's
Memory env. The action the model takes is :func:`choose_actions`, as in every rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium.utils import seeding

from dt_circuits.env.memory import EVAL_MAX_STEPS, MemoryS7FixedStart
from dt_circuits.env.scenarios import GridState, StateRenderer
from dt_circuits.env.spec import EnvSpec
from dt_circuits.evaluation.episodes import choose_actions, outcome_of


@dataclass(frozen=True)
class Step:
    """What one env step gave: the next state, its reward, and the outcome if the episode ended ("" if not)."""

    state: GridState
    reward: float
    outcome: str


def pose_state(env) -> GridState:  # noqa: ANN001 - a Minigrid env
    """The GridState a real Dynamic Obstacles env is in."""
    balls = tuple(sorted((int(b.cur_pos[0]), int(b.cur_pos[1])) for b in env.obstacles if b.cur_pos is not None))
    return GridState((int(env.agent_pos[0]), int(env.agent_pos[1])), int(env.agent_dir), balls)


def initial_state(spec: EnvSpec, seed: int) -> GridState:
    """The state the env resets to with ``seed``."""
    env = spec.make()
    env.reset(seed=int(seed))
    return pose_state(env)


def step(renderer: StateRenderer, state: GridState, timestep: int, action: int, seed: int) -> Step:
    """One real env step from ``state`` at ``timestep`` (the balls move with an RNG seeded by (seed, timestep))."""
    renderer.place(state)
    env = renderer.env
    env.step_count = int(timestep)
    env._np_random, _ = seeding.np_random(int(np.random.SeedSequence([int(seed), int(timestep)]).generate_state(1)[0]))
    _, reward, terminated, truncated, _ = env.step(int(action))
    outcome = outcome_of(float(reward)) if terminated or truncated else ""
    return Step(pose_state(env), float(reward), outcome)


def model_action(logits: torch.Tensor, seed: int, timestep: int, sample: bool) -> int:
    """The model's action for one state: argmax, or a draw from a stream seeded by (seed, timestep)."""
    rng = np.random.default_rng([int(seed), int(timestep), 1])
    return int(choose_actions(logits.reshape(1, -1), [rng], sample)[0])


@dataclass(frozen=True)
class MemoryEpisode:
    """A Memory episode replayed from its seed and actions: every frame, the RTG before each step, the outcome."""

    env: MemoryS7FixedStart
    frames: np.ndarray  # (t + 1, 7, 7, 3) index observations
    actions: np.ndarray
    rtgs: np.ndarray
    outcome: str


def memory_episode(seed: int, actions: tuple[int, ...], rtg: float) -> MemoryEpisode:
    """Replay ``actions`` from the reset with ``seed``; actions after the episode ended are dropped."""
    env = MemoryS7FixedStart(max_steps=EVAL_MAX_STEPS)
    obs, _ = env.reset(seed=int(seed))
    frames, rtgs, taken, outcome = [obs["image"]], [float(rtg)], [], ""
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(int(a))
        taken.append(int(a))
        if terminated or truncated:
            outcome = info.get("outcome") or "timeout"
            break
        frames.append(obs["image"])
        rtgs.append(rtgs[-1] - float(reward))
    return MemoryEpisode(env, np.stack(frames).astype(np.uint8), np.array(taken, np.int64), np.array(rtgs), outcome)
