"""Trajectory-aware rollouts of a multi-timestep DT in the Memory env, fed as DTI's evaluation feeds it.

Each step the model sees the last ``n_timesteps`` observations and the actions between them, left-padded
(``dt_circuits.dt.window``); the RTG starts at the target and drops by each reward; the timestep is the step
index. Episodes are stepped in lockstep so one forward pass serves the whole batch; each episode owns its env
seed and sampling stream (``episode_seeds``), so results do not depend on batching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.dt.window import pad_window, stack_windows
from dt_circuits.env.memory import EVAL_MAX_STEPS, MemoryS7FixedStart
from dt_circuits.evaluation.episodes import episode_seeds

MEMORY_OUTCOMES = ("success", "wrong", "timeout")


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95 % interval for k successes in n trials (sensible at 0 and n, unlike the normal one)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class MemoryRollouts:
    """Per-episode outcomes (success / wrong / timeout), rewards and lengths at one initial RTG."""

    rtg: float
    outcomes: np.ndarray
    rewards: np.ndarray
    lengths: np.ndarray
    sample: bool
    seed: int
    max_steps: int
    #: every window the model was fed, batched (obs, rtg, timesteps, actions), when asked for
    windows: tuple[np.ndarray, ...] | None = None

    @property
    def n(self) -> int:
        return len(self.outcomes)

    def count(self, outcome: str) -> int:
        return int(np.sum(self.outcomes == outcome))

    def summary(self) -> str:
        parts = []
        for o in MEMORY_OUTCOMES:
            k = self.count(o)
            lo, hi = wilson_interval(k, self.n)
            parts.append(f"{o} {k}/{self.n} ({k / self.n:.1%}, 95% CI {lo:.1%}-{hi:.1%})")
        how = "sampled" if self.sample else "argmax"
        return f"RTG {self.rtg:g}, {how}, max_steps {self.max_steps}: " + ", ".join(parts)


@torch.no_grad()
def memory_rollouts(
    model: DecisionTransformer,
    rtg: float,
    n_episodes: int,
    *,
    seed: int = 0,
    sample: bool = True,
    max_steps: int = EVAL_MAX_STEPS,
    record_windows: bool = False,
) -> MemoryRollouts:
    """``n_episodes`` seeded episodes at initial ``rtg``; actions sampled from softmax(logits) or argmax.
    ``record_windows`` keeps every model input (the states real rollouts visit, for equivalence tests)."""
    cfg = model.cfg
    seeds = [episode_seeds(seed, i) for i in range(n_episodes)]
    envs = [MemoryS7FixedStart(max_steps=max_steps) for _ in range(n_episodes)]
    obs = [[env.reset(seed=s)[0]["image"]] for env, (s, _) in zip(envs, seeds, strict=True)]
    actions: list[list[int]] = [[] for _ in envs]
    rtgs = [[float(rtg)] for _ in envs]
    outcomes, rewards, lengths = [""] * n_episodes, np.zeros(n_episodes), np.zeros(n_episodes, dtype=int)
    active = list(range(n_episodes))
    seen: list[tuple[np.ndarray, ...]] = []
    while active:
        windows = [
            pad_window(
                np.stack(obs[i]), np.array(actions[i]), np.array(rtgs[i]), np.arange(len(obs[i])),
                n_timesteps=cfg.n_timesteps, pad_action=cfg.n_actions, initial_rtg=rtg,
            )
            for i in active
        ]  # fmt: skip
        batch = stack_windows(windows)
        if record_windows:
            seen.append(batch)
        logits = model(*batch)
        still = []
        for j, i in enumerate(active):
            if sample:
                probs = torch.softmax(logits[j].double(), -1).numpy()
                a = int(seeds[i][1].choice(len(probs), p=probs / probs.sum()))
            else:
                a = int(logits[j].argmax())
            frame, reward, terminated, truncated, info = envs[i].step(a)
            lengths[i] += 1
            if terminated or truncated:
                outcomes[i], rewards[i] = info["outcome"], float(reward)
                continue
            obs[i].append(frame["image"])
            actions[i].append(a)
            rtgs[i].append(rtgs[i][-1] - float(reward))
            still.append(i)
        active = still
    recorded = tuple(np.concatenate(parts) for parts in zip(*seen, strict=True)) if seen else None
    return MemoryRollouts(float(rtg), np.array(outcomes), rewards, lengths, sample, seed, max_steps, recorded)
