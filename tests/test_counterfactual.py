"""The counterfactual recipe and the mediation share (issue 31), shown on models whose truth is known.

Known truth: `dt_circuits.dt.handset.ball_avoider` builds DTs with hand-set weights whose "ball in front" reaches
the logits through exactly one named route, all with the same behaviour. The counterfactual-primary claim
`obstacle-head-carries-ball` must hold where head 1 carries the ball by construction, and fail on the twin that
computes the same behaviour on the direct path (and on the twins routed through head 0 or the MLP) — with the
baselines holding on every twin, so the failure is the mechanism's, not the behaviour's. Plus the pieces: the
paired state, the ratio bootstrap, recipe dependence both ways, the one-line errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.analysis.stats import cluster_ratio_bootstrap
from dt_circuits.claim import Ablation, Check, Mediation, OnFamily
from dt_circuits.claims.evaluation import samples as sample_lib
from dt_circuits.claims.evaluation.results import FAILS_UNDER_PRIMARY, PRIMARY_ONLY, CheckResult, Verdict
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.suite.discovery import discover
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.handset import ball_avoider

CLAIMS = {c.id: c for c in discover()}
ON = OnFamily("obstacle-in-front", rtg=0.9)
ROLES = {"obstacle_head": "L0H1", "goal_head": "L0H0", "goal_mlp": "mlp"}


@pytest.fixture(scope="module")
def twins() -> dict[str, Subject]:
    """One subject per route, all with the post's role binding (the obstacle head is L0H1)."""
    routes = ("head1", "direct", "head0", "mlp")
    return {route: Subject.from_model(ball_avoider(route), name=route, roles=ROLES) for route in routes}


def _by_name(verdict) -> dict[str, CheckResult]:
    return {c.name: c for c in verdict.checks}


def test_the_claim_holds_where_head_1_carries_the_ball_by_construction(twins):
    verdict = CLAIMS["obstacle-head-carries-ball"].evaluate(twins["head1"])
    assert verdict.holds, verdict.summary()
    share = _by_name(verdict)["share of the ball's effect the obstacle head carries"]
    assert share.effect == pytest.approx(1.0, abs=1e-6) and share.ci_low > 0.99
    patch = _by_name(verdict)["patch obstacle head from the ball-removed state: ΔP(forward)"]
    assert patch.recipes["counterfactual"]["mediation"]["share"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("route", ["direct", "head0", "mlp"])
def test_the_claim_fails_on_twins_that_compute_the_same_behaviour_elsewhere(twins, route):
    """Same behaviour (both baselines hold), other route: the share is 0, so the claim fails on its effect."""
    verdict = CLAIMS["obstacle-head-carries-ball"].evaluate(twins[route])
    checks = _by_name(verdict)
    assert not verdict.holds and verdict.reason == "effect-too-small", verdict.summary()
    assert all(c.holds for c in verdict.checks if c.kind == "baseline")
    share = checks["share of the ball's effect the obstacle head carries"]
    assert abs(share.effect) < 1e-6 and share.ci_high < 0.01
    # the share moved to where the construction put it: for head 0, the control sees all of it
    control = checks["control: share the goal head carries"]
    assert control.effect == pytest.approx(1.0 if route == "head0" else 0.0, abs=1e-6)


def test_the_patch_measures_the_information_not_the_component_constant_contribution():
    """With decoys, head 0 writes a constant push toward forward that the behaviour needs but that has nothing to
    do with the ball: zero-ablating head 0 moves the forward − right logit by its 3 logits, the counterfactual
    patch by exactly 0 (head 0 carries none of the ball). Every recipe is reported beside the patch."""
    subject = Subject.from_model(ball_avoider("head1", decoys=True), name="decoys", roles=ROLES)
    measure = Ablation(ON, "goal_head", metric="forward-right", method="counterfactual")
    by_recipe = {r: float(v[0].mean()) for r, v in measure.values(subject, ON.generated(subject)).items()}
    assert set(by_recipe) == {"zero", "mean", "mean-rtg-mix", "resample", "dti-dhead-mean", "counterfactual"}
    assert by_recipe["zero"] == pytest.approx(-3.0, abs=1e-4)
    assert by_recipe["counterfactual"] == pytest.approx(0.0, abs=1e-6)


def test_the_paired_state_of_a_ball_is_the_env_rendering_without_it(twins):
    """Generated states are re-rendered through the env without the ball; on-policy states get the front cell
    emptied in the observation. For a ball the two are the same observation (a ball hides nothing behind it)."""
    subject = twins["head1"]
    sample = ON.generated(subject)
    paired = sample_lib.without_front_object(subject, sample)
    assert paired is not None and len(paired) == len(sample) > 100
    torch.testing.assert_close(paired.obs, sample_lib.front_cleared(sample.inputs.obs), rtol=0, atol=0)
    assert not torch.equal(paired.obs, sample.inputs.obs)
    torch.testing.assert_close(paired.rtg, sample.inputs.rtg)
    torch.testing.assert_close(paired.timestep, sample.inputs.timestep)
    assert sample_lib.without_front_object(subject, OnFamily("empty-in-front", rtg=0.9).generated(subject)) is None


def test_families_name_the_object_they_put_in_front():
    families = ("obstacle-in-front", "goal-from-top", "goal-from-left", "goal-in-front", "wall-in-front")
    assert [sample_lib.front_object(f) for f in families] == ["ball", "goal", "goal", "goal", "wall"]
    assert sample_lib.front_object("empty-in-front") is None


def test_a_family_with_nothing_in_front_has_no_counterfactual_one_line_errors():
    empty = OnFamily("empty-in-front", rtg=0.9)
    with pytest.raises(ConfigError, match="puts none there") as err:
        Ablation(empty, "obstacle_head", method="counterfactual")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="puts none there"):
        Mediation(empty, "obstacle_head")
    # other recipes still run there, and the counterfactual one is simply not among them
    assert "counterfactual" not in Ablation(empty, "obstacle_head").recipes(
        sample_lib.Sample("generated", "empty-in-front", None, np.zeros(0), "poses")  # type: ignore[arg-type]
    )


