"""What evaluating a claim gives: each check's result on each sample, the claim's verdict, counterexamples.

Plain data with its own wording (``numbers()``, ``summary()``), shared by the evaluation that fills it and the
suite, records and output that read it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from dt_circuits.env.scenarios import GridState

CheckKind = Literal["baseline", "effect", "control"]
REASONS = (
    "holds", "baseline-absent", "path-unused", "undefined", "uninformative-recipe", "effect-too-small",
    "control-failed", "other",
)  # fmt: skip
#: ``recipe_dependent`` values: holds under the primary recipe only; fails under it but holds under another
PRIMARY_ONLY = "primary-only"
FAILS_UNDER_PRIMARY = "fails-under-primary"


def recipe_dependence_text(value: object) -> str:
    """Words for a ``recipe_dependent`` value ("" when it does not depend; records before issue 31 stored True for
    primary-only)."""
    if value is True or value == PRIMARY_ONLY:
        return "recipe-dependent: holds only under the primary recipe"
    if value == FAILS_UNDER_PRIMARY:
        return "recipe-dependent: fails under the primary recipe, holds under another"
    return ""


def percent(x: float) -> str:
    """A share as a whole percentage ("93 %"), never "-0 %"."""
    return f"{int(round(x * 100)):d} %"


def mediation_text(recipe: dict[str, Any]) -> str:
    """A counterfactual recipe's share of the object's effect in words ("carries 93 % [89 %, 98 %] of the
    object's effect (+0.322)"), or "" when the recipe has no share."""
    m = recipe.get("mediation")
    if not m:
        return ""
    effect = _fmt(m.get("object_effect"))
    if m.get("share") is None:
        return f"share undefined ({m.get('undefined', 'no number')}; the object's effect is {effect})"
    pct = [percent(x) for x in (m["share"], m["ci_low"], m["ci_high"])]
    return f"carries {pct[0]} [{pct[1]}, {pct[2]}] of the object's effect ({effect})"


def reading_text(recipe: dict[str, Any]) -> str:
    """Why a recipe's failure says nothing, in words ("uninformative: its replacement reads as the object, 0.88 of
    its effect"), or "" when it is informative (or has no reading)."""
    if not recipe.get("uninformative"):
        return ""
    return f"uninformative: its replacement reads as the object ({recipe['reads_as_object']:.2f} of its effect)"


#: how a check's reason starts when its number does not exist on the model (a ratio whose denominator is 0)
UNDEFINED = "undefined: "


class Undefined(ArithmeticError):
    """Raised by a weight reading whose number does not exist on this model, saying why ("W_rtg . forward-right
    is 0"): the check fails with that reason instead of printing an infinite or meaningless number."""


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


@dataclass
class CheckResult:
    name: str
    holds: bool
    effect: float
    ci_low: float
    ci_high: float
    n: int
    frac_as_predicted: float
    bound: str
    unit: str
    describe: str
    control: bool
    kind: str = "effect"
    sample: str = "generated"
    n_clusters: int = 0
    cluster_unit: str = ""
    #: the bootstrap p-value of "the bound is not cleared" (None for exact weight readings)
    p_value: float | None = None
    #: the check's adjusted level (family-wise alpha / family size), None when not tested (exact)
    alpha: float | None = None
    #: too few clusters to support a verdict (an on-policy sample the policy hardly visits)
    insufficient: bool = False
    primary_recipe: str | None = None
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    #: why it failed when not for its bound: "path-unused" (see ``Check.requires_path``), "undefined: <why>" (its
    #: number does not exist here, e.g. a ratio over 0); "" otherwise
    reason: str = ""

    @property
    def undefined(self) -> str:
        """Why this check has no number ("mean direct effect of L0H0 is 0"), or ""."""
        return self.reason.removeprefix(UNDEFINED) if self.reason.startswith(UNDEFINED) else ""

    def numbers(self, fmt: Callable[[float], str] | None = None) -> str:
        """``effect [ci_low, ci_high]``, or why there is none: "undefined (… is 0)", never an infinite interval."""
        fmt = fmt or _fmt
        if not self.undefined:
            return f"{fmt(self.effect)} [{fmt(self.ci_low)}, {fmt(self.ci_high)}]"
        if math.isnan(self.effect):
            return f"undefined ({self.undefined})"
        return f"{fmt(self.effect)} [interval undefined ({self.undefined})]"

    @property
    def uninformative(self) -> bool:
        """Failed under its primary recipe only because that recipe's replacement reads as the object."""
        return bool(not self.holds and (self.recipes.get(self.primary_recipe or "") or {}).get("uninformative"))

    @property
    def recipe_dependent(self) -> str:
        """How the result depends on the recipe, either way: ``PRIMARY_ONLY`` (the primary recipe clears the bound,
        another does not), ``FAILS_UNDER_PRIMARY`` (the primary does not, another does), "" (every recipe agrees,
        or the check has no recipes)."""
        others = [r["holds"] for name, r in self.recipes.items() if name != self.primary_recipe]
        if self.holds and not all(others):
            return PRIMARY_ONLY
        if not self.holds and any(others):
            return FAILS_UNDER_PRIMARY
        return ""

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "values"}
        for k in ("effect", "ci_low", "ci_high", "frac_as_predicted"):
            out[k] = _num(out[k])
        if not self.recipes:
            out.pop("recipes")
            out.pop("primary_recipe")
        out["recipe_dependent"] = self.recipe_dependent
        return out


