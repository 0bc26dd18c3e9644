"""Every claim can fail, by the controls it promises (``Claim.falsified_by``): head-specific claims flip on a
functionally identical head-swapped copy, MLP claims fail with their role bound to a head, claims fail on a
random initialisation, and the counterexample search finds real, minimal failures.

Run on the DTI reference and on each of our checkpoints. Each (checkpoint, control) pair is one Subject shared by
the claims tested on it, as the plugin shares one per checkpoint: its caches (rollouts, families, ablation means)
are deterministic functions of the model and the seeds, so sharing them changes no number, only the time.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from dt_circuits.analysis.interventions import MLP, Head, component_names, parse_component
from dt_circuits.claims.evaluation.checks import evaluate_check
from dt_circuits.claims.evaluation.comparisons import default_comparisons
from dt_circuits.claims.evaluation.measurement import Measurement, OwnSample
from dt_circuits.claims.evaluation.names import FALSIFIERS, ROLES
from dt_circuits.claims.evaluation.subject import Subject, recorded_expectations
from dt_circuits.claims.language.claim import Check, Claim
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.claims.measures.states import Ablation
from dt_circuits.claims.measures.weights import Weights
from dt_circuits.claims.output.suite_output import format_table
from dt_circuits.claims.suite.discovery import discover
from dt_circuits.claims.suite.run import run_claim
from dt_circuits.core.paths import CHECKPOINTS_DIR, own_checkpoints, reference_checkpoint
from dt_circuits.dt.checkpoint import load_checkpoint
from dt_circuits.dt.controls import random_like, swap_heads
from tests.helpers import batch, random_model

CLAIMS = {c.id: c for c in discover()}
#: every checkpoint the claims run on: the DTI reference and each of ours
SUBJECTS = ["dti-reference", *(p.name for p in own_checkpoints())]


@pytest.fixture(scope="module", params=SUBJECTS)
def model(request):
    if request.param == "dti-reference":
        return load_checkpoint(request.getfixturevalue("reference_path"))
    return load_checkpoint(CHECKPOINTS_DIR / request.param)


@pytest.fixture(scope="module")
def subject(model) -> Subject:
    """The checkpoint itself, shared by the claims tested on it; measured for the verdict alone (the controls
    read ``verdict.holds``, the primary recipe's: the other recipes' passes would be thrown away), and each claim
    only up to its first failing check (these controls ask only whether it fails)."""
    return _until_first_failure(_verdict_only(Subject.from_model(model)))


def _verdict_only(subject: Subject) -> Subject:
    subject.verdict_only = True
    return subject


def _until_first_failure(subject: Subject) -> Subject:
    """For a control that asserts ``not verdict.holds`` alone: a random init usually fails its baseline, and the
    mechanism checks after it (an SAE trained on the random model, ablations) would change nothing (measured on an
    AMD EPYC, empty disk cache, -n 2: the random-init tests 138 -> 61 s of test time, the module 247 -> 182 s)."""
    subject.until_first_failure = True
    return subject


@pytest.fixture(scope="module")
def random_subject(model) -> Subject:
    """A random initialisation shaped like the checkpoint, shared by the claims tested on it."""
    return _until_first_failure(_verdict_only(Subject.from_model(random_like(model, seed=0), name="random")))


@pytest.fixture(scope="module", autouse=True)
def _release_the_swap_subjects():
    yield
    _original_and_swapped.cache_clear()


@functools.cache
def _original_and_swapped(name: str) -> tuple[Subject, Subject]:
    """(the checkpoint, its head-swapped copy) for the swap test, one pair per checkpoint for all its claims.

    The copy is given the checkpoint's own rollouts: it is the same agent (functionally identical), so its
    on-policy states are the checkpoint's, and the control then differs from the original in the heads alone
    (and the test command rolls out each checkpoint once, not twice)."""
    from dt_circuits.claims.suite.discovery import rollout_requests

    model = load_checkpoint(reference_checkpoint() if name == "dti-reference" else CHECKPOINTS_DIR / name)
    original = _verdict_only(Subject.from_model(model))
    swapped = _verdict_only(Subject.from_model(swap_heads(model), name="swapped"))
    tested = [CLAIMS[p.values[1]] for p in _head_claims_expected_to_hold() if p.values[0] == name]
    original.prefetch_rollouts(rollout_requests(tested))
    swapped._cache.update({k: v for k, v in original._cache.items() if k[0] == "rollouts"})
    return original, swapped


def test_swapped_copy_is_functionally_identical(model):
    twin = swap_heads(model)
    obs, rtg, t = batch(64)
    torch.testing.assert_close(twin(obs, rtg, t), model(obs, rtg, t), atol=1e-5, rtol=1e-5)
    assert not torch.equal(twin.blocks[0].attn.W_Q, model.blocks[0].attn.W_Q)


def _mechanism_holds(entry: dict) -> bool:
    """Recorded as holding, or every effect check recorded as holding (the mechanism is there even where the
    behaviour it would explain is not: reason baseline-absent)."""
    if entry.get("expected", "holds") == "holds":
        return True
    from dt_circuits.claims.evaluation.samples import MIN_CLUSTERS

    effects = [
        c
        for name, c in (entry.get("checks") or {}).items()
        if c.get("kind") == "effect" and not (name.endswith("[on-policy]") and c.get("n_clusters", 0) < MIN_CLUSTERS)
    ]
    return entry.get("reason") == "baseline-absent" and bool(effects) and all(c["holds"] for c in effects)


def _effect_results(verdict) -> list:
    """The effect checks with enough clusters to judge (an on-policy sample the agent hardly visits has none)."""
    return [c for c in verdict.checks if c.kind == "effect" and not c.insufficient]


def _head_claims_expected_to_hold() -> list:
    """(checkpoint, claim id) for every head-specific claim whose mechanism is recorded as holding, known at
    collection time."""
    paths = {p.name: p for p in own_checkpoints()}
    if reference_checkpoint().exists():
        paths["dti-reference"] = reference_checkpoint()
    params = []
    for name, path in sorted(paths.items()):
        recorded = recorded_expectations(path)
        for claim in CLAIMS.values():
            if "swapped-heads" in claim.falsified_by and _mechanism_holds(recorded.get(claim.id, {})):
                marks = [pytest.mark.xfail(strict=True, reason=NOT_HEAD_SPECIFIC[(name, claim.id)])] if (
                    name, claim.id) in NOT_HEAD_SPECIFIC else []  # fmt: skip
                params.append(pytest.param(name, claim.id, marks=marks, id=f"{name}-{claim.id}"))
    return params


#: honest negative results of the swap test: the claim holds, but the other head has the property too
NOT_HEAD_SPECIFIC = {
    ("raw-index", "injection-coefficient-flip"): (
        "not head-specific on raw-index: both heads read the state with a ball in front (roles path scan: "
        "attention to the state token 0.63 and 1.00), and injecting the ball signal at L0H0 instead of L0H1 flips "
        "forward too (k* 0.5 swapped vs 0.625); the claim holds for the attention layer, not for one head"
    ),
    ("one-hot", "head-effects-through-mlp"): (
        "not head-specific on one-hot: both heads relay RTG and both act largely through the MLP in either "
        "scenario (swapped: obstacle scenario via L0H0, goal scenario via L0H1, every check still clears its "
        "bar); the claim is about MLP mediation, which holds for the attention layer, not for one head"
    ),
}


@pytest.mark.xdist_group("falsifiable-swapped-heads")  # its own worker: the module's two longest tests (conftest)
@pytest.mark.parametrize("name, claim_id", _head_claims_expected_to_hold())
def test_head_specific_claims_that_hold_fail_on_swapped_heads(name, claim_id):
    """Roles unchanged, heads swapped: a claim about *the obstacle head* must notice it now points at the other."""
    original_subject, swapped = _original_and_swapped(name)
    claim = CLAIMS[claim_id]
    original = claim.evaluate(original_subject)
    assert all(c.holds for c in _effect_results(original)), (
        f"{claim_id}'s mechanism fails on {name}: {original.summary()}"
    )
    verdict = claim.evaluate(swapped)
    assert not verdict.holds, f"{claim_id} still holds with the heads swapped: {verdict.summary()}"
    assert not all(c.holds for c in _effect_results(verdict)), f"{claim_id}'s mechanism survives the swap"


def test_some_head_claim_holds_somewhere_so_the_swap_test_tests_something(reference_path):
    specific = [p for p in _head_claims_expected_to_hold() if not p.marks]
    assert specific, "no head-specific claim is expected to hold on any checkpoint: the swap test would be vacuous"


def test_every_claim_promises_a_control_that_can_fail_it():
    for claim in CLAIMS.values():
        assert claim.falsified_by and set(claim.falsified_by) <= set(FALSIFIERS), claim.id


#: the checkpoints here are Dynamic Obstacles models; the memory claims' controls are in tests/test_memory_claims.py
DO_CLAIMS = [c for c in CLAIMS.values() if c.env == "dynamic-obstacles"]


@pytest.mark.parametrize("claim_id", [c.id for c in DO_CLAIMS if "role-on-a-head" in c.falsified_by])
def test_mlp_claims_fail_when_their_role_points_at_a_head(model, subject, claim_id):
    """An MLP claim is about the MLP: with its MLP roles bound to a head instead (roles file style), it must not
    hold. Swapping heads leaves the MLP alone, so this is an MLP claim's control."""
    mlp_roles = [r for r in ROLES if isinstance(subject.component(r), MLP)]
    heads = [c for c in component_names(model) if isinstance(parse_component(c, model), Head)]
    assert mlp_roles and heads
    for head in heads:
        rebound = subject.with_roles(dict.fromkeys(mlp_roles, head))  # the same rollouts: they ignore roles
        verdict = CLAIMS[claim_id].evaluate(rebound)
        assert not verdict.holds, f"{claim_id} holds with {mlp_roles} bound to {head}: {verdict.summary()}"


