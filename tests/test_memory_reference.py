"""MemoryDT-GatedMLP: the hooked model equals an independent plain-torch forward on states real rollouts visit,
and plays the Memory task in the real env as the article says (RTG 0.892: the matching object; RTG 0: the other).

Episodes are capped at 50 steps (``dt_circuits.env.memory.EVAL_MAX_STEPS``: DTI's training-time evaluation cap;
0.892 is the optimal reward at 50 steps; time-embedding rows from 50 on are untrained).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.env.spec import index_to_one_hot
from dt_circuits.evaluation.memory_rollout import memory_rollouts, wilson_interval
from tests.plain_memory_dt import plain_memory_logits

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def rollout_windows(memory_model):
    """Every window fed to the model in 30 sampled episodes at RTG 0 (long, varied episodes) and 10 at 0.892."""
    parts = [
        memory_rollouts(memory_model, r, n, seed=5, record_windows=True).windows for r, n in ((0.0, 30), (0.892, 10))
    ]
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))


def test_imports_as_the_published_architecture(memory_model):
    cfg = memory_model.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_head, cfg.n_ctx, cfg.n_timesteps) == (2, 4, 32, 26, 9)
    assert (cfg.normalization, cfg.mlp_type, cfg.obs_encoding, cfg.n_actions) == ("LN", "gated", "one_hot", 7)
    hooks = set(memory_model.hook_dict)
    for name in ("blocks.1.ln1.hook_normalized", "blocks.0.mlp.hook_pre_linear", "ln_final.hook_scale",
                 "blocks.1.attn.hook_z", "hook_action_embed"):  # fmt: skip
        assert name in hooks
    assert memory_model.checkpoint_info.env.family == "memory"


def test_logits_match_independent_plain_torch_forward(memory_path, memory_model, rollout_windows):
    obs, rtg, ts, act = rollout_windows
    assert len(obs) >= 300 and len({o.tobytes() for o in obs[:, -1]}) > 30
    sd = {
        k: v.float()
        for k, v in torch.load(memory_path, map_location="cpu", weights_only=True)["model_state_dict"].items()
    }
    one_hot = _plain_one_hot(obs, act)
    rng = np.random.default_rng(0)
    rtg = rng.uniform(-0.2, 1.0, len(obs))[:, None].repeat(obs.shape[1], 1).astype(np.float32)  # other RTGs too
    expected = plain_memory_logits(sd, one_hot, torch.as_tensor(act), torch.as_tensor(rtg), torch.as_tensor(ts))
    with torch.no_grad():
        got = memory_model(obs, rtg, ts, act)
    assert got.shape == (len(obs), 7)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max().item()


def _plain_one_hot(obs: np.ndarray, act: np.ndarray) -> torch.Tensor:
    """One-hot frames as DTI feeds them: a frame followed by the padding action (7) is all zero."""
    one_hot = torch.as_tensor(index_to_one_hot(obs)).float()
    padding = np.concatenate([act == 7, np.zeros((len(act), 1), bool)], axis=1)
    one_hot[torch.as_tensor(padding)] = 0.0
    return one_hot


def test_short_windows_match_too(memory_path, memory_model, rollout_windows):
    """Windows of 1, 4 and 9 timesteps cut from the end of real ones (the model takes any T <= 9)."""
    obs, rtg, ts, act = (x[::7] for x in rollout_windows)
    sd = {
        k: v.float()
        for k, v in torch.load(memory_path, map_location="cpu", weights_only=True)["model_state_dict"].items()
    }
    for t in (1, 4, 9):
        o, r, s, a = obs[:, -t:], rtg[:, -t:], ts[:, -t:], act[:, 9 - t :]
        expected = plain_memory_logits(
            sd, _plain_one_hot(o, a), torch.as_tensor(a), torch.as_tensor(r), torch.as_tensor(s)
        )
        with torch.no_grad():
            got = memory_model(o, r, s, a)
        assert torch.allclose(got, expected, atol=1e-5, rtol=0), (t, (got - expected).abs().max().item())


@pytest.mark.parametrize(("rtg", "sample", "outcome", "at_least"), [
    (0.892, True, "success", 0.95),
    (0.892, False, "success", 0.95),
    (0.0, False, "wrong", 0.95),
], ids=["rtg0.892-sampled-succeeds", "rtg0.892-argmax-succeeds", "rtg0-argmax-goes-to-the-other-object"])  # fmt: skip
def test_behaviour_in_the_real_env(memory_model, rtg, sample, outcome, at_least):
    """200 episodes; the lower Wilson bound must clear ``at_least``."""
    res = memory_rollouts(memory_model, rtg, 200, seed=0, sample=sample)
    print(res.summary())
    lo, _ = wilson_interval(res.count(outcome), res.n)
    assert lo >= at_least, res.summary()
