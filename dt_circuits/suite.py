"""Discover the claims in ``claims/`` and run them on a checkpoint: verdicts against expectations, as JSON.

A claim file is any ``claims/*.py`` (not starting with ``_`` or ``conftest``) defining ``CLAIM``. The suite
is what both ``pytest claims/`` and ``dt-circuits claims`` run, so the two never disagree.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dt_circuits.claim import Claim, Rollouts, Verdict
from dt_circuits.errors import ConfigError
from dt_circuits.paths import REPO_ROOT
from dt_circuits.subject import Subject

CLAIMS_DIR = REPO_ROOT / "claims"


def claim_files(directory: Path = CLAIMS_DIR) -> list[Path]:
    return sorted(
        p for p in directory.glob("*.py") if not p.name.startswith(("_", "conftest", "test_")) and p.is_file()
    )


def load_claim(path: Path) -> Claim:
    spec = importlib.util.spec_from_file_location(f"dt_circuits_claims.{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import claim file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    claim = getattr(module, "CLAIM", None)
    if not isinstance(claim, Claim):
        raise ConfigError(f"claim file {path} does not define CLAIM = Claim(...)")
    return claim


_LOADED: dict[Path, Claim] = {}


def discover(directory: Path = CLAIMS_DIR) -> list[Claim]:
    """Every claim, in file order; ids must be unique."""
    claims = []
    for path in claim_files(directory):
        if path not in _LOADED:
            _LOADED[path] = load_claim(path)
        claims.append(_LOADED[path])
    ids = [c.id for c in claims]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ConfigError(f"duplicate claim id(s): {', '.join(sorted(dupes))}")
    return claims


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


def run_suite(subject: Subject, claims: list[Claim] | None = None, *, search: bool = False) -> list[ClaimRun]:
    """Every claim on ``subject``; ``search`` also looks for a counterexample to each per-state prediction."""
    claims = claims or discover()
    subject.prefetch_rollouts(rollout_requests(claims))
    return [run_claim(c, subject, search=search) for c in claims]


def select_claims(only: list[str] | None = None) -> list[Claim]:
    """Every discovered claim, or just the ids in ``only`` (an unknown id is a ConfigError naming it)."""
    claims = discover()
    if not only:
        return claims
    unknown = set(only) - {c.id for c in claims}
    if unknown:
        raise ConfigError(f"unknown claim id(s): {', '.join(sorted(unknown))}")
    return [c for c in claims if c.id in only]


def rollout_requests(claims: list[Claim]) -> list[tuple[float, int, int]]:
    """Every (rtg, episodes, seed) the claims' rollout checks will ask for, so they run as one parallel batch."""
    return [
        (check.measure.rtg, check.measure.episodes, check.measure.seed)
        for claim in claims
        for check in claim.checks
        if isinstance(check.measure, Rollouts)
    ]


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


def default_checkpoints() -> list[str]:
    """Our checkpoints, then the reference when shared/ has it (or always under CI, so it fails loudly)."""
    from dt_circuits.paths import own_checkpoints, reference_checkpoint

    paths = [str(p) for p in own_checkpoints()]
    ref = reference_checkpoint()
    if ref.exists() or os.environ.get("CI"):
        paths.append(str(ref))
    return paths