def test_until_first_failure_stops_at_the_first_failing_check_and_changes_no_verdict():
    """The shortcut the controls take: the claim's verdict is the same, only the checks after the first failure
    are not measured (a claim that holds is measured in full)."""
    measured: list[str] = []

    def reading(name: str, value: float) -> Weights:
        return Weights(lambda subject: measured.append(name) or value, name)

    fails = Claim(
        "c", "c", "test", (Check("a", reading("a", 0.0), at_least=1.0), Check("b", reading("b", 1.0), at_least=0.0))
    )
    holds = Claim(
        "d", "d", "test", (Check("a", reading("a", 1.0), at_least=0.0), Check("b", reading("b", 1.0), at_least=0.0))
    )
    subject = Subject.from_model(random_model(0))
    full = fails.evaluate(subject)
    assert not full.holds and [c.name for c in full.checks] == ["a", "b"] and measured == ["a", "b"]
    subject.until_first_failure = True
    measured.clear()
    short = fails.evaluate(subject)
    assert not short.holds and [c.name for c in short.checks] == ["a"] and measured == ["a"]
    measured.clear()
    assert holds.evaluate(subject).holds and measured == ["a", "b"]


@pytest.mark.xdist_group("falsifiable-random-init")  # its own worker: the module's two longest tests (conftest)
@pytest.mark.parametrize("claim_id", [c.id for c in DO_CLAIMS if "random-init" in c.falsified_by])
def test_claims_fail_on_random_init(random_subject, claim_id):
    verdict = CLAIMS[claim_id].evaluate(random_subject)
    assert not verdict.holds, f"{claim_id} holds on a random init: {verdict.summary()}"


