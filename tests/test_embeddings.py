"""Embedding views: per-input projections add up to the state-embedding term; Table 3 uses the env's values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dt_circuits.analysis.attribution import attribute, residual_direction
from dt_circuits.analysis.embeddings import (
    CELL_VALUES,
    cell_contribution,
    cell_table,
    input_channel_names,
    obs_contributions,
    rtg_embedding_projection,
    state_embedding_projection,
    time_embedding_projection,
)
from dt_circuits.core.errors import ConfigError, InvalidInputError
from dt_circuits.env.scenarios import in_front
from dt_circuits.env.spec import FRONT_VIEW_CELL
from tests.test_interventions import MODELS, input_batches

FAMILIES = {kind: in_front(kind) for kind in CELL_VALUES}


@settings(max_examples=30)
@given(inp=input_batches(), name=st.sampled_from(sorted(MODELS)), direction=st.sampled_from(["forward-right", "left"]))
def test_per_input_contributions_add_up_to_the_state_embedding_term(inp, name, direction):
    model = MODELS[name]
    contrib = obs_contributions(model, inp.obs, direction)
    assert contrib.shape == (len(inp), len(input_channel_names(model)), 7, 7)
    attr = attribute(model, inp, direction)
    assert torch.allclose(contrib.sum(dim=(1, 2, 3)), attr.terms["state_embed"], atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_table3_rows_are_what_the_env_puts_in_front_and_match_the_per_input_sums(name):
    model = MODELS[name]
    x, y = FRONT_VIEW_CELL
    table = cell_table(model, "forward-right")
    for kind, fam in FAMILIES.items():
        assert (fam.obs[:, x, y] == np.array(CELL_VALUES[kind])).all(), kind  # the rows are real env values
        per_cell = obs_contributions(model, fam.obs[:3], "forward-right")[:, :, x, y].sum(dim=1)
        assert torch.allclose(per_cell, torch.full_like(per_cell, table[kind]), atol=1e-9)


def test_table3_arithmetic_for_index_and_one_hot():
    index, one_hot = MODELS["index"], MODELS["one_hot"]
    w = state_embedding_projection(index, "forward-right")
    obj, col, st_ = CELL_VALUES["wall"]
    x, y = FRONT_VIEW_CELL
    expected = obj * w[0, x, y] + col * w[1, x, y] + st_ * w[2, x, y]
    assert cell_contribution(index, "forward-right", "wall") == pytest.approx(float(expected))
    names = input_channel_names(one_hot)
    w1 = state_embedding_projection(one_hot, "forward-right")
    bits = [names.index(b) for b in ("object=wall", "colour=grey", "state=open")]
    assert cell_contribution(one_hot, "forward-right", "wall") == pytest.approx(float(w1[bits, x, y].sum()))
    assert cell_contribution(one_hot, "forward-right", (2, 5, 0), cell=(0, 0)) == pytest.approx(
        float(w1[bits, 0, 0].sum())
    )
    with pytest.raises(ConfigError, match="unknown cell value 'lava'"):
        cell_contribution(index, "forward", "lava")
    with pytest.raises(ConfigError, match="outside the 7x7 view"):
        cell_contribution(index, "forward", "wall", cell=(7, 0))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rtg_and_time_projections(name):
    model = MODELS[name]
    r = residual_direction(model, "forward-right")
    per_unit = rtg_embedding_projection(model, "forward-right")
    assert per_unit == pytest.approx(float(model.W_rtg.detach().double() @ r))
    assert rtg_embedding_projection(model, "forward-right", rtg=-0.5) == pytest.approx(-0.5 * per_unit)
    times = time_embedding_projection(model, "forward-right")
    assert times.shape == (model.cfg.max_timestep + 1,)
    assert torch.allclose(times, model.W_time.detach().double() @ r)
    assert torch.allclose(time_embedding_projection(model, "forward-right", np.array([0, 5, 9])), times[[0, 5, 9]])
    with pytest.raises(InvalidInputError, match="timesteps must be in"):
        time_embedding_projection(model, "forward-right", [model.cfg.max_timestep + 1])


def test_channel_names():
    assert input_channel_names(MODELS["index"]) == ["object", "colour", "state"]
    names = input_channel_names(MODELS["one_hot"])
    assert len(names) == 20 and names[2] == "object=wall" and names[11 + 5] == "colour=grey"
