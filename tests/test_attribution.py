"""Direct logit attribution: exact decomposition (index, one-hot, two layers), source split, directions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dt_circuits.analysis.attribution import (
    action_index,
    attribute,
    attribution_table,
    direction_name,
    direction_vector,
    logit_diff_metric,
    prob_metric,
    residual_direction,
)
from dt_circuits.analysis.interventions import Inputs, ablation_hooks, run
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import RTG_POS, STATE_POS
from dt_circuits.env.spec import Action
from tests.helpers import random_model
from tests.test_interventions import DATASET, MODELS, input_batches

ATTR_MODELS = {**MODELS, "two_layer": random_model(2, scale=3.0, n_layers=2, n_heads=3)}
DIRECTIONS = st.one_of(
    st.sampled_from(["forward", "left", "right", "forward-right", "right-left", ("left", "forward"), Action.FORWARD]),
    st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=3, max_size=3),
)


@settings(max_examples=40)
@given(inp=input_batches(), name=st.sampled_from(sorted(ATTR_MODELS)), direction=DIRECTIONS)
def test_terms_sum_to_the_models_logit_difference(inp, name, direction):
    model = ATTR_MODELS[name]
    attr = attribute(model, inp, direction)
    u = direction_vector(direction)
    expected = run(model, inp).double() @ u
    assert torch.allclose(attr.logit_diff, expected, atol=1e-9)
    assert (attr.total - expected).abs().max() <= 1e-5
    grouped = attr.grouped()
    assert (torch.stack(list(grouped.values())).sum(0) - expected).abs().max() <= 1e-5
    n_heads, n_layers = model.cfg.n_heads, model.cfg.n_layers
    assert len(attr.terms) == 4 + n_layers * (2 * n_heads + 3) + 1
    assert (attr.terms["rtg_embed"] == 0).all()  # the RTG reaches the state token only through attention


@settings(max_examples=25)
@given(inp=input_batches(), name=st.sampled_from(sorted(MODELS)))
def test_head_terms_split_by_source_position_add_up_to_the_head_output(inp, name):
    model = MODELS[name]
    attr = attribute(model, inp, "forward-right")
    r = residual_direction(model, "forward-right")
    with torch.no_grad():
        _, cache = model.run_with_cache(*inp.args)
    pattern = cache["blocks.0.attn.hook_pattern"]
    for h in range(model.cfg.n_heads):
        whole = cache["blocks.0.attn.hook_result"][:, STATE_POS, h].double() @ r
        split = attr.terms[f"L0H{h} <- rtg"] + attr.terms[f"L0H{h} <- state"]
        assert torch.allclose(split, whole, atol=1e-5)
        # attending nowhere near a source leaves (almost) nothing from it
        weight = pattern[:, h, STATE_POS, RTG_POS].double()
        v_out = cache["blocks.0.attn.hook_v"][:, RTG_POS, h].double() @ model.blocks[0].attn.W_O[h].detach().double()
        assert torch.allclose(attr.terms[f"L0H{h} <- rtg"], weight * (v_out @ r), atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_attribution_under_hooks_stays_exact_and_says_where_the_intervention_acted(name):
    model = MODELS[name]
    inp = DATASET[:32]
    plain = attribute(model, inp, "forward")
    hooks = ablation_hooks(model, "L0H1", "zero")
    attr = attribute(model, inp, "forward", fwd_hooks=hooks)
    expected = run(model, inp, hooks).double()[:, Action.FORWARD]
    assert (attr.total - expected).abs().max() <= 1e-5
    grouped = attr.grouped()
    assert grouped["L0H1"].abs().max() <= 1e-6  # zero-ablated head writes nothing
    assert torch.allclose(grouped["L0H0"], plain.grouped()["L0H0"], atol=1e-5)  # 1 layer: head 0 unaffected
    assert torch.allclose(attr.terms["L0H1 <- intervention"], -plain.grouped()["L0H1"], atol=1e-5)
    assert attr.terms["intervention"].abs().max() <= 1e-5  # nothing else was touched

    def inject(act, hook):  # a residual-level intervention is reported as such
        out = act.clone()
        out[:, STATE_POS] += residual_direction(model, "forward").float() * 0.1
        return out

    attr = attribute(model, inp, "forward", fwd_hooks=[("blocks.0.hook_resid_post", inject)])
    shift = 0.1 * float(residual_direction(model, "forward") @ residual_direction(model, "forward"))
    assert torch.allclose(attr.terms["intervention"], torch.full((32,), shift, dtype=torch.float64), atol=1e-4)
    assert (attr.total - run(model, inp, [("blocks.0.hook_resid_post", inject)]).double()[:, 2]).abs().max() <= 1e-5


def test_directions_and_metrics():
    assert direction_vector("forward").tolist() == [0, 0, 1]
    for spec in [
        "forward-right",
        "forward - right",
        "Forward/Right",
        "forward\u2212right",
        ("forward", "right"),
        (2, 1),
    ]:
        assert direction_vector(spec).tolist() == [0, -1, 1], spec
        assert direction_name(spec) == "forward-right"
    assert direction_name([0.5, 0.5, -1.0]) == "[0.5, 0.5, -1]"
    assert action_index(Action.LEFT) == 0 and action_index("RIGHT") == 1
    for bad, fragment in [
        ("up", "unknown action 'up'"),
        ("forward-forward", "itself"),
        ([1, 2], "3 entries"),
        (5, "5"),
    ]:
        with pytest.raises(ConfigError, match=fragment):
            direction_vector(bad)
    logits = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]])
    assert logit_diff_metric("forward-right")(logits).tolist() == [2.0, 0.0]
    probs = torch.stack([prob_metric(a)(logits) for a in Action], dim=1)
    assert torch.allclose(probs.sum(1), torch.ones(2, dtype=torch.float64))
    assert probs[1].tolist() == pytest.approx([1 / 3] * 3)


def test_table_is_sorted_by_magnitude():
    attr = attribute(MODELS["index"], Inputs.make(DATASET.obs[:8], 0.5, 10), "forward-right")
    rows = attribution_table(attr, grouped=True)
    assert [abs(v) for _, v in rows] == sorted((abs(v) for _, v in rows), reverse=True)
    assert {k for k, _ in rows} == set(attr.grouped())
    assert np.isclose(sum(v for _, v in rows), float(attr.logit_diff.mean()), atol=1e-5)
