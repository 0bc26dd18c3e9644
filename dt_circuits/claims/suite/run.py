"""Run claims on a checkpoint: each claim's verdict beside what was expected of it.

The suite is what both the pytest plugin and ``dt-circuits claims`` run, so the two never disagree; its JSON and
table are :mod:`dt_circuits.claims.output.suite_output`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from dt_circuits.claims.evaluation.comparisons import Comparisons, default_comparisons
from dt_circuits.claims.evaluation.measurement import PerStateMeasure
from dt_circuits.claims.evaluation.results import Verdict, _num
from dt_circuits.claims.evaluation.search import strategy_groups, timed_search
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.language.claim import Claim
from dt_circuits.claims.suite.discovery import rollout_requests
from dt_circuits.evaluation.pool import fork_map


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
    subject: Subject,
    claims: list[Claim],
    *,
    search: bool = False,
    comparisons: Comparisons | None = None,
    measured: Mapping[str, ClaimRun] | None = None,
) -> list[ClaimRun]:
    """Every applicable claim on ``subject``; ``search`` also looks for a counterexample to each per-state
    prediction. ``comparisons``: the family the checks are adjusted for (default: the subject's, else the shipped
    claims'). ``measured``: runs already made on this subject, by claim id (the pytest plugin's, in the same
    process): their verdicts are taken as they are (copies, whose counterexamples are searched here when
    ``search``), and only the other claims are evaluated.

    The claims and the searches are shared out over ``subject.workers`` forked processes (default: every core)
    where the platform forks (:func:`dt_circuits.evaluation.pool.start_method`), after the rollouts every claim
    reads are made: a claim's verdict and a search's counterexample are functions of the subject alone (seeded,
    derandomized), so the numbers are those of one process (tested). The searches are Python-bound; checks with one
    search strategy go to one worker, which draws their first pass once. Each worker keeps its own caches and uses
    one torch thread, as the rollout pool's do."""
    claims = applicable(claims, subject)
    measured = measured or {}
    todo = [i for i, c in enumerate(claims) if c.id not in measured]
    subject.comparisons = comparisons or subject.comparisons or default_comparisons()
    subject.prefetch_rollouts(rollout_requests([claims[i] for i in todo]))
    searches = [(c.id, check) for c in claims for check in c.checks if isinstance(check.measure, PerStateMeasure)]
    searches = searches if search else []
    jobs: list[tuple[str, Any]] = [("claim", i) for i in todo]
    jobs += [("search", group) for group in strategy_groups(subject, searches)]
    done = fork_map(_job, jobs, (subject, claims, searches), subject.workers)
    evaluated = dict(zip(todo, done[: len(todo)], strict=True))
    runs = [
        ClaimRun(c, evaluated[i][0], subject.expected(c.id), evaluated[i][1])
        if i in evaluated
        else _copy(measured[c.id], searched=search)
        for i, c in enumerate(claims)
    ]
    found: dict[int, tuple] = {}
    for (_, group), results in zip(jobs[len(todo) :], done[len(todo) :], strict=True):
        found.update(zip(group, results, strict=True))
    by_id = {r.claim.id: r for r in runs}
    for i, (claim_id, _) in enumerate(searches):
        counterexample, seconds = found[i]
        by_id[claim_id].verdict.counterexamples.append(counterexample)
        by_id[claim_id].seconds += seconds
    return runs


def _copy(run: ClaimRun, *, searched: bool) -> ClaimRun:
    """A run made elsewhere, as this suite's: its own verdict object, without counterexamples when they are
    searched here."""
    kept = [] if searched else list(run.verdict.counterexamples)
    return replace(run, verdict=replace(run.verdict, counterexamples=kept))


def _job(shared: tuple, job: tuple[str, Any]) -> Any:
    """One claim's (verdict, seconds), or a search group's [(counterexample, seconds)]."""
    subject, claims, searches = shared
    kind, what = job
    if kind == "claim":
        start = time.perf_counter()
        verdict = claims[what].evaluate(subject)
        return verdict, time.perf_counter() - start
    return [timed_search(subject, *searches[i]) for i in what]
