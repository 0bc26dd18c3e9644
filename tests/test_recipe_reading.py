"""Uninformative recipes (issue 28, deliverable 4): a failure under a recipe whose replacement reads as the object
says nothing about whether the component carries it.

Known truth: the hand-set ``head1`` ball avoider and its ``polarity="clear"`` twin compute the same behaviour with
the same carrier (L0H1), but the twin's head 1 writes "the front is clear", so its zeroed output is what it writes
with a ball in front. The zero recipe must read as "no object" on the first (and clear the claim) and as "the
object" on the twin (and be reported uninformative there, never "fails: effect too small"); the mean and
counterfactual recipes show the carrier on both. On the ``direct`` twin (head 1 carries nothing, writes 0) the zero
recipe reads as "no object" and the failure stays a real one.
"""

from __future__ import annotations

import pytest

from dt_circuits.audit.confusion import confusion
from dt_circuits.audit.game import Row, recipe_verdicts
from dt_circuits.claim import Ablation, Behaviour, Check, Claim, OnFamily
from dt_circuits.claims.evaluation import recipes as recipe_lib
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.dt.handset import ball_avoider

ON = OnFamily("obstacle-in-front", rtg=0.9)
ROLES = {"obstacle_head": "L0H1", "goal_head": "L0H0", "goal_mlp": "mlp"}
EFFECT = "zero-ablate obstacle head: ΔP(forward)"


def zero_claim() -> Claim:
    """The post's obstacle-head claim with zero ablation as its primary recipe."""
    return Claim(
        kind="head",
        id="obstacle-avoidance-head-zero",
        statement="Zero-ablating the obstacle head makes the agent walk into a ball at RTG 0.9",
        source="test",
        checks=(
            Check("baseline: P(forward) into a ball", Behaviour(ON), at_most=0.1, kind="baseline"),
            Check(EFFECT, Ablation(ON, "obstacle_head", method="zero"), at_least=0.25),
        ),
    )


@pytest.fixture(scope="module")
def verdicts():
    models = {
        "ball": ball_avoider("head1"),
        "clear": ball_avoider("head1", polarity="clear"),
        "direct": ball_avoider("direct"),
    }
    return {k: zero_claim().evaluate(Subject.from_model(m, name=k, roles=ROLES)) for k, m in models.items()}


def _effect(verdict):
    return next(c for c in verdict.checks if c.name == EFFECT)


def test_zero_reads_as_no_object_where_the_head_writes_the_ball_and_the_claim_holds(verdicts):
    v = verdicts["ball"]
    assert v.holds, v.summary()
    zero = _effect(v).recipes["zero"]
    assert zero["reads_as_object"] == pytest.approx(0.0, abs=1e-6) and not zero["uninformative"]


def test_zero_reads_as_the_object_on_the_twin_and_its_failure_is_uninformative(verdicts):
    v = verdicts["clear"]
    check = _effect(v)
    assert not v.holds and v.reason == "uninformative-recipe", v.summary()
    assert check.recipes["zero"]["reads_as_object"] == pytest.approx(1.0, abs=1e-3)
    assert check.uninformative and check.recipes["zero"]["uninformative"]
    # the recipes that do not read as the object see the carrier on the twin
    for name in ("mean", "counterfactual"):
        assert check.recipes[name]["holds"] and not check.recipes[name]["uninformative"], name
    assert recipe_verdicts(v.checks)["zero"] == "uninformative"
    assert recipe_verdicts(v.checks)["counterfactual"] == "holds"


def test_a_component_that_carries_nothing_still_fails_for_real(verdicts):
    v = verdicts["direct"]
    check = _effect(v)
    assert not v.holds and v.reason == "effect-too-small", v.summary()
    assert abs(check.recipes["zero"]["reads_as_object"]) < 1e-6 and not check.uninformative
    assert recipe_verdicts(v.checks)["zero"] == "fails"


class _Check:
    def __init__(self, at_least=None, at_most=None, control=False):
        self.at_least, self.at_most, self.control = at_least, at_most, control


@pytest.mark.parametrize(
    ("check", "holds", "reading", "effect", "expected"),
    [
        (_Check(at_least=0.25), False, 0.5, -0.6, True),  # the object lowers P(fwd); undo = raise: uninformative
        (_Check(at_least=0.25), False, 0.49, -0.6, False),  # reads more as no object: a real failure
        (_Check(at_least=0.25), True, 1.0, -0.6, False),  # a result that holds is never excused
        (_Check(at_least=0.25, control=True), False, 1.0, -0.6, False),  # controls are not about undoing
        (_Check(at_least=0.25), False, 1.0, +0.6, False),  # the bound points away from undoing the object
        (_Check(at_most=-0.25), False, 1.0, +0.6, True),  # ... which at_most does here
        (_Check(at_least=0.25), False, 1.0, -0.1, False),  # the object moves the metric less than the bound asks
        (_Check(at_least=0.0, at_most=0.5), False, 1.0, -0.6, False),  # two-sided: no direction
        (_Check(at_least=0.25), False, None, -0.6, False),  # no reading (no object in front)
    ],
)
def test_the_uninformative_rule(check, holds, reading, effect, expected):
    assert recipe_lib.uninformative(check, holds, reading, effect) is expected


def test_the_game_counts_uninformative_verdicts_apart():
    def row(truth: str, verdict: str, zero: str) -> Row:
        return Row("m", "A", 0, "c", "ablation", "L0H1", truth, 1.0, verdict, "", (), (), {"zero": zero})

    rows = [row("carries", "holds", "uninformative"), row("carries", "holds", "holds"), row("absent", "fails", "fails")]
    zero = next(c for c in confusion(rows) if c.recipe == "zero")
    assert (zero.tp, zero.fn, zero.tn, zero.fp, zero.uninformative) == (1, 0, 1, 0, 1)


def test_a_failed_control_outranks_an_uninformative_effect():
    from dt_circuits.claims.evaluation.results import CheckResult, Verdict

    def check(kind: str, holds: bool, uninformative: bool = False) -> CheckResult:
        recipes = {"mean": {"holds": holds, "uninformative": uninformative}}
        return CheckResult(kind, holds, 0.0, 0.0, 0.0, 10, 0.0, "≥ 0.25", "Δ", "", kind == "control", kind=kind,
                           primary_recipe="mean", recipes=recipes)  # fmt: skip

    only = Verdict("c", "s", False, [check("effect", False, True)], kind="head")
    assert only.reason == "uninformative-recipe"
    both = Verdict("c", "s", False, [check("effect", False, True), check("control", False)], kind="head")
    assert both.reason == "control-failed"
    real = Verdict("c", "s", False, [check("effect", False, True), check("effect", False)], kind="head")
    assert real.reason == "effect-too-small"
