"""Run claims on a checkpoint: each claim's verdict beside what was expected of it.

The suite is what both the pytest plugin and ``dt-circuits claims`` run, so the two never disagree; its JSON and
table are :mod:`dt_circuits.claims.output.suite_output`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dt_circuits.claims.evaluation.comparisons import Comparisons, default_comparisons
from dt_circuits.claims.evaluation.measurement import PerStateMeasure
from dt_circuits.claims.evaluation.results import Verdict, _num
from dt_circuits.claims.evaluation.search import find_counterexamples
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.language.claim import Claim
from dt_circuits.claims.suite.discovery import rollout_requests


@dataclass
class ClaimRun:
    """One claim on one checkpoint: the verdict, what was expected, and how long it took."""

    claim: Claim
    verdict: Verdict
    expected: str
    seconds: float

    @property
    def matches(self) -> bool:
        return self.verdict.verdict == self.expected

    def to_dict(self) -> dict[str, Any]:
        h = self.verdict.headline
        return {
            "id": self.claim.id,
            "statement": self.claim.statement,
            "source": self.claim.source,
            "kind": self.claim.kind,
            "verdict": self.verdict.verdict,
            "reason": self.verdict.reason,
            "recipe_dependent": self.verdict.recipe_dependent,
            "failing_checks": self.verdict.failing_checks,
            "expected": self.expected,
            "matches_expectation": self.matches,
            "effect": _num(h.effect),
            "ci_low": _num(h.ci_low),
            "ci_high": _num(h.ci_high),
            "headline_check": h.name,
            "bound": h.bound,
            "frac_as_predicted": _num(h.frac_as_predicted),
            "n": h.n,
            "n_clusters": h.n_clusters,
            "checks": [c.to_dict() for c in self.verdict.checks],
            "counterexamples": [c.to_dict() for c in self.verdict.counterexamples],
            "seconds": round(self.seconds, 3),
        }


def run_claim(claim: Claim, subject: Subject, *, search: bool = False) -> ClaimRun:
    start = time.perf_counter()
    verdict = claim.evaluate(subject, search=search)
    return ClaimRun(claim, verdict, subject.expected(claim.id), time.perf_counter() - start)


def applicable(claims: list[Claim], subject: Subject) -> list[Claim]:
    """The claims about the subject's env family; the others are "not applicable" to it, never failures."""
    return [c for c in claims if c.env == subject.env_family]


def run_suite(
    subject: Subject, claims: list[Claim], *, search: bool = False, comparisons: Comparisons | None = None
) -> list[ClaimRun]:
    """Every applicable claim on ``subject``; ``search`` also looks for a counterexample to each per-state
    prediction. ``comparisons``: the family the checks are adjusted for (default: the subject's, else the shipped
    claims')."""
    claims = applicable(claims, subject)
    subject.comparisons = comparisons or subject.comparisons or default_comparisons()
    subject.prefetch_rollouts(rollout_requests(claims))
    runs = [run_claim(c, subject) for c in claims]
    if search:  # every search of the suite at once, over the cores (the same counterexamples as one by one)
        tasks = [(r, c) for r in runs for c in r.claim.checks if isinstance(c.measure, PerStateMeasure)]
        found = find_counterexamples(subject, [(r.claim.id, c) for r, c in tasks], subject.workers)
        for (run, _), (counterexample, seconds) in zip(tasks, found, strict=True):
            run.verdict.counterexamples.append(counterexample)
            run.seconds += seconds
    return runs
