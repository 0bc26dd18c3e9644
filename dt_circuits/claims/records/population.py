"""Verdicts as properties of a training recipe: retrain K seeds of a checkpoint's recipe, run every claim on
each, and report per claim how many seeds hold (k/K) with a Clopper–Pearson 95 % interval.

A claim's population verdict is ``holds`` when it holds in at least 80 % of the seeds, ``fails`` when it holds
in at most 20 %, and ``seed-dependent`` otherwise. Population expectations are recorded in the checkpoint's
manifest (``population_expectations``: the recipe overrides, the seeds, and each claim's expected population
verdict with its k/K); the population gate fails when a population verdict moves.

Seed k of a population retrains with train seed ``recorded seed + k`` (k = 0..K-1) and the recorded config plus
the population's overrides (e.g. the fast recipe). Every seed is one task of two stages (retrain, then judge) on
one executor (:mod:`dt_circuits.core.executor`): local processes or Ray, the same weights and verdicts either
way; a seed's claims run while the next seed trains.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dt_circuits.claims.records.recipe_bands import (
    FAMILY_ALPHA,
    MANIFEST_KEY,
    OutsideCheck,
    check_numbers,
    has_bands,
    judge_checks,
)
from dt_circuits.core.errors import CheckpointError, ConfigError
from dt_circuits.core.executor import ExecutorSpec, run_stages
from dt_circuits.core.machine import machine_kind
from dt_circuits.core.tables import aligned_lines
from dt_circuits.dt.checkpoint import read_manifest, require_retrainable

HOLDS_AT_LEAST = 0.8
FAILS_AT_MOST = 0.2
POPULATION_VERDICTS = ("holds", "fails", "seed-dependent")


def population_verdict(k: int, n: int) -> str:
    """``holds`` if k/n >= 0.8, ``fails`` if k/n <= 0.2, else ``seed-dependent``."""
    if n < 1 or not 0 <= k <= n:
        raise ConfigError(f"population verdict needs 0 <= k <= K and K >= 1, got k={k}, K={n}")
    if k >= HOLDS_AT_LEAST * n:
        return "holds"
    if k <= FAILS_AT_MOST * n:
        return "fails"
    return "seed-dependent"


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval for a binomial proportion, from ``scipy.stats.binomtest``."""
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


# -- one seed: retrain, then judge (two stages, each in an executor worker) ----------------------------------------
def retrain_seed(task: dict[str, Any]) -> dict[str, Any]:
    """Retrain ``task['checkpoint']`` with ``task['overrides']`` (seed and threads included); return the task with
    the trained weights (numpy arrays, for the judging stage) and the training's own numbers."""
    import torch

    from dt_circuits.claims.records.gate import retrain
    from dt_circuits.evaluation.pool import model_payload

    directory = Path(task["checkpoint"])
    torch.set_num_threads(int(task["overrides"].get("threads", 1)))
    manifest = read_manifest(directory)
    start = time.perf_counter()
    result, data, data_path = retrain(directory, task["overrides"], progress=False)
    retrain_seconds = time.perf_counter() - start
    if task.get("keep"):
        from dt_circuits.training.config import command_line
        from dt_circuits.training.train import save_run

        out = Path(task["keep"]) / f"seed-{task['seed']}"
        command = command_line(["dt-circuits", "train", "--data", str(data_path), "--out", str(out)], result.config)
        save_run(result, out, name=f"{manifest.get('name', directory.name)}-seed-{task['seed']}",
                 data_path=data_path, data=data, command=command)  # fmt: skip
    return {
        **task,
        "machine": machine_kind(),  # of the process that trained: the judge may run elsewhere (Ray)
        "model": model_payload(result.model, result.env),
        "trained": {
            "retrain_seconds": round(retrain_seconds, 1),
            "steps_per_second": round(result.steps_per_second, 1),
            "final_loss": result.curve["loss"][-1] if result.curve["loss"] else None,
            "evaluation": result.evaluations[-1]["results"] if result.evaluations else None,
        },
    }


