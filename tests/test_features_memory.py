"""MemoryDT's features (issue 27): the Memory variables from the real env, the windows they are probed on, and the
table's known truths on small window models whose answer is fixed by construction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.env.memory import INSTRUCTION_VIEW_CELL, walked_forward
from dt_circuits.env.spec import OBJECT
from dt_circuits.features.memory_data import MAX_STEPS, instruction_pairs, memory_probe_set
from dt_circuits.features.readme_table import markdown, terminal_table
from dt_circuits.features.table import (
    INPUT_FRAME,
    INPUT_WINDOW,
    default_sites,
    localisation_table,
    memory_localisation_table,
)
from dt_circuits.features.variables import MEMORY_VARIABLES, MemoryStep, memory_labels

#: MemoryDT's shape (9 timesteps, one-hot, LN, gated MLP, 7 actions), small
WINDOW = dict(n_ctx=26, n_layers=1, n_heads=2, d_model=32, d_head=16, d_mlp=32, normalization="LN",
              mlp_type="gated", obs_encoding="one_hot", n_actions=7, max_timestep=60)  # fmt: skip


def _model(seed: int = 0, *, frames: bool = True) -> DecisionTransformer:
    model = DecisionTransformer(DTConfig(**WINDOW))
    model.init_weights(seed)
    if not frames:  # a twin blind to every frame and to time: its last state token starts as its position alone
        with torch.no_grad():
            model.W_state.zero_()
            model.W_time.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def probe_set():
    return memory_probe_set(_model(), seed=0, n_episodes=16)


def test_variables_are_the_layout_and_what_the_frame_shows(probe_set):
    steps = probe_set.steps
    assert {(s.instruction, s.top) for s in steps} == {(i, t) for i in ("key", "ball") for t in ("key", "ball")}
    firsts = np.flatnonzero(np.r_[True, np.diff(probe_set.clusters) != 0])
    assert len(firsts) == 16 and all(steps[i].instruction_seen for i in firsts)  # the start shows it, to the left
    for i in firsts:  # independently: the object drawn at view (2, 6) of the first frame is the instruction
        x, y = INSTRUCTION_VIEW_CELL
        assert probe_set.windows.obs[i, -1, x, y, 0] == OBJECT[steps[i].instruction]
    assert 0 < np.mean([s.instruction_seen for s in steps]) < 1
    assert max(np.bincount(probe_set.clusters)) <= MAX_STEPS
    # the correct side is the top exactly when the top target matches the instruction (the article's modal states)
    for layout in (("key", "key"), ("key", "ball")):
        scenario = walked_forward(*layout)  # type: ignore[arg-type]
        step = MemoryStep(layout[0], layout[1], False)
        assert MEMORY_VARIABLES["correct_side"].values[MEMORY_VARIABLES["correct_side"](step)] == scenario.correct_turn
    with pytest.raises(ConfigError, match="unknown Memory variable 'nope'"):
        memory_labels("nope", steps)


def test_windows_are_padded_as_dti_pads_them(probe_set):
    first = int(np.flatnonzero(probe_set.clusters == 0)[0])
    w = probe_set.windows[first : first + 1]
    assert w.obs.shape == (1, 9, 7, 7, 3) and w.actions.shape == (1, 8)
    assert (w.actions[0] == 7).all() and (w.obs[0, :8] == 0).all() and (w.timestep[0] == 0).all()
    assert probe_set.types.shape == (len(probe_set.steps), 6)
    again = memory_probe_set(_model(), seed=0, n_episodes=16)
    assert torch.equal(again.windows.obs, probe_set.windows.obs) and again.steps == probe_set.steps


#: the tests reading ``tables`` run on one worker, so the two tables (~24 s) are computed once per test run
ON_THE_TABLES_WORKER = pytest.mark.xdist_group("memory-tables")


@pytest.fixture(scope="module")
def tables():
    kw = dict(n_episodes=16, sites=("blocks.0.hook_resid_pre", "L0H0"), variables=("instruction_in_view",))
    seeing = memory_localisation_table(_model(), **kw, iia_sites=("L0H0",))
    blind = memory_localisation_table(_model(frames=False), **kw, iia_sites=())
    return seeing, blind


def _probes(table: dict) -> dict:
    return {(p["variable"], p["site"]): p for p in table["probes"]}


@ON_THE_TABLES_WORKER
def test_known_truth_what_the_frame_shows_is_read_where_the_model_puts_the_frame(tables):
    """The current frame's state token starts as W_state of the frame: a model that embeds frames carries "the
    instruction is drawn now" there (a random projection keeps it); its twin with W_state = W_time = 0 cannot
    (the majority class; with time left in, time alone predicts "drawn now" a little, as early steps show the
    start room). The input sites do not depend on the model. The frame's own probe is not perfect: "drawn now"
    is the instruction's type at a pose-dependent cell, and targets of that type appear elsewhere (0.94 here).
    """
    seeing, blind = (_probes(t) for t in tables)
    site = "blocks.0.hook_resid_pre"
    frame = seeing[("instruction_in_view", INPUT_FRAME)]  # in the input by construction (not always linearly)
    assert frame["accuracy"] >= frame["majority"] + 0.3, frame
    assert seeing[("instruction_in_view", INPUT_FRAME)] == blind[("instruction_in_view", INPUT_FRAME)]
    p = seeing[("instruction_in_view", site)]
    assert p["accuracy"] >= p["majority"] + 0.2, p
    q = blind[("instruction_in_view", site)]
    assert q["accuracy"] <= q["majority"], q


@ON_THE_TABLES_WORKER
def test_the_memory_table_has_its_own_caption_and_rows(tables):
    table = {"checkpoint": "tiny-memory", "sha256": "0" * 64, "cpu": "test", **tables[0]}
    assert table["sites"] == [INPUT_FRAME, INPUT_WINDOW, "blocks.0.hook_resid_pre", "L0H0"]
    assert table["token"] == 25 and table["env"] == "memory" and [r["site"] for r in table["iia"]] == ["L0H0"]
    assert table["n_pairs"] == 2 * table["n_states"] and table["iia"][0]["variable"] == "instruction"
    # an SAE at each site, its quality read on held-out episodes, its instruction latent localised at the
    # interchange site
    assert [r["site"] for r in table["sae"]] == ["blocks.0.hook_resid_pre", "L0H0"] and table["iia"][0][
        "sae"
    ] is not None
    assert all(r["fvu"] >= 0 for r in table["sae"]) and table["sae_latent"] == "instruction=ball"
    text = terminal_table(table)
    assert "windows (every step)" in text and "last state token (25)" in text and "instruction_in_view" in text
    assert "| `input (window)` |" in markdown([table])


def test_each_table_refuses_the_other_kind_of_model():
    window, one_step = _model(), DecisionTransformer(DTConfig())
    with pytest.raises(ConfigError, match="memory_localisation_table"):
        localisation_table(window, n_random=4)
    with pytest.raises(ConfigError, match="one-timestep model"):
        memory_localisation_table(one_step)
    with pytest.raises(ConfigError, match="unknown Memory variable 'ball_in_front'"):
        memory_localisation_table(window, variables=("ball_in_front",))
    assert {s.pos for s in default_sites(window)} == {25} and {s.pos for s in default_sites(one_step)} == {1}


def test_instruction_pairs_differ_in_the_instruction_alone(probe_set):
    """The same episode with the instruction swapped: the same actions and steps, frames that differ only where
    the instruction is drawn (object channel: key <-> ball), both directions."""
    pairs = instruction_pairs(_model(), seed=0, n_episodes=16)
    n = len(probe_set.steps)
    assert len(pairs) == 2 * n and (pairs.base_values != pairs.source_values).all()
    base, source = pairs.base[slice(0, n)], pairs.source[slice(0, n)]
    assert torch.equal(base.obs, probe_set.windows.obs) and torch.equal(base.actions, source.actions)
    changed = (base.obs != source.obs).any(dim=-1)  # (n, T, 7, 7): cells that differ
    assert changed.any()
    objects = {int(v) for v in torch.cat([base.obs[..., 0][changed], source.obs[..., 0][changed]]).unique()}
    assert objects == {OBJECT["key"], OBJECT["ball"]}
    seen = np.array([s.instruction_seen for s in probe_set.steps])
    assert (changed[:, -1].flatten(1).any(1).numpy() == seen).all()  # the current frame differs iff it shows it
