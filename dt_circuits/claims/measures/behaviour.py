"""Claim measures the base framework lacks: wall following in rollouts, and the time embedding's slope.

Both report per-unit values (episodes, timesteps) and, where the statistic is not a mean (a slope), their own
bootstrap replicates through ``Measurement.draws``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import torch

from dt_circuits.analysis.embeddings import time_embedding_projection
from dt_circuits.claims.evaluation.measurement import Measurement, OwnSample
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.measures.paths import paired_bootstrap
from dt_circuits.env.spec import FRONT_VIEW_CELL, OBJECT, Action, EnvSpec
from dt_circuits.evaluation.episodes import episode_seeds


@dataclass(frozen=True)
class WallTrace:
    """Per episode: right / left turns taken with a wall in front, and the signed circulation of its moves."""

    right_at_wall: np.ndarray
    left_at_wall: np.ndarray
    circulation: np.ndarray  # sum over moves of (pos - centre) x step, screen coordinates (y down): > 0 clockwise
    moved: np.ndarray  # sum over moves of |(pos - centre) x step|


def wall_trace(model, *, rtg: float, episodes: int, max_steps: int, seed: int, spec: EnvSpec) -> WallTrace:
    """Sampled-action episodes in the real env (seeded per episode, batched across envs), first ``max_steps``
    steps of each; the RTG drops by each reward, the timestep is the step count (as in evaluation)."""
    envs = [spec.make() for _ in range(episodes)]
    rngs, obs = [], np.zeros((episodes, 7, 7, 3), np.uint8)
    for i, env in enumerate(envs):
        env_seed, rng = episode_seeds(seed, i)
        o, _ = env.reset(seed=env_seed)
        obs[i] = o["image"]
        rngs.append(rng)
    rtgs = np.full(episodes, rtg, np.float32)
    alive = np.ones(episodes, bool)
    right, left, circ, moved = (np.zeros(episodes) for _ in range(4))
    centre = (spec.size - 1) / 2
    wall = OBJECT["wall"]
    for t in range(max_steps):
        idx = np.flatnonzero(alive)
        if not len(idx):
            break
        with torch.no_grad():
            probs = torch.softmax(model(obs[idx], rtgs[idx], np.full(len(idx), t)).double(), -1).numpy()
        for j, i in enumerate(idx):
            a = int(np.minimum((rngs[i].random() > np.cumsum(probs[j])).sum(), 2))
            at_wall = obs[i][FRONT_VIEW_CELL[0], FRONT_VIEW_CELL[1], 0] == wall
            right[i] += at_wall and a == Action.RIGHT
            left[i] += at_wall and a == Action.LEFT
            before = np.array(envs[i].unwrapped.agent_pos, float)
            o, reward, term, trunc, _ = envs[i].step(a)
            step = np.array(envs[i].unwrapped.agent_pos, float) - before
            if step.any():
                z = (before[0] - centre) * step[1] - (before[1] - centre) * step[0]
                circ[i] += z
                moved[i] += abs(z)
            obs[i], rtgs[i] = o["image"], rtgs[i] - reward
            alive[i] = not (term or trunc)
    return WallTrace(right, left, circ, moved)


@dataclass(frozen=True)
class WallFollowing(OwnSample):
    sample = "rollouts"

    """Clockwise wall following in rollouts: per episode, the share of turns at a wall in front that are right
    turns (``right-share``; episodes with no such turn are left out) or the normalised circulation of the agent's
    moves about the grid centre (``circulation``, in [-1, 1], > 0 clockwise on screen)."""

    value: Literal["right-share", "circulation"]
    rtg: float = 0.0
    episodes: int = 100
    max_steps: int = 100
    seed: int = 0

    def measure(self, subject: Subject) -> Measurement:
        key = ("wall-trace", self.rtg, self.episodes, self.max_steps, self.seed)
        if key not in subject._cache:
            info = getattr(subject.model, "checkpoint_info", None)
            spec = getattr(info, "env", None) or EnvSpec()
            seed = subject.derived_seed(self.seed)

            def trace() -> dict[str, np.ndarray]:
                tr = wall_trace(subject.model, rtg=self.rtg, episodes=self.episodes, max_steps=self.max_steps,
                                seed=seed, spec=spec)  # fmt: skip
                return {f.name: getattr(tr, f.name) for f in fields(WallTrace)}

            params = {"rtg": self.rtg, "episodes": self.episodes, "max_steps": self.max_steps, "seed": seed,
                      "env": spec.to_dict()}  # fmt: skip
            arrays = subject.disk_cached("wall-trace", params, trace, wall_trace, episode_seeds, EnvSpec)
            subject._cache[key] = WallTrace(**arrays)
        tr: WallTrace = subject._cache[key]
        if self.value == "right-share":
            turns = tr.right_at_wall + tr.left_at_wall
            vals = tr.right_at_wall[turns > 0] / turns[turns > 0]
            what = f"share of right turns among turns with a wall in front ({int(turns.sum())} turns)"
        else:
            vals = tr.circulation[tr.moved > 0] / tr.moved[tr.moved > 0]
            what = "circulation of moves about the grid centre (> 0 clockwise)"
        return Measurement(
            vals if len(vals) else np.array([float("nan")]),
            self.value,
            f"{what}, {len(vals)} of {self.episodes} sampled episodes (first {self.max_steps} steps) at RTG "
            f"{self.rtg:g}",
        )


@dataclass(frozen=True)
class TimeSlope(OwnSample):
    sample = "weights"

    """Least-squares slope of ``W_time[t] . W_U(direction)`` over t = 0..``last`` (per 100 steps), bootstrapped
    over timesteps (post Fig. 11)."""

    direction: str = "forward-right"
    last: int = 255

    def measure(self, subject: Subject) -> Measurement:
        last = min(self.last, subject.model.cfg.max_timestep)
        t = np.arange(last + 1, dtype=float)
        y = time_embedding_projection(subject.model, self.direction, t.astype(np.int64)).numpy()

        def slope(cols: np.ndarray) -> float:
            x = cols[:, 0]
            return float(np.polyfit(x, cols[:, 1], 1)[0] * 100) if np.ptp(x) > 0 else float("nan")

        def slopes(resamples: np.ndarray) -> np.ndarray:  # (m, n, 2) -> (m,): the least-squares slope of each
            x, yy = resamples[..., 0], resamples[..., 1]
            dx = x - x.mean(axis=1, keepdims=True)
            var = (dx * dx).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(var > 0, (dx * yy).sum(axis=1) / np.where(var > 0, var, 1.0) * 100, np.nan)

        cols = np.stack([t, y], axis=1)
        est, draws = paired_bootstrap(slope, cols, zlib.crc32(f"time-slope/{self.direction}".encode()), stats=slopes)
        return Measurement(
            y,
            "logit / 100 steps",
            f"OLS slope of W_time[t] . W_U({self.direction}) over t = 0..{last}, per 100 steps",
            estimate=est,
            draws=draws,
        )
