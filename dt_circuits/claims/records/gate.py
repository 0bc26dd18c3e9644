"""The retrain gate: retrain a committed checkpoint from its committed data and recorded config, re-run the
claims, and fail with a side-by-side diff when a circuit moved.

What "moved" means depends on what the retrain is:

- **the committed bytes again** (same seed, same CPU kind and kernels): the sharpest check there is — a claim
  moved when its verdict differs from the one recorded for the checkpoint; DRIFT when its recorded headline
  effect left its recorded interval.
- **other bytes** (another seed, or the same seed on another CPU kind: trained bytes depend on the CPU's
  kernels, so a CPU change is in effect another seed): judged against what the *recipe* does. A claim moved
  when one of its checks lies outside the recipe's prediction band (:mod:`dt_circuits.claims.records.recipe_bands`,
  family-wise over the checks) recorded from a population of seeds; DRIFT when every number is inside but the
  verdict is one no recorded seed gave.
- other bytes and a population record without per-seed effects (an old record): the recorded verdicts, as
  before, with a note that a CPU change can move them.

``update`` re-records the checkpoint deliberately.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.records.expectations import RECORDED_DECIMALS
from dt_circuits.claims.records.recipe_bands import (
    FAMILY_ALPHA,
    MANIFEST_KEY,
    OutsideCheck,
    check_numbers,
    has_bands,
    judge_checks,
    population_recipe_differs,
)
from dt_circuits.claims.suite.discovery import select_claims
from dt_circuits.claims.suite.run import ClaimRun, run_suite
from dt_circuits.core.errors import CheckpointError, ConfigError
from dt_circuits.core.paths import REPO_ROOT
from dt_circuits.core.tables import aligned_lines
from dt_circuits.dt.checkpoint import CheckpointInfo, read_manifest, require_retrainable


@dataclass
class GateRow:
    claim_id: str
    expected: str
    old: dict[str, Any] | None
    new: ClaimRun
    #: how the row was judged: "bytes" (the committed bytes' own record), "recipe" (the recipe's bands),
    #: "verdicts" (other bytes, no bands recorded: the checkpoint's verdicts) or "unrecorded" (other bytes, and
    #: the recorded population predates this claim: not judged, and said so)
    judged_by: str = "bytes"
    #: recipe mode: the checks outside the recipe's bands, and the verdicts the recorded seeds gave
    outside: list[OutsideCheck] = field(default_factory=list)
    population_verdicts: list[str] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        if self.judged_by == "unrecorded":
            return False
        if self.judged_by == "recipe":
            return bool(self.outside)
        return self.new.verdict.verdict != self.expected

    @property
    def drift(self) -> bool:
        """bytes: the verdict is as recorded but the recorded headline check's effect left its recorded interval;
        recipe: every number is inside the bands but no recorded seed gave this verdict."""
        if self.moved or self.judged_by == "unrecorded":
            return False
        if self.judged_by == "recipe":
            return bool(self.population_verdicts) and self.new.verdict.verdict not in self.population_verdicts
        if (
            self.judged_by != "bytes"
            or not self.old
            or self.old.get("ci_low") is None
            or self.old.get("ci_high") is None
        ):
            return False
        check = next((c for c in self.new.verdict.checks if c.name == self.old.get("check")), None)
        if check is None:
            return True  # the recorded check no longer exists: its number cannot be watched
        effect = check.effect
        # the record keeps RECORDED_DECIMALS: a zero-width interval (a weight reading) recorded as [x, x] must
        # still hold the unrounded number it was rounded from
        slack = 0.5 * 10.0**-RECORDED_DECIMALS + 1e-12
        return bool(effect != effect or not self.old["ci_low"] - slack <= effect <= self.old["ci_high"] + slack)

    @property
    def status(self) -> str:
        if self.judged_by == "unrecorded":
            return "NOT JUDGED"
        return "MOVED" if self.moved else "DRIFT" if self.drift else "ok"


@dataclass
class GateResult:
    checkpoint: str
    overrides: dict[str, Any]
    retrain_seconds: float
    claims_seconds: float
    identical_weights: bool
    rows: list[GateRow] = field(default_factory=list)
    #: what a record run kept from the previous manifest, dropped, or measured again
    notes: list[str] = field(default_factory=list)
    #: which rule judged the retrain (identical bytes: the checkpoint's record; other bytes: the recipe's bands)
    rule: str = ""

    @property
    def passed(self) -> bool:
        return not any(r.moved for r in self.rows)

    @property
    def strict_passed(self) -> bool:
        """No verdict moved and no recorded number drifted out of its recorded interval (``--strict``)."""
        return self.passed and not any(r.drift for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "overrides": self.overrides,
            "passed": self.passed,
            "strict_passed": self.strict_passed,
            "identical_weights": self.identical_weights,
            "retrain_seconds": round(self.retrain_seconds, 1),
            "claims_seconds": round(self.claims_seconds, 1),
            "notes": self.notes,
            "rule": self.rule,
            "claims": [
                {
                    "id": r.claim_id,
                    "expected": r.expected,
                    "old": r.old,
                    "new": r.new.to_dict(),
                    "moved": r.moved,
                    "drift": r.drift,
                    "status": r.status,
                }
                for r in self.rows
            ],
        }


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs for the train config (values parsed as JSON when they can be: 1, 0.5, "one_hot")."""
    import json

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _data_path(manifest: dict[str, Any], directory: Path) -> Path:
    data = (manifest.get("training") or {}).get("data") or {}
    if "path" not in data:
        raise CheckpointError(f"{directory}: manifest has no training.data.path; it cannot be retrained")
    path = Path(data["path"])
    return path if path.is_absolute() else REPO_ROOT / path