def test_a_share_of_nothing_is_undefined_never_a_number():
    """A model whose P(forward) ignores the ball: the ball's effect is 0, so no share exists; the check fails with
    reason "undefined", never an infinite or arbitrary number."""
    model = ball_avoider("direct")
    with torch.no_grad():
        model.W_U.zero_()
    subject = Subject.from_model(model, name="indifferent", roles=ROLES)
    check = Check("share", Mediation(ON, "obstacle_head"), at_least=0.5)
    from dt_circuits.claims.evaluation.checks import evaluate_check

    (generated, _on_policy) = evaluate_check("x", check, subject)
    assert not generated.holds and generated.undefined.startswith("the denominator is 0")
    assert np.isnan(generated.ci_low) and np.isnan(generated.ci_high)


def test_the_cluster_ratio_bootstrap_is_a_ratio_of_cluster_totals():
    rng = np.random.default_rng(0)
    den = rng.uniform(0.5, 1.5, 200)
    clusters = np.repeat(np.arange(40), 5)
    exact = cluster_ratio_bootstrap(0.7 * den, den, clusters, n_resamples=500)
    assert exact.effect == pytest.approx(0.7) and np.allclose(exact.draws, 0.7)  # a constant share in every draw
    noisy = cluster_ratio_bootstrap(0.7 * den + rng.normal(0, 0.3, 200), den, clusters, n_resamples=4000, seed=1)
    lo, hi = noisy.interval(0.95)
    assert lo < 0.7 < hi and noisy.n_clusters == 40 and noisy.n_rows == 200
    assert np.isnan(cluster_ratio_bootstrap(den, np.zeros(200), clusters, n_resamples=10).effect)


def _result(holds: bool, recipes: dict[str, bool], kind: str = "effect") -> CheckResult:
    return CheckResult("c", holds, 0.0, 0.0, 0.0, 10, 1.0, "≥ 0.25", "Δp", "", False, kind=kind,
                       primary_recipe="mean", recipes={r: {"holds": h} for r, h in recipes.items()})  # fmt: skip


