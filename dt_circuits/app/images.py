"""Pictures: the agent's view drawn from an observation and the full grid drawn from a real env, by Minigrid's own
renderer (so what the page shows is what the env holds), and edited view cells as the env encodes objects."""

from __future__ import annotations

import numpy as np
from minigrid.core.grid import Grid
from minigrid.core.world_object import Ball, Goal, Wall

from dt_circuits.env.spec import AGENT_VIEW_CELL, OBJECT

#: tile size of both pictures, in pixels
TILE = 32
#: agent_dir "up": the agent always looks up in its own view
_VIEW_DIR = 3


def cell_code(kind: str) -> tuple[int, int, int]:
    """(object, colour, state) of a ball / goal / wall / empty cell as Dynamic Obstacles encodes it."""
    if kind == "empty":
        return (OBJECT["empty"], 0, 0)
    return tuple(int(v) for v in {"ball": Ball, "goal": Goal, "wall": Wall}[kind]().encode())  # type: ignore[return-value]


def apply_edits(obs: np.ndarray, edits: tuple[tuple[int, int, str], ...]) -> np.ndarray:
    """A copy of an index observation (7, 7, 3) with view cells overwritten by (x, y, kind) edits."""
    out = np.array(obs, dtype=np.uint8, copy=True)
    for x, y, kind in edits:
        out[x, y] = cell_code(kind)
    return out


def view_image(obs: np.ndarray) -> np.ndarray:
    """The agent's 7x7 view as Minigrid draws it (RGB), the agent at the bottom centre facing up."""
    grid, _ = Grid.decode(np.asarray(obs, dtype=np.uint8))
    return grid.render(TILE, agent_pos=AGENT_VIEW_CELL, agent_dir=_VIEW_DIR)


def grid_image(env) -> np.ndarray:  # noqa: ANN001 - a Minigrid env
    """The full grid of a real env with the agent's view highlighted (RGB)."""
    return env.get_frame(highlight=True, tile_size=TILE)