@pytest.mark.reference
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
    cx = next(c for c in verdict.counterexamples if c.check == "ablate obstacle head: ΔP(forward)")
    assert cx.state is not None, cx.describe()
    # the reported numbers are the model's, re-measured from the state alone
    again = check.measure.per_state(subject, cx.state, cx.rtg, cx.timestep)
    assert np.isclose(again, cx.value) and not check.example_holds(again)
    assert len(cx.state.obstacles) <= 1, "hypothesis should shrink away obstacles that do not matter"
    assert cx.to_dict()["found"] is True


@pytest.mark.reference
def test_search_reports_none_when_prediction_holds(reference_model):
    """On the reference the goal head's mechanism is there (ablating it raises P(forward into the goal) in every
    state searched) but the behaviour it would explain is not: unablated, the agent walks into the goal from the
    top, so the claim fails for lack of a baseline, and the search shows such a state."""
    verdict = CLAIMS["goal-avoidance-head-top"].evaluate(Subject.from_model(reference_model), search=True)
    assert not verdict.holds and verdict.reason == "baseline-absent"
    by_check = {cx.check: cx for cx in verdict.counterexamples}
    effect = by_check["ablate goal head: ΔP(forward)"]
    assert effect.state is None and effect.searched > 50
    assert by_check["baseline: P(forward) into the goal, unablated"].state is not None


def test_a_reading_on_an_unused_path_fails_with_its_reason():
    """one-hot: the obstacle head attends to the state token with a ball in front (its OV reading there, −5.2,
    counts) but pays it < 0.05 attention with the goal in front, so the goal/ball reading explains nothing and
    fails with reason path-unused (issue 13); raw-index's head attends in both, and both readings count."""
    one_hot = Subject.from_model(load_checkpoint(CHECKPOINTS_DIR / "one-hot"))
    verdict = CLAIMS["encoding-shapes-algorithm"].evaluate(one_hot)
    ball, ratio = verdict.checks[0], verdict.checks[1]
    assert ball.effect <= -0.1 and ball.holds and ball.reason == ""
    assert not ratio.holds and ratio.reason == "path-unused" and "path unused" in ratio.describe
    assert verdict.reason == "path-unused"
    raw = Subject.from_model(load_checkpoint(CHECKPOINTS_DIR / "raw-index"))
    assert [c.reason for c in CLAIMS["encoding-shapes-algorithm"].evaluate(raw).checks] == ["", ""]