@dataclass
class Verdict:
    claim_id: str
    statement: str
    holds: bool
    checks: list[CheckResult] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    kind: str = "behaviour"

    @property
    def failing(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.holds]

    @property
    def failing_checks(self) -> list[str]:
        return [c.name for c in self.failing]

    @property
    def headline(self) -> CheckResult:
        """The first failing check if any (what broke), else the first effect check (the claimed effect)."""
        return next(
            (c for c in self.checks if not c.holds),
            next((c for c in self.checks if c.kind == "effect"), self.checks[0]),
        )

    @property
    def reason(self) -> str:
        """Why the claim fails, in order: no behaviour (a baseline check), a reading on a path the head does not
        use (``path-unused``), a number that does not exist here (``undefined``: a ratio over 0), effects that
        fail only because the primary recipe's replacement reads as the object (``uninformative-recipe``: that
        recipe could not have shown the claim; see ``recipes.uninformative``), too small an effect, a failed
        control;
        ``other`` when only under-sampled on-policy checks fail, or for a behavioural claim's own checks."""
        if self.holds:
            return "holds"
        real = [c for c in self.failing if not c.insufficient]
        kinds = {c.kind for c in real}
        if "baseline" in kinds:
            return "baseline-absent"
        if any(c.reason == "path-unused" for c in real):
            return "path-unused"
        if any(c.undefined for c in real):
            return "undefined"
        effects = [c for c in real if c.kind == "effect"]
        if effects and self.kind != "behaviour":
            if not all(c.uninformative for c in effects):
                return "effect-too-small"
            if "control" not in kinds:  # a failed control is a real failure, whatever the effects say
                return "uninformative-recipe"
        if "control" in kinds:
            return "control-failed"
        return "other"

    @property
    def recipe_dependent(self) -> str:
        """How the verdict depends on the recipe, either way (a verdict that depends on it says so):
        ``PRIMARY_ONLY`` when it holds and an effect check clears its bound under the primary recipe only;
        ``FAILS_UNDER_PRIMARY`` when it fails and every failing check holds under another recipe (another recipe
        would have given "holds"); "" otherwise."""
        if self.holds:
            return PRIMARY_ONLY if any(c.kind == "effect" and c.recipe_dependent for c in self.checks) else ""
        real = [c for c in self.failing if not c.insufficient]
        if real and all(c.recipe_dependent == FAILS_UNDER_PRIMARY for c in real):
            return FAILS_UNDER_PRIMARY
        return ""

    @property
    def verdict(self) -> str:
        return "holds" if self.holds else "fails"

    def summary(self) -> str:
        h = self.headline
        more = f" (+{len(self.failing) - 1} more failing)" if len(self.failing) > 1 else ""
        return (
            f"{self.claim_id}: {self.verdict} [{self.reason}] — {h.name}: {h.numbers()} "
            f"(needs {h.bound}; n={h.n} in {h.n_clusters} clusters, "
            f"{h.frac_as_predicted:.0%} of examples as predicted){more} — {h.describe}"
        )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.3f}"


@dataclass
class Counterexample:
    """The simplest state found where a check's per-state prediction fails (None when none was found)."""

    check: str
    searched: int
    state: GridState | None = None
    rtg: float | None = None
    timestep: int | None = None
    value: float | None = None
    prediction: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "searched": self.searched, "prediction": self.prediction}
        out["found"] = False
        if self.state is not None:
            out.update(
                found=True,
                agent_pos=list(self.state.agent_pos),
                agent_dir=self.state.agent_dir,
                obstacles=[list(o) for o in self.state.obstacles],
                rtg=self.rtg,
                timestep=self.timestep,
                value=self.value,
            )
        return out

    def describe(self) -> str:
        if self.state is None:
            return f"{self.check}: no counterexample in {self.searched} searched states"
        s = self.state
        return (
            f"{self.check}: agent at {s.agent_pos} facing {s.agent_dir}, obstacles {list(s.obstacles)}, "
            f"RTG {self.rtg:.3f}, t={self.timestep}: value {self.value:+.4f}, predicted {self.prediction}"
        )
