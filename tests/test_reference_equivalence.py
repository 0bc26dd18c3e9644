"""The core DT reproduces the published DTI checkpoint to the float, and plays like it in the real env."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.evaluation.rollout import rollout
from tests.plain_dti import plain_dti_logits

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def rollout_states(reference_model):
    """>= 500 states visited by the reference itself, re-queried at random RTGs and timesteps."""
    res = rollout(reference_model, rtg=0.9, n_episodes=12, seed=3, record_states=True)
    obs = res.extra["states"][0]
    rng = np.random.default_rng(0)
    idx = rng.choice(len(obs), size=min(len(obs), 600), replace=False)
    assert len(idx) >= 500, f"only {len(idx)} states collected"
    obs = obs[idx]
    return obs, rng.uniform(-1, 1, len(obs)).astype(np.float32), rng.integers(0, 301, len(obs))


def test_logits_match_independent_plain_torch_implementation(reference_path, reference_model, rollout_states):
    obs, rtg, t = rollout_states
    sd = torch.load(reference_path, map_location="cpu", weights_only=True)["model_state_dict"]
    expected = plain_dti_logits(sd, obs, rtg, t)
    with torch.no_grad():
        got = reference_model(obs, rtg, t)
    assert got.shape == (len(obs), 3)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max().item()
    assert (got.argmax(-1) == expected.argmax(-1)).all()


def test_states_cover_distinct_observations(rollout_states):
    obs, _, _ = rollout_states
    assert len({o.tobytes() for o in obs}) > 100


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rtg", "outcome", "at_least"),
    [(0.9, "goal", 0.70), (-1.0, "collision", 0.95)],
    ids=["rtg0.9-reaches-goal", "rtg-1-collides"],
)
def test_reference_behaviour_in_real_env(reference_model, rtg, outcome, at_least):
    """200 sampled episodes per RTG, env max_steps 1000 as the reference was trained."""
    res = rollout(reference_model, rtg=rtg, n_episodes=200, seed=0, sample=True)
    assert reference_model.checkpoint_info.env.max_steps == 1000
    print(res.summary())
    assert res.rate(outcome) >= at_least, res.summary()
