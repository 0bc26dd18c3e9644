"""Activation and path patching: self-patching is a no-op, full patches restore exactly, paths add up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dt_circuits.analysis.attribution import logit_diff_metric, prob_metric
from dt_circuits.analysis.interventions import Inputs, collect_activations, run
from dt_circuits.analysis.patching import (
    activation_patching,
    edit_family,
    patch_hooks,
    path_patch_hooks,
    path_patching,
    remove_front_obstacle,
)
from dt_circuits.core.errors import ConfigError, InvalidStateError
from dt_circuits.dt.model import STATE_POS
from dt_circuits.env.scenarios import in_front
from dt_circuits.env.spec import FRONT_VIEW_CELL, OBJECT
from tests.test_interventions import MODELS, input_batches

ALL_COMPONENTS = ["L0H0", "L0H1", "mlp", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_pattern", "hook_rtg_embed"]
OBSTACLE = in_front("obstacle")
CLEARED = edit_family(OBSTACLE, remove_front_obstacle)


@settings(max_examples=30)
@given(inp=input_batches(), encoding=st.sampled_from(sorted(MODELS)), pos=st.sampled_from([None, STATE_POS]))
def test_patching_a_run_with_its_own_activations_is_a_no_op(inp, encoding, pos):
    model = MODELS[encoding]
    comps = ALL_COMPONENTS if pos is None else ALL_COMPONENTS[:-1]  # the (B, d) RTG embedding has no positions
    source = collect_activations(model, inp, comps)
    expected = run(model, inp)
    assert torch.allclose(run(model, inp, patch_hooks(model, comps, source, pos=pos)), expected, atol=1e-6)
    results = activation_patching(model, inp, inp, comps, logit_diff_metric("forward-right"), pos=pos)
    for res in results.values():
        np.testing.assert_allclose(res.patched, res.clean, atol=1e-5)


def test_edited_states_are_real_renders_without_the_front_ball():
    x, y = FRONT_VIEW_CELL
    assert (OBSTACLE.obs[:, x, y, 0] == OBJECT["ball"]).all()
    assert (CLEARED.obs[:, x, y, 0] == OBJECT["empty"]).all()
    changed = (OBSTACLE.obs != CLEARED.obs).any(axis=-1).reshape(len(OBSTACLE), -1).sum(axis=1)
    assert (changed == 1).all()  # only the front cell differs: balls do not block the view
    with pytest.raises(InvalidStateError, match="no obstacle in front"):
        remove_front_obstacle(in_front("empty").states[0])


@pytest.mark.parametrize("encoding", sorted(MODELS))
def test_full_patches_restore_exactly_and_unreachable_components_restore_nothing(encoding):
    model = MODELS[encoding]
    clean = Inputs.make(OBSTACLE.obs[:24], 0.9, 0)
    corrupt = clean.with_rtg(-0.5)  # an RTG corruption: the state embedding cannot see it
    metric = logit_diff_metric("forward-right")
    res = activation_patching(model, clean, corrupt, ["blocks.0.hook_resid_pre", "hook_state_embed"], metric)
    np.testing.assert_allclose(res["blocks.0.hook_resid_pre"].patched, res["blocks.0.hook_resid_pre"].clean, atol=1e-5)
    assert res["blocks.0.hook_resid_pre"].normalized == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(res["hook_state_embed"].patched, res["hook_state_embed"].corrupt, atol=1e-6)
    assert res["hook_state_embed"].normalized == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("encoding", sorted(MODELS))
@pytest.mark.parametrize("head", ["L0H0", "L0H1"])
def test_direct_and_mlp_paths_add_up_to_patching_the_head_output(encoding, head):
    """One layer, no LayerNorm: patched = corrupt + d W_U + (MLP(r + d) - MLP(r)) W_U, one term per path."""
    model = MODELS[encoding]
    n = 32
    clean = Inputs.make(CLEARED.obs[:n], 0.9, 0)  # obstacle removed: the state edit as corruption
    corrupt = Inputs.make(OBSTACLE.obs[:n], 0.9, 0)
    h = int(head[-1])
    source = collect_activations(model, clean, ["blocks.0.attn.hook_result"])

    def patch_result(act, hook):  # the head's whole write at the state position, from the clean run
        out = act.clone()
        out[:, STATE_POS, h] = source.acts["blocks.0.attn.hook_result"][:, STATE_POS, h]
        return out

    base = run(model, corrupt).double()
    full = run(model, corrupt, [("blocks.0.attn.hook_result", patch_result)]).double()
    direct = run(model, corrupt, path_patch_hooks(model, clean, corrupt, head, "unembed")).double()
    via_mlp = run(model, corrupt, path_patch_hooks(model, clean, corrupt, head, "mlp")).double()
    assert torch.allclose((direct - base) + (via_mlp - base), full - base, atol=1e-4)
    # the direct path is exactly the sender's change read by the unembed
    with torch.no_grad():
        _, cc = model.run_with_cache(*clean.args, names_filter=["blocks.0.attn.hook_result"])
        _, cx = model.run_with_cache(*corrupt.args, names_filter=["blocks.0.attn.hook_result"])
    delta = (cc["blocks.0.attn.hook_result"] - cx["blocks.0.attn.hook_result"])[:, STATE_POS, h].double()
    assert torch.allclose(direct - base, delta @ model.W_U.detach().double(), atol=1e-4)
    res = path_patching(model, clean, corrupt, head, "unembed", prob_metric("forward"))
    assert res.name == f"{head} -> unembed" and res.patched.shape == (n,)


def test_path_patching_refuses_paths_that_do_not_exist():
    model = MODELS["index"]
    inp = Inputs.make(OBSTACLE.obs[:4], 0.9, 0)
    with pytest.raises(ConfigError, match="receiver must be 'unembed' or an MLP"):
        path_patch_hooks(model, inp, inp, "L0H1", "L0H0")
    with pytest.raises(ConfigError, match="sender must be a head or an MLP"):
        path_patch_hooks(model, inp, inp, "hook_state_embed", "mlp")
    with pytest.raises(ConfigError, match="not downstream"):
        path_patch_hooks(model, inp, inp, "mlp", "mlp")
    with pytest.raises(ConfigError, match="same batch size"):
        path_patch_hooks(model, inp, inp[:2], "L0H1", "unembed")
