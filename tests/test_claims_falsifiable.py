"""Every claim can fail: head-specific claims flip on a functionally identical head-swapped copy, behavioural
claims fail on a random initialisation, and the counterexample search finds real, minimal failures.

Run on the DTI reference (and on our checkpoints when they exist).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.claim import Ablation, Check, OnFamily
from dt_circuits.controls import random_like, swap_heads
from dt_circuits.subject import Subject
from dt_circuits.suite import discover, run_suite
from tests.helpers import batch

pytestmark = pytest.mark.reference
CLAIMS = {c.id: c for c in discover()}


@pytest.fixture(scope="module")
def reference_runs(reference_model):
    subject = Subject.from_model(reference_model)
    return subject, {r.claim.id: r for r in run_suite(subject)}


def test_swapped_copy_is_functionally_identical(reference_model):
    twin = swap_heads(reference_model)
    obs, rtg, t = batch(64)
    torch.testing.assert_close(twin(obs, rtg, t), reference_model(obs, rtg, t), atol=1e-5, rtol=1e-5)
    assert not torch.equal(twin.blocks[0].attn.W_Q, reference_model.blocks[0].attn.W_Q)


def test_head_specific_claims_that_hold_fail_on_swapped_heads(reference_model, reference_runs):
    _, original = reference_runs
    swapped = Subject.from_model(swap_heads(reference_model), name="swapped")
    head_claims = [c for c in CLAIMS.values() if c.kind == "head"]
    held = [c for c in head_claims if original[c.id].verdict.holds]
    assert held, "no head-specific claim holds on the reference, nothing to falsify"
    for claim in held:
        verdict = claim.evaluate(swapped)
        assert not verdict.holds, f"{claim.id} still holds with the heads swapped: {verdict.summary()}"


def test_mlp_claim_fails_when_its_role_points_at_a_head(reference_model):
    """The MLP claim is about the MLP: bound to a head instead (roles file style), it must not hold."""
    claim = CLAIMS["goal-avoidance-mlp-left"]
    for head in ("L0H0", "L0H1"):
        subject = Subject.from_model(reference_model, roles={"goal_mlp": head})
        assert not claim.evaluate(subject).holds


def test_behavioural_claims_fail_on_random_init(reference_model):
    subject = Subject.from_model(random_like(reference_model, seed=0), name="random")
    for claim in CLAIMS.values():
        if claim.kind in ("behaviour", "head", "mlp"):
            verdict = claim.evaluate(subject)
            assert not verdict.holds, f"{claim.id} holds on a random init: {verdict.summary()}"


def test_counterexample_search_finds_a_real_minimal_failure(reference_model):
    """On the reference, ablating head 1 does not raise P(forward) everywhere: the search must find where."""
    subject = Subject.from_model(reference_model)
    check = Check(
        "ablate L0H1",
        Ablation(OnFamily("obstacle-in-front", 0.9), "obstacle_head"),
        at_least=0.25,
        per_example="increase",
    )
    verdict = CLAIMS["obstacle-avoidance-head"].evaluate(subject, search=True)
    cx = verdict.counterexamples[0]
    assert cx.state is not None, cx.describe()
    # the reported numbers are the model's, re-measured from the state alone
    again = check.measure.per_state(subject, cx.state, cx.rtg, cx.timestep)
    assert np.isclose(again, cx.value) and not check.example_holds(again)
    assert len(cx.state.obstacles) <= 1, "hypothesis should shrink away obstacles that do not matter"
    assert cx.to_dict()["found"] is True


def test_search_reports_none_when_prediction_holds(reference_model):
    verdict = CLAIMS["goal-avoidance-head-top"].evaluate(Subject.from_model(reference_model), search=True)
    assert verdict.holds
    assert all(cx.state is None and cx.searched > 50 for cx in verdict.counterexamples)
