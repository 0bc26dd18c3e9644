"""What a training recipe does, as numbers: one prediction band per check, from a recorded population of seeds.

A retrain whose weight bytes differ from the committed ones (another seed, or the same seed on another CPU kind,
whose kernels round differently) is a new draw from the recipe. Its numbers are judged against what the recipe
produced on K recorded seeds, not against one model's intervals: for each check, the band

    mean ± √(m / α) · sd · √(1 + 1/K)

holds a new draw with probability at least 1 − α/m by Chebyshev's inequality, whatever the distribution
(given its mean and variance, which the K seeds estimate), so the m checks judged in one gate run share the
family-wise level α. Distribution-free on purpose: across seeds the mechanism readings are heavy-tailed
mixtures (a seed that uses another head, a ratio with a small denominator), and a normal-theory interval was
measured to fail there: 3 of 10 retrains of the same seeds through another kernel path had a check outside
t-intervals at family-wise 0.01 (README "Gating retrains"). A check is *outside* when the retrain's whole
interval (its effect and CI) misses the band. A check every recorded seed gave the same number for (sd 0: a
discrete reading) has no band, and a retrain's undefined number (a ratio over 0) is not judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: the manifest key of a recorded population (``dt-circuits gate --seeds K --record``)
MANIFEST_KEY = "population_expectations"
#: family-wise false-alarm level of one gate run (over every check value it judges)
FAMILY_ALPHA = 0.01
#: fewest recorded seeds with a number that make a band
MIN_SEEDS = 3
#: half the last decimal the record keeps (6): an identical number must not fall outside a zero-width band
ROUNDING = 0.5e-6


@dataclass(frozen=True)
class Band:
    """One check's prediction band from the recorded seeds' effects."""

    claim_id: str
    check: str
    values: tuple[float, ...]
    mean: float
    sd: float
    multiplier: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    @property
    def half_width(self) -> float:
        k = len(self.values)
        return self.multiplier * self.sd * math.sqrt(1 + 1 / k) + ROUNDING

    def outside(self, effect: float | None, ci_low: float | None = None, ci_high: float | None = None) -> bool:
        """Does the retrain's interval ([ci_low, ci_high], or the effect alone) miss the band? An undefined
        number (None, not finite) is not judged: seeds of the recipe give undefined ratios too."""
        if effect is None or not math.isfinite(effect):
            return False
        lo = effect if ci_low is None or not math.isfinite(ci_low) else min(effect, ci_low)
        hi = effect if ci_high is None or not math.isfinite(ci_high) else max(effect, ci_high)
        return hi < self.low or lo > self.high

    def distance(self, effect: float | None) -> float:
        """How far the effect lies from the band, in band half-widths (0 inside)."""
        if effect is None or not math.isfinite(effect):
            return math.inf
        gap = max(self.low - effect, effect - self.high, 0.0)
        return gap / self.half_width

    def text(self) -> str:
        return f"[{self.low:+.4f}, {self.high:+.4f}] (K={len(self.values)}, mean {self.mean:+.4f}, sd {self.sd:.4f})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "low": round(self.low, 6),
            "high": round(self.high, 6),
            "mean": round(self.mean, 6),
            "sd": round(self.sd, 6),
            "K": len(self.values),
            "multiplier": round(self.multiplier, 4),
        }


@dataclass
class OutsideCheck:
    """A retrained check whose interval misses the recipe's band: the numbers a MOVED line prints."""

    check: str
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    band: Band
    seed: int | None = None

    def text(self) -> str:
        at = f"seed {self.seed}: " if self.seed is not None else ""
        if self.effect is None:
            return f"{at}{self.check}: no number (undefined here) where every recorded seed had one {self.band.text()}"
        lo = "" if self.ci_low is None or self.ci_high is None else f" [{self.ci_low:+.4f}, {self.ci_high:+.4f}]"
        return (
            f"{at}{self.check}: {self.effect:+.4f}{lo} outside the recipe's band {self.band.text()}, "
            f"{self.band.distance(self.effect):.1f} half-widths away"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "seed": self.seed,
            "effect": self.effect,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "band": self.band.to_dict(),
        }


def chebyshev_multiplier(family_size: int, alpha: float = FAMILY_ALPHA) -> float:
    """k with P(|X − μ| ≥ kσ) ≤ 1/k² = alpha / family_size (Chebyshev's inequality, any distribution)."""
    return math.sqrt(max(1, family_size) / alpha)


