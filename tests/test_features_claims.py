"""The feature claim types (`Probe`, `Subspace`) as checks: known truth on the hand-set DTs (ball avoidance carried
by exactly one named route, with decoys), intervals that resample poses, and no number rather than a pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.claim import Check, OnFamily, Probe, ProbeStates, Subject, Subspace, evaluate_check
from dt_circuits.claims.evaluation.comparisons import default_comparisons
from dt_circuits.claims.measures.features import _pooled_by_pose
from dt_circuits.claims.suite.discovery import discover
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.handset import ball_avoider

ON = OnFamily("obstacle-in-front", rtg=0.9)
ROLES = {"obstacle_head": "L0H1", "goal_head": "L0H0"}
SHIPPED = {c.id: c for c in discover()}["obstacle-head-carries-ball-feature"]


def _result(check: Check, subject: Subject):
    (result,) = evaluate_check("test", check, subject, default_comparisons())
    return result


@pytest.fixture(scope="module")
def subjects() -> dict[str, Subject]:
    torch.set_num_threads(1)
    return {r: Subject.from_model(ball_avoider(r, decoys=True), name=r, roles=ROLES) for r in ("head1", "head0", "mlp")}


@pytest.mark.parametrize("route", ["head1", "head0", "mlp"])
def test_the_shipped_subspace_checks_hold_only_where_head1_carries_the_ball(route, subjects):
    """Same behaviour on every route (P(forward) 0.009 into a ball), computed elsewhere: the claim that the
    obstacle head (L0H1) carries ball-in-front holds on route head1 only; the goal-head control fails exactly
    where the goal head (L0H0) carries it."""
    effect, control = SHIPPED.checks[1], SHIPPED.checks[2]
    assert effect.kind == "effect" and control.kind == "control" and SHIPPED.checks[0].kind == "baseline"
    got, ctrl = _result(effect, subjects[route]), _result(control, subjects[route])
    assert got.holds == (route == "head1"), got.numbers()
    assert got.effect == (1.0 if route == "head1" else 0.0)
    assert ctrl.holds == (route != "head0"), ctrl.numbers()
    assert got.cluster_unit == "bootstrap replicates" and "held-out pairs" in got.describe


@pytest.mark.parametrize("method", ["probe", "neuron", "sae"])
def test_probe_and_neuron_subspaces_agree_with_das_on_the_known_routes(method, subjects):
    check = Check("iia", Subspace(ON, "obstacle_head", "ball_in_front", method=method), at_least=0.9)
    assert _result(check, subjects["head1"]).holds
    assert not _result(check, subjects["mlp"]).holds


@pytest.mark.parametrize("method", ["das", "probe"])
def test_ablating_the_subspace_makes_the_agent_walk_into_the_ball_only_where_it_carries_the_ball(method, subjects):
    """The behaviour change reading: set the obstacle head's subspace to its ball-removed mean on held-out states
    with the ball. Where head 1 carries the ball by construction P(forward) rises to the no-ball level (+0.96);
    on the twins whose ball is elsewhere it does not move (the same bar as the obstacle ablation claims, 0.25)."""
    check = Check(
        "ablate", Subspace(ON, "obstacle_head", "ball_in_front", method=method, reading="ablation"), at_least=0.25
    )
    got = {route: _result(check, subjects[route]) for route in ("head1", "mlp")}
    assert got["head1"].holds and got["head1"].effect > 0.9, got["head1"].numbers()
    assert not got["mlp"].holds and abs(got["mlp"].effect) < 0.01, got["mlp"].numbers()
    assert "ball-removed mean" in got["head1"].describe and got["head1"].cluster_unit == "bootstrap replicates"


@pytest.mark.parametrize("method", ["das", "probe"])
def test_steering_along_the_subspace_stops_the_agent_only_where_it_carries_the_ball(method, subjects):
    """The steering reading, the sufficiency side: on held-out states without a ball, set the obstacle head's
    subspace to its mean with the ball. Where head 1 carries the ball by construction the agent stops going
    forward as before a ball (P(forward) 0.965 -> 0.009); on the MLP twin, whose head 1 carries nothing, the same
    write changes nothing."""
    steer = Subspace(ON, "obstacle_head", "ball_in_front", method=method, reading="steer")
    check = Check("steer", steer, at_most=-0.25)
    got = {route: _result(check, subjects[route]) for route in ("head1", "mlp")}
    assert got["head1"].holds and got["head1"].effect < -0.9, got["head1"].numbers()
    assert not got["mlp"].holds and abs(got["mlp"].effect) < 0.01, got["mlp"].numbers()
    assert "mean with the ball" in got["head1"].describe and "without the ball" in got["head1"].describe


SAE_CLAIM = {c.id: c for c in discover()}["obstacle-head-ball-sae-latent"]


@pytest.mark.parametrize("route", ["head1", "mlp"])
def test_the_sae_claim_holds_where_head1_carries_the_ball_and_fails_on_the_twin(route, subjects):
    """Known truth for the SAE claim: on the head-1 route a latent of L0H1 fires exactly for the ball (F1 1) and
    setting it to its ball-removed mean makes the agent walk into the ball; on the MLP twin (same behaviour) no
    latent of L0H1 tracks it and nothing moves. The goal head (a decoy) never tracks it."""
    verdict = SAE_CLAIM.evaluate(subjects[route])
    checks = {c.name: c for c in verdict.checks}
    assert verdict.holds == (route == "head1"), verdict.summary()
    f1 = checks["F1 of the obstacle head's SAE ball latent"]
    assert f1.effect == (1.0 if route == "head1" else f1.effect) and f1.cluster_unit == "bootstrap replicates"
    if route == "mlp":
        assert f1.effect < 0.9 and verdict.reason == "effect-too-small"
    assert checks["control: F1 of the goal head's SAE ball latent"].holds


def test_the_sae_trains_on_the_checkpoints_own_states_too(monkeypatch):
    """A claim's SAE trains on the walk, the training pairs and every state the checkpoint's rollouts at the
    claim's RTG visited (issue 27: generated and on-policy); ``own_states=False`` leaves the last out."""
    from dt_circuits.claims.evaluation.samples import rollout_states
    from dt_circuits.core.cache import CACHE_ENV
    from dt_circuits.features import sae as sae_lib
    from dt_circuits.features import shipped_saes

    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setattr(shipped_saes, "shipped_sae", lambda key: None)
    rows, real = [], sae_lib.site_sae  # sae_fit imports site_sae when it runs, so the spy sees every training

    def spy(model, site, acts, **kwargs):
        rows.append(len(acts))
        return real(model, site, acts, **kwargs)

    monkeypatch.setattr(sae_lib, "site_sae", spy)
    subject = Subject.from_model(ball_avoider("head1", decoys=True), name="head1", roles=ROLES)
    for own in (True, False):
        measure = Subspace(ON, "obstacle_head", "ball_in_front", method="sae", reading="f1", own_states=own)
        measure.measure(subject)
    train, _ = measure.pairs(subject).split(subject.derived_seed(measure.seed))
    visited = len(rollout_states(subject, ON.rtg, ON.episodes, ON.seed)[0])
    assert 0 < visited <= 4096  # a sample only above the cap
    assert rows == [sae_lib.WALK_STATES + 2 * len(train) + visited, sae_lib.WALK_STATES + 2 * len(train)]


