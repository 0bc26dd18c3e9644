"""Components, hooks and ablations: parsing, identity, dataset means, resampling, and an explicit-einsum oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dt_circuits.analysis.interventions import (
    MLP,
    Head,
    HookSite,
    Inputs,
    ablated,
    ablation_hooks,
    collect_activations,
    dataset_means,
    donor_indices,
    hooked,
    parse_component,
    replace_hook,
    resolve,
    run,
    variants_hook,
)
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import RTG_POS, STATE_POS, DecisionTransformer
from dt_circuits.env.scenarios import StateRenderer, random_states
from dt_circuits.env.strategies import grid_states, rtgs, timesteps
from tests.helpers import random_model

RENDERER = StateRenderer()
# Weight scales chosen so attention patterns span most of (0, 1) and ReLUs are half active while logits stay
# O(1-10), where float32 rounding is far below the 1e-5 tolerances used here.
MODELS: dict[str, DecisionTransformer] = {
    "index": random_model(1, scale=3.0),
    "one_hot": random_model(1, scale=5.0, obs_encoding="one_hot"),
}
DATASET = Inputs.make(random_states(64, seed=3).obs, np.linspace(-1, 1, 64, dtype=np.float32), np.arange(64) * 3)


@st.composite
def input_batches(draw: st.DrawFn, max_size: int = 6) -> Inputs:
    """A small batch of real rendered states with independent RTGs and timesteps."""
    states = draw(st.lists(grid_states(), min_size=1, max_size=max_size))
    n = len(states)
    rtg = draw(st.lists(rtgs(), min_size=n, max_size=n))
    ts = draw(st.lists(timesteps(), min_size=n, max_size=n))
    return Inputs.make(RENDERER.render_many(states), np.asarray(rtg, np.float32), np.asarray(ts))


def n_hooks(model: DecisionTransformer) -> int:
    return sum(len(hp.fwd_hooks) + len(hp.bwd_hooks) for hp in model.hook_points())


def explicit_logits(model: DecisionTransformer, inp: Inputs, drop_heads: tuple[int, ...] = ()) -> torch.Tensor:
    """The 1-layer DT written out with plain einsums (float64), optionally without some heads' terms."""

    def w(t: torch.Tensor) -> torch.Tensor:
        return t.detach().to(torch.float64)

    enc = model.encode_obs(inp.obs).to(torch.float64)
    time = w(model.W_time)[inp.timestep]
    rtg_tok = inp.rtg.to(torch.float64)[:, None] * w(model.W_rtg) + time + w(model.W_pos)[RTG_POS]
    state_tok = enc @ w(model.W_state) + time + w(model.W_pos)[STATE_POS]
    x = torch.stack([rtg_tok, state_tok], dim=1)
    attn = model.blocks[0].attn
    q = torch.einsum("bpd,hde->bphe", x, w(attn.W_Q)) + w(attn.b_Q)
    k = torch.einsum("bpd,hde->bphe", x, w(attn.W_K)) + w(attn.b_K)
    v = torch.einsum("bpd,hde->bphe", x, w(attn.W_V)) + w(attn.b_V)
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / np.sqrt(model.cfg.d_head)
    scores = scores.masked_fill(~torch.tril(torch.ones(2, 2, dtype=torch.bool)), float("-inf"))
    z = torch.einsum("bhqk,bkhe->bqhe", torch.softmax(scores, dim=-1), v)
    keep = torch.ones(model.cfg.n_heads, dtype=torch.float64)
    keep[list(drop_heads)] = 0.0
    x = x + torch.einsum("bqhe,hed,h->bqd", z, w(attn.W_O), keep) + w(attn.b_O)
    mlp = model.blocks[0].mlp
    x = x + torch.relu(x @ w(mlp.W_in) + w(mlp.b_in)) @ w(mlp.W_out) + w(mlp.b_out)
    return x[:, STATE_POS] @ w(model.W_U) + w(model.b_U)


