"""The hooked DT: hook names and shapes, hooks never leak, inputs are validated, encodings agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dt_circuits.core.errors import ConfigError, InvalidInputError
from dt_circuits.dt.model import DTConfig
from dt_circuits.env.scenarios import StateRenderer
from dt_circuits.env.spec import index_to_one_hot
from dt_circuits.env.strategies import grid_states, rtgs, timesteps
from tests.helpers import batch, random_model

EXPECTED_HOOKS = {
    "hook_rtg_embed": (8, 128),
    "hook_state_embed": (8, 128),
    "hook_time_embed": (8, 128),
    "hook_pos_embed": (8, 2, 128),
    "blocks.0.hook_resid_pre": (8, 2, 128),
    "blocks.0.hook_resid_mid": (8, 2, 128),
    "blocks.0.hook_resid_post": (8, 2, 128),
    "blocks.0.hook_attn_out": (8, 2, 128),
    "blocks.0.hook_mlp_out": (8, 2, 128),
    "blocks.0.attn.hook_q": (8, 2, 2, 64),
    "blocks.0.attn.hook_k": (8, 2, 2, 64),
    "blocks.0.attn.hook_v": (8, 2, 2, 64),
    "blocks.0.attn.hook_attn_scores": (8, 2, 2, 2),
    "blocks.0.attn.hook_pattern": (8, 2, 2, 2),
    "blocks.0.attn.hook_z": (8, 2, 2, 64),
    "blocks.0.attn.hook_result": (8, 2, 2, 128),
    "blocks.0.mlp.hook_pre": (8, 2, 256),
    "blocks.0.mlp.hook_post": (8, 2, 256),
}
MODEL = random_model(0)
RENDERER = StateRenderer()


def test_cache_holds_every_hook_with_transformer_lens_shapes():
    obs, rtg, t = batch(8)
    logits, cache = MODEL.run_with_cache(obs, rtg, t)
    assert logits.shape == (8, 3)
    assert set(EXPECTED_HOOKS) <= set(cache.keys())
    for name, shape in EXPECTED_HOOKS.items():
        assert tuple(cache[name].shape) == shape, name
    # ActivationCache helpers apply: per-head results stack by name
    assert torch.equal(cache["z", 0], cache["blocks.0.attn.hook_z"])


def test_attention_is_causal_and_rows_sum_to_one():
    obs, rtg, t = batch(8)
    _, cache = MODEL.run_with_cache(obs, rtg, t)
    pattern = cache["blocks.0.attn.hook_pattern"]
    assert torch.all(pattern[:, :, 0, 1] == 0)  # the RTG token cannot see the state
    torch.testing.assert_close(pattern.sum(-1), torch.ones_like(pattern.sum(-1)))


def test_final_residual_decomposes_into_its_writes():
    obs, rtg, t = batch(8)
    logits, cache = MODEL.run_with_cache(obs, rtg, t)
    resid = (
        cache["blocks.0.hook_resid_pre"]
        + cache["blocks.0.attn.hook_result"].sum(2)
        + MODEL.blocks[0].attn.b_O
        + cache["blocks.0.hook_mlp_out"]
    )
    torch.testing.assert_close(resid, cache["blocks.0.hook_resid_post"])
    torch.testing.assert_close(resid[:, 1] @ MODEL.W_U + MODEL.b_U, logits)


@settings(max_examples=25)
@given(state=grid_states(), rtg=rtgs(), t=timesteps())
def test_hooks_never_leak(state, rtg, t):
    obs = RENDERER.render(state)[None]
    before = MODEL(obs, rtg, t)

    def zero(x, hook):
        return torch.zeros_like(x)

    hooked = MODEL.run_with_hooks(obs, rtg, t, fwd_hooks=[("blocks.0.attn.hook_z", zero)])
    after = MODEL(obs, rtg, t)
    assert torch.equal(before, after)
    assert not torch.equal(hooked, before)
    assert all(not hp.fwd_hooks for hp in MODEL.hook_dict.values())


def test_hooks_removed_even_when_the_hook_raises():
    obs, rtg, t = batch(4)

    def boom(x, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        MODEL.run_with_hooks(obs, rtg, t, fwd_hooks=[("hook_state_embed", boom)])
    assert all(not hp.fwd_hooks for hp in MODEL.hook_dict.values())


def test_one_hot_model_encodes_like_minigrid_wrapper():
    model = random_model(1, obs_encoding="one_hot")
    obs, _, _ = batch(6)
    enc = model.encode_obs(torch.as_tensor(obs))
    expected = torch.as_tensor(index_to_one_hot(obs), dtype=torch.float32).permute(0, 3, 1, 2).reshape(6, -1)
    assert torch.equal(enc, expected)
    assert model.W_state.shape == (980, 128)
    assert model(obs, 0.5, 1).shape == (6, 3)


def test_scalar_rtg_and_timestep_broadcast():
    obs, _, _ = batch(5)
    a = MODEL(obs, 0.3, 7)
    b = MODEL(obs, np.full(5, 0.3, np.float32), np.full(5, 7))
    assert torch.equal(a, b)


def test_batch_composition_does_not_change_a_states_logits():
    obs, rtg, t = batch(16)
    full = MODEL(obs, rtg, t)
    single = torch.cat([MODEL(obs[i : i + 1], rtg[i : i + 1], t[i : i + 1]) for i in range(16)])
    torch.testing.assert_close(full, single, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("obs", "rtg", "t", "message"),
    [
        (np.zeros((2, 7, 7), np.uint8), 0.0, 0, "obs must have shape"),
        (np.zeros((2, 3, 7, 7), np.uint8), 0.0, 0, "obs must have shape"),
        (np.ones((2, 7, 7, 3), np.float32), 0.0, 0, "integer"),
        (np.full((2, 7, 7, 3), 11, np.uint8), 0.0, 0, "outside Minigrid's ranges"),
        (np.full((2, 7, 7, 3), -1, np.int64), 0.0, 0, "outside Minigrid's ranges"),
        (np.ones((2, 7, 7, 3), np.uint8), float("nan"), 0, "rtg must be finite"),
        (np.ones((2, 7, 7, 3), np.uint8), np.zeros(3), 0, r"rtg must have shape \(2,\)"),
        (np.ones((2, 7, 7, 3), np.uint8), "high", 0, "rtg must be a number"),
        (np.ones((2, 7, 7, 3), np.uint8), 0.0, 1001, r"timestep must be in 0..1000"),
        (np.ones((2, 7, 7, 3), np.uint8), 0.0, -1, r"timestep must be in 0..1000"),
        (np.ones((2, 7, 7, 3), np.uint8), 0.0, 1.5, "whole numbers"),
        (np.ones((2, 7, 7, 3), np.uint8), 0.0, np.zeros(4), r"timestep must have shape \(2,\)"),
    ],
)
def test_bad_inputs_are_named(obs, rtg, t, message):
    with pytest.raises(InvalidInputError, match=message):
        MODEL(obs, rtg, t)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_ctx", 4, "n_ctx"),  # not 3T - 1 tokens
        ("obs_encoding", "rgb", "obs_encoding"),
        ("n_heads", 0, "n_heads"),
        ("d_model", "128", "d_model"),
    ],
)
def test_bad_configs_are_named(field, value, message):
    with pytest.raises(ConfigError, match=message):
        DTConfig(**{field: value})
    with pytest.raises(ConfigError, match="unknown model config field"):
        DTConfig.from_dict({"layer_norm": True})


@pytest.mark.parametrize(("layer", "head", "message"), [(0, 2, "unknown head 2"), (1, 0, "unknown layer 1")])
def test_unknown_head_is_named(layer, head, message):
    with pytest.raises(ConfigError, match=message):
        MODEL.check_head(layer, head)


@given(st.integers(0, 2**31 - 1))
@settings(max_examples=5)
def test_init_is_seeded(seed):
    a, b = random_model(seed), random_model(seed)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


# -- positions no logit reads ----------------------------------------------------------------------------------------

#: one-timestep models (index, one-hot) and a two-layer, LayerNorm, gated-MLP window model like MemoryDT's
TRIM_CONFIGS = [
    {},
    {"obs_encoding": "one_hot"},
    {"n_ctx": 8, "n_layers": 2, "normalization": "LN", "mlp_type": "gated"},
]


def _inputs(model, n: int):
    from dt_circuits.dt.model import TRIM_MIN_ROWS

    assert n >= TRIM_MIN_ROWS
    t = model.cfg.n_timesteps
    obs, rtg, ts = batch(n * t, seed=3)
    if t == 1:
        return obs, rtg, ts % 50
    rng = np.random.default_rng(3)
    return (obs.reshape(n, t, 7, 7, 3), rtg.reshape(n, t), np.sort(ts.reshape(n, t) % 50, axis=1),
            rng.integers(0, 3, (n, t - 1)))  # fmt: skip


@pytest.mark.parametrize("cfg", TRIM_CONFIGS)
@pytest.mark.parametrize(
    "hooked",
    [
        (),
        ("attn.hook_z",),
        ("attn.hook_result",),
        ("hook_resid_mid",),
        ("mlp.hook_post",),
        ("attn.hook_z", "mlp.hook_pre"),
    ],
)
def test_a_forward_computes_unread_positions_only_as_far_as_hooks_see_and_keeps_the_bits(cfg, hooked):
    """Without gradients the last block stops computing positions no logit reads once no hook can see them; every
    hook still gets every position, and the logits are the bits of the whole computation (which a hook on the
    block's output forces)."""
    model = random_model(2, **cfg)
    args = _inputs(model, 300)
    last = f"blocks.{model.cfg.n_layers - 1}"
    seen: dict[str, tuple[int, ...]] = {}

    def scale(act, hook):  # an intervention that changes every position it sees
        seen[hook.name] = tuple(act.shape)
        return act * 0.5

    hooks = [(f"{last}.{name}", scale) for name in hooked]
    with torch.no_grad():
        trimmed = model.run_with_hooks(*args, fwd_hooks=hooks)
        sizes = dict(seen)
        whole = model.run_with_hooks(*args, fwd_hooks=[*hooks, (f"{last}.hook_resid_post", lambda act, hook: act)])
    assert torch.equal(trimmed, whole)
    assert sizes == seen and all(shape[1] == model.cfg.n_ctx for shape in sizes.values())


def test_the_trim_stage_is_the_earliest_no_hook_can_see():
    block = MODEL.blocks[0]
    assert block.trim_stage([]) == "W_O"
    for name, stage in (("attn.hook_z", "W_O"), ("attn.hook_result", "MLP"), ("hook_resid_mid", "MLP"),
                        ("mlp.hook_pre", "W_out"), ("mlp.hook_post", "W_out"), ("hook_mlp_out", None),
                        ("hook_resid_post", None)):  # fmt: skip
        MODEL.add_hook(f"blocks.0.{name}", lambda act, hook: act)
        try:
            assert block.trim_stage([]) == stage, name
        finally:
            MODEL.reset_hooks()
    final = random_model(0, normalization="LN")
    assert final.blocks[0].trim_stage([final.ln_final]) == "W_O"
    final.add_hook("ln_final.hook_normalized", lambda act, hook: act)
    assert final.blocks[0].trim_stage([final.ln_final]) is None


@pytest.mark.parametrize("where", ["blocks.0", "blocks.0.mlp", "blocks.0.attn", "every module"])
def test_a_torch_hook_on_a_module_sees_its_whole_output(where):
    """Tools that hook modules rather than hook points (pyvene-style) must see what the module computes for every
    position: a forward hook on the block, its attention or its MLP, or a global module hook, stops the trim."""
    from torch.nn.modules.module import register_module_forward_hook

    model = random_model(2)
    args = _inputs(model, 300)
    shapes: list[tuple[int, ...]] = []

    def note(module, inputs, output):
        if module is model.blocks[0] or where != "every module":
            shapes.append(tuple(output.shape))

    handle = (register_module_forward_hook(note) if where == "every module"
              else model.get_submodule(where).register_forward_hook(note))  # fmt: skip
    try:
        assert model.blocks[0].trim_stage([]) is None
        with torch.no_grad():
            model(*args)
    finally:
        handle.remove()
    assert shapes and all(s[:2] == (300, 2) for s in shapes)
    assert model.blocks[0].trim_stage([]) == "W_O"
