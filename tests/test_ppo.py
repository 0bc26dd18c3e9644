"""PPO as a trajectory source: every episode played during training is kept, with the raw 7x7x3 views."""

from __future__ import annotations

import numpy as np
import pytest

from dt_circuits.core.errors import ConfigError
from dt_circuits.env.spec import EnvSpec
from dt_circuits.trajectories.dataset import Episode
from dt_circuits.trajectories.ppo import PPOConfig, collect_ppo, learning_curve

pytest.importorskip("stable_baselines3")


def test_ppo_run_records_whole_episodes():
    spec = EnvSpec(max_steps=30)
    data = collect_ppo(PPOConfig(total_timesteps=64, n_envs=1, seed=0), spec, progress=False)
    # one SB3 rollout (2048 steps) is played; only finished episodes are kept
    assert 2048 - spec.max_steps < data.n_steps <= 2048
    assert data.source_names == ("ppo-seed0",)
    assert np.all(data.lengths <= spec.max_steps)
    assert set(data.outcomes) <= {"goal", "collision", "timeout"}
    # the first view of every episode is from the start pose: (1,1) facing right, the top wall on its left
    first = data.obs[data.starts]
    assert np.all(first[:, 2, 6, 0] == 2) and np.all(first[:, 0, 6, 0] == 2)
    meta = data.meta
    assert meta["source"] == "ppo" and meta["ppo"]["library"] == "stable-baselines3"
    assert meta["learning_curve"][-1]["episodes"][1] == data.n_episodes


def test_learning_curve_windows():
    eps = [Episode(np.zeros((n, 7, 7, 3), np.uint8), np.zeros(n, np.uint8), r, "x") for n, r in
           [(3, -1.0), (30, 0.0), (5, 0.9), (4, 0.8)]]  # fmt: skip
    rows = learning_curve(eps, window=2)
    assert [r["episodes"] for r in rows] == [[0, 2], [2, 4]]
    assert rows[0]["collision_rate"] == 0.5 and rows[0]["timeout_rate"] == 0.5
    assert rows[1]["goal_rate"] == 1.0 and rows[1]["env_steps_end"] == 42


def test_config_validation():
    with pytest.raises(ConfigError):
        PPOConfig(total_timesteps=0)
