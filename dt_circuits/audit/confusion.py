"""Scoring verdicts against the truth: sensitivity (holds where the component carries the variable) and
specificity (fails where it is absent), each with its exact Clopper–Pearson 95 % interval; and, for the misses,
which kind of failing check cost the sensitivity. A verdict of "uninformative" under a recipe (its replacement
reads as the object) is neither a hit nor a miss: counted apart."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dt_circuits.audit.game import Row
from dt_circuits.core.errors import ConfigError

CONFIDENCE = 0.95


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact interval the population records use (:func:`dt_circuits.claims.records.population.clopper_pearson`),
    checked first; (0, 1) when n is 0 (nothing is known)."""
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ConfigError(f"a proportion needs 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    from dt_circuits.claims.records.population import clopper_pearson as exact

    return exact(k, n, confidence)


@dataclass(frozen=True)
class Cell:
    """One line of the confusion table: a claim kind on one component kind under one recipe."""

    claim: str
    target: str  # "head" or "mlp"
    recipe: str  # "primary" or a recipe name
    tp: int
    fn: int
    tn: int
    fp: int
    excluded: int  # partial truths: not scored
    miss_reasons: dict[str, int]
    #: scored rows whose verdict under this recipe is "uninformative" (its replacement reads as the object):
    #: counted apart, neither a hit nor a miss
    uninformative: int = 0

    @property
    def sensitivity(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def specificity(self) -> float | None:
        return self.tn / (self.tn + self.fp) if self.tn + self.fp else None

    def to_json(self) -> dict[str, Any]:
        sens_ci = clopper_pearson(self.tp, self.tp + self.fn)
        spec_ci = clopper_pearson(self.tn, self.tn + self.fp)
        return {
            **{k: v for k, v in self.__dict__.items()},
            "sensitivity": self.sensitivity,
            "sensitivity_ci": [round(x, 4) for x in sens_ci],
            "specificity": self.specificity,
            "specificity_ci": [round(x, 4) for x in spec_ci],
        }


def target_kind(component: str) -> str:
    return "mlp" if component == "mlp" else "head"


def miss_reason(row: Row) -> str:
    """Why a planted circuit was missed: the verdict's reason, with "sample size" when every failing check that
    decided it was an under-sampled on-policy one."""
    if row.insufficient and set(row.insufficient) == set(row.failing):
        return "sample-size"
    return row.reason


def confusion(rows: Iterable[Row]) -> list[Cell]:
    """One cell per (claim, component kind, recipe): "primary" is the claim's own verdict; every other recipe a
    claim's checks report gives its own cell."""
    rows = list(rows)
    keys: dict[tuple[str, str, str], list[tuple[Row, str]]] = {}
    for r in rows:
        verdicts = {"primary": r.verdict, **r.by_recipe}
        for recipe, verdict in verdicts.items():
            keys.setdefault((r.claim, target_kind(r.component), recipe), []).append((r, verdict))
    cells = []
    for (claim, target, recipe), items in sorted(
        keys.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "primary", kv[0][2])
    ):
        tp = sum(r.truth == "carries" and v == "holds" for r, v in items)
        fn = sum(r.truth == "carries" and v == "fails" for r, v in items)
        tn = sum(r.truth == "absent" and v == "fails" for r, v in items)
        fp = sum(r.truth == "absent" and v == "holds" for r, v in items)
        excluded = sum(r.truth not in ("carries", "absent") for r, _ in items)
        uninformative = sum(r.truth in ("carries", "absent") and v == "uninformative" for r, v in items)
        misses = Counter(
            miss_reason(r) for r, v in items if r.truth == "carries" and v == "fails" and recipe == "primary"
        )
        cells.append(Cell(claim, target, recipe, tp, fn, tn, fp, excluded, dict(sorted(misses.items())), uninformative))
    return cells