def test_iia_counts_poses_not_pairs(subjects):
    """A pose gives up to four pairs (two layouts, both directions): the result's clusters are the held-out poses,
    and the interval is the pose bootstrap's."""
    subject = subjects["head1"]
    measure = Subspace(ON, "L0H1", "ball_in_front")
    _, test = measure.pairs(subject).split(subject.derived_seed(0))
    m = measure.measure(subject)
    assert len(m.values) == len(np.unique(test.clusters)) < len(test)
    assert m.cluster_unit == "poses" and m.draws is not None and m.estimate == 1.0


def test_copies_of_a_pose_do_not_narrow_the_interval():
    """Four copies of each pose's example are one cluster, not four independent examples: the interval is the
    one of the poses alone."""
    rng = np.random.default_rng(0)
    correct = (rng.random(40) < 0.7).astype(float)
    poses = np.arange(40)
    once = _pooled_by_pose(correct, poses, "IIA", "once", "k")
    four = _pooled_by_pose(np.repeat(correct, 4), np.repeat(poses, 4), "IIA", "four", "k")
    assert once.estimate == four.estimate and len(four.values) == 40
    np.testing.assert_allclose(np.quantile(four.draws, [0.025, 0.975]), np.quantile(once.draws, [0.025, 0.975]))


def test_probe_reads_the_ball_at_the_carrying_head_and_only_the_majority_elsewhere(subjects):
    states = ProbeStates()
    at_head = Check("probe", Probe(states, "obstacle_head", "ball_in_front"), at_least=0.9)
    majority = Probe(states, "obstacle_head", "ball_in_front", reading="majority")
    in_input = Check("input", Probe(states, "input", "ball_in_front"), at_least=0.9)
    carried = _result(at_head, subjects["head1"])
    assert carried.holds and carried.effect == 1.0 and carried.cluster_unit == "bootstrap replicates"
    elsewhere = _result(at_head, subjects["head0"])
    base = _result(Check("majority", majority, at_most=0.9), subjects["head0"])
    assert not elsewhere.holds and elsewhere.effect == pytest.approx(base.effect)  # a constant site: the majority
    assert base.holds and 0.5 < base.effect < 0.9
    for route in ("head1", "head0"):  # one-hot: the ball is one input bit, the raw-input baseline reads it
        assert _result(in_input, subjects[route]).holds
    assert len(Probe(states, "input", "ball_in_front").measure(subjects["head1"]).values) == 140  # poses