def retrain(directory: Path, overrides: dict[str, Any] | None = None, *, progress: bool = True):
    """Retrain from the manifest's recorded config and data file (sha256-checked); returns (result, data, path)."""
    from dt_circuits.core.io import sha256_file
    from dt_circuits.training.config import TrainConfig
    from dt_circuits.training.train import train
    from dt_circuits.trajectories.dataset import TrajectoryDataset

    manifest = read_manifest(directory)
    training = manifest.get("training") or {}
    if "config" not in training:
        raise CheckpointError(f"{directory}: manifest has no training.config; it cannot be retrained")
    data_path = _data_path(manifest, directory)
    if not data_path.exists():
        raise CheckpointError(f"{directory}: training data {data_path} is missing")
    expected_sha = (training.get("data") or {}).get("sha256")
    if expected_sha and sha256_file(data_path) != expected_sha:
        raise CheckpointError(f"{directory}: training data {data_path} does not match the sha256 in the manifest")
    from dataclasses import fields

    config = dict(training["config"])
    unknown = set(overrides or {}) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise ConfigError(f"unknown train config field(s) to override: {', '.join(sorted(unknown))}")
    config.update(overrides or {})
    data = TrajectoryDataset.load(data_path)
    return train(TrainConfig.from_dict(config), data, progress=progress), data, data_path


def run_gate(
    checkpoint_dir: str | os.PathLike[str],
    *,
    overrides: dict[str, Any] | None = None,
    update: bool = False,
    progress: bool = True,
    only: list[str] | None = None,
) -> GateResult:
    """Retrain, re-run every claim (or those in ``only``) against the checkpoint's recorded verdicts, optionally
    re-record (every claim)."""
    from dt_circuits.claims.records.expectations import record_expectations
    from dt_circuits.core.io import sha256_file
    from dt_circuits.training.train import save_run

    directory = Path(checkpoint_dir)
    require_retrainable(directory)
    manifest = read_manifest(directory)
    expectations = manifest.get("expectations") or {}
    if not expectations:
        raise CheckpointError(f"{directory}: no recorded expectations to gate against (run with --record first)")
    if update and only:
        raise ConfigError("re-recording a checkpoint records every claim of the new weights; drop --only")
    claims = select_claims(only)  # an unknown id fails here, before the retrain
    start = time.perf_counter()
    result, data, data_path = retrain(directory, overrides, progress=progress)
    retrain_seconds = time.perf_counter() - start

    model = result.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.checkpoint_info = CheckpointInfo(str(directory), "dt-circuits", result.env, manifest)
    subject = Subject.from_model(model, name=f"{manifest.get('name', directory.name)} (retrained)")
    start = time.perf_counter()
    runs = run_suite(subject, claims)  # checks adjusted for the shipped claims' family either way
    claims_seconds = time.perf_counter() - start

    identical = _weights_match(model, directory, sha256_file)
    rows = [
        GateRow(r.claim.id, (expectations.get(r.claim.id) or {}).get("expected", "holds"),
                (expectations.get(r.claim.id) or {}).get("measured"), r)
        for r in runs
    ]  # fmt: skip
    gate = GateResult(str(directory), dict(overrides or {}), retrain_seconds, claims_seconds, identical, rows)
    gate.rule = (
        judge_by_recipe(rows, manifest)
        if not identical
        else "identical weight bytes: every verdict and headline number compared with the checkpoint's record"
    )
    if update:
        from dt_circuits.training.record import record_calibration

        command = (manifest.get("training") or {}).get("command") or "dt-circuits gate --record"
        if overrides:
            command += " " + " ".join(shlex.quote(f"--override {k}={v}") for k, v in overrides.items())
        name = manifest.get("name", directory.name)
        save_run(result, directory, name=name, data_path=data_path, data=data, command=command)
        gate.notes.extend(carry_over(manifest, directory))
        # Table 1 and the calibration curve describe the weights: measured again, never kept from the old ones
        record_calibration(model, directory, name=name, progress=progress)
        gate.notes.append("measured the calibration curve and Table 1 of the new weights")
        refreshed = Subject.load(directory)
        record_expectations(refreshed, runs)
    return gate


