"""Claims: falsifiable hypotheses as data — scenario, RTG, intervention, metric, threshold, controls, baseline.

A :class:`Claim` is a list of :class:`Check` s. Each check pairs a *measure* (what to compute over a state family,
a rollout batch or the weights, per example; :mod:`dt_circuits.claims.measures`) with a *bound* (the threshold its
whole interval must clear) and a *kind*: ``baseline`` (the behaviour the mechanism explains, measured on the
unablated model on the same states), ``effect`` (what the claim says), or ``control`` ("ablating the other head
must not do this"). A claim holds iff every check holds; when it does not, its ``reason`` says which kind broke
first: no behaviour, no mechanism. Components are named through roles (``obstacle_head``) bound per checkpoint,
so the same claim file runs on any checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from dt_circuits.claims.evaluation import names
from dt_circuits.claims.evaluation.checks import evaluate_check
from dt_circuits.claims.evaluation.comparisons import default_comparisons
from dt_circuits.claims.evaluation.measurement import Measure, PerStateMeasure
from dt_circuits.claims.evaluation.results import CheckKind, Verdict
from dt_circuits.claims.evaluation.search import find_counterexample
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.core.errors import ConfigError


@dataclass(frozen=True)
class Check:
    """A measure and the bound its whole interval must satisfy: ``at_least``, ``at_most``, or both.

    ``kind``: ``baseline`` (the behaviour explained, on the unablated model), ``effect`` (default) or ``control``
    (``control=True`` is the older spelling of ``kind="control"``).
    """

    name: str
    measure: Measure
    at_least: float | None = None
    at_most: float | None = None
    control: bool = False
    #: what each example is predicted to do: "bound" (meet the bound itself), "increase" (> 0), "decrease" (< 0)
    per_example: Literal["bound", "increase", "decrease"] = "bound"
    kind: CheckKind | None = None
    #: a path the reading describes, which must carry signal on the claim's states (``paths_measures.PathUse``);
    #: a check on an unused path fails with reason "path-unused" whatever its number
    requires_path: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.measure, Measure):
            raise ConfigError(
                f"check {self.name!r}: {type(self.measure).__name__} is not a measure (Behaviour, Ablation, "
                "FrontObstacleRemoved, Weights, Rollouts, or any object with measure() and sample_names())"
            )
        if self.at_least is None and self.at_most is None:
            raise ConfigError(f"check {self.name!r} has no threshold: a claim must be able to fail")
        kind = self.kind or ("control" if self.control else "effect")
        if kind not in ("baseline", "effect", "control"):
            raise ConfigError(f"check {self.name!r}: kind must be baseline, effect or control, got {kind!r}")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "control", kind == "control")

    def measure_samples(self) -> list[str]:
        """The samples this check is tested on (none for an exact weight reading)."""
        return list(self.measure.sample_names())

    def bound_text(self) -> str:
        parts = []
        if self.at_least is not None:
            parts.append(f"≥ {self.at_least:g}")
        if self.at_most is not None:
            parts.append(f"≤ {self.at_most:g}")
        return " and ".join(parts)

    def prediction_text(self) -> str:
        return {"increase": "> 0", "decrease": "< 0"}.get(self.per_example, self.bound_text())

    def clears(self, lo: float, hi: float) -> bool:
        if math.isnan(lo) or math.isnan(hi):
            return False
        return (self.at_least is None or lo >= self.at_least) and (self.at_most is None or hi <= self.at_most)

    def example_holds(self, value: float) -> bool:
        if self.per_example == "increase":
            return bool(value > 0)
        if self.per_example == "decrease":
            return bool(value < 0)
        lo_ok = self.at_least is None or value >= self.at_least
        hi_ok = self.at_most is None or value <= self.at_most
        return bool(lo_ok and hi_ok)


@dataclass(frozen=True)
class Claim:
    """A falsifiable hypothesis: an id, what it says, where it comes from, and its checks (baseline and headline
    first)."""

    id: str
    statement: str
    source: str
    checks: tuple[Check, ...]
    #: what the claim is about: falsification tests pick their control by it (swapped heads, random init)
    kind: Literal["head", "mlp", "embedding", "behaviour", "path"] = "behaviour"
    #: the controls that show this claim can fail (names.FALSIFIERS); default: what its kind allows
    falsified_by: tuple[str, ...] | None = None
    #: the env family whose checkpoints the claim is about ("dynamic-obstacles", "memory"); on a checkpoint of
    #: another family it is not applicable: not collected by default, skipped when asked for
    env: str = "dynamic-obstacles"

    def __post_init__(self) -> None:
        if self.kind not in names.DEFAULT_FALSIFIERS:
            raise ConfigError(f"claim {self.id!r}: kind must be one of {', '.join(names.DEFAULT_FALSIFIERS)}")
        if not self.checks:
            raise ConfigError(f"claim {self.id!r} has no checks")
        chosen = self.falsified_by or names.DEFAULT_FALSIFIERS[self.kind]
        object.__setattr__(self, "falsified_by", names.check_falsifiers(tuple(chosen)))

    def evaluate(self, subject: Subject, *, search: bool = False) -> Verdict:
        comparisons = subject.comparisons or default_comparisons()
        results = []
        for c in self.checks:
            checked = evaluate_check(self.id, c, subject, comparisons)
            results.extend(checked)
            if subject.until_first_failure and not all(r.holds for r in checked):
                break  # a claim holds only if every check does: the rest cannot change what the caller reads
        verdict = Verdict(self.id, self.statement, all(r.holds for r in results), results, kind=self.kind)
        if search:
            verdict.counterexamples = [
                find_counterexample(self.id, c, subject) for c in self.checks if isinstance(c.measure, PerStateMeasure)
            ]
        return verdict
