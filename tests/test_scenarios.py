"""Generated states are real env states; families hold what their names promise; bad requests are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from dt_circuits.core.errors import InvalidStateError
from dt_circuits.env.scenarios import (
    FRONT_KINDS,
    GridState,
    StateRenderer,
    front_kind,
    goal_in_front,
    in_front,
    random_states,
    random_walk,
    valid_poses,
    validate_state,
)
from dt_circuits.env.spec import COLOR, FRONT_VIEW_CELL, OBJECT, EnvSpec
from dt_circuits.env.strategies import grid_states

RENDERER = StateRenderer()
FRONT_CODES = {
    "wall": (OBJECT["wall"], COLOR["grey"]),
    "obstacle": (OBJECT["ball"], COLOR["blue"]),
    "goal": (OBJECT["goal"], COLOR["green"]),
    "empty": (OBJECT["empty"], 0),
}


@pytest.mark.parametrize("kind", FRONT_KINDS)
def test_in_front_family_has_kind_in_front_over_every_pose(kind):
    fam = in_front(kind, seed=0)
    fx, fy = FRONT_VIEW_CELL
    assert len(fam) > 0
    assert {tuple(o) for o in fam.obs[:, fx, fy, :2]} == {FRONT_CODES[kind]}
    assert all(front_kind(s) == kind for s in fam.states)
    poses = {(s.agent_pos, s.agent_dir) for s in fam.states}
    assert len(poses) == len(fam)  # each pose once
    expected = [(p, int(d)) for p, d in valid_poses() if front_kind(GridState(p, int(d), ())) == kind]
    if kind == "obstacle":
        expected = [(p, int(d)) for p, d in valid_poses() if front_kind(GridState(p, int(d), ())) == "empty"]
    assert poses == set(expected)
    assert all(len(s.obstacles) == 4 for s in fam.states)


def test_family_counts():
    # 35 interior non-goal cells x 4 directions = 140 poses; the goal is in front in exactly 2 of them
    assert len(valid_poses()) == 140
    assert len(in_front("goal")) == 2
    assert len(in_front("wall")) + len(in_front("empty")) + 2 == 140


def test_families_are_seeded():
    a, b, c = in_front("obstacle", seed=1), in_front("obstacle", seed=1), in_front("obstacle", seed=2)
    assert a.states == b.states and np.array_equal(a.obs, b.obs)
    assert a.states != c.states


@pytest.mark.parametrize(("side", "direction"), [("top", 1), ("left", 0)])
def test_goal_in_front_from_each_side(side, direction):
    fam = goal_in_front(side, n=32, seed=0)
    assert len(fam) == 32
    assert all(s.agent_dir == direction and front_kind(s) == "goal" for s in fam.states)
    fx, fy = FRONT_VIEW_CELL
    assert (fam.obs[:, fx, fy, 0] == OBJECT["goal"]).all()
    assert len({s.obstacles for s in fam.states}) == 32


def test_random_states_and_walk_are_valid_and_seeded():
    fam = random_states(50, seed=3)
    for s in fam.states:
        validate_state(s)
    walk_a, walk_b = random_walk(300, seed=4), random_walk(300, seed=4)
    assert walk_a.obs.shape == (300, 7, 7, 3) and walk_a.obs.dtype == np.uint8
    np.testing.assert_array_equal(walk_a.obs, walk_b.obs)
    assert walk_a.timesteps[0] == 0 and (walk_a.timesteps == 0).sum() >= 2  # episodes restart


@given(grid_states())
def test_strategy_states_are_accepted_by_the_env(state):
    validate_state(state)
    obs = RENDERER.render(state)
    RENDERER.place(state)  # the render may come from the renderer's cache; put the env in the state to inspect it
    env = RENDERER.env
    assert tuple(env.agent_pos) == state.agent_pos and env.agent_dir == state.agent_dir
    balls = {tuple(b.cur_pos) for b in env.obstacles}
    assert balls == set(state.obstacles)
    fx, fy = FRONT_VIEW_CELL
    assert tuple(obs[fx, fy, :2]) == FRONT_CODES[front_kind(state)]
    # the env can step on from here: a real state, not only a picture
    env.step(0)


@given(grid_states(front="obstacle"))
def test_strategy_can_force_an_obstacle_in_front(state):
    assert front_kind(state) == "obstacle"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (GridState((0, 3), 0, ()), "on a wall"),
        (GridState((3, 3), 0, ((3, 3),)), "on an obstacle"),
        (GridState((3, 3), 0, ((9, 2),)), "outside"),
        (GridState((3, 3), 0, ((0, 2),)), "obstacle at \\(0, 2\\) is on a wall"),
        (GridState((3, 3), 0, (), goal=(1, 1)), "goal moved"),
        (GridState((6, 6), 0, ()), "on the goal"),
        (GridState((3, 3), 7, ()), "agent_dir"),
        (GridState((3, 3), 0, ((2, 2), (2, 2))), "two obstacles"),
        (GridState((3, 3), 0, ((1, 1), (1, 2), (1, 3), (1, 4), (1, 5))), "at most 4"),
        (GridState((-1, 3), 0, ()), "outside"),
    ],
)
def test_invalid_requests_raise_value_error_naming_the_problem(state, message):
    with pytest.raises(ValueError, match=message):
        RENDERER.render(state)
    with pytest.raises(InvalidStateError):
        validate_state(state)


def test_unknown_family_arguments_are_named():
    with pytest.raises(InvalidStateError, match="lava"):
        in_front("lava")
    with pytest.raises(InvalidStateError, match="bottom"):
        goal_in_front("bottom")


def test_spec_default_goal():
    assert EnvSpec().goal_pos == (6, 6)


def test_a_cached_render_is_the_env_rendering_and_cannot_be_changed_from_outside():
    renderer = StateRenderer()
    state = GridState((2, 3), 0, ((3, 3), (4, 5)))
    first = renderer.render(state)
    first[:] = 0  # a caller writing into its copy must not change what the next caller gets
    again = renderer.render(state)
    fresh = StateRenderer()
    fresh.CACHED_RENDERS = 0
    np.testing.assert_array_equal(again, fresh.render(state))
    assert again.any()


def _every_pose(spec: EnvSpec = EnvSpec()) -> list[tuple[tuple[int, int], int]]:
    cells = [(x, y) for y in range(1, spec.size - 1) for x in range(1, spec.size - 1)]
    return [(c, d) for c in cells if c != spec.goal_pos for d in range(4)]


def test_render_is_the_env_rendering_at_every_pose_with_each_obstacle_cell():
    """Every pose, alone and with one obstacle in each cell it may hold (4,900 states), then 2,000 seeded
    layouts of four: the view-and-paint render equals the env's own ``gen_obs()`` byte for byte."""
    spec = EnvSpec()
    fast, env_side = StateRenderer(spec), StateRenderer(spec)
    fast.CACHED_RENDERS = 0  # every state through the view-and-paint path, none from the renderer's cache
    interior = [(x, y) for y in range(1, spec.size - 1) for x in range(1, spec.size - 1) if (x, y) != spec.goal_pos]
    states = []
    for pos, d in _every_pose(spec):
        states.append(GridState(pos, d, ()))
        states += [GridState(pos, d, (c,)) for c in interior if c != pos]
    rng = np.random.default_rng(0)
    poses = _every_pose(spec)
    for _ in range(2000):
        pos, d = poses[rng.integers(len(poses))]
        free = [c for c in interior if c != pos]
        picked = rng.choice(len(free), size=spec.n_obstacles, replace=False)
        states.append(GridState(pos, d, tuple(free[i] for i in sorted(picked))))
    assert len(states) == 140 * 35 + 2000
    wrong = [s for s in states if not np.array_equal(fast.render(s), env_side.render_in_env(s))]
    assert not wrong, wrong[:5]
    seen_balls = sum(int((fast.render(s)[..., 0] == OBJECT["ball"]).sum()) for s in states[:4900])
    assert seen_balls > 1000  # the painted path was exercised, not only empty views


#: a second renderer, only ever used the slow way (its env is placed in each state)
IN_ENV = StateRenderer()


@given(grid_states())
def test_a_drawn_state_renders_as_the_env_renders_it(state):
    assert np.array_equal(RENDERER.render(state), IN_ENV.render_in_env(state))
