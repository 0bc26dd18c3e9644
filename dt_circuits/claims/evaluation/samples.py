"""The two samples every state-based check is measured on, with the clusters its interval resamples.

- **generated**: the named family made through the real env (every valid pose with the object in front, each
  pose under several seeded obstacle layouts), at timesteps drawn from those at which the checkpoint's own
  rollouts at that RTG meet the object in front (states the agent actually visits, not a uniform 0..60).
  Clusters are agent poses. The goal families have a single pose per side (Dynamic Obstacles always puts the goal
  at (6, 6), so exactly one pose has it directly in front from the top, one from the left), and their layouts
  render to few distinct observations (4096 layouts gave 45): they cluster by distinct observation.
- **on-policy**: the states the checkpoint's own sampled rollouts at that RTG visit with the object in front
  (for the goal families: in that exact pose). Clusters are episodes.

A verdict needs both; an on-policy sample with fewer than ``MIN_CLUSTERS`` episodes cannot support one and is
reported as insufficient (the behaviour is not seen on-policy at that RTG).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.analysis.interventions import Inputs
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.core.errors import ConfigError
from dt_circuits.env import scenarios
from dt_circuits.env.spec import FRONT_VIEW_CELL, OBJECT, Direction, EnvSpec

#: obstacle layouts per pose in the generated "X-in-front" families
LAYOUTS_PER_POSE = 4
#: seeded layouts of the goal families (one pose each; they render to ~45 distinct observations)
GOAL_FAMILY_LAYOUTS = 1024
#: fewest clusters (poses, observations, episodes) a sample needs to support a verdict
MIN_CLUSTERS = 10
#: on-policy rows kept per sample (whole episodes, in episode order), to bound the cost of many recipes
MAX_ON_POLICY_ROWS = 2000
#: below this many on-policy states with the object in front, generated timesteps follow every visited state
MIN_MATCHED_TIMESTEPS = 30

FRONT_OBJECT = {"wall": "wall", "obstacle": "ball", "goal": "goal", "empty": "empty"}


@dataclass(frozen=True)
class Sample:
    """Rows a measure is taken on: model inputs, a cluster label per row, and the states when generated."""

    kind: str  # "generated" | "on-policy"
    family: str
    inputs: Inputs
    clusters: np.ndarray
    cluster_unit: str
    states: tuple[scenarios.GridState, ...] | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def n_clusters(self) -> int:
        return int(len(np.unique(self.clusters)))

    @property
    def sufficient(self) -> bool:
        return self.n_clusters >= MIN_CLUSTERS

    def describe(self) -> str:
        return f"{self.kind} {self.family}: {len(self)} states in {self.n_clusters} {self.cluster_unit}"


def goal_pose(side: str, spec: EnvSpec = EnvSpec()) -> tuple[int, int, int]:
    gx, gy = spec.goal_pos
    poses = {"top": (gx, gy - 1, int(Direction.DOWN)), "left": (gx - 1, gy, int(Direction.RIGHT))}
    if side not in poses:
        raise ConfigError(f"unknown goal side {side!r}")
    return poses[side]


def _on_policy_mask(family: str, obs: np.ndarray, poses: np.ndarray) -> np.ndarray:
    if family.endswith("-in-front"):
        kind = family.removesuffix("-in-front")
        if kind not in FRONT_OBJECT:
            raise ConfigError(f"unknown state family {family!r}")
        return obs[:, FRONT_VIEW_CELL[0], FRONT_VIEW_CELL[1], 0] == OBJECT[FRONT_OBJECT[kind]]
    if family.startswith("goal-from-"):
        x, y, d = goal_pose(family.removeprefix("goal-from-"))
        return (poses[:, 0] == x) & (poses[:, 1] == y) & (poses[:, 2] == d)
    raise ConfigError(f"unknown state family {family!r}")


def rollout_states(subject: Subject, rtg: float, episodes: int, seed: int):
    """(obs, RTGs, timesteps, poses, episode ids) of every state the rollouts at ``rtg`` queried the model on."""
    res = subject.rollouts(rtg, episodes, seed)
    if "states" not in res.extra:
        raise ConfigError("rollouts were made without recorded states")
    obs, rtgs, ts = res.extra["states"]
    return obs, rtgs, ts, res.extra["poses"], res.extra["episodes"]


def on_policy(subject: Subject, family: str, rtg: float, episodes: int, seed: int) -> Sample:
    """States of the checkpoint's own rollouts at ``rtg`` with the family's object in front (cached)."""
    key = ("on-policy", family, float(rtg), episodes, seed)
    if key not in subject._cache:
        obs, rtgs, ts, poses, eps = rollout_states(subject, rtg, episodes, seed)
        keep = np.flatnonzero(_on_policy_mask(family, obs, poses))
        if len(keep) > MAX_ON_POLICY_ROWS:  # whole episodes, in order, until the cap
            last = eps[keep[MAX_ON_POLICY_ROWS - 1]]
            keep = keep[eps[keep] <= last]
        inputs = Inputs.make(obs[keep], rtgs[keep], ts[keep])
        subject._cache[key] = Sample("on-policy", family, inputs, eps[keep], "episodes")
    return subject._cache[key]


def matched_timesteps(subject: Subject, family: str, rtg: float, episodes: int, seed: int, n: int) -> np.ndarray:
    """``n`` timesteps drawn (seeded) from those at which the rollouts at ``rtg`` meet the family's object in
    front; from every visited state when that happens fewer than MIN_MATCHED_TIMESTEPS times."""
    obs, _, ts, poses, _ = rollout_states(subject, rtg, episodes, seed)
    pool = ts[_on_policy_mask(family, obs, poses)]
    if len(pool) < MIN_MATCHED_TIMESTEPS:
        pool = ts
    pool = np.minimum(pool, subject.model.cfg.max_timestep)
    rng = np.random.default_rng(subject.seed_key(zlib.crc32(family.encode()), 5))
    return pool[rng.integers(len(pool), size=n)]


_GENERATED: dict[tuple[str, int], tuple[scenarios.StateFamily, np.ndarray, str]] = {}


def generated_states(family: str, generation_seed: int) -> tuple[scenarios.StateFamily, np.ndarray, str]:
    """(family, cluster labels, cluster unit) for a named family at a generation seed (cached, shared)."""
    key = (family, generation_seed)
    if key not in _GENERATED:
        if family.endswith("-in-front"):
            kind = family.removesuffix("-in-front")
            parts = [
                scenarios.in_front(kind, seed=generation_seed * LAYOUTS_PER_POSE + j) for j in range(LAYOUTS_PER_POSE)
            ]
            states = tuple(s for p in parts for s in p.states)
            fam = scenarios.StateFamily(
                family,
                f"every valid pose with {kind} in front, {LAYOUTS_PER_POSE} seeded layouts each",
                states,
                np.concatenate([p.obs for p in parts]),
            )
            pose_ids = {pose: i for i, pose in enumerate(dict.fromkeys((s.agent_pos, s.agent_dir) for s in states))}
            labels = np.array([pose_ids[(s.agent_pos, s.agent_dir)] for s in states])
            unit = "poses"
        elif family.startswith("goal-from-"):
            fam = scenarios.goal_in_front(
                family.removeprefix("goal-from-"), n=GOAL_FAMILY_LAYOUTS, seed=generation_seed
            )
            _, labels = np.unique(fam.obs.reshape(len(fam), -1), axis=0, return_inverse=True)
            labels = labels.ravel()
            unit = "distinct observations (one pose)"
        else:
            raise ConfigError(f"unknown state family {family!r}")
        _GENERATED[key] = (fam, labels, unit)
    return _GENERATED[key]


def generated(
    subject: Subject, family: str, rtg: float, episodes: int, seed: int, timesteps: tuple[int, int] | None
) -> Sample:
    """The generated family at ``rtg``; timesteps matched to the rollouts, or uniform in ``timesteps`` if given."""
    key = ("generated", family, float(rtg), episodes, seed, timesteps)
    if key not in subject._cache:
        fam, labels, unit = generated_states(family, subject.generation_seed)
        if timesteps is None:
            t = matched_timesteps(subject, family, rtg, episodes, seed, len(fam))
        else:
            rng = np.random.default_rng(subject.seed_key(zlib.crc32(family.encode()), 5))
            lo, hi = timesteps
            t = rng.integers(lo, min(hi, subject.model.cfg.max_timestep) + 1, len(fam))
        inputs = Inputs.make(fam.obs, np.full(len(fam), rtg, np.float32), t)
        subject._cache[key] = Sample("generated", family, inputs, labels, unit, fam.states)
    return subject._cache[key]


def front_object(family: str) -> str | None:
    """The object a family puts directly in front of the agent ("ball", "goal", "wall"); None when it puts none."""
    kind = "goal" if family.startswith("goal") else family.removesuffix("-in-front")
    obj = FRONT_OBJECT.get(kind)
    return None if obj in (None, "empty") else obj


def front_cleared(obs: torch.Tensor) -> torch.Tensor:
    """The observations with the front cell made empty, as the env renders an empty cell."""
    out = obs.clone()
    out[:, FRONT_VIEW_CELL[0], FRONT_VIEW_CELL[1]] = torch.tensor([OBJECT["empty"], 0, 0], dtype=out.dtype)
    return out


def without_front_object(subject: Subject, sample: Sample) -> Inputs | None:
    """The sample's paired counterfactual: every state with the object in front removed, same RTG and timestep
    (None when the family puts no object in front).

    A generated state with a ball in front is re-rendered through the env without that ball; the goal (which
    Dynamic Obstacles never moves) and walls cannot be removed from the env, and on-policy states have no grid
    state, so there the front cell of the observation is emptied. For a ball the two agree exactly (balls hide
    nothing behind them; ``tests/test_counterfactual.py``).
    """
    if front_object(sample.family) is None or len(sample) == 0:
        return None
    key = ("without-front-object", id(sample))
    if key not in subject._cache:
        if sample.states is not None and front_object(sample.family) == "ball":
            from dt_circuits.analysis.patching import remove_front_obstacle

            obs = torch.as_tensor(subject.renderer.render_many([remove_front_obstacle(s) for s in sample.states]))
        else:
            obs = front_cleared(sample.inputs.obs)
        subject._cache[key] = (sample, Inputs.make(obs, sample.inputs.rtg, sample.inputs.timestep))
    return subject._cache[key][1]