def judge_by_recipe(rows: list[GateRow], manifest: dict[str, Any]) -> str:
    """Other weight bytes: judge each row against the recipe's recorded population (its bands), when the record
    has per-seed effects and this retrain is of the recorded population's recipe; say which rule was used."""
    population = manifest.get(MANIFEST_KEY) or {}
    if not has_bands(population):
        for r in rows:
            r.judged_by = "verdicts"
        return (
            "the weights differ and no recipe population with per-seed effects is recorded: verdicts compared "
            "with the checkpoint's (a CPU change alone can move them; record one with "
            "`dt-circuits gate --seeds 10 --record`)"
        )
    differs = population_recipe_differs(manifest, population)
    if differs:
        for r in rows:
            r.judged_by = "verdicts"
        return f"the recorded population is of another recipe ({differs}): verdicts compared with the checkpoint's"
    by_id = {r.claim_id: r for r in rows}
    outside, family, n_bands = judge_checks(
        population, [(r.claim_id, None, check_numbers(r.new.verdict.checks)) for r in rows]
    )
    recorded_claims = population.get("claims") or {}
    for r in rows:
        r.judged_by = "recipe" if r.claim_id in recorded_claims else "unrecorded"
        r.population_verdicts = list(recorded_claims.get(r.claim_id, {}).get("verdicts") or [])
    for claim_id, o in outside:
        by_id[claim_id].outside.append(o)
    k = len(population.get("seeds") or [])
    unrecorded = [r.claim_id for r in rows if r.judged_by == "unrecorded"]
    missing = (
        f"; NOT JUDGED: {', '.join(unrecorded)} (the recorded population predates them: re-record it with "
        "`dt-circuits gate --seeds 10 --record`)"
        if unrecorded
        else ""
    )
    return (
        f"weights differ from the committed bytes: each check judged against the recipe's prediction band from "
        f"{k} recorded seeds ({n_bands} bands, family-wise alpha {FAMILY_ALPHA} over {family} values){missing}"
    )


def carry_over(previous: dict[str, Any], directory: Path) -> list[str]:
    """After new weights are saved into ``directory``: keep what still applies from the ``previous`` manifest
    and say what was dropped (one note each).

    - ``roles``: the binding the gate's claims were judged with, so the recorded expectations stay consistent
      with it (``dt-circuits roles`` re-finds roles on the new weights);
    - ``population_expectations``: a property of the recipe, kept when every population seed's config is the
      same as before (the recorded config changed only where the population overrides it anyway);
    - ``head_paths``: findings about the old weights, dropped.
    """
    from dataclasses import fields

    from dt_circuits.evaluation.calibration import update_manifest
    from dt_circuits.training.config import TrainConfig

    new = read_manifest(directory)
    keep: dict[str, Any] = {}
    notes = []
    if "roles" in previous:
        keep.update({k: previous[k] for k in ("roles", "roles_method") if k in previous})
        notes.append(f"kept the role binding {previous['roles']} (`dt-circuits roles --checkpoint {directory}` "
                     "re-finds it on the new weights)")  # fmt: skip
    if "head_paths" in previous:
        notes.append("dropped head_paths (findings about the old weights; `dt-circuits roles --record` re-finds them)")
    population = previous.get(MANIFEST_KEY)
    if population:
        names = {f.name for f in fields(TrainConfig)} - {"seed", "threads"}
        pop = population.get("overrides") or {}

        defaults = TrainConfig().to_dict()  # a field added since the record was made counts at its default

        def seed_config(config: dict[str, Any]) -> dict[str, Any]:
            merged = {**defaults, **config, **pop}
            return {k: merged.get(k) for k in sorted(names)}

        old_cfg = seed_config((previous.get("training") or {}).get("config") or {})
        if old_cfg == seed_config((new.get("training") or {}).get("config") or {}):
            keep[MANIFEST_KEY] = population
            notes.append("kept the population expectations (the population's recipe is unchanged)")
        else:
            notes.append("dropped the population expectations: the population's recipe changed "
                         "(re-record them with `dt-circuits gate --seeds K --record`)")  # fmt: skip
    if keep:
        update_manifest(directory, **keep)
    return notes


