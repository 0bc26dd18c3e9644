"""The context window a multi-timestep DT sees, built exactly as DTI's evaluation builds it.

DTI (``utils.initialize_padding_inputs`` and ``eval.evaluate_dt_agent``) always feeds a full window of
``n_timesteps``: the last ``n_timesteps`` observations and the actions between them, left-padded with all-zero
observations, the padding action (index ``n_actions``), RTG equal to the initial RTG, and timestep 0. Padding
changes the logits (the positions of the real tokens move), so every caller pads the same way, through here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dt_circuits.core.errors import InvalidInputError


@dataclass(frozen=True)
class Window:
    """One full context window: obs (T, 7, 7, 3), actions (T - 1,), rtg (T,), timesteps (T,)."""

    obs: np.ndarray
    actions: np.ndarray
    rtg: np.ndarray
    timesteps: np.ndarray


def pad_window(
    obs: np.ndarray,
    actions: np.ndarray,
    rtg: np.ndarray,
    timesteps: np.ndarray,
    *,
    n_timesteps: int,
    pad_action: int,
    initial_rtg: float,
) -> Window:
    """The last ``n_timesteps`` of a trajectory prefix (obs (t, 7, 7, 3), actions (t - 1,), rtg and timesteps
    (t,)), left-padded DTI's way to a full window."""
    obs, actions = np.asarray(obs), np.asarray(actions, dtype=np.int64)
    rtg, timesteps = np.asarray(rtg, dtype=np.float32), np.asarray(timesteps, dtype=np.int64)
    t = len(obs)
    if t < 1 or actions.shape != (t - 1,) or rtg.shape != (t,) or timesteps.shape != (t,):
        raise InvalidInputError(
            f"a trajectory prefix needs t >= 1 observations, t - 1 actions, t RTGs and t timesteps; got "
            f"{len(obs)}, {actions.shape}, {rtg.shape}, {timesteps.shape}"
        )
    keep = min(t, n_timesteps)
    n = n_timesteps - keep
    return Window(
        obs=np.concatenate([np.zeros((n, *obs.shape[1:]), dtype=obs.dtype), obs[t - keep :]]),
        actions=np.concatenate([np.full(n, pad_action, dtype=np.int64), actions[t - 1 - (keep - 1) :]]),
        rtg=np.concatenate([np.full(n, initial_rtg, dtype=np.float32), rtg[t - keep :]]),
        timesteps=np.concatenate([np.zeros(n, dtype=np.int64), timesteps[t - keep :]]),
    )


def stack_windows(windows: list[Window]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(obs, rtg, timesteps, actions) batched in the model's argument order."""
    return (
        np.stack([w.obs for w in windows]),
        np.stack([w.rtg for w in windows]),
        np.stack([w.timesteps for w in windows]),
        np.stack([w.actions for w in windows]),
    )
