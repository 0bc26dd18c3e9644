"""Flake check: run the claims under several generation seeds and report every verdict that changes.

A verdict is only worth gating on if it does not depend on which equally valid states, timesteps, rollouts and
ablation dataset happened to be drawn. Seed 0 is the recorded run; seeds 1..N-1 redraw everything a claim's
numbers rest on (``Subject.generation_seed``) and keep what defines the claim (families, RTGs, bounds, the
bootstrap procedure). A claim whose verdict differs between runs is flaky: it is reported with every run's effect,
CI and margin, so the fix (more states, or a bound the data justify) can be argued from numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dt_circuits.claims.evaluation.results import CheckResult
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.language.claim import Check, Claim
from dt_circuits.claims.suite.discovery import discover
from dt_circuits.claims.suite.run import ClaimRun, run_suite
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.executor import ExecutorSpec, run_tasks
from dt_circuits.core.tables import aligned_lines
from dt_circuits.dt.model import DecisionTransformer

DEFAULT_RUNS = 20


def margin(check: Check, result: CheckResult) -> float:
    """How far the whole CI clears the check's bound, in the check's unit: > 0 holds with that much room,
    < 0 misses by that much (NaN when the effect is undefined, which fails)."""
    parts = []
    if check.at_least is not None:
        parts.append(result.ci_low - check.at_least)
    if check.at_most is not None:
        parts.append(check.at_most - result.ci_high)
    return float("nan") if any(math.isnan(p) for p in parts) else min(parts)


@dataclass
class CheckRuns:
    """One check across runs: whether it held, its effect and CI, and its margin, per generation seed."""

    name: str
    bound: str
    control: bool
    holds: list[bool] = field(default_factory=list)
    effects: list[float] = field(default_factory=list)
    ci_lows: list[float] = field(default_factory=list)
    ci_highs: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)

    @property
    def flips(self) -> bool:
        return len(set(self.holds)) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bound": self.bound,
            "control": self.control,
            "flips": self.flips,
            "holds": self.holds,
            "effect": self.effects,
            "ci_low": self.ci_lows,
            "ci_high": self.ci_highs,
            "margin": self.margins,
        }


@dataclass
class ClaimRuns:
    """One claim across runs: its verdict per generation seed and every check's numbers."""

    claim_id: str
    expected: str
    verdicts: list[str] = field(default_factory=list)
    checks: list[CheckRuns] = field(default_factory=list)

    @property
    def flips(self) -> bool:
        """The verdict differs between runs: the claim is flaky."""
        return len(set(self.verdicts)) > 1

    @property
    def latent(self) -> list[CheckRuns]:
        """Checks whose outcome flips while the verdict does not (another check decides it in every run):
        not a flake today, but one as soon as that other check changes."""
        return [c for c in self.checks if c.flips] if not self.flips else []

    @property
    def margins(self) -> list[float]:
        """Per run, the smallest check margin (NaN if any check is undefined): the claim holds iff it is >= 0,
        so its range across runs says how close the verdict is to flipping."""
        out = []
        for i in range(len(self.verdicts)):
            ms = [c.margins[i] for c in self.checks]
            out.append(float("nan") if any(math.isnan(m) for m in ms) else min(ms))
        return out

    def count(self, verdict: str) -> int:
        return self.verdicts.count(verdict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.claim_id,
            "expected": self.expected,
            "flips": self.flips,
            "verdicts": self.verdicts,
            "holds": self.count("holds"),
            "fails": self.count("fails"),
            "margin": self.margins,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass
class FlakeReport:
    """Every claim across the runs of one flake check on one checkpoint."""

    checkpoint: str
    name: str
    seeds: list[int]
    claims: list[ClaimRuns]
    seconds: float = 0.0

    @property
    def flaky(self) -> list[ClaimRuns]:
        return [c for c in self.claims if c.flips]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "name": self.name,
            "generation_seeds": self.seeds,
            "runs": len(self.seeds),
            "flaky": [c.claim_id for c in self.flaky],
            "claims": [c.to_dict() for c in self.claims],
            "seconds": round(self.seconds, 2),
        }