def judge_seed(trained: dict[str, Any]) -> dict[str, Any]:
    """Run every claim (or ``only``) on a retrained seed; plain data back: the weights' sha256, timings, and per
    claim its verdict and headline numbers."""
    import torch

    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.claims.suite.discovery import select_claims
    from dt_circuits.claims.suite.run import run_suite
    from dt_circuits.dt.checkpoint import CheckpointInfo
    from dt_circuits.evaluation.pool import model_from_payload
    from dt_circuits.training.train import weights_digest

    directory = Path(trained["checkpoint"])
    manifest = read_manifest(directory)
    model, env = model_from_payload(trained["model"])
    for p in model.parameters():
        p.requires_grad_(False)
    model.checkpoint_info = CheckpointInfo(str(directory), "dt-circuits", env, manifest)
    subject = Subject.from_model(model, name=f"{manifest.get('name', directory.name)} seed {trained['seed']}")
    subject.workers = int(trained["overrides"].get("threads", 1))
    torch.set_num_threads(1)  # claims run many small batches: one intra-op thread (core.threads)
    start = time.perf_counter()
    runs = run_suite(subject, select_claims(trained.get("only")))
    claims_seconds = time.perf_counter() - start
    claims = {}
    for r in runs:
        h = r.verdict.headline
        claims[r.claim.id] = {
            "verdict": r.verdict.verdict,
            "check": h.name,
            "effect": float(h.effect),
            "ci_low": float(h.ci_low),
            "ci_high": float(h.ci_high),
            "checks": check_numbers(r.verdict.checks),
        }
    done = trained["trained"]
    return {
        "seed": trained["seed"],
        "machine": trained.get("machine") or machine_kind(),
        "weights_sha256": weights_digest(model),
        "retrain_seconds": done["retrain_seconds"],
        "steps_per_second": done["steps_per_second"],
        "claims_seconds": round(claims_seconds, 1),
        "final_loss": done["final_loss"],
        "evaluation": done["evaluation"],
        "claims": claims,
    }


# -- the population ------------------------------------------------------------------------------------------------
@dataclass
class PopulationClaim:
    """One claim across the seeds of a population."""

    claim_id: str
    verdicts: list[str]
    effects: list[float]
    expected: str | None = None
    #: "verdicts" (the population verdict must equal the recorded one: an old record without per-seed effects),
    #: "recipe" (every seed's checks inside the recorded population's bands, and k/K not told apart from the
    #: record's by Fisher's exact test, Holm over the claims) or "unrecorded" (the record predates the claim: not
    #: judged, and said so)
    judged_by: str = "verdicts"
    outside: list[OutsideCheck] = field(default_factory=list)
    recorded_k: int | None = None
    recorded_n: int | None = None
    p_verdicts: float | None = None
    verdicts_differ: bool = False

    @property
    def k(self) -> int:
        return self.verdicts.count("holds")

    @property
    def n(self) -> int:
        return len(self.verdicts)

    @property
    def verdict(self) -> str:
        return population_verdict(self.k, self.n)

    @property
    def ci(self) -> tuple[float, float]:
        return clopper_pearson(self.k, self.n)

    @property
    def moved(self) -> bool:
        if self.judged_by == "recipe":
            return bool(self.outside) or self.verdicts_differ
        return self.expected is not None and self.verdict != self.expected

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci
        out = {
            "id": self.claim_id,
            "k": self.k,
            "K": self.n,
            "ci_low": round(lo, 4),
            "ci_high": round(hi, 4),
            "population_verdict": self.verdict,
            "expected": self.expected,
            "moved": self.moved,
            "judged_by": self.judged_by,
            "verdicts": self.verdicts,
            "effects": [round(e, 6) for e in self.effects],
        }
        if self.judged_by == "recipe":
            out.update(
                recorded_k=self.recorded_k,
                recorded_K=self.recorded_n,
                p_verdicts=None if self.p_verdicts is None else round(self.p_verdicts, 6),
                verdicts_differ=self.verdicts_differ,
                outside=[o.to_dict() for o in self.outside],
            )
        return out