def test_recipe_dependence_is_flagged_both_ways():
    assert _result(True, {"mean": True, "zero": False}).recipe_dependent == PRIMARY_ONLY
    assert _result(False, {"mean": False, "counterfactual": True}).recipe_dependent == FAILS_UNDER_PRIMARY
    assert _result(True, {"mean": True, "zero": True}).recipe_dependent == ""
    assert _result(False, {"mean": False, "zero": False}).recipe_dependent == ""
    # a verdict: fails, and another recipe would clear every failing check -> fails-under-primary
    rescued = _result(False, {"mean": False, "zero": True})
    failing = Verdict("v", "", False, [_result(True, {"mean": True}, "baseline"), rescued])
    assert failing.recipe_dependent == FAILS_UNDER_PRIMARY
    # ... but not when a check no recipe rescues fails too (a missing baseline)
    no_behaviour = Verdict("v", "", False, [_result(False, {}, "baseline"), rescued])
    assert no_behaviour.recipe_dependent == ""
    holding = Verdict("v", "", True, [_result(True, {"mean": True, "counterfactual": False})])
    assert holding.recipe_dependent == PRIMARY_ONLY


def test_the_claims_output_names_the_patch_and_the_share(twins):
    """`dt-circuits claims` prints, under the table, each counterfactual result beside the primary recipe with the
    share of the object's effect it carries."""
    from dt_circuits.claims.output.suite_output import recipe_lines
    from dt_circuits.claims.suite.run import run_suite

    runs = run_suite(twins["head1"], [CLAIMS["obstacle-avoidance-head"], CLAIMS["obstacle-head-carries-ball"]])
    lines = recipe_lines(runs)
    mean_claim = next(line for line in lines if "obstacle-avoidance-head  ablate obstacle head" in line)
    assert "(primary)" in mean_claim and "counterfactual +0.956 ✓ (carries 100 % [100 %, 100 %]" in mean_claim
    patch = next(line for line in lines if "obstacle-head-carries-ball  patch obstacle head" in line)
    assert patch.startswith("recipes  ") and "counterfactual +0.956 ✓ (primary; carries 100 %" in patch


@pytest.mark.reference
def test_on_the_dti_reference_head_1_carries_the_ball(reference_model):
    """Issue 31's measurement, reproduced by the suite: under mean ablation the post's head-1 claim fails on the
    post's own model, under the counterfactual patch head 1 carries most of the ball's effect (issue: 93 %)."""
    from dt_circuits.claims.suite.run import run_suite

    subject = Subject.from_model(reference_model)
    mean_run, patch_run = run_suite(subject, [CLAIMS["obstacle-avoidance-head"], CLAIMS["obstacle-head-carries-ball"]])
    effect = _by_name(mean_run.verdict)["ablate obstacle head: ΔP(forward)"]
    assert not mean_run.verdict.holds and mean_run.verdict.recipe_dependent == FAILS_UNDER_PRIMARY
    cf = effect.recipes["counterfactual"]
    assert effect.effect < 0.1 and cf["holds"] and 0.28 < cf["effect"] < 0.32
    assert 0.88 < cf["mediation"]["share"] < 0.98 and cf["mediation"]["ci_low"] > 0.8
    assert patch_run.verdict.holds and patch_run.verdict.recipe_dependent == PRIMARY_ONLY


def test_a_subject_rebound_to_other_roles_measures_the_new_component():
    """``with_roles`` shares the cache (rollouts, samples, means), never a role's ablation results: on the head-1
    DT, the claim holds with the obstacle head at L0H1 and fails when the same subject rebinds it to L0H0 (the
    auditing game found the rebound subject served L0H1's numbers)."""
    subject = Subject.from_model(ball_avoider("head1"), name="head1", roles=ROLES)
    claim = CLAIMS["obstacle-head-carries-ball"]
    assert claim.evaluate(subject).holds
    rebound = subject.with_roles({"obstacle_head": "L0H0", "goal_head": "L0H1"})
    fresh = Subject.from_model(ball_avoider("head1"), name="head1", roles={**ROLES, "obstacle_head": "L0H0",
                                                                          "goal_head": "L0H1"})  # fmt: skip
    again, alone = claim.evaluate(rebound), claim.evaluate(fresh)
    assert not again.holds and again.reason == "effect-too-small", again.summary()
    assert [(c.name, c.effect) for c in again.checks] == [(c.name, c.effect) for c in alone.checks]