def _weights_match(model, directory: Path, sha256_file) -> bool:
    """Would saving this model reproduce the committed weight bytes?"""
    import tempfile

    from safetensors.torch import save_file

    from dt_circuits.dt.checkpoint import FORMAT, WEIGHTS_FILE

    with tempfile.TemporaryDirectory() as tmp:
        tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(tensors, str(Path(tmp) / WEIGHTS_FILE), metadata={"format": FORMAT})
        return sha256_file(Path(tmp) / WEIGHTS_FILE) == sha256_file(directory / WEIGHTS_FILE)


def _fmt(entry: dict[str, Any] | None, verdict: str) -> str:
    from dt_circuits.claims.evaluation.results import _fmt as num

    if not entry:
        return f"{verdict:<5} (no numbers recorded)"
    return f"{verdict:<5} {num(entry['effect'])} [{num(entry['ci_low'])}, {num(entry['ci_high'])}]"


def format_gate(gate: GateResult) -> str:
    """The side-by-side table: recorded verdict and numbers vs the retrained model's, MOVED where they differ.
    Judged by the recipe, the second column is what the recorded seeds did and a MOVED line prints each check
    outside its band with the numbers."""
    by_recipe = any(r.judged_by == "recipe" for r in gate.rows)
    recorded = "recipe population (seeds holding)" if by_recipe else "recorded (verdict effect [CI])"
    rows = [("claim", recorded, "retrained (verdict effect [CI])", "")]
    for r in gate.rows:
        h = r.new.verdict.headline
        if r.old and not r.moved and r.judged_by == "bytes":  # the recorded headline check: like with like
            h = next((c for c in r.new.verdict.checks if c.name == r.old.get("check")), h)
        new = _fmt({"effect": h.effect, "ci_low": h.ci_low, "ci_high": h.ci_high}, r.new.verdict.verdict)
        if r.judged_by == "unrecorded":
            old = "(not in the recorded population)"
        elif r.judged_by == "recipe":
            seeds = r.population_verdicts
            old = f"holds on {seeds.count('holds')}/{len(seeds)} seeds" if seeds else "(no seeds recorded)"
        else:
            old = _fmt(r.old, r.expected)
        rows.append((r.claim_id, old, new, r.status))
    lines = aligned_lines(rows)
    for r in gate.rows:
        if r.moved and r.judged_by == "recipe":
            seeds = r.population_verdicts
            lines.append(
                f"MOVED {r.claim_id}: {len(r.outside)} check(s) outside what the recipe does (now "
                f"{r.new.verdict.verdict}; the recorded seeds: {seeds.count('holds')}/{len(seeds)} hold)"
            )
            lines.extend(f"    {o.text()}" for o in r.outside)
        elif r.moved:
            lines.append(f"MOVED {r.claim_id}: recorded {r.expected}, now {r.new.verdict.verdict}")
            lines.extend(
                f"    {'ok  ' if c.holds else 'FAIL'} {c.name}: {c.numbers(lambda x: f'{x:+.4f}')} needs {c.bound}"
                for c in r.new.verdict.checks
            )
    weights = "identical weight bytes" if gate.identical_weights else "weights differ from the committed ones"
    over = f"; overrides {gate.overrides}" if gate.overrides else ""
    for r in gate.rows:
        if r.drift and r.judged_by == "recipe":
            lines.append(
                f"DRIFT {r.claim_id}: {r.new.verdict.verdict}, which none of the {len(r.population_verdicts)} "
                "recorded seeds gave; every number inside the recipe's bands"
            )
        elif r.drift:
            lines.append(f"DRIFT {r.claim_id}: {r.old.get('check')} left its recorded interval (verdict unchanged)")
    if gate.rule:
        lines.append(f"rule: {gate.rule}")
    lines.extend(f"record: {note}" for note in gate.notes)
    drifted = sum(r.drift for r in gate.rows)
    same = "inside what the recipe does" if by_recipe else "verdicts as recorded"
    lines.append(
        f"gate {'PASSED' if gate.passed else 'FAILED'}: {sum(not r.moved for r in gate.rows)}/{len(gate.rows)} "
        f"{same}, {drifted} drifted; {weights}{over}; "
        f"retrain {gate.retrain_seconds:.0f} s, claims {gate.claims_seconds:.0f} s"
    )
    return "\n".join(lines)
