"""The game itself: run the claims blind on every planted model, once per binding of the role they test, and
pair each verdict with the truth recorded beside the weights.

Blind means the suite never sees the truth: each model is handed to the claims with a manifest holding only its
name, shape and env (no ``planted_truth``, no training config that names the planted component, no recorded
expectations). A claim about "the obstacle head" is asked of every component in turn: ``obstacle_head`` bound to
L0H1, L0H0 and the MLP, the control role ``goal_head`` bound to the other head (L0H0 for the MLP), fixed before
any verdict was seen (:data:`BINDINGS`). The verdict under each alternative recipe is the claim's verdict with
every check that has that recipe judged by it (checks without recipes keep their own result).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dt_circuits.audit.plant import TRUTH_KEY
from dt_circuits.core.errors import CheckpointError, ConfigError

#: the claims the planted truth decides, and what kind of claim each is (the path claim is the game's own:
#: audit/claims.py; it is asked of heads only, and judged by the truth of the head's direct path)
CLAIMS: dict[str, str] = {
    "obstacle-avoidance-head": "ablation",
    "obstacle-head-carries-ball": "counterfactual",
    "obstacle-head-ball-direct-path": "path",
}
#: obstacle_head -> the control role goal_head, for each component a claim is asked of
BINDINGS: dict[str, str] = {"L0H1": "L0H0", "L0H0": "L0H1", "mlp": "L0H0"}
#: the manifest entries a blind subject sees
BLIND_KEYS = ("format", "format_version", "name", "model_config", "env")


@dataclass(frozen=True)
class Row:
    """One verdict against the truth: a model (arm, seed), a claim, the component it was bound to."""

    model: str
    arm: str
    seed: int
    claim: str
    kind: str
    component: str
    truth: str  # carries / absent / partial (partial rows are not scored)
    iia: float
    verdict: str
    reason: str
    failing: tuple[str, ...]
    insufficient: tuple[str, ...]
    by_recipe: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["failing"], d["insufficient"] = list(self.failing), list(self.insufficient)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(**{**data, "failing": tuple(data["failing"]), "insufficient": tuple(data["insufficient"])})


def recipe_verdicts(checks: list[Any]) -> dict[str, str]:
    """The claim's verdict under each recipe any check reports: a check with that recipe judged by it.
    ``uninformative`` when the only checks that fail under it fail because its replacement reads as the object
    (:func:`dt_circuits.claims.evaluation.recipes.uninformative`): the recipe could not have shown the claim."""
    names = sorted({name for c in checks for name in (c.recipes or {})})
    out = {}
    for name in names:
        judged = [c.recipes[name] if name in (c.recipes or {}) else {"holds": c.holds} for c in checks]
        failing = [r for r in judged if not r["holds"]]
        if not failing:
            out[name] = "holds"
        else:
            out[name] = "uninformative" if all(r.get("uninformative") for r in failing) else "fails"
    return out


def blind_model(directory: str | Path) -> tuple[Any, dict[str, Any]]:
    """The model with a manifest stripped of everything but name, shape and env; and the truth, kept apart."""
    from dt_circuits.dt.checkpoint import CheckpointInfo, load_checkpoint, read_manifest

    manifest = read_manifest(directory)
    truth = manifest.get(TRUTH_KEY)
    if not truth:
        raise CheckpointError(f"{directory} has no {TRUTH_KEY} in its manifest: not a planted model")
    model = load_checkpoint(directory)
    info = model.checkpoint_info
    blind = {k: manifest[k] for k in BLIND_KEYS if k in manifest}
    model.checkpoint_info = CheckpointInfo(info.path, info.kind, info.env, blind)
    return model, truth


def play_model(
    directory: str | Path, *, log: Callable[[str], None] | None = None, only: list[str] | None = None
) -> list[Row]:
    """Every claim of :data:`CLAIMS` (or ``only`` those) under every binding of :data:`BINDINGS` on one model."""
    import torch

    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.claims.suite.discovery import select_claims
    from dt_circuits.claims.suite.run import run_suite

    torch.set_num_threads(1)
    model, truth = blind_model(directory)
    name = Path(directory).name
    unknown = set(only or ()) - set(CLAIMS)
    if unknown:
        raise ConfigError(f"the game has no claim {', '.join(sorted(unknown))}; its claims: {', '.join(CLAIMS)}")
    from dt_circuits.audit.claims import PATH_CLAIM

    wanted = list(only or CLAIMS)
    shipped = [c for c in wanted if c != PATH_CLAIM.id]
    claims = select_claims(shipped) if shipped else []
    paths = [PATH_CLAIM] if PATH_CLAIM.id in wanted else []
    if paths and "direct_paths" not in truth:
        raise CheckpointError(f"{directory}: its {TRUTH_KEY} has no direct_paths (dt-circuits audit --record-truth)")
    base = Subject.from_model(model, name=name, expectations={})
    rows = []
    for component, control in BINDINGS.items():
        subject = base.with_roles({"obstacle_head": component, "goal_head": control})
        asked = claims + (paths if component != "mlp" else [])  # a path claim about a head's write
        for run in run_suite(subject, asked):
            v = run.verdict
            t = (truth["direct_paths"] if CLAIMS[run.claim.id] == "path" else truth["components"])[component]
            rows.append(
                Row(
                    model=name,
                    arm=str(truth["arm"]),
                    seed=int(truth.get("seed", -1)),
                    claim=run.claim.id,
                    kind=CLAIMS[run.claim.id],
                    component=component,
                    truth=t["label"],
                    iia=t["iia"],
                    verdict="uninformative" if v.reason == "uninformative-recipe" else v.verdict,
                    reason=v.reason,
                    failing=tuple(v.failing_checks),
                    insufficient=tuple(c.name for c in v.failing if c.insufficient),
                    by_recipe=recipe_verdicts(v.checks),
                )
            )
            if log:
                log(f"{name}: {run.claim.id} on {component}: {v.verdict} ({v.reason}); truth {t['label']}")
    return rows
