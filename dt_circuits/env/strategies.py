"""Hypothesis strategies for valid grid states, RTGs and timesteps.

Used by the property tests and by the claims' counterexample search: every state drawn here passes
``validate_state``, so a failure found by shrinking is a real state the agent could face.
"""

from __future__ import annotations

import functools

from hypothesis import strategies as st

from dt_circuits.env.scenarios import GridState, valid_poses
from dt_circuits.env.spec import EnvSpec

_SPEC = EnvSpec()


@st.composite
def grid_states(
    draw: st.DrawFn,
    spec: EnvSpec = _SPEC,
    front: str | None = None,
    min_obstacles: int = 0,
) -> GridState:
    """A valid GridState; ``front='obstacle'`` forces a ball directly in front, ``'empty'`` keeps it clear."""
    pos, d = draw(_sampled(tuple(_poses(spec, front in ("obstacle", "empty")))))
    base = GridState(pos, int(d), ())
    interior = _interior(spec)
    free = tuple(c for c in interior if c not in (pos, spec.goal_pos, base.front))
    forced = (base.front,) if front == "obstacle" else ()
    n_other = spec.n_obstacles - len(forced)
    lo = max(0, min_obstacles - len(forced))
    others = list(draw(_cells(free, lo, n_other)))
    if front is None and draw(st.booleans()) and base.front in interior and base.front != spec.goal_pos:
        others = others[: n_other - 1] + [base.front] if others else [base.front]
    return GridState(pos, int(d), tuple(sorted(set(forced + tuple(others)))))


@functools.cache
def _sampled(values: tuple) -> st.SearchStrategy:
    """``st.sampled_from(values)``, built once per sequence (building strategies is most of a draw's cost; the
    strategy, so every draw, is the same)."""
    return st.sampled_from(values)


@functools.cache
def _cells(free: tuple, lo: int, hi: int) -> st.SearchStrategy:
    """Between ``lo`` and ``hi`` distinct cells of ``free``, built once per (free, lo, hi)."""
    return st.lists(_sampled(free), min_size=lo, max_size=hi, unique=True)


@functools.cache
def _interior(spec: EnvSpec) -> list[tuple[int, int]]:
    return [(x, y) for y in range(1, spec.size - 1) for x in range(1, spec.size - 1)]


@functools.cache
def _poses(spec: EnvSpec, interior_front: bool) -> list[tuple[tuple[int, int], int]]:
    """The valid poses, or (``interior_front``) those whose front cell is an interior cell other than the goal
    (computed once: the counterexample search draws thousands of states; the list, so the draws, is the same)."""
    poses = valid_poses(spec)
    if not interior_front:
        return poses
    return [
        (p, d)
        for p, d in poses
        if (s := GridState(p, int(d), ())).front != spec.goal_pos
        and 1 <= s.front[0] <= spec.size - 2
        and 1 <= s.front[1] <= spec.size - 2
    ]


@functools.cache
def _front_poses(spec: EnvSpec, kind: str) -> list[tuple[tuple[int, int], int]]:
    from dt_circuits.env.scenarios import front_kind

    return [(p, int(d)) for p, d in valid_poses(spec) if front_kind(GridState(p, int(d), ()), spec) == kind]


def rtgs(min_value: float = -1.0, max_value: float = 1.0) -> st.SearchStrategy[float]:
    """Finite RTGs in the range the post studies."""
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, width=32)


def timesteps(max_value: int = 300) -> st.SearchStrategy[int]:
    return st.integers(0, max_value)


@st.composite
def family_states(draw: st.DrawFn, family: str, spec: EnvSpec = _SPEC) -> GridState:
    """A valid state of a named family ('<kind>-in-front', 'goal-from-top', 'goal-from-left'), any layout.

    The counterexample search draws from here, so every state it reports belongs to the family the claim is
    about, and hypothesis can shrink it (fewer obstacles, simpler pose).
    """
    from dt_circuits.env.scenarios import FRONT_KINDS

    interior = _interior(spec)
    if family.startswith("goal-from-"):
        gx, gy = spec.goal_pos
        side = family.removeprefix("goal-from-")
        pos, d = {"top": ((gx, gy - 1), 1), "left": ((gx - 1, gy), 0)}[side]
        free = tuple(c for c in interior if c not in (pos, spec.goal_pos))
        obstacles = draw(_cells(free, 0, spec.n_obstacles))
        return GridState(pos, d, tuple(sorted(obstacles)))
    kind = family.removesuffix("-in-front")
    if kind not in FRONT_KINDS:
        raise ValueError(f"unknown state family {family!r}")
    if kind in ("obstacle", "empty"):
        return draw(grid_states(spec, front=kind))
    pos, d = draw(_sampled(tuple(_front_poses(spec, kind))))
    free = tuple(c for c in interior if c not in (pos, spec.goal_pos))
    obstacles = draw(_cells(free, 0, spec.n_obstacles))
    return GridState(pos, d, tuple(sorted(obstacles)))
