"""Grid states generated through the real environment, grouped into the families claims are tested on.

A state is requested as a pose plus obstacle positions; it is rendered through a real Dynamic Obstacles env (the
pose's view from ``gen_obs()``, each obstacle where the env's ``get_view_coords`` shows it; the same bytes as
placing the state in the env, tested over every pose), so every observation is one the env could emit. Nothing here
is a hand-typed array.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from minigrid.core.world_object import Ball

from dt_circuits.core.errors import InvalidStateError
from dt_circuits.env.spec import DIR_TO_VEC, Direction, EnvSpec

Cell = tuple[int, int]
FRONT_KINDS = ("wall", "obstacle", "goal", "empty")


@dataclass(frozen=True)
class GridState:
    """One agent pose and obstacle layout in the 8x8 grid (the goal never moves)."""

    agent_pos: Cell
    agent_dir: int
    obstacles: tuple[Cell, ...]
    goal: Cell = (6, 6)

    @property
    def front(self) -> Cell:
        dx, dy = DIR_TO_VEC[int(self.agent_dir)]
        return (self.agent_pos[0] + dx, self.agent_pos[1] + dy)


def _interior(spec: EnvSpec) -> list[Cell]:
    return [(x, y) for y in range(1, spec.size - 1) for x in range(1, spec.size - 1)]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _check_cell(value: object, what: str) -> None:
    """Raise InvalidStateError unless ``value`` is an (x, y) pair of integers (a cell, not 1.5 or "ab")."""
    try:
        x, y = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise InvalidStateError(f"{what} must be an (x, y) pair of integers, got {value!r}") from None
    if not (_is_int(x) and _is_int(y)):
        raise InvalidStateError(f"{what} must be an (x, y) pair of integers, got {value!r}")


def validate_state(state: GridState, spec: EnvSpec = EnvSpec()) -> None:
    """Raise InvalidStateError naming the first reason ``state`` cannot exist in the env.

    Types are checked first: a request such as agent_dir 1.5 or a 3-number obstacle must be refused by name,
    not silently truncated into some other state.
    """
    if not isinstance(state, GridState):
        raise InvalidStateError(f"a state must be a GridState, got {type(state).__name__}")
    lo, hi = 1, spec.size - 2
    _check_cell(state.goal, "goal")
    _check_cell(state.agent_pos, "agent_pos")
    if not _is_int(state.agent_dir):
        raise InvalidStateError(f"agent_dir must be an integer 0..3 (right, down, left, up), got {state.agent_dir!r}")
    try:
        obstacles = list(state.obstacles)
    except TypeError:
        raise InvalidStateError(f"obstacles must be a sequence of (x, y) cells, got {state.obstacles!r}") from None
    for ob in obstacles:
        _check_cell(ob, "each obstacle")
    if tuple(state.goal) != spec.goal_pos:
        raise InvalidStateError(f"goal moved to {tuple(state.goal)}; Dynamic Obstacles fixes it at {spec.goal_pos}")
    if int(state.agent_dir) not in DIR_TO_VEC:
        raise InvalidStateError(f"agent_dir must be 0..3 (right, down, left, up), got {state.agent_dir!r}")
    ax, ay = state.agent_pos
    if not (0 <= ax < spec.size and 0 <= ay < spec.size):
        raise InvalidStateError(f"agent at {tuple(state.agent_pos)} is outside the {spec.size}x{spec.size} grid")
    if not (lo <= ax <= hi and lo <= ay <= hi):
        raise InvalidStateError(f"agent at {tuple(state.agent_pos)} is on a wall")
    if tuple(state.agent_pos) == spec.goal_pos:
        raise InvalidStateError(f"agent at {tuple(state.agent_pos)} is on the goal (the episode would be over)")
    seen: set[Cell] = set()
    for ob in obstacles:
        ob = tuple(ob)
        if not (0 <= ob[0] < spec.size and 0 <= ob[1] < spec.size):
            raise InvalidStateError(f"obstacle at {ob} is outside the {spec.size}x{spec.size} grid")
        if not (lo <= ob[0] <= hi and lo <= ob[1] <= hi):
            raise InvalidStateError(f"obstacle at {ob} is on a wall")
        if ob == spec.goal_pos:
            raise InvalidStateError(f"obstacle at {ob} is on the goal")
        if ob == tuple(state.agent_pos):
            raise InvalidStateError(f"agent at {ob} is on an obstacle")
        if ob in seen:
            raise InvalidStateError(f"two obstacles at {ob}")
        seen.add(ob)
    if len(obstacles) > spec.n_obstacles:
        raise InvalidStateError(f"{len(obstacles)} obstacles; the env has at most {spec.n_obstacles}")


def check_request(*, seed: int, n: int | None = None) -> None:
    """Raise InvalidStateError for a family request numpy would reject obscurely (negative seed) or that
    would give an empty family (n < 1), on which every claim statistic is NaN."""
    if not _is_int(seed) or seed < 0:
        raise InvalidStateError(f"seed must be a non-negative integer, got {seed!r}")
    if n is not None and (not _is_int(n) or n < 1):
        raise InvalidStateError(f"the number of states must be a positive integer, got {n!r}")


#: the encoding of the obstacle ``StateRenderer.place`` puts in the env
_BALL = np.array(Ball().encode(), dtype=np.uint8)
#: (spec, agent_pos, agent_dir) -> :meth:`StateRenderer.pose_view`, shared by every renderer in the process
_POSE_VIEWS: dict[tuple[EnvSpec, Cell, int], tuple[np.ndarray, dict[Cell, tuple[int, int]]]] = {}


class StateRenderer:
    """Renders GridStates to observations with one reusable real env (resetting an env is the slow part).

    The env renders each agent pose once, with no obstacles (:meth:`pose_view`); a state's observation is that
    view with a ball written where the env's own ``get_view_coords`` puts each obstacle it can see. Balls hide
    nothing (``see_behind``), so nothing else in the view depends on them; the result equals placing the state in
    the env and calling ``gen_obs()`` (:meth:`render_in_env`), checked state by state in tests/test_scenarios.py
    over every pose. Rendering ~13,000 states through the env took ~1.9 s of a raw-index claims run on one core.
    An observation is a function of the state alone, so each is kept (up to ``CACHED_RENDERS``): the
    counterexample search meets the same states again and again while shrinking.
    """

    #: rendered observations kept (147 bytes each)
    CACHED_RENDERS = 200_000

    def __init__(self, spec: EnvSpec = EnvSpec()) -> None:
        self.spec = spec
        self.env = spec.make()
        self.env.reset(seed=0)
        self._rendered: dict[tuple, np.ndarray] = {}

    def place(self, state: GridState) -> None:
        """Put the env into ``state`` (validated): clear old balls, set pose, place balls."""
        validate_state(state, self.spec)
        env = self.env
        for ball in env.obstacles:
            if ball.cur_pos is not None:
                env.grid.set(*ball.cur_pos, None)
        env.obstacles = []
        for pos in state.obstacles:
            ball = Ball()
            env.grid.set(*pos, ball)
            ball.init_pos = ball.cur_pos = tuple(pos)
            env.obstacles.append(ball)
        env.agent_pos = tuple(state.agent_pos)
        env.agent_dir = int(state.agent_dir)

    def render(self, state: GridState) -> np.ndarray:
        """The (7, 7, 3) uint8 index observation the env emits in ``state``."""
        key = state_key(state)
        if key is not None and key in self._rendered:
            return self._rendered[key].copy()
        validate_state(state, self.spec)
        base, seen = self.pose_view((int(state.agent_pos[0]), int(state.agent_pos[1])), int(state.agent_dir))
        obs = base.copy()
        for ob in state.obstacles:
            where = seen.get((int(ob[0]), int(ob[1])))
            if where is not None:
                obs[where] = _BALL
        if key is not None and len(self._rendered) < self.CACHED_RENDERS:
            self._rendered[key] = obs.copy()
        return obs

    def pose_view(self, agent_pos: Cell, agent_dir: int) -> tuple[np.ndarray, dict[Cell, tuple[int, int]]]:
        """(the observation the env emits at this pose with no obstacles, {interior cell: the view cell showing
        it} for every interior cell in sight), rendered through the env once per pose and spec in a process (every
        renderer of the spec shares it: the walls and the goal do not move, and ``place`` clears the balls)."""
        key = (self.spec, agent_pos, agent_dir)
        if key not in _POSE_VIEWS:
            base = self.render_in_env(GridState(agent_pos, agent_dir, (), self.spec.goal_pos))
            size = base.shape[0]
            seen = {}
            for cell in _interior(self.spec):
                vx, vy = self.env.get_view_coords(*cell)
                if 0 <= vx < size and 0 <= vy < size and base[vx, vy, 0] != 0:  # 0: a cell the agent cannot see
                    seen[cell] = (int(vx), int(vy))
            _POSE_VIEWS[key] = (base, seen)
        return _POSE_VIEWS[key]

    def render_in_env(self, state: GridState) -> np.ndarray:
        """The observation of ``state`` the slow way: placed in the env, then ``gen_obs()`` (what :meth:`render`
        must equal)."""
        self.place(state)
        return self.env.gen_obs()["image"].astype(np.uint8)

    def render_many(self, states: Iterable[GridState]) -> np.ndarray:
        arrays = [self.render(s) for s in states]
        if not arrays:
            return np.zeros((0, 7, 7, 3), dtype=np.uint8)
        return np.stack(arrays)


def state_key(state: GridState) -> tuple | None:
    """A hashable key naming the state exactly (None when its fields are not plain cells: it is then not cached,
    and ``place`` says what is wrong with it)."""
    try:
        cells = (state.agent_pos, *state.obstacles, state.goal)
        if not all(len(c) == 2 for c in cells):
            return None
        return (
            tuple(int(v) for v in state.agent_pos),
            int(state.agent_dir),
            tuple(tuple(int(v) for v in o) for o in state.obstacles),
            tuple(int(v) for v in state.goal),
        )
    except (TypeError, ValueError, AttributeError):  # not a GridState at all: place() names the problem
        return None


@dataclass(frozen=True)
class StateFamily:
    """A named set of states with their observations: the unit a claim is evaluated over."""

    name: str
    description: str
    states: tuple[GridState, ...]
    obs: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.states)

    def __post_init__(self) -> None:
        if self.obs.shape != (len(self.states), 7, 7, 3):
            raise ValueError(f"family {self.name!r}: obs shape {self.obs.shape} does not match states")


def _front_kind(state: GridState, spec: EnvSpec) -> str:
    fx, fy = state.front
    if not (1 <= fx <= spec.size - 2 and 1 <= fy <= spec.size - 2):
        return "wall"
    if (fx, fy) == spec.goal_pos:
        return "goal"
    if (fx, fy) in {tuple(o) for o in state.obstacles}:
        return "obstacle"
    return "empty"


def front_kind(state: GridState, spec: EnvSpec = EnvSpec()) -> str:
    """What is directly in front of the agent: 'wall', 'obstacle', 'goal' or 'empty'."""
    validate_state(state, spec)
    return _front_kind(state, spec)


def _random_obstacles(rng: np.random.Generator, spec: EnvSpec, n: int, forbidden: set[Cell]) -> tuple[Cell, ...]:
    free = [c for c in _interior(spec) if c not in forbidden and c != spec.goal_pos]
    picks = rng.choice(len(free), size=min(n, len(free)), replace=False)
    return tuple(free[i] for i in sorted(picks))


def valid_poses(spec: EnvSpec = EnvSpec()) -> list[tuple[Cell, int]]:
    """Every (interior cell except the goal) x direction: the poses an agent can be in."""
    return [(c, d) for c in _interior(spec) if c != spec.goal_pos for d in Direction]


def in_front(
    kind: str,
    *,
    seed: int = 0,
    spec: EnvSpec = EnvSpec(),
    other_obstacles: int | None = None,
    renderer: StateRenderer | None = None,
) -> StateFamily:
    """All valid poses with ``kind`` directly in front; the other obstacles placed by a seeded RNG.

    Other obstacles never sit in the front cell (that would change ``kind``). For 'obstacle' the front ball is
    one of the env's four, so ``other_obstacles`` defaults to three; otherwise four.
    """
    if not isinstance(kind, str) or kind not in FRONT_KINDS:
        raise InvalidStateError(f"unknown front kind {kind!r}; expected one of {', '.join(FRONT_KINDS)}")
    check_request(seed=seed)
    n_other = other_obstacles
    if n_other is None:
        n_other = spec.n_obstacles - 1 if kind == "obstacle" else spec.n_obstacles
    rng = np.random.default_rng([seed, FRONT_KINDS.index(kind)])
    states = []
    for pos, d in valid_poses(spec):
        base = GridState(pos, int(d), ())
        fk = _front_kind(base, spec)
        wanted_front = "empty" if kind == "obstacle" else kind
        if fk != wanted_front:
            continue
        forced = (base.front,) if kind == "obstacle" else ()
        others = _random_obstacles(rng, spec, n_other, {pos, base.front})
        states.append(GridState(pos, int(d), tuple(sorted(forced + others))))
    return _rendered(f"{kind}-in-front", f"every valid pose with {kind} directly in front, other obstacles seeded "
                     f"({seed})", states, spec, renderer)  # fmt: skip


#: families of at least this many states keep their observations in the disk cache (:mod:`dt_circuits.core.cache`):
#: rendering a claim family's 4,096 states through Minigrid takes ~1 s in every process, loading them ~10 ms
CACHED_FAMILY_SIZE = 256


def _rendered(
    name: str, description: str, states: Sequence[GridState], spec: EnvSpec, renderer: StateRenderer | None
) -> StateFamily:
    """A family of ``states`` with their observations rendered through the real env (or, for a large family, the
    same observations from the disk cache, keyed by the exact states)."""
    states = tuple(states)

    def render() -> dict[str, np.ndarray]:
        return {"obs": (renderer or StateRenderer(spec)).render_many(states)}

    key = _render_key(states, spec) if len(states) >= CACHED_FAMILY_SIZE else None
    if key is None:
        return StateFamily(name=name, description=description, states=states, obs=render()["obs"])
    from dt_circuits.core.cache import cached_arrays

    return StateFamily(name=name, description=description, states=states,
                       obs=cached_arrays("rendered-states", key, render)["obs"])  # fmt: skip


def _render_key(states: tuple[GridState, ...], spec: EnvSpec) -> dict | None:
    """Everything rendered observations depend on: the exact states, the env's spec, the code that renders them
    and the versions of the libraries that draw them; None (no caching) when a state or the code cannot be read."""
    import hashlib

    from dt_circuits.core.cache import source_key

    keys = [state_key(s) for s in states]
    source = source_key(StateRenderer, EnvSpec)
    if source is None or any(k is None for k in keys):
        return None
    return {"states": hashlib.sha256(repr(keys).encode()).hexdigest(), "n": len(states), "spec": spec.to_dict(),
            **source}  # fmt: skip


def goal_in_front(
    side: str,
    *,
    n: int = 64,
    seed: int = 0,
    spec: EnvSpec = EnvSpec(),
    renderer: StateRenderer | None = None,
) -> StateFamily:
    """The goal directly in front, approached from 'top' (facing down) or 'left' (facing right).

    There is one such pose per side, so the family varies the other obstacles (seeded) over ``n`` layouts,
    de-duplicated.
    """
    gx, gy = spec.goal_pos
    poses = {"top": ((gx, gy - 1), Direction.DOWN), "left": ((gx - 1, gy), Direction.RIGHT)}
    if not isinstance(side, str) or side not in poses:
        raise InvalidStateError(f"unknown goal side {side!r}; expected 'top' or 'left'")
    check_request(seed=seed, n=n)
    pos, d = poses[side]
    rng = np.random.default_rng([seed, 100 + list(poses).index(side)])
    seen: dict[GridState, None] = {}
    for _ in range(n * 4):
        if len(seen) >= n:
            break
        obstacles = _random_obstacles(rng, spec, spec.n_obstacles, {pos})
        seen.setdefault(GridState(pos, int(d), obstacles), None)
    states = list(seen)
    description = f"goal directly in front from the {side}, {len(states)} seeded obstacle layouts ({seed})"
    return _rendered(f"goal-from-{side}", description, states, spec, renderer)


def random_states(
    n: int, *, seed: int = 0, spec: EnvSpec = EnvSpec(), renderer: StateRenderer | None = None
) -> StateFamily:
    """Uniformly random valid states (pose and full obstacle layout), e.g. as a mean-ablation dataset."""
    check_request(seed=seed, n=n)
    rng = np.random.default_rng([seed, 7])
    poses = valid_poses(spec)
    states = []
    for _ in range(n):
        pos, d = poses[rng.integers(len(poses))]
        states.append(GridState(pos, int(d), _random_obstacles(rng, spec, spec.n_obstacles, {pos})))
    renderer = renderer or StateRenderer(spec)
    return StateFamily(
        name="random-states",
        description=f"{n} uniformly random valid states ({seed})",
        states=tuple(states),
        obs=renderer.render_many(states),
    )


@dataclass(frozen=True)
class WalkDataset:
    """Observations and timesteps visited by a seeded random walk in the real env (mean-ablation data)."""

    obs: np.ndarray
    timesteps: np.ndarray


def random_walk(
    n: int, *, seed: int = 0, spec: EnvSpec = EnvSpec(), max_episode_steps: int | None = None
) -> WalkDataset:
    """``n`` observations from uniformly random actions, resetting on episode end, fully seeded."""
    check_request(seed=seed, n=n)
    env = spec.make()
    rng = np.random.default_rng([seed, 11])
    obs_list, ts = [], []
    episode = 0
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    t = 0
    while len(obs_list) < n:
        obs_list.append(obs["image"].astype(np.uint8))
        ts.append(t)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(3)))
        t += 1
        if terminated or truncated or (max_episode_steps and t >= max_episode_steps):
            episode += 1
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
            t = 0
    return WalkDataset(obs=np.stack(obs_list), timesteps=np.asarray(ts, dtype=np.int64))