# -- parsing ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("head 1", Head(0, 1)),
        ("Head1", Head(0, 1)),
        ("h0", Head(0, 0)),
        ("L0H1", Head(0, 1)),
        ("l0.h1", Head(0, 1)),
        ("layer 0 head 1", Head(0, 1)),
        ("mlp", MLP(0)),
        ("MLP0", MLP(0)),
        ("L0 MLP", MLP(0)),
        ("blocks.0.attn.hook_z", HookSite("blocks.0.attn.hook_z")),
        ("hook_state_embed", HookSite("hook_state_embed")),
    ],
)
def test_parse_component(text, expected):
    assert parse_component(text) == expected
    assert parse_component(text, MODELS["index"]) == expected
    assert parse_component(str(expected)) == expected  # str() round-trips


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("head 2", "unknown head 2"),
        ("L3H0", "unknown layer 3"),
        ("L1 MLP", "unknown MLP layer 1"),
        ("blocks.0.attn.hook_zz", "unknown hook 'blocks.0.attn.hook_zz'"),
        ("the attention", "cannot parse component 'the attention'"),
    ],
)
def test_unknown_components_raise_one_line_config_error(text, fragment):
    with pytest.raises(ConfigError) as err:
        resolve(MODELS["index"], text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_bare_head_is_ambiguous_in_a_two_layer_model():
    model = random_model(0, n_layers=2)
    with pytest.raises(ConfigError, match="ambiguous"):
        parse_component("head 1", model)
    assert parse_component("L1H1", model) == Head(1, 1)


def test_unknown_hook_name_in_raw_hooks_raises_before_adding_anything():
    model = MODELS["index"]
    with pytest.raises(ConfigError, match="hook_nope"), hooked(model, [("blocks.0.hook_nope", lambda a, hook: a)]):
        pass
    assert n_hooks(model) == 0


# -- hooks never leak ----------------------------------------------------------------------------------------


def test_context_managers_remove_hooks_even_on_exceptions():
    model = MODELS["index"]
    means = dataset_means(model, DATASET, ["L0H0", "mlp"])
    with pytest.raises(RuntimeError, match="boom"), ablated(model, ["L0H0", "mlp"], "mean", means=means):
        assert n_hooks(model) == 2
        raise RuntimeError("boom")
    assert n_hooks(model) == 0
    with pytest.raises(ConfigError):
        run(model, DATASET, ablation_hooks(model, "L0H0", "mean"))  # no means given
    assert n_hooks(model) == 0


# -- properties ---------------------------------------------------------------------------------------------


@settings(max_examples=30)
@given(inp=input_batches(), encoding=st.sampled_from(sorted(MODELS)), method=st.sampled_from(["zero", "mean"]))
def test_ablating_nothing_is_the_identity(inp, encoding, method):
    model = MODELS[encoding]
    hooks = ablation_hooks(model, [], method, means=dataset_means(model, DATASET, []))
    assert hooks == []
    with torch.no_grad():
        expected = model(*inp.args)
    with ablated(model, [], method):
        assert torch.equal(run(model, inp), expected)
    assert torch.equal(run(model, inp, hooks), expected)


@settings(max_examples=30)
@given(
    inp=input_batches(),
    encoding=st.sampled_from(sorted(MODELS)),
    comp=st.sampled_from([Head(0, 0), Head(0, 1), MLP(0), HookSite("blocks.0.hook_resid_mid")]),
    pos=st.sampled_from([None, RTG_POS, STATE_POS]),
)
def test_mean_ablation_replaces_the_activation_by_the_dataset_mean(inp, encoding, comp, pos):
    model = MODELS[encoding]
    means = dataset_means(model, DATASET, [comp])
    with torch.no_grad():
        _, ref = model.run_with_cache(*DATASET.args)
    explicit_mean = ref[comp.hook_name].mean(dim=0)
    assert torch.allclose(means[comp.hook_name], explicit_mean, atol=1e-6)

    def replace(act, hook):  # the oracle: write the explicit mean into the component's slice
        out = act.clone()
        sel = (slice(None), slice(None) if pos is None else pos)
        if isinstance(comp, Head):
            out[sel + (comp.head,)] = explicit_mean[None].expand_as(act)[sel + (comp.head,)]
        else:
            out[sel] = explicit_mean[None].expand_as(act)[sel]
        return out

    expected = run(model, inp, [(comp.hook_name, replace)])
    got = run(model, inp, ablation_hooks(model, comp, "mean", means=means, pos=pos))
    assert torch.allclose(got, expected, atol=1e-5)
    with ablated(model, comp, "mean", means=means, pos=pos), torch.no_grad():
        _, cache = model.run_with_cache(*inp.args, names_filter=[comp.hook_name])
    act = cache[comp.hook_name]
    sel = (slice(None), slice(None) if pos is None else pos) + ((comp.head,) if isinstance(comp, Head) else ())
    assert torch.allclose(act[sel], explicit_mean[None].expand_as(act)[sel], atol=1e-6)


@settings(max_examples=30)
@given(inp=input_batches(), encoding=st.sampled_from(sorted(MODELS)), drop=st.sampled_from([(0,), (1,), (0, 1)]))
def test_zero_ablating_heads_at_hook_z_drops_their_terms_in_an_explicit_forward(inp, encoding, drop):
    model = MODELS[encoding]
    assert torch.allclose(run(model, inp).double(), explicit_logits(model, inp), atol=1e-4)
    got = run(model, inp, ablation_hooks(model, [Head(0, h) for h in drop], "zero")).double()
    assert torch.allclose(got, explicit_logits(model, inp, drop_heads=drop), atol=1e-4)


# -- resampling -----------------------------------------------------------------------------------------------


def test_resample_is_seeded_and_takes_other_states():
    model = MODELS["index"]
    inp = DATASET[:16]
    a = run(model, inp, ablation_hooks(model, ["L0H1", "mlp"], "resample", seed=5))
    b = run(model, inp, ablation_hooks(model, ["L0H1", "mlp"], "resample", seed=5))
    c = run(model, inp, ablation_hooks(model, ["L0H1", "mlp"], "resample", seed=6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    for seed in range(20):
        idx = donor_indices(16, seed)
        assert (idx != np.arange(16)).all() and idx.min() >= 0 and idx.max() < 16
    with pytest.raises(ConfigError, match="at least 2"):
        run(model, inp[:1], ablation_hooks(model, "L0H1", "resample"))


def test_resampling_from_a_one_state_source_is_mean_ablation_over_that_state():
    model = MODELS["one_hot"]
    donor = DATASET[7:8]
    source = collect_activations(model, donor, ["L0H0", "blocks.0.hook_resid_mid"])
    means = source.mean()
    for comp in ["L0H0", "blocks.0.hook_resid_mid"]:
        got = run(model, DATASET, ablation_hooks(model, comp, "resample", source=source, seed=1))
        assert torch.allclose(got, run(model, DATASET, ablation_hooks(model, comp, "mean", means=means)), atol=1e-6)


def test_several_components_at_once_compose():
    model = MODELS["index"]
    both = run(model, DATASET, ablation_hooks(model, ["head 0", "head 1"], "zero")).double()
    assert torch.allclose(both, explicit_logits(model, DATASET, drop_heads=(0, 1)), atol=1e-4)
    chained = ablation_hooks(model, "head 0", "zero") + ablation_hooks(model, "head 1", "zero")
    assert torch.allclose(run(model, DATASET, chained).double(), both, atol=1e-6)


def test_position_restricted_ablation_leaves_the_other_position_alone():
    model = MODELS["index"]
    with ablated(model, "L0H1", "zero", pos=STATE_POS), torch.no_grad():
        _, cache = model.run_with_cache(*DATASET.args, names_filter=["blocks.0.attn.hook_z"])
    _, clean = model.run_with_cache(*DATASET.args, names_filter=["blocks.0.attn.hook_z"])
    z, z0 = cache["blocks.0.attn.hook_z"], clean["blocks.0.attn.hook_z"]
    assert torch.equal(z[:, RTG_POS], z0[:, RTG_POS])
    assert torch.equal(z[:, STATE_POS, 0], z0[:, STATE_POS, 0])
    assert (z[:, STATE_POS, 1] == 0).all()
    with pytest.raises(ConfigError, match="no position axis"):
        ablation_hooks(model, "hook_state_embed", "zero", pos=STATE_POS)
    with pytest.raises(ConfigError, match="pos 2 is not a token position"):
        ablation_hooks(model, "L0H1", "zero", pos=2)


# -- variants at a hook: the batch widened where the intervention starts ---------------------------------------

WIDE_MODELS: dict[str, DecisionTransformer] = {
    "one-timestep index": random_model(1, scale=3.0),
    "two layers, one-hot, LN, gated": random_model(
        2, scale=1.0, n_layers=2, normalization="LN", mlp_type="gated", obs_encoding="one_hot"
    ),
    "window (MemoryDT's shape)": random_model(
        3,
        scale=1.0,
        n_ctx=26,
        n_heads=2,
        d_model=32,
        d_head=16,
        d_mlp=32,
        normalization="LN",
        mlp_type="gated",
        obs_encoding="one_hot",
        n_actions=7,
        max_timestep=60,
    ),  # fmt: skip
}


def _model_args(model: DecisionTransformer, n: int) -> tuple[torch.Tensor, ...]:
    """``n`` rows of valid inputs: one state each, or a window of states with actions for a windowed model."""
    t = model.cfg.n_timesteps
    obs = torch.as_tensor(random_states(n * t, seed=5).obs)
    rng = np.random.default_rng(5)
    if t == 1:
        return obs, torch.as_tensor(rng.uniform(-1, 1, n), dtype=torch.float32), torch.as_tensor(rng.integers(0, 60, n))
    return (
        obs.view(n, t, 7, 7, 3),
        torch.as_tensor(rng.uniform(0, 1, (n, t)), dtype=torch.float32),
        torch.as_tensor(np.sort(rng.integers(0, 60, (n, t)), axis=1)),
        torch.as_tensor(rng.integers(0, model.cfg.n_actions, (n, t - 1))),
    )


def _tiled(args: tuple[torch.Tensor, ...], k: int) -> tuple[torch.Tensor, ...]:
    return tuple(a.repeat(k, *([1] * (a.ndim - 1))) for a in args)


@pytest.mark.parametrize("name", list(WIDE_MODELS))
def test_variants_at_any_hook_equal_the_forward_on_tiled_inputs(name):
    """The mean recipe's variants widen the batch at the ablated hook (upstream computed once): at every hook point
    of the model the logits equal, bit for bit, those of the old way, k tiled copies of the inputs with each copy's
    activation replaced."""
    model, n, k = WIDE_MODELS[name], 5, 3
    args = _model_args(model, n)
    with torch.no_grad():
        _, cache = model.run_with_cache(*args)
    gen = torch.Generator().manual_seed(0)
    checked = 0
    for hook_name in model.hook_names:
        act = cache[hook_name]
        values = torch.randn((k, *act.shape[1:]), generator=gen) * act[act.isfinite()].std().clamp(min=1e-3)
        site = HookSite(hook_name)
        with torch.no_grad(), hooked(model, [(hook_name, variants_hook(site, values, n))]):
            widened_logits = model(*args)
        per_row = values.repeat_interleave(n, dim=0)
        with torch.no_grad(), hooked(model, [(hook_name, replace_hook(site, None, lambda a, v=per_row: v))]):
            tiled_logits = model(*_tiled(args, k))
        assert widened_logits.shape == tiled_logits.shape == (k * n, model.cfg.n_actions), hook_name
        assert torch.equal(widened_logits, tiled_logits), hook_name
        checked += 1
    assert checked == len(model.hook_names) >= 18


def test_variants_of_several_components_widen_once_and_compose():
    """Two heads mean-ablated with k variants each: the second hook meets the already widened batch; the result is
    the tiled forward's, and a head's variant j stays in copy j."""
    model, n, k = WIDE_MODELS["one-timestep index"], 4, 3
    args = _model_args(model, n)
    heads = [Head(0, 0), Head(0, 1)]
    with torch.no_grad():
        _, cache = model.run_with_cache(*args, names_filter=["blocks.0.attn.hook_z"])
    z = cache["blocks.0.attn.hook_z"]
    values = torch.randn((k, *z.shape[1:]), generator=torch.Generator().manual_seed(1))
    hooks = [(h.hook_name, variants_hook(h, values, n)) for h in heads]
    with torch.no_grad(), hooked(model, hooks):
        widened_logits = model(*args)
    per_row = values.repeat_interleave(n, dim=0)
    with torch.no_grad(), hooked(model, [("blocks.0.attn.hook_z", lambda a, hook=None: per_row.clone())]):
        tiled_logits = model(*_tiled(args, k))
    assert torch.equal(widened_logits, tiled_logits)
    with pytest.raises(ConfigError, match="7 rows reach a hook made for 4 rows and 3 variants"):
        variants_hook(heads[0], values, n)(torch.zeros(7, *z.shape[1:]))