def recorded_effects(population: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    """(claim, check) -> the finite effects the recorded population's seeds gave (``population_expectations``
    with per-check effects; an older record of verdicts only gives nothing)."""
    out: dict[tuple[str, str], list[float]] = {}
    for claim_id, entry in (population.get("claims") or {}).items():
        for check, values in (entry.get("checks") or {}).items():
            finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
            if len(finite) == len(values):  # a check some seed could not measure is no band
                out[(claim_id, check)] = finite
    return out


def bands(population: dict[str, Any], family_size: int, alpha: float = FAMILY_ALPHA) -> dict[tuple[str, str], Band]:
    """A band for every (claim, check) with at least ``MIN_SEEDS`` recorded values that are not all equal, at
    family-wise level ``alpha`` over ``family_size`` judged values."""
    import numpy as np

    out = {}
    multiplier = chebyshev_multiplier(family_size, alpha)
    for key, values in recorded_effects(population).items():
        arr = np.asarray(values, dtype=float)
        if len(values) < MIN_SEEDS or float(arr.std(ddof=1)) == 0.0:
            continue
        out[key] = Band(key[0], key[1], tuple(values), float(arr.mean()), float(arr.std(ddof=1)), multiplier)
    return out


def judge_checks(
    population: dict[str, Any], judged: list[tuple[str, int | None, dict[str, dict[str, Any]]]]
) -> tuple[list[tuple[str, OutsideCheck]], int, int]:
    """Judge check numbers (:func:`check_numbers` per claim, and the seed they came from, if any) against the
    population's bands, family-wise over every judged value that has a record. Returns each (claim, check outside
    its band), the family size and the number of bands: the one rule the single gate and the population gate
    share."""
    known = recorded_effects(population)
    family = sum((claim_id, key) in known for claim_id, _, checks in judged for key in checks)
    recipe = bands(population, family)
    outside = []
    for claim_id, seed, checks in judged:
        for key, c in checks.items():
            band = recipe.get((claim_id, key))
            if band is not None and band.outside(c["effect"], c["ci_low"], c["ci_high"]):
                outside.append((claim_id, OutsideCheck(key, c["effect"], c["ci_low"], c["ci_high"], band, seed)))
    return outside, family, len(recipe)


def has_bands(population: dict[str, Any]) -> bool:
    """Does a recorded population carry per-seed effects (enough seeds to judge a retrain's numbers)?"""
    return any(len(v) >= MIN_SEEDS for v in recorded_effects(population).values())


# -- what a population records per seed ------------------------------------------------------------------------
def check_key(check: Any, seen: set[str]) -> str:
    """A check's name, made unique within its claim by its sample when two checks share a name."""
    key = check.name if check.name not in seen else f"{check.name} [{check.sample}]"
    seen.add(key)
    return key


def check_numbers(checks: list[Any]) -> dict[str, dict[str, Any]]:
    """Every check of a verdict, keyed by :func:`check_key`: its primary effect, interval, whether it holds, its
    kind, and each other recipe's effect (the numbers a recipe population is made of)."""
    out: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for c in checks:
        key = check_key(c, seen)
        entry: dict[str, Any] = {
            "effect": _finite(c.effect),
            "ci_low": _finite(c.ci_low),
            "ci_high": _finite(c.ci_high),
            "holds": bool(c.holds),
            "kind": c.kind,
        }
        if c.recipes:
            entry["recipes"] = {name: _finite(r.get("effect")) for name, r in c.recipes.items()}
        out[key] = entry
    return out


def _finite(x: Any) -> float | None:
    """JSON has no NaN or infinity: a number that is not finite is recorded as None (no number)."""
    import math

    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def population_recipe_differs(manifest: dict[str, Any], population: dict[str, Any]) -> str:
    """Where the recorded population's recipe departs from the checkpoint's committed config ("" when it does
    not): bands of another recipe say nothing about a retrain of this one. Threads are not the recipe (a thread
    count, like a CPU kind, only changes the rounding)."""
    config = (manifest.get("training") or {}).get("config") or {}
    over = {k: v for k, v in (population.get("overrides") or {}).items() if k not in ("threads", "seed")}
    diff = {k: v for k, v in over.items() if config.get(k) != v}
    return ", ".join(f"{k}={v} (checkpoint: {config.get(k)})" for k, v in sorted(diff.items()))