def collect(claims: Sequence[Claim], runs_by_seed: Sequence[tuple[int, Sequence[ClaimRun]]]) -> list[ClaimRuns]:
    """Arrange per-seed suite runs by claim and check (the seed order is kept)."""
    out = []
    ran = {r.claim.id for _, runs in runs_by_seed for r in runs}
    for claim in claims:
        if claim.id not in ran:  # not applicable to this checkpoint's env family: never run, nothing to compare
            continue
        entry: ClaimRuns | None = None
        for _, runs in runs_by_seed:
            run = next(r for r in runs if r.claim.id == claim.id)
            by_name = {c.name: c for c in claim.checks}
            checks = [by_name[r.name.removesuffix(" [on-policy]")] for r in run.verdict.checks]
            if entry is None:
                entry = ClaimRuns(claim.id, run.expected)
                entry.checks = [CheckRuns(r.name, r.bound, r.control) for r in run.verdict.checks]
            entry.verdicts.append(run.verdict.verdict)
            for check, result, acc in zip(checks, run.verdict.checks, entry.checks, strict=True):
                acc.holds.append(result.holds)
                acc.effects.append(result.effect)
                acc.ci_lows.append(result.ci_low)
                acc.ci_highs.append(result.ci_high)
                acc.margins.append(margin(check, result))
        if entry is not None:
            out.append(entry)
    return out


def flake_seed(task: dict[str, Any]) -> list[tuple[str, Any, str, float]]:
    """One generation seed of a flake check on a checkpoint file (an executor task): ``[(claim id, verdict,
    expected, seconds)]`` for the library claims named in ``task['claims']``."""
    import torch

    from dt_circuits.claims.suite.discovery import select_claims

    torch.set_num_threads(1)
    subject = Subject.load(task["checkpoint"], task.get("roles_file"), generation_seed=task["seed"])
    subject.workers = task.get("workers")
    runs = run_suite(subject, select_claims(task["claims"]), search=False)
    return [(r.claim.id, r.verdict, r.expected, r.seconds) for r in runs]


