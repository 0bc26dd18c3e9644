"""Effects of interventions over a state family: mean, seeded bootstrap CI, and the per-example distribution.

A mean alone can hide cancellation (half the states up a lot, half down a little) and a point estimate alone
says nothing about noise, so every effect is reported as the mean per-example change, a percentile bootstrap
95 % CI of that mean (numpy, deterministic given the seed), the fraction of states that moved the claimed
way, and the per-example values themselves.
"""

from __future__ import annotations

import math
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


# -- cluster bootstrap ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterBootstrap:
    """Bootstrap draws of a mean whose rows come in clusters, and of the value variants each row has.

    Rows of one cluster (one agent pose, one distinct observation, one episode) are not independent evidence, so
    the draws resample *clusters* with replacement, keeping each drawn cluster's rows together (the one-stage
    cluster bootstrap: the within-cluster spread is carried by the cluster totals). ``values`` may have a leading
    axis of variants (e.g. the same rows measured under ablation means from resampled datasets); each draw then
    also picks one variant at random, so that source of noise widens the interval too. Row 0 of the variants is
    the point estimate.
    """

    effect: float
    draws: np.ndarray = field(repr=False)
    n_clusters: int
    n_rows: int

    def interval(self, confidence: float) -> tuple[float, float]:
        """Percentile interval at ``confidence`` (two-sided)."""
        if not 0 < confidence < 1:
            raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
        alpha = (1 - confidence) / 2
        lo, hi = np.quantile(self.draws, [alpha, 1 - alpha])
        return float(lo), float(hi)

    def p_value(self, at_least: float | None, at_most: float | None) -> float:
        """Two-sided-equivalent bootstrap p-value of "the mean does not clear the bound(s)": twice the share of
        draws on the wrong side (the larger share when there are two bounds), capped at 1. A percentile interval
        at confidence 1 - p just touches the bound."""
        shares = [0.0]
        if at_least is not None:
            shares.append(float(np.mean(self.draws < at_least)))
        if at_most is not None:
            shares.append(float(np.mean(self.draws > at_most)))
        return min(1.0, 2 * max(shares))


def _clusters(labels: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels).ravel()
    if labels.shape[0] != n:
        raise ConfigError(f"{labels.shape[0]} cluster labels for {n} values")
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse, int(inverse.max()) + 1


def cluster_bootstrap(
    values: np.ndarray, clusters: np.ndarray, *, n_resamples: int = 20_000, seed: int = 0
) -> ClusterBootstrap:
    """Seeded cluster bootstrap of the mean of ``values`` ((n,) or (variants, n)) with cluster labels ``clusters``.

    Vectorised: cluster totals once, then each draw is a count vector over clusters (numpy ``default_rng``,
    deterministic given ``seed``).
    """
    return cluster_bootstraps([values], clusters, n_resamples=n_resamples, seed=seed)[0]


def cluster_bootstraps(
    values: list[np.ndarray], clusters: np.ndarray, *, n_resamples: int = 20_000, seed: int = 0
) -> list[ClusterBootstrap]:
    """:func:`cluster_bootstrap` of each of ``values`` (one check's recipes: the same rows, clusters and seed).

    Each result equals its own :func:`cluster_bootstrap` bit for bit. Samples with as many variants share the
    resample counts and variant draws, which are a function of the seed, the clusters and the number of variants
    alone (drawing them is most of a bootstrap's time).
    """
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be positive, got {n_resamples}")
    rows = [np.atleast_2d(np.asarray(v, dtype=np.float64)) for v in values]
    out: list[ClusterBootstrap | None] = [None] * len(rows)
    if not rows:
        return []
    for v in rows:
        if v.shape[1] == 0:
            raise ConfigError("cannot bootstrap an empty sample")
        if v.shape[1] != rows[0].shape[1]:
            raise ConfigError(f"samples of {v.shape[1]} and {rows[0].shape[1]} values bootstrapped together")
    inverse, n_clusters = _clusters(clusters, rows[0].shape[1])
    sizes = np.bincount(inverse, minlength=n_clusters).astype(np.float64)
    groups: dict[int, list[int]] = {}  # by the number of variants: the stream's draws depend on nothing else
    for i, v in enumerate(rows):
        groups.setdefault(v.shape[0], []).append(i)
    for group in groups.values():
        totals = [np.stack([np.bincount(inverse, weights=r, minlength=n_clusters) for r in rows[i]]) for i in group]
        n_variants = rows[group[0]].shape[0]
        rng = np.random.default_rng(seed)
        draws = [np.empty(n_resamples) for _ in group]
        for start, stop, counts in _cluster_counts(rng, n_clusters, n_resamples):
            # each resample's variant is drawn after its chunk's counts (the stream's order)
            variant = rng.integers(n_variants, size=stop - start)
            size = counts @ sizes
            picked = np.arange(stop - start)
            for d, t in zip(draws, totals, strict=True):
                # one matrix-vector product per variant (each column alone: the same bits drawn with any others)
                per_variant = np.stack([counts @ t[v] for v in range(n_variants)], axis=1)
                d[start:stop] = per_variant[picked, variant] / size
        for i, d in zip(group, draws, strict=True):
            out[i] = ClusterBootstrap(float(rows[i][0].mean()), d, n_clusters, int(rows[i].shape[1]))
    return out  # type: ignore[return-value]