def test_a_ratio_whose_denominator_is_0_is_undefined_never_infinite():
    """A ratio over 0 printed "n/a [-inf, +inf]" (mlp-amplifies-heads) or "+inf" (rtg-embedding-right-left). With
    W_rtg zeroed, RTG 0.9 and -1 are the same input (every head's path effect is exactly 0) and W_rtg's
    forward - right projection is exactly 0: both claims fail as undefined, saying which denominator is 0."""
    model = random_model(0)
    with torch.no_grad():
        model.W_rtg.zero_()
    subject = Subject.from_model(model, name="W_rtg = 0")
    runs = [run_claim(CLAIMS[cid], subject) for cid in ("mlp-amplifies-heads", "rtg-embedding-right-left")]
    for run in runs:
        assert not run.verdict.holds and run.verdict.reason == "undefined"
        for c in run.verdict.checks:
            assert c.reason.startswith("undefined: ") and c.reason.endswith(" is 0"), c.reason
            assert math.isnan(c.effect) and math.isnan(c.ci_low) and math.isnan(c.ci_high)
    text = format_table(runs) + "\n" + "\n".join(r.verdict.summary() for r in runs)
    assert "undefined (mean direct effect of L0H0 is 0)" in text, text
    assert "undefined (W_rtg . forward-right is 0)" in text, text
    assert "inf" not in text, text
    json.dumps([r.to_dict() for r in runs], allow_nan=False)  # no number at all, rather than an infinite one


def test_a_ratio_undefined_in_some_resamples_keeps_its_number_but_has_no_interval():
    @dataclass(frozen=True)
    class Given(OwnSample):
        draws: tuple[float, ...]

        def measure(self, subject) -> Measurement:
            return Measurement(np.ones(4), "ratio", "given", estimate=0.8, draws=np.array(self.draws))

    check = Check("ratio", Given((0.7, 0.8, 0.9, float("nan"))), at_least=0.5)
    (result,) = evaluate_check("x", check, None, default_comparisons())
    assert not result.holds and result.effect == 0.8 and math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert result.reason == "undefined: no number in 1 of 4 bootstrap resamples"
    assert result.numbers() == "+0.800 [interval undefined (no number in 1 of 4 bootstrap resamples)]"


def test_roles_path_scan_findings():
    """What the scan calls a head, from its three measurements: a head that moves the logits only through the
    RTG token and pays the state token no attention "relays RTG only" (no ablation at a fixed RTG can see it)."""
    from dt_circuits.claims.roles.paths import HeadPaths

    def head(relay: float, read: float, attention: float) -> str:
        return HeadPaths("L0H0", {"s": relay}, {"s": read}, {"s": attention}).finding

    assert head(3.0, 0.0, 0.0) == "relays RTG only"
    assert head(3.0, 0.0, 0.5) == "relays RTG"
    assert head(3.0, 2.0, 0.6) == "relays RTG and reads the state"
    assert head(0.1, 2.0, 0.6) == "reads the state"
    assert head(0.1, 0.1, 0.0) == "no path found"


def test_roles_path_scan_on_real_checkpoints(reference_path):
    from dt_circuits.claims.roles.paths import scan_head_paths

    raw = scan_head_paths(Subject.from_model(load_checkpoint(CHECKPOINTS_DIR / "raw-index")))
    assert [h.finding for h in raw] == ["relays RTG and reads the state"] * 2  # both heads attend to a ball
    ref = scan_head_paths(Subject.from_model(load_checkpoint(reference_path)))
    assert ref[1].finding != "relays RTG only"  # the reference's head 1 reads the state with a ball in front


def test_the_claims_table_fits_the_terminal_width(monkeypatch):
    """`dt-circuits claims` prints one row per claim; the full row (expected, bound, clusters, every failing check)
    is 150+ columns and wrapped into noise on an 80-120 column terminal. With a width the rest goes on indented
    lines under the row; with none (a log, a pipe) the table is as before."""
    from dt_circuits.claims.output.suite_output import terminal_width

    subject = Subject.from_model(random_model(0), name="random")
    # weight readings only: a state claim rolls out first, and a random model's episodes run to the step limit
    # (12 s of this test went there)
    ids = ("rtg-embedding-forward", "rtg-embedding-right-left", "time-embedding-slope")
    runs = [run_claim(CLAIMS[cid], subject) for cid in ids]
    wide = format_table(runs)
    assert max(len(line) for line in wide.splitlines()) > 100, wide
    narrow = format_table(runs, width=100)
    assert all(len(line) <= 100 for line in narrow.splitlines()), narrow
    header, first = narrow.splitlines()[:2]
    assert header.index("verdict") == first.index("fails") or header.index("verdict") == first.index("holds")
    for r in runs:
        assert any(line.startswith(r.claim.id) for line in narrow.splitlines())
        for name in r.verdict.failing_checks:
            assert name.split()[0] in narrow
    assert "    expected " in narrow and format_table(runs, width=10_000) == wide
    monkeypatch.setenv("COLUMNS", "88")
    assert terminal_width() == 88
