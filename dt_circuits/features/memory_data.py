"""The windows MemoryDT's features are measured on: seeded exploratory episodes of the real Memory env, every
step's full context window (DTI's left padding), and each step's :class:`~dt_circuits.features.variables.MemoryStep`.

The episodes do not depend on the model (the same windows for any checkpoint): each of the four layouts
(instruction key / ball × top target key / ball) in turn, a seeded policy that walks forward half of the time and
turns otherwise, up to :data:`MAX_STEPS` steps or the episode's end. Clusters are episodes: the steps of one
episode share their first frames, so no episode is both trained and tested on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.core.errors import InvalidStateError
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.dt.window import pad_window, stack_windows
from dt_circuits.env.memory import FORWARD, LEFT, RIGHT, MemoryS7FixedStart, complement
from dt_circuits.env.spec import FRONT_VIEW_CELL, OBJECT
from dt_circuits.features.das import Pairs
from dt_circuits.features.variables import MemoryStep, memory_labels

#: steps per episode at most (the article's modal state is after 4; the corridor's end after ~5)
MAX_STEPS = 16
#: the RTG of every window (the article's best, 1 - 0.9 * 6 / 50)
RTG = 0.892
LAYOUTS = (("key", "key"), ("key", "ball"), ("ball", "key"), ("ball", "ball"))


@dataclass(frozen=True)
class Windows:
    """Model inputs of a window model, (obs, rtg, timesteps, actions), sliceable like ``Inputs``."""

    obs: torch.Tensor  # (B, T, 7, 7, 3) uint8
    rtg: torch.Tensor  # (B, T)
    timestep: torch.Tensor  # (B, T)
    actions: torch.Tensor  # (B, T - 1)

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def __getitem__(self, idx: slice | torch.Tensor) -> Windows:
        return Windows(self.obs[idx], self.rtg[idx], self.timestep[idx], self.actions[idx])

    @property
    def args(self) -> tuple[torch.Tensor, ...]:
        return self.obs, self.rtg, self.timestep, self.actions

    @staticmethod
    def cat(parts: list[Windows]) -> Windows:
        return Windows(*(torch.cat([getattr(p, f) for p in parts]) for f in ("obs", "rtg", "timestep", "actions")))


@dataclass(frozen=True)
class MemoryProbeSet:
    """Windows with each step's facts, clusters (episode ids) and control-task types (the front row)."""

    steps: tuple[MemoryStep, ...]
    windows: Windows
    clusters: np.ndarray
    types: np.ndarray

    def labels(self, variable: str) -> np.ndarray:
        return memory_labels(variable, self.steps)


def _seen(env: MemoryS7FixedStart, image: np.ndarray) -> bool:
    where = env.relative_coords(1, env.height // 2 - 1)  # the instruction's cell
    return where is not None and int(image[where[0], where[1], 0]) == OBJECT[env.instruction]


def _episodes(model: DecisionTransformer, seed: int, n_episodes: int, flip: bool) -> tuple[list, list, list, list]:
    """(windows, steps, episode ids, front rows) of every step; ``flip`` swaps each episode's instruction and
    keeps everything else: the env's seed, the top target and the action stream (the policy never looks)."""
    rng = np.random.default_rng([seed, 27, 7])
    windows, steps, clusters, fronts = [], [], [], []
    n_t, pad = model.cfg.n_timesteps, model.cfg.n_actions
    fx, fy = FRONT_VIEW_CELL
    for episode in range(n_episodes):
        instruction, top = LAYOUTS[episode % len(LAYOUTS)]
        if flip:
            instruction = complement(instruction)  # type: ignore[arg-type]
        env = MemoryS7FixedStart()
        obs, _ = env.reset(seed=int(rng.integers(2**31)), options={"instruction": instruction, "top": top})
        frames, actions = [obs["image"]], []
        for t in range(MAX_STEPS):
            image = frames[-1]
            rtg, ts = np.full(len(frames), RTG, dtype=np.float32), np.arange(len(frames))
            prefix = np.stack(frames), np.array(actions, dtype=np.int64), rtg, ts
            windows.append(pad_window(*prefix, n_timesteps=n_t, pad_action=pad, initial_rtg=RTG))
            steps.append(MemoryStep(instruction, top, _seen(env, image)))
            clusters.append(episode)
            fronts.append(image[fx - 1 : fx + 2, fy, :2].reshape(-1))
            if t == MAX_STEPS - 1:
                break
            action = int(rng.choice([LEFT, RIGHT, FORWARD], p=[0.25, 0.25, 0.5]))
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
            frames.append(obs["image"])
            actions.append(action)
    return windows, steps, clusters, fronts


def _batch(windows: list) -> Windows:
    obs, rtg, ts, act = stack_windows(windows)
    return Windows(
        torch.from_numpy(obs.astype(np.uint8)), torch.from_numpy(rtg), torch.from_numpy(ts), torch.from_numpy(act)
    )


def memory_probe_set(model: DecisionTransformer, *, seed: int = 0, n_episodes: int = 48) -> MemoryProbeSet:
    """Every step of ``n_episodes`` seeded episodes (layouts in turn) as a window for ``model``'s context."""
    windows, steps, clusters, fronts = _episodes(model, seed, n_episodes, flip=False)
    return MemoryProbeSet(tuple(steps), _batch(windows), np.array(clusters), np.stack(fronts))


def instruction_pairs(model: DecisionTransformer, *, seed: int = 0, n_episodes: int = 48) -> Pairs:
    """Every step of :func:`memory_probe_set`'s episodes paired with the same step of the same episode with the
    instruction swapped (both directions); the value is the instruction (0 key, 1 ball); clusters are episodes."""
    base, base_steps, clusters, _ = _episodes(model, seed, n_episodes, flip=False)
    swapped, swapped_steps, _, _ = _episodes(model, seed, n_episodes, flip=True)
    if len(base) != len(swapped):  # both targets end an episode, so the same actions give as many steps
        raise InvalidStateError("an episode with the instruction swapped took another number of steps")
    a, b = _batch(base), _batch(swapped)
    values, flipped = memory_labels("instruction", base_steps), memory_labels("instruction", swapped_steps)
    cat = Windows.cat
    ids = np.array(clusters)
    return Pairs(cat([a, b]), cat([b, a]), np.concatenate([ids, ids]), np.r_[values, flipped], np.r_[flipped, values])