def test_a_probe_claim_fails_on_shuffled_labels(subjects):
    """The falsifiability control of a probe claim: the same bar on labels shuffled across states (seeded) fails,
    and the shuffled probe falls to about the majority class, where the real labels give 1.0."""
    states = ProbeStates()
    bar = dict(at_least=0.9)
    real = _result(Check("probe", Probe(states, "obstacle_head", "ball_in_front"), **bar), subjects["head1"])
    shuffled = Probe(states, "obstacle_head", "ball_in_front", reading="shuffled")
    control = _result(Check("shuffled", shuffled, **bar), subjects["head1"])
    majority = _result(Check("majority", Probe(states, "obstacle_head", "ball_in_front", reading="majority"),
                             **bar), subjects["head1"])  # fmt: skip
    assert real.holds and real.effect == 1.0
    assert not control.holds and control.effect <= majority.effect + 0.05, (control.effect, majority.effect)


def test_no_number_is_a_failure_never_a_pass(subjects):
    """A model whose action never changes (W_U zeroed) has no pair that says anything: undefined, not 0 or 1."""
    model = ball_avoider("head1", decoys=True)
    with torch.no_grad():
        model.W_U.zero_()
    subject = Subject.from_model(model, name="W_U = 0", roles=ROLES)
    result = _result(Check("iia", Subspace(ON, "L0H1", "ball_in_front"), at_least=0.9), subject)
    assert not result.holds and result.reason == "undefined: no held-out pair changes the model's action"
    few = _pooled_by_pose(np.ones(6), np.arange(6), "IIA", "few", "k")
    assert few.undefined.startswith("6 poses") and np.isnan(few.estimate)


def test_bad_feature_checks_are_one_line():
    with pytest.raises(ConfigError, match="unknown method"):
        Subspace(ON, "L0H1", "ball_in_front", method="pca")
    with pytest.raises(ConfigError, match="method must be 'sae'"):
        Subspace(ON, "L0H1", "ball_in_front", method="das", reading="f1")
    with pytest.raises(ConfigError, match="unknown subspace reading"):
        Subspace(ON, "L0H1", "ball_in_front", reading="push")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown variable"):
        Probe(ProbeStates(), "L0H1", "balls")
    with pytest.raises(ConfigError, match="obstacle-in-front family only"):
        Subspace(OnFamily("goal-in-front", rtg=0.9), "L0H1", "ball_in_front")
    with pytest.raises(ConfigError, match="unknown probe reading"):
        Probe(ProbeStates(), "L0H1", "ball_in_front", reading="f1")


def test_an_on_policy_probe_reads_the_ball_where_head1_carries_it(subjects):
    """Probes on the agent's own rollouts (labelled from its view; clusters are episodes): at L0H1 ball-in-front
    is decoded perfectly where head 1 carries it by construction and only at the majority class on the MLP twin,
    whose head 1 writes a constant. The rollouts are the suite's own (RTGs -1 / 0 / 0.9, 200 episodes, seed 0)."""
    states = ProbeStates(sample="on-policy")
    check = Check("on-policy probe", Probe(states, "L0H1", "ball_in_front"), at_least=0.95)
    got = {route: _result(check, subjects[route]) for route in ("head1", "mlp")}
    majority = _result(
        Check("majority", Probe(states, "L0H1", "ball_in_front", reading="majority"), at_least=0), subjects["mlp"]
    )
    assert got["head1"].holds and got["head1"].effect == 1.0, got["head1"].numbers()
    assert not got["mlp"].holds and got["mlp"].effect == pytest.approx(majority.effect), got["mlp"].numbers()
    assert got["head1"].sample == "on-policy" and got["head1"].n_clusters >= 100 and "episodes" in got["head1"].describe
    with pytest.raises(ConfigError, match="per_rtg must be in 1..episodes"):
        ProbeStates(sample="on-policy", per_rtg=0)
    with pytest.raises(ConfigError, match="'generated' or 'on-policy'"):
        ProbeStates(sample="rollouts")  # type: ignore[arg-type]