def flakecheck(
    model: DecisionTransformer | None = None,
    *,
    checkpoint: str | None = None,
    runs: int = DEFAULT_RUNS,
    first_seed: int = 0,
    claims: Sequence[Claim] | None = None,
    roles_file: str | None = None,
    executor: ExecutorSpec | None = None,
    on_run: Callable[[int, float], None] | None = None,
) -> FlakeReport:
    """Run ``claims`` (default: all) at generation seeds ``first_seed .. first_seed + runs - 1``.

    Each seed gets a fresh Subject (its own families, timesteps, rollouts and ablation means); the bootstrap and
    everything a claim states stay fixed. Seeds are tasks on ``executor`` (default: one after another in this
    process): with a ``checkpoint`` path each task loads it, so seeds can run in other processes or on Ray;
    an in-memory ``model`` runs in this process. ``on_run(seed, seconds)`` is called after each run (progress).
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2:
        raise ConfigError(f"a flake check needs at least 2 runs, got {runs!r}")
    if isinstance(first_seed, bool) or not isinstance(first_seed, int) or first_seed < 0:
        raise ConfigError(f"the first generation seed must be a non-negative integer, got {first_seed!r}")
    if (model is None) == (checkpoint is None):
        raise ConfigError("a flake check needs exactly one of a model or a checkpoint path")
    spec = executor or ExecutorSpec(workers=1)
    claims = list(claims or discover())
    seeds = list(range(first_seed, first_seed + runs))
    start = time.perf_counter()
    if checkpoint is not None:
        ids = [c.id for c in claims]
        workers = 1 if spec.kind == "ray" or spec.local_workers(runs) > 1 else None
        tasks = [
            {"checkpoint": str(checkpoint), "roles_file": roles_file, "seed": s, "claims": ids, "workers": workers}
            for s in seeds
        ]
        by_id = {c.id: c for c in claims}
        results = run_tasks(
            flake_seed, tasks, spec, on_done=lambda i, r, t: on_run and on_run(seeds[i], sum(x[3] for x in r))
        )
        per_seed = [
            (seed, [ClaimRun(by_id[cid], verdict, expected, secs) for cid, verdict, expected, secs in res])
            for seed, res in zip(seeds, results, strict=True)
        ]
        name, source = Subject.load(checkpoint, roles_file).name, str(checkpoint)
    else:
        if spec.kind != "local" or spec.local_workers(runs) > 1:
            raise ConfigError("a flake check of an in-memory model runs in this process; pass a checkpoint path")
        name, source = "model", "<in memory>"

        def one(seed: int) -> tuple[str, str, list[ClaimRun]]:
            t0 = time.perf_counter()
            subject = Subject.from_model(model, roles_file=roles_file, generation_seed=seed)
            out = run_suite(subject, claims, search=False)
            if on_run:
                on_run(seed, time.perf_counter() - t0)
            return subject.name, subject.source, out

        outs = run_tasks(one, seeds, spec)
        if outs:
            name, source = outs[-1][0], outs[-1][1]
        per_seed = [(seed, out[2]) for seed, out in zip(seeds, outs, strict=True)]
    return FlakeReport(source, name, seeds, collect(claims, per_seed), time.perf_counter() - start)


def _range(values: Sequence[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "nan"
    lo, hi = min(finite), max(finite)
    text = f"{lo:+.3f}" if lo == hi else f"{lo:+.3f}..{hi:+.3f}"
    return text if len(finite) == len(values) else f"{text} (nan in {len(values) - len(finite)} runs)"


def format_report(report: FlakeReport) -> str:
    """A table (one row per claim: verdict counts, margin range of its deciding checks), then every flaky
    claim's flipping checks run by run, then latent flips."""
    n = len(report.seeds)
    rows = [("claim", "expected", "verdicts", "flaky", "margin across runs")]
    for c in report.claims:
        counts = ", ".join(f"{v} {c.count(v)}/{n}" for v in ("holds", "fails") if c.count(v))
        rows.append((c.claim_id, c.expected, counts, "FLAKY" if c.flips else "", _range(c.margins)))
    lines = aligned_lines(rows)
    for c in report.flaky:
        lines.append("")
        lines.append(f"FLAKY {c.claim_id}: holds in {c.count('holds')}/{n} runs, fails in {c.count('fails')}/{n}")
        for ch in (ch for ch in c.checks if ch.flips):
            lines.append(f"  check {ch.name!r} (needs {ch.bound}) flips:")
            for i, seed in enumerate(report.seeds):
                outcome = "holds" if ch.holds[i] else "fails"
                lines.append(
                    f"    generation seed {seed:>3}: {outcome}  effect {ch.effects[i]:+.4f} "
                    f"[{ch.ci_lows[i]:+.4f}, {ch.ci_highs[i]:+.4f}]  margin {ch.margins[i]:+.4f}"
                )
    for c in report.claims:
        for ch in c.latent:
            lines.append("")
            lines.append(
                f"latent: {c.claim_id} check {ch.name!r} (needs {ch.bound}) holds in {sum(ch.holds)}/{n} runs "
                f"(margin {_range(ch.margins)}); the verdict does not flip only because another check decides it"
            )
    verdict = (
        f"{len(report.flaky)} of {len(report.claims)} claims flip across {n} generation seeds: "
        + ", ".join(c.claim_id for c in report.flaky)
        if report.flaky
        else f"no verdict flips across {n} generation seeds ({len(report.claims)} claims)"
    )
    lines += ["", f"{verdict} ({report.seconds:.0f} s)"]
    return "\n".join(lines)
