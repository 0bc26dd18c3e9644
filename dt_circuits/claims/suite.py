"""Run claims on a checkpoint: verdicts against expectations, as a table and as JSON.

The suite is what both the pytest plugin and ``dt-circuits claims`` run, so the two never disagree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dt_circuits.claims.claim import Claim, Verdict
from dt_circuits.claims.discovery import rollout_requests
from dt_circuits.claims.subject import Subject


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
            "verdict": self.verdict.verdict,
            "expected": self.expected,
            "matches_expectation": self.matches,
            "effect": h.effect,
            "ci_low": h.ci_low,
            "ci_high": h.ci_high,
            "headline_check": h.name,
            "bound": h.bound,
            "frac_as_predicted": h.frac_as_predicted,
            "n": h.n,
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


def run_suite(subject: Subject, claims: list[Claim], *, search: bool = False) -> list[ClaimRun]:
    """Every applicable claim on ``subject``; ``search`` also looks for a counterexample to each per-state
    prediction."""
    claims = applicable(claims, subject)
    subject.prefetch_rollouts(rollout_requests(claims))
    return [run_claim(c, subject, search=search) for c in claims]


def suite_json(subject: Subject, runs: list[ClaimRun]) -> dict[str, Any]:
    return {
        "checkpoint": subject.source,
        "name": subject.name,
        "roles": subject.roles,
        "all_match_expectations": all(r.matches for r in runs),
        "claims": [r.to_dict() for r in runs],
    }


def format_table(runs: list[ClaimRun]) -> str:
    rows = [("claim", "verdict", "expected", "effect", "95% CI", "bound", "check")]
    for r in runs:
        h = r.verdict.headline
        rows.append(
            (
                r.claim.id,
                r.verdict.verdict + ("" if r.matches else " (!)"),
                r.expected,
                f"{h.effect:+.3f}",
                f"[{h.ci_low:+.3f}, {h.ci_high:+.3f}]",
                h.bound,
                h.name,
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
