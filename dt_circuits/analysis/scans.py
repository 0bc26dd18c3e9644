"""Batched scans: behaviour and attribution over a range of RTGs, and over an injection coefficient.

A single RTG or a single patch answers a yes/no question; a scan shows *where* a behaviour switches on (the
post's obstacle avoidance "for RTG > 0.2-0.3") and whether an injected difference acts linearly, saturates or
overshoots. Every grid point is one row of one batched forward pass (chunked by ``batch_size``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dt_circuits.analysis.attribution import DirectionLike, attribute, direction_name, direction_vector
from dt_circuits.analysis.interventions import (
    ComponentLike,
    FwdHooks,
    Inputs,
    check_pos,
    collect_activations,
    component_index,
    resolve,
    run,
)
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer


def _grid(values: Iterable[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ConfigError(f"{what} must hold at least one value")
    if not np.isfinite(arr).all():
        raise ConfigError(f"{what} must be finite")
    return arr


@dataclass(frozen=True)
class RTGScan:
    """Action probabilities and attribution terms for each RTG (rows) and state (columns)."""

    rtgs: np.ndarray  # (R,)
    probs: np.ndarray  # (R, B, n_actions)
    logit_diff: np.ndarray  # (R, B)
    terms: dict[str, np.ndarray]  # term -> (R, B), sums to logit_diff
    direction: str

    @property
    def mean_probs(self) -> np.ndarray:
        """(R, n_actions) probabilities averaged over states."""
        return self.probs.mean(axis=1)


def rtg_scan(
    model: DecisionTransformer,
    obs: Any,
    rtgs: Iterable[float] | np.ndarray,
    *,
    timestep: Any = 0,
    direction: DirectionLike = "forward-right",
    fwd_hooks: FwdHooks | None = None,
    batch_size: int = 8192,
) -> RTGScan:
    """Run every state at every RTG in ``rtgs`` (e.g. ``np.linspace(-1, 1, 41)``) and attribute each run."""
    grid = _grid(rtgs, "rtgs")
    base = Inputs.make(obs, 0.0, timestep)
    n = len(base)
    allin = base.repeat(len(grid))
    allin = Inputs(allin.obs, torch.as_tensor(np.repeat(grid, n), dtype=torch.float32), allin.timestep)
    probs, diffs, terms = [], [], []
    for start in range(0, len(allin), batch_size):
        chunk = allin[start : start + batch_size]
        attr = attribute(model, chunk, direction, fwd_hooks=fwd_hooks)
        probs.append(torch.softmax(attr.logits.to(torch.float64), dim=-1))
        diffs.append(attr.logit_diff)
        terms.append(attr.terms)
    r = len(grid)
    return RTGScan(
        rtgs=grid,
        probs=torch.cat(probs).reshape(r, n, -1).numpy(),
        logit_diff=torch.cat(diffs).reshape(r, n).numpy(),
        terms={k: torch.cat([t[k] for t in terms]).reshape(r, n).numpy() for k in terms[0]},
        direction=direction_name(direction_vector(direction, model.cfg.n_actions).tolist()),
    )


@dataclass(frozen=True)
class InjectionScan:
    """Behaviour of the clean run with ``coeff * (corrupt - clean)`` added at ``site``, per coefficient."""

    site: str
    coeffs: np.ndarray  # (K,)
    probs: np.ndarray  # (K, B, n_actions)
    logit_diff: np.ndarray  # (K, B)
    direction: str

    @property
    def mean_probs(self) -> np.ndarray:
        return self.probs.mean(axis=1)


def injection_scan(
    model: DecisionTransformer,
    clean: Inputs,
    corrupt: Inputs,
    site: ComponentLike,
    coeffs: Iterable[float] | np.ndarray,
    *,
    direction: DirectionLike = "forward-right",
    pos: int | None = None,
    batch_size: int = 8192,
) -> InjectionScan:
    """Add ``coeff x (corrupt - clean)`` activation at ``site`` (a hook, head or MLP; optionally one position).

    coeff 0 is the clean run; coeff 1 replaces the site's activation by the corrupted one (activation patching
    in the noising direction); coefficients beyond 1 or below 0 extrapolate along the difference.
    """
    if len(clean) != len(corrupt):
        raise ConfigError(f"clean ({len(clean)}) and corrupt ({len(corrupt)}) need the same number of states")
    comp = resolve(model, site)
    pos = check_pos(model, comp, pos)
    grid = _grid(coeffs, "coeffs")
    name = comp.hook_name
    a_clean = collect_activations(model, clean, [comp]).acts[name]
    a_corrupt = collect_activations(model, corrupt, [comp]).acts[name]
    delta = torch.zeros_like(a_clean)
    idx = component_index(comp, delta.ndim, pos)
    delta[idx] = (a_corrupt - a_clean)[idx]
    n, k = len(clean), len(grid)
    allin = clean.repeat(k)
    scale_shape = (k * n,) + (1,) * (delta.ndim - 1)
    all_delta = delta.repeat(k, *([1] * (delta.ndim - 1)))
    all_coeff = torch.as_tensor(np.repeat(grid, n), dtype=delta.dtype).reshape(scale_shape)
    u = direction_vector(direction, model.cfg.n_actions)
    probs, diffs = [], []
    for start in range(0, len(allin), batch_size):
        stop = min(start + batch_size, len(allin))
        add = all_coeff[start:stop] * all_delta[start:stop]

        def hook(act: torch.Tensor, hook: Any = None, add: torch.Tensor = add) -> torch.Tensor:
            return act + add.to(act.device, act.dtype)

        logits = run(model, allin[start:stop], [(name, hook)]).to(torch.float64)
        probs.append(torch.softmax(logits, dim=-1))
        diffs.append(logits @ u)
    return InjectionScan(
        site=str(comp) if pos is None else f"{comp} @ pos {pos}",
        coeffs=grid,
        probs=torch.cat(probs).reshape(k, n, -1).numpy(),
        logit_diff=torch.cat(diffs).reshape(k, n).numpy(),
        direction=direction_name(u.tolist()),
    )
