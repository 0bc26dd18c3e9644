"""Effects of interventions over a state family: mean, seeded bootstrap CI, and the per-example distribution.

A mean alone can hide cancellation (half the states up a lot, half down a little) and a point estimate alone
says nothing about noise, so every effect is reported as the mean per-example change, a percentile bootstrap
95 % CI of that mean (numpy, deterministic given the seed), the fraction of states that moved the claimed
way, and the per-example values themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from dt_circuits.analysis.interventions import FwdHooks, Inputs, run
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer

Metric = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Effect:
    """Mean per-example effect with its bootstrap CI and direction statistics."""

    effect: float
    ci_low: float
    ci_high: float
    frac_in_direction: float  # fraction of examples strictly moving with sign ``expected_sign``
    n: int
    per_example: np.ndarray = field(repr=False)
    expected_sign: int = 1
    confidence: float = 0.95
    n_resamples: int = 10_000
    seed: int = 0

    @property
    def excludes_zero(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0

    @property
    def ci_in_direction(self) -> bool:
        """The whole CI lies strictly on the expected side of zero."""
        return self.ci_low > 0 if self.expected_sign > 0 else self.ci_high < 0

    def __str__(self) -> str:
        way = "up" if self.expected_sign > 0 else "down"
        return (
            f"effect {self.effect:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}] "
            f"({self.confidence:.0%} CI, n={self.n}, {self.frac_in_direction:.0%} moved {way})"
        )


def bootstrap_ci(
    values: np.ndarray | torch.Tensor, *, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, ci_low, ci_high): percentile bootstrap CI of the mean, resampling examples with replacement.

    Deterministic given ``seed`` (numpy ``default_rng``); ``n_resamples`` as in ``scipy.stats.bootstrap``.
    """
    x = _as_array(values)
    if x.size == 0:
        raise ConfigError("cannot bootstrap an empty sample")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be positive, got {n_resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // x.size)  # bound memory for large samples
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        means[start:stop] = x[rng.integers(x.size, size=(stop - start, x.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(x.mean()), float(lo), float(hi)


def _as_array(values: np.ndarray | torch.Tensor) -> np.ndarray:
    x = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return x.astype(np.float64).ravel()


def summarize(
    per_example: np.ndarray | torch.Tensor,
    *,
    expected_sign: int = 1,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Effect:
    """An Effect from per-example changes (e.g. P(forward) ablated - P(forward) clean)."""
    if expected_sign not in (1, -1):
        raise ConfigError(f"expected_sign must be +1 or -1, got {expected_sign!r}")
    x = _as_array(per_example)
    mean, lo, hi = bootstrap_ci(x, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return Effect(
        effect=mean,
        ci_low=lo,
        ci_high=hi,
        frac_in_direction=float(np.mean(np.sign(x) == expected_sign)),
        n=int(x.size),
        per_example=x,
        expected_sign=expected_sign,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )


def intervention_effect(
    model: DecisionTransformer,
    inputs: Inputs,
    fwd_hooks: FwdHooks,
    metric: Metric,
    *,
    baseline_hooks: FwdHooks | None = None,
    expected_sign: int = 1,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Effect:
    """Per-example ``metric(with fwd_hooks) - metric(baseline)`` over ``inputs``, summarised as an Effect."""
    if len(inputs) == 0:
        raise ConfigError("cannot measure an effect over an empty state family")
    base = metric(run(model, inputs, baseline_hooks)).to(torch.float64)
    treated = metric(run(model, inputs, fwd_hooks)).to(torch.float64)
    return summarize(
        treated - base, expected_sign=expected_sign, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
