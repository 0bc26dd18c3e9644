"""Find which component plays each role in a checkpoint, by the post's own localisation method: ablation.

Heads are interchangeable at initialisation, so in a newly trained model "the obstacle head" may be head 0 or
head 1. Each role has a defining scenario (the post's Fig. 8/9/10); the role goes to the component whose
mean-ablation raises P(forward) there the most, if by at least MIN_ROLE_EFFECT (else no component does it and
the post's binding is kept). The claims then test whether that component also does what the
post says (specificity controls, QK/OV mechanism), so binding by this scan does not make them pass by
construction; and a head-swapped copy shows every head-specific claim can still fail.
"""

from __future__ import annotations

from dataclasses import dataclass

from dt_circuits.analysis.interventions import component_names
from dt_circuits.claims.evaluation.subject import POST_ROLES, Subject
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.claims.measures.states import Ablation

#: role -> (defining family, RTG, which kind of component may fill it)
ROLE_SCENARIOS: dict[str, tuple[str, float, str]] = {
    "obstacle_head": ("obstacle-in-front", 0.9, "head"),
    "goal_head": ("goal-from-top", -1.0, "head"),
    "goal_mlp": ("goal-from-left", -1.0, "mlp"),
}


#: below this mean ΔP(forward) no component "does" the role, and the post's binding is kept
MIN_ROLE_EFFECT = 0.05


@dataclass(frozen=True)
class RoleScan:
    role: str
    family: str
    rtg: float
    effects: dict[str, float]  # component -> mean ΔP(forward) when mean-ablated
    chosen: str


def scan_roles(subject: Subject) -> list[RoleScan]:
    """Mean ΔP(forward) per component in each role's scenario, and the component chosen for the role."""
    comps = component_names(subject.model)
    out = []
    for role, (family, rtg, kind) in ROLE_SCENARIOS.items():
        effects = {c: float(Ablation(OnFamily(family, rtg), c).measure(subject).values.mean()) for c in comps}
        allowed = [c for c in comps if ("mlp" in c) == (kind == "mlp")]
        best = max(allowed, key=lambda c: effects[c]) if allowed else None
        chosen = best if best is not None and effects[best] >= MIN_ROLE_EFFECT else POST_ROLES[role]
        out.append(RoleScan(role, family, rtg, effects, chosen))
    return out


def discovered_roles(scans: list[RoleScan]) -> dict[str, str]:
    return {s.role: s.chosen for s in scans}
