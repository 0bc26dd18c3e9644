"""Each arm of the game recorded as a population (issue 28, deliverable 2): the seeds of one planting recipe in the
schema ``dt-circuits gate --seeds K --json`` writes (per claim k/K with its Clopper–Pearson interval and population
verdict; per seed the weights' hash, the machine and the verdicts), plus every seed's planted truth, so
``dt-circuits population-table --json "arm A=docs/populations/audit-A.json"`` reads it like any other population.

A claim of an arm population is a game claim asked of one component ("obstacle-avoidance-head @ L0H1"); its k/K is
how many seeds it holds on, beside how many seeds the component carries the ball (``carries``), so a reader sees at
once whether a claim tracks the truth across seeds. Built from the recorded game (``docs/audit/game.json``) and the
manifests beside the weights: nothing is re-run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dt_circuits.core.errors import ConfigError

#: where the arm populations are written, one file per arm
POPULATION_DIR = "docs/populations"


def population_path(arm: str) -> str:
    return f"{POPULATION_DIR}/audit-{arm}.json"


def claim_id(claim: str, component: str) -> str:
    return f"{claim} @ {component}"


def arm_populations(game: dict[str, Any], models_root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """One population dict per arm of ``game``, with each seed's weights hash and training recipe read from the
    manifests under ``models_root`` (which must hold every model the game played; None: the game's numbers only,
    as the README's table needs)."""
    from dt_circuits.claims.records.population import clopper_pearson, population_verdict
    from dt_circuits.dt.checkpoint import read_manifest
    from dt_circuits.training.config import IIT_FIELDS

    models = {m["model"]: m for m in game["models"]}
    rows_by_model: dict[str, list[dict[str, Any]]] = {}
    for r in game["rows"]:
        rows_by_model.setdefault(r["model"], []).append(r)
    arms: dict[str, list[str]] = {}
    for name, m in models.items():
        arms.setdefault(str(m["arm"]), []).append(name)
    out = {}
    for arm, names in sorted(arms.items()):
        names.sort(key=lambda n: int(models[n]["seed"]))
        per_seed, iit = [], None
        for name in names:
            manifest: dict[str, Any] = {}
            if models_root is not None:
                directory = Path(models_root) / name
                if not (directory / "manifest.json").is_file():
                    raise ConfigError(f"the game played {name}, but {directory} holds no model: pass --models")
                manifest = read_manifest(directory)
            config = (manifest.get("training") or {}).get("config") or {}
            recipe = {k: config.get(k) for k in IIT_FIELDS}
            if iit is not None and recipe != iit:
                raise ConfigError(f"arm {arm}: {name} was planted with another recipe than its arm's first seed")
            iit = recipe
            per_seed.append({
                "seed": int(models[name]["seed"]),
                "model": name,
                "machine": {"cpu": (manifest.get("training") or {}).get("cpu", game.get("cpu", "?"))},
                "weights_sha256": manifest.get("weights_sha256"),
                "planted_truth": models[name],
                "claims": {
                    claim_id(r["claim"], r["component"]): {"kind": r["kind"], "verdict": r["verdict"],
                                                           "truth": r["truth"], "by_recipe": r["by_recipe"]}
                    for r in rows_by_model.get(name, [])
                },
            })  # fmt: skip
        ids = sorted({cid for s in per_seed for cid in s["claims"]})
        claims = []
        for cid in ids:
            seen = [s["claims"][cid] for s in per_seed if cid in s["claims"]]
            k, n = sum(c["verdict"] == "holds" for c in seen), len(seen)
            low, high = clopper_pearson(k, n)
            claims.append({
                "id": cid, "kind": seen[0]["kind"], "k": k, "K": n, "ci_low": round(low, 4), "ci_high": round(high, 4),
                "population_verdict": population_verdict(k, n), "judged_by": "verdicts",
                "verdicts": [c["verdict"] for c in seen], "truth": [c["truth"] for c in seen],
                "carries": sum(c["truth"] == "carries" for c in seen),
            })  # fmt: skip
        out[arm] = {
            "name": f"audit arm {arm}",
            "arm": arm,
            "planted": models[names[0]].get("planted"),
            "K": len(names),
            "seeds": [s["seed"] for s in per_seed],
            "overrides": iit,
            "scored_against": "the planted truth (docs/audit.md)",
            "claims": claims,
            "per_seed": per_seed,
        }
    return out


def populations_markdown(populations: dict[str, dict[str, Any]]) -> str:
    """The k/K table with one column per arm (``records.population.population_table``), and under it the truth
    the k/K should track: per component, in how many seeds it carries / partly carries / does not carry the ball,
    as a whole component and along its direct path (a head's; the path claim's truth)."""
    from dt_circuits.claims.records.population import population_table

    columns = {f"arm {a}, {p['planted'] or 'nothing'} planted (K={p['K']})": p for a, p in populations.items()}
    lines = [population_table(columns)]
    for key, what in (("components", "whole component"), ("direct_paths", "direct path")):
        names = sorted({c for p in populations.values() for s in p["per_seed"] for c in s["planted_truth"][key]})
        for component in names:
            cells = []
            for p in populations.values():
                labels = [s["planted_truth"][key][component]["label"] for s in p["per_seed"]]
                cells.append(" / ".join(str(labels.count(x)) for x in ("carries", "partial", "absent")))
            lines.append(f"| truth @ {component}, {what}: carries / partial / absent | " + " | ".join(cells) + " |")
    return "\n".join(lines)
