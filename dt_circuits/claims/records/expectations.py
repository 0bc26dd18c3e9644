"""Recording what each claim is expected to do on a checkpoint, with the numbers that were measured.

A negative result is recorded, not hidden: the expectation says "fails" and keeps the effect and CI measured
when it was recorded, so a later run can show what moved. Our checkpoints keep them in their manifest;
foreign files (the DTI reference) in ``<claims folder>/expectations/<sha256>.json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dt_circuits.claims.evaluation.subject import FOREIGN_EXPECTATIONS_DIR, Subject
from dt_circuits.claims.suite.run import ClaimRun
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import read_json, sha256_file, write_json_atomic
from dt_circuits.dt.checkpoint import MANIFEST_FILE, read_manifest

#: decimals a recorded number keeps; a re-measured number is compared with it to within half the last decimal
RECORDED_DECIMALS = 6


def _r(x: float | None) -> float | None:
    return None if x is None or x != x else round(x, RECORDED_DECIMALS)


def expectation_entry(run: ClaimRun) -> dict[str, Any]:
    """What is recorded for one claim: its verdict and reason, the headline's numbers, and every check's."""
    h = run.verdict.headline
    entry: dict[str, Any] = {
        "expected": run.verdict.verdict,
        "reason": run.verdict.reason,
        "recipe_dependent": run.verdict.recipe_dependent,
        "failing_checks": run.verdict.failing_checks,
        "measured": {
            "check": h.name,
            "effect": _r(h.effect),
            "ci_low": _r(h.ci_low),
            "ci_high": _r(h.ci_high),
            "bound": h.bound,
            "n": h.n,
            "n_clusters": h.n_clusters,
        },
        "checks": {
            c.name: {
                "kind": c.kind,
                "holds": c.holds,
                "effect": _r(c.effect),
                "ci_low": _r(c.ci_low),
                "ci_high": _r(c.ci_high),
                "bound": c.bound,
                "n_clusters": c.n_clusters,
                **({"recipes": {k: _recipe_record(v) for k, v in c.recipes.items()}} if c.recipes else {}),
            }
            for c in run.verdict.checks
        },
    }
    if h.reason:  # a check that failed on an unused path, or with no number (undefined), not on its bound
        entry["measured"]["reason"] = h.reason
    return entry


def _recipe_record(recipe: dict[str, Any]) -> dict[str, Any]:
    """A recipe's effect and whether it clears the bound; on object families where its replacement reads between
    no object and the object, and whether that leaves it uninformative; for the counterfactual recipe also the
    share of the object's effect the component carries, with its interval, and the object's own effect."""
    out = {"effect": _r(recipe["effect"]), "holds": recipe["holds"]}
    if "reads_as_object" in recipe:  # where the replacement sits between no object (0) and the object (1)
        out["reads_as_object"] = _r(recipe["reads_as_object"])
        out["uninformative"] = recipe["uninformative"]
    m = recipe.get("mediation")
    if m:
        out["mediation"] = {
            "share": _r(m.get("share")),
            "ci_low": _r(m.get("ci_low")),
            "ci_high": _r(m.get("ci_high")),
            "object_effect": _r(m.get("object_effect")),
        }
    return out


def record_expectations(
    subject: Subject, runs: list[ClaimRun], expectations_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Write the measured verdicts as the checkpoint's expectations; returns the file written.

    Our checkpoint directories keep them in their manifest; a foreign file's go to
    ``expectations_dir/<sha256>.json`` (default: beside the shipped claims)."""
    entries = {r.claim.id: expectation_entry(r) for r in runs}
    source = Path(subject.source)
    if source.is_dir():
        manifest = read_manifest(source)
        manifest["expectations"] = {**(manifest.get("expectations") or {}), **entries}
        manifest["roles"] = subject.roles
        write_json_atomic(source / MANIFEST_FILE, manifest)
        subject.expectations.update(entries)
        return source / MANIFEST_FILE
    sha = sha256_file(source)
    path = Path(expectations_dir or FOREIGN_EXPECTATIONS_DIR) / f"{sha}.json"
    existing = (
        read_json(path, "expectations file", ConfigError, prefix="cannot record expectations: ")
        if path.exists()
        else {}
    )
    if not isinstance(existing, dict) or not isinstance(existing.get("expectations", {}), dict):
        raise ConfigError(f"cannot record expectations: {path} is not an expectations file (a JSON object)")
    existing.update({"checkpoint": source.name, "sha256": sha, "roles": subject.roles})
    existing.setdefault("expectations", {}).update(entries)
    write_json_atomic(path, existing)
    subject.expectations.update(entries)
    return path
