"""Rollouts in the real env are seeded, batching-independent and account RTG and time as DTI does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.env.spec import EnvSpec
from dt_circuits.evaluation.rollout import OUTCOMES, rollout
from tests.helpers import random_model

MODEL = random_model(2, scale=1.0)
SPEC = EnvSpec(max_steps=40)


def test_same_seed_same_results_regardless_of_batching():
    a = rollout(MODEL, rtg=0.5, n_episodes=12, seed=1, env=SPEC, n_envs=12)
    b = rollout(MODEL, rtg=0.5, n_episodes=12, seed=1, env=SPEC, n_envs=3)
    c = rollout(MODEL, rtg=0.5, n_episodes=12, seed=2, env=SPEC, n_envs=12)
    assert np.array_equal(a.rewards, b.rewards) and np.array_equal(a.lengths, b.lengths)
    assert not np.array_equal(a.lengths, c.lengths)


def test_slices_of_episodes_concatenate_to_the_whole():
    whole = rollout(MODEL, rtg=0.5, n_episodes=10, seed=4, env=SPEC)
    parts = [rollout(MODEL, rtg=0.5, n_episodes=10, seed=4, env=SPEC, episodes=range(i, i + 5)) for i in (0, 5)]
    assert np.array_equal(whole.lengths, np.concatenate([p.lengths for p in parts]))


def test_outcomes_rewards_and_lengths_are_consistent():
    res = rollout(MODEL, rtg=0.0, n_episodes=20, seed=0, env=SPEC)
    assert set(res.outcomes) <= set(OUTCOMES)
    assert np.all((res.outcomes == "collision") == (res.rewards == -1))
    assert np.all((res.outcomes == "timeout") == (res.lengths == SPEC.max_steps))
    goal = res.outcomes == "goal"
    np.testing.assert_allclose(res.rewards[goal], 1 - 0.9 * res.lengths[goal] / SPEC.max_steps, rtol=1e-6)
    assert sum(res.rate(o) for o in OUTCOMES) == pytest.approx(1.0)


def test_recorded_states_follow_dti_evaluation_protocol():
    """RTG starts at the target and only changes by rewards received; the timestep is the step count."""
    res = rollout(MODEL, rtg=0.7, n_episodes=1, seed=0, env=SPEC, record_states=True)
    obs, rtg, t = res.extra["states"]
    assert np.array_equal(t, np.arange(len(t)))
    assert np.all(rtg == np.float32(0.7))  # no reward arrives before the final step
    assert len(t) == res.lengths[0]


def test_argmax_is_deterministic_given_env_seed():
    a = rollout(MODEL, rtg=0.9, n_episodes=6, seed=0, env=SPEC, sample=False)
    b = rollout(MODEL, rtg=0.9, n_episodes=6, seed=0, env=SPEC, sample=False)
    assert np.array_equal(a.rewards, b.rewards)


def test_uses_the_checkpoint_env_when_none_given():
    model = random_model(2, scale=1.0)
    with torch.no_grad():
        model.W_U.zero_()
        model.b_U.copy_(torch.tensor([10.0, 0.0, 0.0]))  # always turn left: never collides, times out
    res = rollout(model, rtg=0.0, n_episodes=2, seed=0, env=SPEC)
    assert list(res.outcomes) == ["timeout", "timeout"] and list(res.lengths) == [40, 40]