@dataclass
class PopulationResult:
    checkpoint: str
    name: str
    overrides: dict[str, Any]
    seeds: list[int]
    executor: str
    threads: int
    per_seed: list[dict[str, Any]]
    claims: list[PopulationClaim] = field(default_factory=list)
    wall_seconds: float = 0.0
    recorded: bool = False
    #: did the seed with the checkpoint's own train seed reproduce its weight bytes? None when not comparable
    #: (another recipe, thread count or CPU kind: weight bytes reproduce only on the CPU kind that trained them)
    reproduces_checkpoint: bool | None = None

    @property
    def passed(self) -> bool:
        """A gate passes when no population verdict moved and seed 0, where it is the checkpoint's own retrain on
        the CPU kind that trained it, gave the committed bytes; a record run (which changes the record) always does."""
        return self.recorded or (not any(c.moved for c in self.claims) and self.reproduces_checkpoint is not False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "name": self.name,
            "K": len(self.seeds),
            "seeds": self.seeds,
            "overrides": self.overrides,
            "executor": self.executor,
            "threads": self.threads,
            "passed": self.passed,
            "retrain_seconds": [s["retrain_seconds"] for s in self.per_seed],
            "claims_seconds": [s["claims_seconds"] for s in self.per_seed],
            "weights_sha256": [s["weights_sha256"] for s in self.per_seed],
            "wall_seconds": round(self.wall_seconds, 1),
            "reproduces_checkpoint": self.reproduces_checkpoint,
            "claims": [c.to_dict() for c in self.claims],
            "per_seed": self.per_seed,
        }


def population_claims(per_seed: list[dict[str, Any]], expected: dict[str, str | None]) -> list[PopulationClaim]:
    """Each claim across the seeds' judged results, with its recorded population verdict (None: none)."""
    return [
        PopulationClaim(
            cid,
            [s["claims"][cid]["verdict"] for s in per_seed],
            [s["claims"][cid]["effect"] for s in per_seed],
            expected.get(cid),
        )
        for cid in per_seed[0]["claims"]
    ]


def rejudge_population(directory: str | os.PathLike[str], data: dict[str, Any]) -> PopulationResult:
    """Judge the seeds of a population run (``gate --seeds K --json`` output) against the checkpoint's current
    population record, without retraining: the same per-seed numbers, today's record and rule."""
    directory = Path(directory)
    require_retrainable(directory)
    recorded = read_manifest(directory).get(MANIFEST_KEY) or {}
    if not has_bands(recorded):
        raise CheckpointError(f"{directory}: no recorded population with per-seed effects to judge against")
    try:
        per_seed = data["per_seed"]
        expected = {cid: e.get("expected") for cid, e in (recorded.get("claims") or {}).items()}
        claims = population_claims(per_seed, expected)
        result = PopulationResult(str(directory), data["name"], data["overrides"], data["seeds"], data["executor"],
                                  data["threads"], per_seed, claims, data.get("wall_seconds", 0.0))  # fmt: skip
    except (KeyError, IndexError, TypeError) as exc:
        raise ConfigError(
            f"not a population JSON with per-seed numbers (gate --seeds K --json): missing {exc}"
        ) from None
    result.reproduces_checkpoint = data.get("reproduces_checkpoint")
    judge_population(claims, per_seed, recorded)
    return result


def recorded_population(directory: str | os.PathLike[str]) -> dict[str, Any]:
    return read_manifest(Path(directory)).get(MANIFEST_KEY) or {}


