"""Run claims on a checkpoint: verdicts against expectations, as a table and as JSON.

The suite is what both the pytest plugin and ``dt-circuits claims`` run, so the two never disagree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dt_circuits.claims.claim import Claim, Verdict, _fmt, _num
from dt_circuits.claims.comparisons import Comparisons, default_comparisons
from dt_circuits.claims.discovery import rollout_requests
from dt_circuits.claims.subject import Subject
from dt_circuits.core.tables import aligned_lines


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
    return [run_claim(c, subject, search=search) for c in claims]


def suite_json(subject: Subject, runs: list[ClaimRun]) -> dict[str, Any]:
    """The run as JSON: every claim, every check, and the multiple-comparison family with adjusted p-values."""
    comparisons = subject.comparisons or default_comparisons()
    claims = [r.to_dict() for r in runs]
    tested = [c for claim in claims for c in claim["checks"] if c.get("p_value") is not None]
    for check, p in zip(tested, comparisons.adjust([c["p_value"] for c in tested]), strict=True):
        check["p_adjusted"] = float(p)
    return {
        "checkpoint": subject.source,
        "name": subject.name,
        "roles": subject.roles,
        "env_backend": subject.rollout_backend,
        "all_match_expectations": all(r.matches for r in runs),
        "multiple_comparisons": comparisons.to_dict() | {"tests_in_this_run": len(tested)},
        "claims": claims,
    }


def format_table(runs: list[ClaimRun], width: int | None = None) -> str:
    """One row per claim: verdict, reason, the headline check's numbers (or why it has none: "undefined (… is
    0)"), recipe dependence, and every failing check.

    ``width``: the columns a line may take (None: no limit). When the full table is wider, each row keeps
    claim, verdict, reason, numbers and recipe dependence, and the rest (expected verdict, bound, clusters,
    failing checks) goes on indented lines under it, wrapped to ``width``: an 80–120 column terminal shows a
    table, not wrapped noise."""
    import textwrap

    full = [("claim", "verdict", "reason", "expected", "effect", "interval", "bound", "clusters", "recipe", "failing")]
    short = [("claim", "verdict", "reason", "effect [interval]", "recipe")]
    details = []
    for r in runs:
        h = r.verdict.headline
        effect, interval = (
            (h.numbers(), "") if h.undefined else (_fmt(h.effect), f"[{_fmt(h.ci_low)}, {_fmt(h.ci_high)}]")
        )
        verdict = r.verdict.verdict + ("" if r.matches else " (!)")
        recipe = "DEPENDENT" if r.verdict.recipe_dependent else ""
        failing = "; ".join(r.verdict.failing_checks)
        full.append((r.claim.id, verdict, r.verdict.reason, r.expected, effect, interval, h.bound, str(h.n_clusters),
                     recipe, failing))  # fmt: skip
        short.append((r.claim.id, verdict, r.verdict.reason, f"{effect} {interval}".rstrip(), recipe))
        clusters = f"{h.n_clusters} cluster{'' if h.n_clusters == 1 else 's'}"
        details.append(f"expected {r.expected}; bound {h.bound}; {clusters}"
                       + (f"; failing: {failing}" if failing else ""))  # fmt: skip
    lines = aligned_lines(full)
    if width is None or max(len(line) for line in lines) <= width:
        return "\n".join(lines)
    rows = aligned_lines(short)
    out = rows[:1]
    for row, detail in zip(rows[1:], details, strict=True):
        out.append(row)
        out.extend(textwrap.wrap(detail, width=max(40, width), initial_indent="    ", subsequent_indent="      "))
    return "\n".join(out)


def terminal_width() -> int | None:
    """Columns of the terminal stdout writes to (``COLUMNS`` if set); None when it is not a terminal (a log or a
    pipe keeps the full rows, one line per claim, for grep)."""
    import os
    import shutil
    import sys

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None
