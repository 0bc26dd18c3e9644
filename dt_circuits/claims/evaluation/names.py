"""The names a claim may use — state families, metrics, roles, falsification controls — checked when the claim
is written, not when it first runs on a checkpoint.

A typo in a claim file ("obstacle-infront", "p_foward", "obstacel_head") fails at import with the valid names
listed, so a claims folder never carries a hypothesis that could only ever crash or silently measure nothing.
"""

from __future__ import annotations

from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import FRONT_KINDS
from dt_circuits.env.spec import ACTION_NAMES

#: every state family ``OnFamily`` accepts
FAMILIES: tuple[str, ...] = (*(f"{k}-in-front" for k in FRONT_KINDS), "goal-from-top", "goal-from-left")
#: the roles claims name components by (bound per checkpoint; see ``Subject``)
ROLES: tuple[str, ...] = ("obstacle_head", "goal_head", "goal_mlp")
#: the controls that show a claim can fail; each claim promises some (``Claim.falsified_by``) and
#: tests/test_claims_falsifiable.py runs exactly those
FALSIFIERS: tuple[str, ...] = ("swapped-heads", "role-on-a-head", "random-init")
#: what a claim of each kind promises unless it says otherwise
DEFAULT_FALSIFIERS: dict[str, tuple[str, ...]] = {
    "head": ("swapped-heads", "random-init"),
    "mlp": ("role-on-a-head", "random-init"),
    "embedding": ("random-init",),
    "behaviour": ("random-init",),
    "path": ("random-init",),
}


def _one_of(what: str, value: object, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value


def check_family(name: object) -> str:
    return _one_of("state family", name, FAMILIES)


def check_direction(direction: object) -> str:
    """An action ("forward") or a preference direction between two actions ("forward-right")."""
    parts = direction.split("-") if isinstance(direction, str) else []
    if not 1 <= len(parts) <= 2 or not all(p in ACTION_NAMES for p in parts) or len(set(parts)) != len(parts):
        pairs = [f"{a}-{b}" for a in ACTION_NAMES for b in ACTION_NAMES if a != b]
        raise ConfigError(f"unknown direction {direction!r}; valid: {', '.join([*ACTION_NAMES, *pairs])}")
    return direction  # type: ignore[return-value]


def check_component(spec: object) -> str:
    """A role, or a literal component ("L0H1", "head 0", "mlp", a hook name) the parser understands."""
    if isinstance(spec, str) and spec in ROLES:
        return spec
    from dt_circuits.analysis.interventions import parse_component

    try:
        parse_component(spec)  # type: ignore[arg-type]
    except ConfigError:
        raise ConfigError(
            f"unknown role or component {spec!r}; roles: {', '.join(ROLES)}; components look like L0H1, mlp"
        ) from None
    return spec  # type: ignore[return-value]


def check_metric(metric: object) -> str:
    """``p_<action>``, a direction (``forward-right``), ``attn_to_rtg[:<role>]`` or ``state_embed:<direction>``."""
    valid = "p_<action>, <action>-<action>, attn_to_rtg[:<role or head>], state_embed:<direction>"
    if not isinstance(metric, str):
        raise ConfigError(f"unknown metric {metric!r}; valid: {valid}")
    if metric.startswith("p_"):
        _one_of("action in metric " + repr(metric), metric[2:], ACTION_NAMES)
        return metric
    if metric == "attn_to_rtg":
        return metric
    if metric.startswith("attn_to_rtg:"):
        check_component(metric.split(":", 1)[1])
        return metric
    if metric.startswith("state_embed:"):
        check_direction(metric.split(":", 1)[1])
        return metric
    try:
        return check_direction(metric)
    except ConfigError:
        raise ConfigError(f"unknown metric {metric!r}; valid: {valid}") from None


def check_falsifiers(values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, tuple) or not values:
        raise ConfigError(f"falsified_by must be a non-empty tuple of: {', '.join(FALSIFIERS)}")
    for v in values:
        _one_of("falsification control", v, FALSIFIERS)
    return values
