"""World-state variables on hand-made states, and the view geometry against the real env's observations."""

from __future__ import annotations

import numpy as np
import pytest

from dt_circuits.core.errors import ConfigError, DTCircuitsError
from dt_circuits.env.scenarios import GridState, StateRenderer, valid_poses
from dt_circuits.env.spec import OBJECT, Direction
from dt_circuits.features.variables import VARIABLES, labels, variable, view_coords, view_labels

R, D, L, U = (int(d) for d in (Direction.RIGHT, Direction.DOWN, Direction.LEFT, Direction.UP))


def value(name: str, state: GridState, rtg: float = 0.9) -> str:
    var = variable(name)
    return var.values[var(state, rtg)]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (GridState((1, 1), R, ((2, 1),)), "ball"),
        (GridState((1, 1), U, ((2, 1),)), "wall"),
        (GridState((6, 5), D, ()), "goal"),
        (GridState((3, 3), R, ((5, 3),)), "empty"),
    ],
)
def test_front_object_on_hand_made_states(state, expected):
    assert value("front_object", state) == expected
    assert value("ball_in_front", state) == ("yes" if expected == "ball" else "no")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (GridState((1, 1), R, ((3, 1),)), "yes"),  # two ahead
        (GridState((3, 3), R, ((2, 4),)), "yes"),  # behind-left diagonal: unseen, still within 2
        (GridState((1, 1), R, ((4, 1),)), "no"),
        (GridState((1, 1), R, ()), "no"),
    ],
)
def test_ball_within_2_on_hand_made_states(state, expected):
    assert value("ball_within_2", state) == expected


@pytest.mark.parametrize(
    ("state", "side", "visible"),
    [
        (GridState((1, 6), R, ()), "ahead", "yes"),
        (GridState((6, 1), D, ()), "ahead", "yes"),
        (GridState((6, 1), U, ()), "behind", "no"),
        (GridState((1, 1), R, ()), "right", "no"),  # facing east, the goal is south-east: right, 5 cells off
        (GridState((5, 5), L, ()), "left", "no"),  # facing west, the goal is south-east: behind-left
        (GridState((4, 6), U, ()), "right", "yes"),
    ],
)
def test_goal_side_and_visibility_on_hand_made_states(state, side, visible):
    assert value("goal_side", state) == side
    assert value("goal_visible", state) == visible


def test_rtg_sign():
    state = GridState((1, 1), R, ())
    assert [value("rtg_sign", state, r) for r in (-1, 0, 0.9)] == ["negative", "zero", "positive"]
    with pytest.raises(ConfigError):
        variable("rtg_sign")(state, float("nan"))


def test_view_geometry_agrees_with_the_env_on_every_pose():
    """The goal is in the rendered view exactly where view_coords says, and the front cell is view (3, 5)."""
    renderer = StateRenderer()
    for pos, d in valid_poses():
        state = GridState(pos, int(d), ())
        obs = renderer.render(state)
        goal_cells = {tuple(c) for c in np.argwhere(obs[..., 0] == OBJECT["goal"])}
        expected = {view_coords(state, state.goal)} if value("goal_visible", state) == "yes" else set()
        assert goal_cells == expected, state
        assert view_coords(state, state.front) == (3, 5)


def test_labels_vectorise_and_bad_input_is_one_line():
    states = [GridState((1, 1), R, ((2, 1),)), GridState((1, 1), U, ())]
    assert labels("front_object", states, 0.9).tolist() == [0, 2]
    assert labels("rtg_sign", states, [-1.0, 1.0]).tolist() == [0, 2]
    with pytest.raises(ConfigError, match="unknown variable 'nope'"):
        labels("nope", states, 0.9)
    with pytest.raises(DTCircuitsError):
        labels("front_object", [GridState((0, 0), R, ())], 0.9)
    assert set(VARIABLES) >= {"front_object", "ball_within_2", "goal_visible", "goal_side", "rtg_sign"}


# -- read from the view: the agent's own rollouts carry no grid state ------------------------------------------------


def test_view_labels_agree_with_the_grid_on_the_probe_set():
    """Every variable the view and the pose tell, read from the rendered observations of the probe set (every pose
    with each front kind plus random states), equals the grid state's value on every state."""
    from dt_circuits.features.data import probe_set

    data = probe_set(seed=0, n_random=200)
    obs, rtgs = data.inputs.obs.numpy(), data.inputs.rtg.numpy()
    poses = np.array([(*s.agent_pos, s.agent_dir) for s in data.states])
    readable = [name for name, v in VARIABLES.items() if v.from_view is not None]
    assert set(readable) == set(VARIABLES) - {"ball_within_2"}
    for name in readable:
        assert np.array_equal(view_labels(name, obs, rtgs, poses), data.labels(name)), name


def test_a_variable_the_view_cannot_tell_is_refused_in_one_line():
    obs = np.ones((2, 7, 7, 3), np.uint8)
    with pytest.raises(ConfigError, match="ball_within_2.*cannot be read from an observation: a ball behind"):
        view_labels("ball_within_2", obs, [0.9, 0.9], np.zeros((2, 3), np.int64))
    with pytest.raises(ConfigError, match=r"expected \(N, 7, 7, 3\) and \(N, 3\)"):
        view_labels("ball_in_front", obs, [0.9, 0.9], np.zeros((3, 3), np.int64))
    bad = obs.copy()
    bad[:, 3, 5, 0] = OBJECT["key"]
    with pytest.raises(ConfigError, match="not a Dynamic Obstacles observation"):
        view_labels("front_object", bad, [0.9, 0.9], np.array([[1, 1, 0], [1, 1, 0]]))