def _cluster_counts(rng: np.random.Generator, n_clusters: int, n_resamples: int):
    """Chunks of resample count vectors: (start, stop, counts (stop - start, n_clusters)), each row how often each
    cluster is drawn in one cluster-bootstrap resample. A generator, so a caller can draw more from ``rng`` between
    chunks (the variant of each resample) and keep one seeded stream."""
    chunk = max(1, 2_000_000 // n_clusters)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        # int32: the same numbers and the same stream as numpy's default int64 (both draw each bounded value from
        # 32 bits, Lemire's method, for fewer than 2**32 clusters; tests/test_stats.py), at half the memory traffic
        picks = rng.integers(n_clusters, size=(stop - start, n_clusters), dtype=np.int32)
        if n_clusters >= _ROW_BY_ROW:  # one small bincount per resample stays in cache: ~2x faster here
            counts = np.empty((stop - start, n_clusters))
            for row, drawn in enumerate(picks):
                counts[row] = np.bincount(drawn, minlength=n_clusters)
            yield start, stop, counts
            continue
        picks += (np.arange(stop - start, dtype=np.int32) * n_clusters)[:, None]  # < 2,000,000 + n_clusters
        counts = np.bincount(picks.ravel(), minlength=(stop - start) * n_clusters)
        yield start, stop, counts.reshape(stop - start, n_clusters).astype(np.float64)


#: from this many clusters on, resample counts are taken row by row (measured on an Intel Xeon: 8.7 against
#: 19 ms a chunk at 1,000-4,096 clusters; at 100 clusters the loop's overhead makes it 2x slower)
_ROW_BY_ROW = 512


def cluster_ratio_bootstrap(
    numerator: np.ndarray, denominator: np.ndarray, clusters: np.ndarray, *, n_resamples: int = 20_000, seed: int = 0
) -> ClusterBootstrap:
    """Seeded cluster bootstrap of mean(``numerator``) / mean(``denominator``), rows paired and resampled by cluster.

    A share of an effect (the part of a paired edit's effect that patching one component reproduces) is a ratio of
    two means over the same rows; resampling clusters keeps each row's numerator with its denominator. A draw whose
    denominator sums to 0 is NaN (the share does not exist there), as is the estimate when the whole sample's does.
    """
    return cluster_ratio_bootstraps([numerator], denominator, clusters, n_resamples=n_resamples, seed=seed)[0]


def cluster_ratio_bootstraps(
    numerators: list[np.ndarray],
    denominator: np.ndarray,
    clusters: np.ndarray,
    *,
    n_resamples: int = 20_000,
    seed: int = 0,
) -> list[ClusterBootstrap]:
    """:func:`cluster_ratio_bootstrap` of each numerator over one denominator (one check's recipes), sharing the
    resample counts; each result equals its own call bit for bit."""
    den = np.asarray(denominator, dtype=np.float64).ravel()
    nums = [np.asarray(n, dtype=np.float64).ravel() for n in numerators]
    for num in nums:
        if num.shape != den.shape:
            raise ConfigError(f"{num.shape[0]} numerators, {den.shape[0]} denominators")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be positive, got {n_resamples}")
    if den.shape[0] == 0:
        raise ConfigError("cannot bootstrap an empty sample")
    labels = np.asarray(clusters).ravel()
    if labels.shape != den.shape:
        raise ConfigError(f"{den.shape[0]} numerators, {den.shape[0]} denominators, {labels.shape[0]} cluster labels")
    inverse, n_clusters = _clusters(labels, den.shape[0])
    num_totals = [np.bincount(inverse, weights=num, minlength=n_clusters) for num in nums]
    den_totals = np.bincount(inverse, weights=den, minlength=n_clusters)
    rng = np.random.default_rng(seed)
    draws = [np.empty(n_resamples) for _ in nums]
    for start, stop, counts in _cluster_counts(rng, n_clusters, n_resamples):
        with np.errstate(divide="ignore", invalid="ignore"):
            d = counts @ den_totals
            safe = np.where(d != 0, d, 1.0)
            for out, totals in zip(draws, num_totals, strict=True):
                out[start:stop] = np.where(d != 0, (counts @ totals) / safe, np.nan)
    total = float(den.sum())
    return [
        ClusterBootstrap(float(num.sum()) / total if total != 0 else float("nan"), out, n_clusters, int(num.shape[0]))
        for num, out in zip(nums, draws, strict=True)
    ]


# -- held-out splits by cluster -------------------------------------------------------------------------------


def group_shuffle_split(groups: np.ndarray, seed: int, test_size: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, test) row indices, ascending, with no group on both sides: scikit-learn's
    ``GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)``, index for index (its algorithm:
    one permutation of the distinct groups by ``RandomState(seed)``, the first ceil(test_size · groups) held out;
    tests/test_stats.py compares them), without importing scikit-learn: ~1.8 s of every claims run that splits
    pairs (the DAS and localisation claims), for one permutation."""
    if not 0 < test_size < 1:
        raise ConfigError(f"test_size must be in (0, 1), got {test_size}")
    classes, inverse = np.unique(np.asarray(groups).ravel(), return_inverse=True)
    n_test = math.ceil(test_size * len(classes))
    if n_test >= len(classes):
        raise ConfigError(f"{len(classes)} groups leave none to train on at test_size {test_size}")
    permutation = np.random.RandomState(seed).permutation(len(classes))
    test, train = permutation[:n_test], permutation[n_test:]
    return np.flatnonzero(np.isin(inverse, train)), np.flatnonzero(np.isin(inverse, test))
