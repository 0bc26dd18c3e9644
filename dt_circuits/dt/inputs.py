"""Model inputs, validated: every way an input can be wrong is one InvalidInputError line naming the argument.

``as_model_inputs`` checks one-timestep inputs (obs (B, 7, 7, 3), rtg (B,), timestep (B,)); ``as_window_inputs``
checks a context window of T timesteps (obs (B, T, 7, 7, 3), rtg and timestep (B, T), actions (B, T - 1)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dt_circuits.core.errors import InvalidInputError
from dt_circuits.env.spec import CHANNEL_MAX

_CHANNEL_MAX_T = torch.tensor(CHANNEL_MAX)
#: Unsigned dtypes torch cannot compare on CPU; widened to int64 (values >= 2**63 wrap negative: out of range).
_WIDE_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)


def _whole(x: float) -> str:
    return f"{x:.0f}" if abs(x) < 1e15 else f"{x:.3g}"


def as_model_inputs(
    obs: Any, rtg: Any, timestep: Any, *, max_timestep: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate and convert user inputs; raise InvalidInputError naming the bad argument."""
    try:
        obs_t = obs if isinstance(obs, torch.Tensor) else torch.as_tensor(np.asarray(obs))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"obs must be an integer array of shape (B, 7, 7, 3): {exc}") from None
    if obs_t.ndim != 4 or tuple(obs_t.shape[1:]) != (7, 7, 3):
        raise InvalidInputError(f"obs must have shape (B, 7, 7, 3) [x, y, channel], got {tuple(obs_t.shape)}")
    if obs_t.dtype.is_floating_point or obs_t.dtype == torch.bool or obs_t.is_complex():
        raise InvalidInputError(f"obs must hold integer Minigrid indices (uint8), got dtype {obs_t.dtype}")
    if obs_t.dtype in _WIDE_UNSIGNED:
        obs_t = obs_t.to(torch.int64)
    batch = obs_t.shape[0]
    if batch and bool(((obs_t < 0) | (obs_t > _CHANNEL_MAX_T.to(obs_t.device))).any()):
        raise InvalidInputError(
            "obs has values outside Minigrid's ranges "
            f"(object 0..{CHANNEL_MAX[0]}, colour 0..{CHANNEL_MAX[1]}, state 0..{CHANNEL_MAX[2]})"
        )
    if rtg is None or (rtg.is_complex() if isinstance(rtg, torch.Tensor) else np.iscomplexobj(rtg)):
        raise InvalidInputError(f"rtg must be a real number or an array of real numbers, got {type(rtg).__name__}")
    try:
        with np.errstate(over="ignore"):  # 1e300 becomes inf in float32 and is refused just below, by name
            rtg_t = (
                rtg.to(torch.float32)
                if isinstance(rtg, torch.Tensor)
                else torch.as_tensor(np.asarray(rtg, dtype=np.float32))
            )
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(f"rtg must be a number or an array of numbers: {exc}") from None
    if rtg_t.ndim == 0 or rtg_t.numel() == 1:
        rtg_t = rtg_t.reshape(1).expand(batch)
    if tuple(rtg_t.shape) != (batch,):
        raise InvalidInputError(f"rtg must have shape ({batch},) or be a scalar, got {tuple(rtg_t.shape)}")
    if not torch.isfinite(rtg_t).all():
        raise InvalidInputError("rtg must be finite (got NaN or inf)")
    try:  # through numpy so a Python float stays float64 (1000.00001 must not round to a valid 1000.0)
        ts = timestep if isinstance(timestep, torch.Tensor) else torch.as_tensor(np.asarray(timestep))
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise InvalidInputError(f"timestep must be an integer or an array of integers: {exc}") from None
    if ts.is_complex():
        raise InvalidInputError("timestep must hold whole numbers, got complex values")
    if ts.dtype.is_floating_point and (not torch.isfinite(ts).all() or not torch.equal(ts, ts.round())):
        raise InvalidInputError("timestep must hold whole numbers")
    if ts.ndim == 0 or ts.numel() == 1:
        ts = ts.reshape(1).expand(batch)
    if tuple(ts.shape) != (batch,):
        raise InvalidInputError(f"timestep must have shape ({batch},) or be a scalar, got {tuple(ts.shape)}")
    if batch:
        # range-checked before the cast to int64, so 1e20 or 2**64 - 1 is reported as itself, not wrapped around
        wide = ts.to(torch.float64)
        lo, hi = float(wide.min()), float(wide.max())
        if lo < 0 or hi > max_timestep:
            raise InvalidInputError(
                f"timestep must be in 0..{max_timestep} (the time embedding's range), got {_whole(lo)}..{_whole(hi)}"
            )
    return obs_t, rtg_t, ts.to(torch.long)


def as_window_inputs(
    obs: Any, rtg: Any, timestep: Any, actions: Any, *, max_timestep: int, n_timesteps: int, n_actions: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate a context window: obs (B, T, 7, 7, 3), rtg and timestep (B, T), actions (B, T - 1).

    Each timestep is checked as a one-timestep input (same messages); actions may hold the padding index
    ``n_actions`` (DTI pads the left of a short window with it).
    """
    try:
        obs_t = obs if isinstance(obs, torch.Tensor) else torch.as_tensor(np.asarray(obs))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"obs must be an integer array of shape (B, T, 7, 7, 3): {exc}") from None
    if obs_t.ndim != 5 or tuple(obs_t.shape[2:]) != (7, 7, 3):
        raise InvalidInputError(
            f"obs must have shape (B, T, 7, 7, 3) [batch, timestep, x, y, channel] for a {n_timesteps}-timestep "
            f"model, got {tuple(obs_t.shape)}"
        )
    b, t = int(obs_t.shape[0]), int(obs_t.shape[1])
    if not 1 <= t <= n_timesteps:
        raise InvalidInputError(f"the window must hold 1..{n_timesteps} timesteps, got {t}")

    def per_step(x: Any, what: str) -> Any:
        x_t = x if isinstance(x, torch.Tensor) else np.asarray(x)
        if x_t.ndim == 0 or x_t.shape == (1,):
            return x_t.reshape(1).repeat(b * t) if isinstance(x_t, torch.Tensor) else np.repeat(x_t.reshape(1), b * t)
        if tuple(x_t.shape) != (b, t):
            raise InvalidInputError(f"{what} must have shape ({b}, {t}) or be a scalar, got {tuple(x_t.shape)}")
        return x_t.reshape(b * t)

    flat_obs, rtg_t, ts = as_model_inputs(
        obs_t.reshape(b * t, 7, 7, 3), per_step(rtg, "rtg"), per_step(timestep, "timestep"), max_timestep=max_timestep
    )
    if actions is None:
        actions = np.zeros((b, 0), dtype=np.int64)
    try:
        act = actions if isinstance(actions, torch.Tensor) else torch.as_tensor(np.asarray(actions))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"actions must be an integer array of shape ({b}, {t - 1}): {exc}") from None
    if tuple(act.shape) != (b, t - 1):
        raise InvalidInputError(f"actions must have shape ({b}, {t - 1}) (one per timestep but the last)")
    if act.dtype.is_floating_point or act.dtype == torch.bool or act.is_complex():
        raise InvalidInputError(f"actions must hold integer action indices, got dtype {act.dtype}")
    act = act.to(torch.int64)
    if act.numel() and bool(((act < 0) | (act > n_actions)).any()):
        raise InvalidInputError(f"actions must be in 0..{n_actions} ({n_actions} is the padding action)")
    return flat_obs.reshape(b, t, 7, 7, 3), rtg_t.reshape(b, t), ts.reshape(b, t), act
