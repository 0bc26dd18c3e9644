"""The states features are measured on: a probe set with labels for every variable, and pairs for interchange
(a ball in front or not; the RTG's sign).

Generated through the real env (``env.scenarios``): every valid pose with a ball, a wall, the goal or nothing in
front, plus uniformly random states, so every value of every variable occurs. Clusters are agent poses (the
unit of the probes' split and of DAS's held-out pairs). The agent's own rollouts record no grid state, only what it
saw and its pose: :class:`ViewProbeSet` labels them with the variables those tell (``variables.view_labels``),
clustered by episode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dt_circuits.analysis.interventions import Inputs
from dt_circuits.analysis.patching import edit_family, remove_front_obstacle
from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import GridState, StateRenderer, in_front, random_states
from dt_circuits.env.spec import FRONT_VIEW_CELL, EnvSpec
from dt_circuits.features.das import Pairs
from dt_circuits.features.variables import labels, variable, view_labels

#: RTGs the probe set is drawn at (the post's three critical points)
RTGS = (-1.0, 0.0, 0.9)
#: timesteps drawn uniformly from this range (clipped to the model's max_timestep)
TIMESTEPS = (0, 30)
#: the RTG the ball-in-front pairs are taken at (the post's obstacle-avoidance RTG)
PAIR_RTG = 0.9


@dataclass(frozen=True)
class ProbeSet:
    """States with their model inputs, clusters (pose ids) and control-task types (the view's front row)."""

    states: tuple[GridState, ...]
    inputs: Inputs
    clusters: np.ndarray
    types: np.ndarray

    def labels(self, variable: str) -> np.ndarray:
        return labels(variable, self.states, self.inputs.rtg.numpy())


@dataclass(frozen=True)
class ViewProbeSet:
    """States known by their observation and pose (rollouts), with model inputs, clusters (episodes) and
    control-task types; labelled from the view (:func:`dt_circuits.features.variables.view_labels`)."""

    inputs: Inputs
    poses: np.ndarray
    clusters: np.ndarray
    types: np.ndarray
    spec: EnvSpec = EnvSpec()

    def labels(self, variable: str) -> np.ndarray:
        return view_labels(variable, self.inputs.obs.numpy(), self.inputs.rtg.numpy(), self.poses, self.spec)


def view_probe_set(obs: np.ndarray, rtgs: np.ndarray, timesteps: np.ndarray, poses: np.ndarray,
                   clusters: np.ndarray, spec: EnvSpec = EnvSpec()) -> ViewProbeSet:  # fmt: skip
    """A :class:`ViewProbeSet` of recorded states (the control task's types: the view's front row)."""
    fx, fy = FRONT_VIEW_CELL
    types = np.asarray(obs)[:, fx - 1 : fx + 2, fy, :2].reshape(len(obs), -1)
    return ViewProbeSet(Inputs.make(obs, rtgs, timesteps), np.asarray(poses), np.asarray(clusters), types, spec)


def _pose_ids(states: tuple[GridState, ...]) -> np.ndarray:
    ids = {pose: i for i, pose in enumerate(dict.fromkeys((s.agent_pos, s.agent_dir) for s in states))}
    return np.array([ids[(s.agent_pos, s.agent_dir)] for s in states])


def _timesteps(rng: np.random.Generator, n: int, max_timestep: int) -> np.ndarray:
    lo, hi = TIMESTEPS
    return rng.integers(lo, min(hi, max_timestep) + 1, size=n)


def probe_set(*, seed: int = 0, n_random: int = 400, max_timestep: int = 300) -> ProbeSet:
    """Every pose with each front kind (one seeded layout) plus ``n_random`` random states, at seeded RTGs from
    :data:`RTGS` and timesteps from :data:`TIMESTEPS`."""
    renderer = StateRenderer()
    families = [in_front(k, seed=seed, renderer=renderer) for k in ("obstacle", "wall", "goal", "empty")]
    families.append(random_states(n_random, seed=seed, renderer=renderer))
    states = tuple(s for f in families for s in f.states)
    obs = np.concatenate([f.obs for f in families])
    rng = np.random.default_rng([seed, 27])
    rtg = rng.choice(np.array(RTGS, dtype=np.float32), size=len(states))
    inputs = Inputs.make(obs, rtg, _timesteps(rng, len(states), max_timestep))
    fx, fy = FRONT_VIEW_CELL
    types = obs[:, fx - 1 : fx + 2, fy, :2].reshape(len(states), -1)  # (object, colour) of the front row
    return ProbeSet(states, inputs, _pose_ids(states), types)


def ball_pairs(*, seed: int = 0, layouts: int = 2, rtg: float = PAIR_RTG, max_timestep: int = 300) -> Pairs:
    """Pairs differing only in a ball in front: every pose with a ball in front (``layouts`` seeded layouts),
    paired with the same state re-rendered without that ball, in both directions (ball → removed and back), at
    ``rtg`` and a seeded timestep shared by the pair."""
    renderer = StateRenderer()
    ball_obs, clear_obs, states = [], [], []
    for j in range(layouts):
        fam = in_front("obstacle", seed=seed * layouts + j, renderer=renderer)
        ball_obs.append(fam.obs)
        clear_obs.append(edit_family(fam, remove_front_obstacle, renderer=renderer).obs)
        states.extend(fam.states)
    ball, clear = np.concatenate(ball_obs), np.concatenate(clear_obs)
    t = _timesteps(np.random.default_rng([seed, 28]), len(ball), max_timestep)
    with_ball, without = Inputs.make(ball, rtg, t), Inputs.make(clear, rtg, t)
    return _both_ways(with_ball, without, _pose_ids(tuple(states)), 1, 0)


def _both_ways(a: Inputs, b: Inputs, clusters: np.ndarray, a_value: int, b_value: int) -> Pairs:
    """Row i of ``a`` paired with row i of ``b`` (the variable ``a_value`` against ``b_value``), in both directions:
    a → b, then b → a; each row keeps its pose's cluster."""
    a_values, b_values = np.full(len(a), a_value, np.int64), np.full(len(b), b_value, np.int64)
    return Pairs(
        Inputs.cat([a, b]),
        Inputs.cat([b, a]),
        np.concatenate([clusters, clusters]),
        np.concatenate([a_values, b_values]),
        np.concatenate([b_values, a_values]),
    )


#: the RTGs of :func:`rtg_pairs`: the post's goal-seeking and collision-seeking critical points
RTG_PAIR_RTGS = (0.9, -1.0)


def rtg_pairs(*, seed: int = 0, layouts: int = 2, max_timestep: int = 300) -> Pairs:
    """Pairs differing only in the RTG's sign: every pose with a ball, a wall, the goal or nothing in front
    (``layouts`` seeded layouts each), at RTG 0.9 and at RTG −1 with the same view and a seeded timestep shared by
    the pair, in both directions. At the state token nothing before attention differs; the RTG token's does."""
    renderer = StateRenderer()
    families = [in_front(k, seed=seed * layouts + j, renderer=renderer)
                for j in range(layouts) for k in ("obstacle", "wall", "goal", "empty")]  # fmt: skip
    obs = np.concatenate([f.obs for f in families])
    states = tuple(s for f in families for s in f.states)
    t = _timesteps(np.random.default_rng([seed, 29]), len(obs), max_timestep)
    hi, lo = RTG_PAIR_RTGS
    up, down = Inputs.make(obs, hi, t), Inputs.make(obs, lo, t)
    rtg_sign = variable("rtg_sign")
    return _both_ways(up, down, _pose_ids(states), rtg_sign(states[0], hi), rtg_sign(states[0], lo))


@dataclass(frozen=True)
class Interchanged:
    """A variable the table localises by interchange: its pairs and the value whose SAE latent is compared."""

    pairs: Callable[..., Pairs]
    #: the value an SAE latent's firing should predict (the variable's value name)
    latent_value: str
    #: how the caption names the pairs
    described: str


#: the variables localised by interchange on Dynamic Obstacles checkpoints, in table order
INTERCHANGED: dict[str, Interchanged] = {
    "ball_in_front": Interchanged(ball_pairs, "yes", f"ball-in-front pairs at RTG {PAIR_RTG:g}"),
    "rtg_sign": Interchanged(rtg_pairs, "positive", "RTG-sign pairs (RTG 0.9 against −1)"),
}


def check_interchanged(names: Sequence[str]) -> None:
    """A one-line ConfigError naming each of ``names`` that has no pairs in :data:`INTERCHANGED`, and those that do."""
    unknown = [name for name in names if name not in INTERCHANGED]
    if unknown:
        raise ConfigError(
            f"no interchange pairs for {', '.join(map(repr, unknown))}; variables with pairs: {', '.join(INTERCHANGED)}"
        )
