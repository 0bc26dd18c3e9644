"""The Memory env (DTI's registration on Minigrid's MemoryEnv), its encoding, the modal states, and windows."""

from __future__ import annotations

import numpy as np
import pytest
from minigrid.wrappers import OneHotPartialObsWrapper

from dt_circuits.analysis.interventions import parse_position
from dt_circuits.core.errors import ConfigError, InvalidInputError, InvalidStateError
from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.dt.window import pad_window
from dt_circuits.env.memory import FORWARD, LEFT, RIGHT, MemoryS7FixedStart, modal_scenarios, walked_forward
from dt_circuits.env.spec import OBJECT, index_to_one_hot


def test_one_hot_matches_minigrids_wrapper_on_random_episodes():
    env, wrapped = MemoryS7FixedStart(), OneHotPartialObsWrapper(MemoryS7FixedStart())
    rng = np.random.default_rng(0)
    checked = 0
    for ep in range(10):
        o, _ = env.reset(seed=ep)
        w, _ = wrapped.reset(seed=ep)
        done = False
        while True:
            assert np.array_equal(index_to_one_hot(o["image"]), w["image"])
            checked += 1
            if done:
                break
            a = int(rng.integers(0, 7))
            o, r, te, tr, _ = env.step(a)
            w, r2, te2, tr2, _ = wrapped.step(a)
            assert (r, te, tr) == (r2, te2, tr2)
            done = te or tr
    assert checked > 100


def test_fixed_start_real_pickup_and_optimal_reward():
    env = MemoryS7FixedStart()
    for seed in range(8):
        env.reset(seed=seed)
        assert tuple(env.agent_pos) == (1, 3) and env.agent_dir == 0
    env.reset(seed=0, options={"instruction": "key", "top": "key"})
    for _ in range(4):
        env.step(FORWARD)
    env.step(LEFT)
    _, reward, terminated, _, info = env.step(FORWARD)
    assert terminated and info["outcome"] == "success" and reward == pytest.approx(1 - 0.9 * 6 / 50)
    env.reset(seed=0, options={"instruction": "key", "top": "key"})
    for _ in range(4):
        env.step(FORWARD)
    env.step(RIGHT)
    _, reward, terminated, _, info = env.step(FORWARD)
    assert terminated and info["outcome"] == "wrong" and reward == 0
    env.reset(seed=0, options={"instruction": "ball"})
    env.step(LEFT)
    env.step(3)  # pickup is a real pickup (Minigrid maps it to toggle): the agent now carries the ball
    assert env.carrying is not None and env.carrying.type == "ball"
    with pytest.raises(InvalidStateError, match="expected 'key' or 'ball'"):
        env.reset(options={"top": "box"})


def test_modal_states_show_the_targets_and_not_the_instruction():
    scenarios = modal_scenarios()
    assert [(s.instruction, s.top) for s in scenarios] == [
        ("key", "key"),
        ("key", "ball"),
        ("ball", "key"),
        ("ball", "ball"),
    ]
    for s in scenarios:
        assert s.obs.shape == (5, 7, 7, 3) and list(s.actions) == [FORWARD] * 4
        assert s.obs[0, 2, 6, 0] == OBJECT[s.instruction]  # instruction left of the agent at the start
        assert s.obs[-1, 1, 6, 0] == OBJECT[s.top]  # top target seen at (1,6) at the end of the corridor
        assert s.correct_turn == ("left" if s.instruction == s.top else "right")
    assert walked_forward("key", "ball").correct_turn == "right"


def test_windows_are_padded_like_dti():
    s = walked_forward("key", "ball")
    w = pad_window(s.obs, s.actions, np.full(5, 0.892), s.timesteps, n_timesteps=9, pad_action=7, initial_rtg=0.892)
    assert w.obs.shape == (9, 7, 7, 3) and not w.obs[:4].any() and (w.obs[4:] == s.obs).all()
    assert list(w.actions) == [7] * 4 + [FORWARD] * 4 and list(w.timesteps) == [0] * 5 + [1, 2, 3, 4]
    long = pad_window(np.repeat(s.obs, 3, 0), np.zeros(14), np.zeros(15), np.arange(15), n_timesteps=9,
                      pad_action=7, initial_rtg=0.0)  # fmt: skip
    assert list(long.timesteps) == list(range(6, 15)) and len(long.actions) == 8
    with pytest.raises(InvalidInputError, match="trajectory prefix"):
        pad_window(s.obs, s.actions[:2], np.zeros(5), s.timesteps, n_timesteps=9, pad_action=7, initial_rtg=0.0)


def test_window_model_names_bad_inputs_and_positions():
    model = DecisionTransformer(DTConfig(n_ctx=26, n_layers=2, n_heads=4, d_head=32, normalization="LN",
                                         mlp_type="gated", obs_encoding="one_hot", n_actions=7))  # fmt: skip
    obs = np.zeros((2, 9, 7, 7, 3), np.uint8)
    assert model(obs, 0.5, np.zeros((2, 9), int), np.full((2, 8), 7)).shape == (2, 7)
    with pytest.raises(InvalidInputError, match=r"shape \(B, T, 7, 7, 3\)"):
        model(obs[:, 0], 0.5, 0, None)
    with pytest.raises(InvalidInputError, match="actions must be in 0..7"):
        model(obs, 0.5, 0, np.full((2, 8), 9))
    with pytest.raises(InvalidInputError, match="1..9 timesteps"):
        model(np.zeros((2, 10, 7, 7, 3), np.uint8), 0.5, 0, np.zeros((2, 9), int))
    assert parse_position(model, "s-1") == 25 and parse_position(model, "state[4]") == 13
    assert parse_position(model, "R0") == 0 and parse_position(model, "a3") == 11
    with pytest.raises(ConfigError, match="no action token at timestep 8"):
        parse_position(model, "a8")
    with pytest.raises(ConfigError, match="cannot parse position"):
        parse_position(model, "x1")


def test_components_by_layer_in_a_two_layer_model():
    from dt_circuits.analysis.interventions import MLP, Head, parse_component

    model = DecisionTransformer(DTConfig(n_ctx=26, n_layers=2, n_heads=4, d_head=32, mlp_type="gated"))
    assert parse_component("L1H3", model) == Head(1, 3) and parse_component("mlp1", model) == MLP(1)
    with pytest.raises(ConfigError, match="ambiguous"):
        parse_component("mlp", model)
