"""The env wrapper, action names and the two observation encodings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from minigrid.wrappers import OneHotPartialObsWrapper

from dt_circuits.core.errors import ConfigError, InvalidInputError
from dt_circuits.env.scenarios import StateRenderer
from dt_circuits.env.spec import (
    ACTION_NAMES,
    ENV_ID,
    OBJECT,
    Action,
    EnvSpec,
    index_to_one_hot,
    one_hot_to_index,
)
from dt_circuits.env.strategies import grid_states

RENDERER = StateRenderer()


def test_action_names_match_minigrid():
    env = EnvSpec().make()
    assert ACTION_NAMES == ("left", "right", "forward")
    assert env.actions.left == Action.LEFT and env.actions.right == Action.RIGHT
    assert env.actions.forward == Action.FORWARD
    assert env.action_space.n == 3


def test_spec_is_explicit_and_reaches_the_env():
    spec = EnvSpec(max_steps=300)
    env = spec.make()
    assert env.max_steps == 300 and env.agent_view_size == 7 and env.width == 8
    assert spec.to_dict() == {"env_id": ENV_ID, "size": 8, "n_obstacles": 4, "max_steps": 300, "view_size": 7}
    assert EnvSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"env_id": "MiniGrid-Empty-5x5-v0"}, "env_id"),
        ({"view_size": 5}, "view_size"),
        ({"max_steps": 0}, "max_steps"),
        ({"size": 16}, "size"),
    ],
)
def test_spec_rejects_unsupported_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        EnvSpec(**kwargs)


def test_spec_from_dict_names_unknown_fields():
    with pytest.raises(ConfigError, match="bogus"):
        EnvSpec.from_dict({"bogus": 1})


def test_one_hot_matches_minigrid_wrapper_on_real_observations():
    env = OneHotPartialObsWrapper(EnvSpec().make())
    raw = EnvSpec().make()
    obs, _ = env.reset(seed=5)
    raw_obs, _ = raw.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(30):
        np.testing.assert_array_equal(index_to_one_hot(raw_obs["image"]), obs["image"])
        a = int(rng.integers(3))
        obs, _, term, trunc, _ = env.step(a)
        raw_obs, *_ = raw.step(a)
        if term or trunc:
            break


@given(grid_states())
def test_generated_states_round_trip_between_encodings(state):
    obs = RENDERER.render(state)
    one_hot = index_to_one_hot(obs)
    assert one_hot.shape == (7, 7, 20) and one_hot.sum() == 7 * 7 * 3
    np.testing.assert_array_equal(one_hot_to_index(one_hot), obs)


def test_conversions_reject_bad_arrays():
    with pytest.raises(InvalidInputError, match="shape"):
        index_to_one_hot(np.zeros((7, 7), dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="ranges"):
        index_to_one_hot(np.full((7, 7, 3), 12, dtype=np.uint8))
    with pytest.raises(InvalidInputError, match="integer"):
        index_to_one_hot(np.zeros((7, 7, 3), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="one bit"):
        one_hot_to_index(np.zeros((7, 7, 20), dtype=np.uint8))


def test_object_ids_are_the_posts():
    assert (OBJECT["empty"], OBJECT["wall"], OBJECT["ball"], OBJECT["goal"]) == (1, 2, 6, 8)