def run_population(
    checkpoint_dir: str | os.PathLike[str],
    k_seeds: int,
    *,
    overrides: dict[str, Any] | None = None,
    executor: ExecutorSpec | None = None,
    record: bool = False,
    only: list[str] | None = None,
    keep: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> PopulationResult:
    """Retrain ``k_seeds`` seeds of the checkpoint's recipe (recorded config + recorded population overrides +
    ``overrides``), run every claim on each, and compare each claim's population verdict with the recorded one.

    ``record`` writes the population verdicts into the manifest instead of comparing, with ``overrides`` as the
    recipe (None: the recorded population's overrides again, {}: none); ``only`` limits the
    claims (a recorded population keeps the verdicts of claims not run); ``keep`` saves each seed's checkpoint
    as ``keep/seed-N`` (for Table 1 or a closer look).
    """
    from dt_circuits.core.progress import progress as progress_reporter

    if isinstance(k_seeds, bool) or not isinstance(k_seeds, int) or k_seeds < 1:
        raise ConfigError(f"--seeds must be an integer >= 1, got {k_seeds!r}")
    directory = Path(checkpoint_dir)
    require_retrainable(directory)
    manifest = read_manifest(directory)
    training = manifest.get("training") or {}
    if "config" not in training:
        raise CheckpointError(f"{directory}: manifest has no training.config; it cannot be retrained")
    recorded = manifest.get(MANIFEST_KEY) or {}
    if not record and not recorded:
        raise CheckpointError(
            f"{directory}: no recorded population expectations to gate against "
            "(run `dt-circuits gate --seeds K --record` first)"
        )
    # re-recording with no override given keeps the recorded recipe: a bare `--record` must not silently swap
    # the population's recipe (e.g. fast) for the checkpoint's full one (RECIPES["committed"] asks for that)
    wanted = dict(recorded.get("overrides") or {}) if not record or overrides is None else {}
    wanted.update(overrides or {})
    wanted.pop("threads", None)  # threads per seed belong to the executor (recorded as the population's threads)
    if "seed" in wanted:
        raise ConfigError("a population chooses the train seeds itself (recorded seed + k); do not override seed")
    if not record and wanted != (recorded.get("overrides") or {}):
        raise ConfigError(
            f"population expectations were recorded with overrides {recorded.get('overrides') or {}}, "
            f"this run asks for {wanted}; use the recorded recipe or --record"
        )
    from dataclasses import fields

    from dt_circuits.training.config import TrainConfig

    unknown = set(wanted) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise ConfigError(f"unknown train config field(s) to override: {', '.join(sorted(unknown))}")
    spec = executor or ExecutorSpec()
    if not record and recorded.get("threads", spec.threads) != spec.threads:
        raise ConfigError(
            f"population expectations were recorded with {recorded['threads']} torch thread(s) per seed and the "
            f"weights depend on it; use --threads {recorded['threads']}"
        )
    base_seed = int(training["config"].get("seed", 0))
    seeds = [base_seed + k for k in range(k_seeds)]
    tasks = [
        {
            "checkpoint": str(directory),
            "seed": s,
            "overrides": {**wanted, "seed": s, "threads": spec.threads},
            "only": list(only) if only else None,
            "keep": str(keep) if keep else None,
        }
        for s in seeds
    ]
    bar = progress_reporter(k_seeds, f"population {manifest.get('name', directory.name)}", "seed", enabled=progress)

    def done(i: int, res: dict[str, Any], seconds: float) -> None:
        held = sum(c["verdict"] == "holds" for c in res["claims"].values())
        bar.set_postfix(last=f"seed {res['seed']}: retrain {res['retrain_seconds']:.0f} s, {held} hold")
        bar.update(1)

    start = time.perf_counter()
    per_seed = run_stages(retrain_seed, judge_seed, tasks, spec, on_done=done)
    bar.close()
    wall = time.perf_counter() - start
    # when recording, the previous record (if any) is what the new one is compared with, so the output says
    # which population verdicts the new record changes instead of "as recorded"
    expected = {cid: e.get("expected") for cid, e in (recorded.get("claims") or {}).items()}
    claims = population_claims(per_seed, expected)
    result = PopulationResult(
        str(directory),
        manifest.get("name", directory.name),
        wanted,
        seeds,
        spec.describe(),
        spec.threads,
        per_seed,
        claims,
        wall,
    )
    result.reproduces_checkpoint = _reproduces_checkpoint(directory, manifest, wanted, spec.threads, per_seed[0])
    if not record and has_bands(recorded):
        judge_population(claims, per_seed, recorded)
    if record:
        record_population(directory, result, keep=recorded if only else None)
        result.recorded = True
    return result


def judge_population(claims: list[PopulationClaim], per_seed: list[dict[str, Any]], recorded: dict[str, Any]) -> None:
    """Judge a population against the recorded one of its recipe: every seed's every check inside the recorded
    bands (family-wise over seeds x checks), and each claim's k/K against the record's by Fisher's exact test
    (Holm over claims, the same family-wise level). A CPU change is a new draw of the recipe, so neither rule
    asks for the recorded verdicts themselves."""
    from scipy.stats import fisher_exact
    from statsmodels.stats.multitest import multipletests

    by_id = {c.claim_id: c for c in claims}
    judged = [(cid, s["seed"], c.get("checks") or {}) for s in per_seed for cid, c in s["claims"].items()]
    for claim_id, o in judge_checks(recorded, judged)[0]:
        by_id[claim_id].outside.append(o)
    entries = recorded.get("claims") or {}
    tested: list[PopulationClaim] = []
    for claim in claims:
        if claim.claim_id not in entries:
            claim.judged_by = "unrecorded"  # no bands, no k/K: "inside" would be vacuous
            continue
        claim.judged_by = "recipe"
        entry = entries[claim.claim_id]
        if "k" in entry and "K" in entry:
            claim.recorded_k, claim.recorded_n = int(entry["k"]), int(entry["K"])
            table = [[claim.k, claim.n - claim.k], [claim.recorded_k, claim.recorded_n - claim.recorded_k]]
            claim.p_verdicts = float(fisher_exact(table).pvalue)
            tested.append(claim)
    if tested:
        reject = multipletests([c.p_verdicts for c in tested], alpha=FAMILY_ALPHA, method="holm")[0]
        for claim, differs in zip(tested, reject, strict=True):
            claim.verdicts_differ = bool(differs)


def _reproduces_checkpoint(
    directory: Path, manifest: dict[str, Any], overrides: dict[str, Any], threads: int, first: dict[str, Any]
) -> bool | None:
    """Seed 0 of a population of the checkpoint's own recipe is a full retrain of the checkpoint: on the CPU kind
    and kernel settings that trained it, its weights must be the committed bytes (None when the run is not that
    retrain)."""
    from dt_circuits.core.machine import same_kind

    training = manifest.get("training") or {}
    config = training.get("config") or {}
    if any(config.get(k) != v for k, v in overrides.items()) or int(config.get("threads", 0)) != threads:
        return None
    if first["seed"] != int(config.get("seed", 0)) or not same_kind(training, first.get("machine") or machine_kind()):
        return None
    from dt_circuits.dt.checkpoint import load_checkpoint
    from dt_circuits.training.train import weights_digest

    return weights_digest(load_checkpoint(directory)) == first["weights_sha256"]


def record_population(directory: Path, result: PopulationResult, keep: dict[str, Any] | None = None) -> None:
    """Write the population verdicts into the manifest (``population_expectations``), atomically; ``keep``: a
    recorded entry whose other claims stay (a partial recording with the same overrides)."""
    from dt_circuits.evaluation.calibration import update_manifest

    entry = {
        "method": (
            f"train seed = recorded seed + k for k in 0..K-1; holds if k/K >= {HOLDS_AT_LEAST}, fails if "
            f"<= {FAILS_AT_MOST}, else seed-dependent; Clopper-Pearson 95 % interval"
        ),
        "overrides": result.overrides,
        "threads": result.threads,
        "seeds": result.seeds,
        "machines": [s.get("machine") for s in result.per_seed],
        "weights_sha256": [s["weights_sha256"] for s in result.per_seed],
        "claims": {
            c.claim_id: {
                "expected": c.verdict,
                "k": c.k,
                "K": c.n,
                "verdicts": c.verdicts,
                # every check's primary effect per seed: what a retrain's numbers are judged against
                "checks": seed_effects(result.per_seed, c.claim_id),
            }
            for c in result.claims
        },
    }
    if keep and keep.get("overrides") == result.overrides:
        entry["claims"] = {**keep.get("claims", {}), **entry["claims"]}
    update_manifest(directory, **{MANIFEST_KEY: entry})


def seed_effects(per_seed: list[dict[str, Any]], claim_id: str) -> dict[str, list[float | None]]:
    """Per check of one claim, its effect on each seed (None where a seed lacks the check or its number)."""
    keys: list[str] = []
    for s in per_seed:
        for key in s["claims"][claim_id].get("checks") or {}:
            if key not in keys:
                keys.append(key)
    return {
        key: [
            None if (e := (s["claims"][claim_id].get("checks") or {}).get(key)) is None
            else None if e["effect"] is None else round(e["effect"], 6)
            for s in per_seed
        ]
        for key in keys
    }  # fmt: skip


def format_population(result: PopulationResult) -> str:
    """One row per claim: k/K, interval, population verdict, recorded verdict, MOVED where they differ."""
    n = len(result.seeds)
    rows = [("claim", "holds k/K", "95% CI (Clopper-Pearson)", "population verdict", "recorded", "")]
    for c in result.claims:
        lo, hi = c.ci
        status = "" if c.expected is None else ("MOVED" if c.moved else "ok")
        recorded = c.expected or "-"
        if c.judged_by == "recipe" and c.recorded_n:
            recorded = f"{c.recorded_k}/{c.recorded_n} {c.expected or ''}".rstrip()
        rows.append((c.claim_id, f"{c.k}/{c.n}", f"[{lo:.2f}, {hi:.2f}]", c.verdict, recorded, status))
    lines = aligned_lines(rows)
    for c in result.claims:
        if c.moved and c.judged_by == "recipe":
            why = []
            if c.outside:
                why.append(f"{len(c.outside)} check value(s) outside what the recipe does")
            if c.verdicts_differ:
                why.append(
                    f"holds on {c.k}/{c.n} seeds against the record's {c.recorded_k}/{c.recorded_n} "
                    f"(Fisher p {c.p_verdicts:.2g}, Holm at {FAMILY_ALPHA})"
                )
            lines.append(f"MOVED {c.claim_id}: " + "; ".join(why))
            lines.extend(f"    {o.text()}" for o in c.outside)
        elif c.moved:
            lines.append(
                f"{'CHANGED' if result.recorded else 'MOVED'} {c.claim_id}: "
                f"{'previously ' if result.recorded else ''}recorded {c.expected}, now {c.verdict} "
                f"(per seed: {', '.join(f'{s} {v}' for s, v in zip(result.seeds, c.verdicts, strict=True))})"
            )
    times = ", ".join(f"{s['retrain_seconds']:.0f}" for s in result.per_seed)
    over = f"; overrides {result.overrides}" if result.overrides else ""
    head = "population RECORDED" if result.recorded else f"population gate {'PASSED' if result.passed else 'FAILED'}"
    moved = sum(c.moved for c in result.claims)
    compared = sum(c.expected is not None for c in result.claims)
    if result.recorded:
        same = (
            f"{compared - moved}/{compared} population verdicts as in the previous record"
            if compared
            else "no previous record"
        )
    elif any(c.judged_by == "recipe" for c in result.claims):
        judged = sum(c.judged_by == "recipe" for c in result.claims)
        unrecorded = [c.claim_id for c in result.claims if c.judged_by == "unrecorded"]
        same = (
            f"{judged - moved}/{judged} claims inside what the recipe does (every seed's checks inside the "
            f"recorded bands, k/K as the record's)"
        ) + (f"; NOT JUDGED: {', '.join(unrecorded)} (the recorded population predates them)" if unrecorded else "")
    else:
        same = f"{len(result.claims) - moved}/{len(result.claims)} population verdicts as recorded"
    if result.reproduces_checkpoint is not None:
        lines.append(
            f"seed {result.seeds[0]} is a full retrain of the checkpoint: "
            + ("identical weight bytes" if result.reproduces_checkpoint else "WEIGHTS DIFFER from the committed bytes")
        )
    lines.append(
        f"{head}: {same}; "
        f"K={n} seeds {result.seeds[0]}..{result.seeds[-1]}{over}; executor {result.executor}; "
        f"retrain s per seed [{times}]; wall {result.wall_seconds:.0f} s"
    )
    return "\n".join(lines)


# -- the README table ------------------------------------------------------------------------------------------------
def population_table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown table, one row per claim and one column per population JSON (``gate --seeds K --json``):
    ``k/K verdict [CI]``. ``results`` maps a column title to a loaded JSON file."""
    titles = list(results)
    ids = sorted({c["id"] for r in results.values() for c in r["claims"]})
    lines = ["| claim | " + " | ".join(titles) + " |", "|---|" + "---|" * len(titles)]
    for cid in ids:
        cells = []
        for t in titles:
            c = next((c for c in results[t]["claims"] if c["id"] == cid), None)
            cells.append(
                "–" if c is None
                else f"{c['k']}/{c['K']} {c['population_verdict']} [{c['ci_low']:.2f}, {c['ci_high']:.2f}]"
            )  # fmt: skip
        lines.append(f"| `{cid}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main_check(per_seed: list[dict[str, Any]], claim_id: str) -> str | None:
    """The claim's first effect check (its hypothesis' number), else its first check, as recorded per seed."""
    checks = (per_seed[0]["claims"].get(claim_id) or {}).get("checks") or {}
    return next((k for k, c in checks.items() if c.get("kind") == "effect"), next(iter(checks), None))


def _spread(per_seed: list[dict[str, Any]], claim_id: str, check: str | None) -> str:
    import numpy as np

    values = [
        c["effect"]
        for s in per_seed
        if (c := ((s["claims"].get(claim_id) or {}).get("checks") or {}).get(check or "")) and c["effect"] is not None
    ]
    if not values:
        return "–"
    return f"{float(np.median(values)):+.3f} [{min(values):+.3f}, {max(values):+.3f}]"


def _cell(text: str) -> str:
    """Markdown table cell text: a "|" (as in |Δ forward-right|) would end the cell."""
    return text.replace("|", "\\|")


def cross_kind_table(a: dict[str, Any], b: dict[str, Any], titles: tuple[str, str]) -> str:
    """Markdown table comparing two populations of one recipe (e.g. two CPU kinds or kernel paths): per claim
    k/K on each, Fisher's exact p for the two proportions, the main effect check's median [min, max] over the
    seeds of each, and how many of b's check values fall outside a's recorded bands (b run as a gate against
    the record a's seeds made)."""
    from scipy.stats import fisher_exact

    ta, tb = titles
    lines = [
        f"A: {ta}; B: {tb}.",
        "",
        "| claim | A: holds k/K | B: holds k/K | Fisher p | main effect check | A: median [min, max] "
        "| B: median [min, max] | B's check values outside A's bands |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows_b = {c["id"]: c for c in b["claims"]}
    for ca in sorted(a["claims"], key=lambda c: c["id"]):
        cid = ca["id"]
        cb = rows_b.get(cid)
        if cb is None:
            continue
        p = fisher_exact([[ca["k"], ca["K"] - ca["k"]], [cb["k"], cb["K"] - cb["k"]]]).pvalue
        check = main_check(a["per_seed"], cid)
        outside = len(cb.get("outside") or []) if cb.get("judged_by") == "recipe" else "–"
        lines.append(
            f"| `{cid}` | {ca['k']}/{ca['K']} | {cb['k']}/{cb['K']} | {p:.2f} | {_cell(check or '–')} | "
            f"{_spread(a['per_seed'], cid, check)} | {_spread(b['per_seed'], cid, check)} | {outside} |"
        )
    return "\n".join(lines)
