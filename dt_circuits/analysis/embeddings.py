"""Embedding weights read along an action or preference direction (the post's Table 3 and Fig. 11/14/15).

Because the state token is ``encode(obs) @ W_state`` and nothing non-linear sits between an embedding and the
direct path to the logits, ``W_state @ W_U @ u`` gives, for every observation input, how much one unit of
that input pushes the readout u *directly*. For index observations an input is (channel, x, y) and its value
is the Minigrid index (so a goal, 8, pushes 8x as hard as object value 1 -- the ordinality artefact the post
blames for goal avoidance); for one-hot observations an input is (bit, x, y) and only set bits count.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from dt_circuits.analysis.attribution import DirectionLike, residual_direction
from dt_circuits.core.errors import ConfigError, InvalidInputError
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.spec import CHANNELS, COLOR, FRONT_VIEW_CELL, N_COLORS, N_OBJECTS, OBJECT, ONE_HOT_DEPTH, STATE

Cell = tuple[int, int]
CellValue = tuple[int, int, int]  # (object, colour, state) Minigrid indices

#: What the env writes into a cell for each thing in Dynamic Obstacles (object, colour, state): Table 3's rows.
CELL_VALUES: dict[str, CellValue] = {
    "empty": (OBJECT["empty"], 0, 0),
    "wall": (OBJECT["wall"], COLOR["grey"], 0),
    "obstacle": (OBJECT["ball"], COLOR["blue"], 0),
    "goal": (OBJECT["goal"], COLOR["green"], 0),
}


def input_channel_names(model: DecisionTransformer) -> list[str]:
    """Names of the observation input channels: object/colour/state, or one per one-hot bit ("object=wall")."""
    if model.cfg.obs_encoding == "index":
        return list(CHANNELS)
    groups = [("object", OBJECT), ("colour", COLOR), ("state", STATE)]
    names: list[str] = []
    for group, table in groups:
        by_index = {v: k for k, v in table.items()}
        names += [f"{group}={by_index[i]}" for i in range(len(table))]
    assert len(names) == ONE_HOT_DEPTH
    return names


def as_grid(model: DecisionTransformer, flat: torch.Tensor) -> torch.Tensor:
    """(..., n_obs_inputs) -> (..., channels, 7, 7) indexed [channel, x, y] (the model's flattening order)."""
    n_channels = model.cfg.n_obs_inputs // 49
    return flat.reshape(*flat.shape[:-1], n_channels, 7, 7)


def state_embedding_projection(model: DecisionTransformer, direction: DirectionLike) -> torch.Tensor:
    """``W_state @ W_U @ u`` as (channels, 7, 7) [channel, x, y]: per-input direct push along the direction."""
    r = residual_direction(model, direction)
    return as_grid(model, model.W_state.detach().to(torch.float64) @ r)


def obs_contributions(
    model: DecisionTransformer, obs: torch.Tensor | np.ndarray, direction: DirectionLike
) -> torch.Tensor:
    """Per-input direct contribution for concrete observations, (B, channels, 7, 7): input value x weight.

    Summed over everything it equals ``state_embed @ W_U @ u``; summed over channels at one cell it is that
    cell's contribution (Table 3).
    """
    obs_t = torch.as_tensor(np.asarray(obs)) if not isinstance(obs, torch.Tensor) else obs
    if obs_t.ndim != 4 or tuple(obs_t.shape[1:]) != (7, 7, 3):
        raise InvalidInputError(f"obs must have shape (B, 7, 7, 3) [x, y, channel], got {tuple(obs_t.shape)}")
    enc = as_grid(model, model.encode_obs(obs_t.to(model.W_U.device)).to(torch.float64))
    return enc * state_embedding_projection(model, direction)


def _bits(value: CellValue) -> list[int]:
    obj, col, st = value
    return [obj, N_OBJECTS + col, N_OBJECTS + N_COLORS + st]


def cell_contribution(
    model: DecisionTransformer, direction: DirectionLike, value: CellValue | str, cell: Cell = FRONT_VIEW_CELL
) -> float:
    """Direct push along the direction of one cell holding ``value`` (a CELL_VALUES name or an index triple).

    Index encoding: sum over channels of value x weight (Table 3's arithmetic). One-hot: sum of the weights of
    the three set bits.
    """
    triple = CELL_VALUES[value] if isinstance(value, str) and value in CELL_VALUES else value
    if isinstance(triple, str) or len(triple) != 3:
        known = ", ".join(CELL_VALUES)
        raise ConfigError(f"unknown cell value {value!r}; expected one of {known} or (object, colour, state)")
    x, y = cell
    if not (0 <= x < 7 and 0 <= y < 7):
        raise ConfigError(f"cell {cell} is outside the 7x7 view")
    w = state_embedding_projection(model, direction)[:, x, y]
    if model.cfg.obs_encoding == "index":
        return float(sum(float(v) * float(w[c]) for c, v in enumerate(triple)))
    return float(sum(float(w[b]) for b in _bits(tuple(int(v) for v in triple))))  # type: ignore[arg-type]


def cell_table(
    model: DecisionTransformer,
    direction: DirectionLike = "forward-right",
    cell: Cell = FRONT_VIEW_CELL,
    values: Mapping[str, CellValue] | None = None,
) -> dict[str, float]:
    """Table 3: the direct contribution of each thing (empty, wall, obstacle, goal) placed at ``cell``."""
    return {name: cell_contribution(model, direction, v, cell) for name, v in (values or CELL_VALUES).items()}


def rtg_embedding_projection(model: DecisionTransformer, direction: DirectionLike, rtg: float = 1.0) -> float:
    """``rtg * W_rtg . W_U u``: what the RTG token would push if moved wholesale (the post's ~1.13 at rtg 1)."""
    return float(rtg) * float(model.W_rtg.detach().to(torch.float64) @ residual_direction(model, direction))


def time_embedding_projection(
    model: DecisionTransformer, direction: DirectionLike, timesteps: torch.Tensor | np.ndarray | None = None
) -> torch.Tensor:
    """``W_time[t] . W_U u`` for each t (default all): Fig. 11, the time embedding's direct push over time."""
    r = residual_direction(model, direction)
    w = model.W_time.detach().to(torch.float64)
    if timesteps is None:
        return w @ r
    ts = torch.as_tensor(np.asarray(timesteps), dtype=torch.long)
    if ts.numel() and (int(ts.min()) < 0 or int(ts.max()) > model.cfg.max_timestep):
        raise InvalidInputError(f"timesteps must be in 0..{model.cfg.max_timestep}")
    return w[ts] @ r
