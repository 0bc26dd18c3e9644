"""The memory claims: they hold where recorded on MemoryDT-GatedMLP, each can fail (a random init of the same
architecture), and they are "not applicable" to Dynamic Obstacles checkpoints (and vice versa)."""

from __future__ import annotations

import pytest

from dt_circuits.claims.evaluation.subject import Subject, recorded_expectations
from dt_circuits.claims.suite.discovery import checkpoint_family, discover
from dt_circuits.claims.suite.run import applicable, run_suite
from dt_circuits.core.paths import CHECKPOINTS_DIR, memory_reference_checkpoint, reference_checkpoint
from dt_circuits.dt.checkpoint import load_checkpoint
from dt_circuits.dt.controls import random_like

MEMORY_CLAIMS = [c for c in discover() if c.env == "memory"]


def test_there_are_four_memory_claims():
    assert {c.id for c in MEMORY_CLAIMS} == {
        "memory-instruction-feature",
        "memory-adversarial-complements",
        "memory-direct-intervention",
        "memory-das-instruction-pc0",
    }


@pytest.mark.parametrize("claim", MEMORY_CLAIMS, ids=lambda c: c.id)
def test_memory_claims_recorded_as_holding_fail_on_a_random_init(memory_model, claim):
    recorded = recorded_expectations(memory_reference_checkpoint())
    if recorded.get(claim.id, {}).get("expected", "holds") != "holds":
        pytest.skip(f"{claim.id} is recorded as failing on MemoryDT-GatedMLP")
    assert claim.evaluate(Subject.from_model(memory_model)).holds
    verdict = claim.evaluate(Subject.from_model(random_like(memory_model, seed=0), name="random"))
    assert not verdict.holds, f"{claim.id} holds on a random init: {verdict.summary()}"


def test_claims_apply_only_to_their_env_family(memory_model):
    claims = discover()
    memory = Subject.from_model(memory_model)
    assert memory.env_family == "memory" and memory.roles == {}
    assert {c.id for c in applicable(claims, memory)} == {c.id for c in MEMORY_CLAIMS}
    do = Subject.from_model(load_checkpoint(CHECKPOINTS_DIR / "raw-index"))
    assert do.env_family == "dynamic-obstacles"
    assert not {c.id for c in applicable(claims, do)} & {c.id for c in MEMORY_CLAIMS}
    # run_suite runs only the claims of the subject's family (one cheap claim of each family here: the memory
    # suite's DAS fits are the plugin's to pay, once, not this test's)
    mixed = [c for c in claims if c.id in ("memory-instruction-feature", "rtg-embedding-forward")]
    assert [r.claim.id for r in run_suite(memory, mixed)] == ["memory-instruction-feature"]
    # who stepped the rollouts, as a run reports it: Memory rollouts are Minigrid's whatever backend was asked
    memory.env_backend = do.env_backend = "envpool"
    assert (memory.rollout_backend, do.rollout_backend) == ("minigrid", "envpool")


def test_checkpoint_family_is_known_without_loading():
    assert checkpoint_family(str(CHECKPOINTS_DIR / "raw-index")) == "dynamic-obstacles"
    assert checkpoint_family(str(memory_reference_checkpoint())) == "memory"
    assert checkpoint_family(str(reference_checkpoint())) == "dynamic-obstacles"
    assert checkpoint_family("somewhere/else.pt") is None


def test_claims_command_says_when_no_selected_claim_applies(memory_model, capsys):
    """`--only <a Dynamic Obstacles claim>` on MemoryDT checks nothing: that is a usage error, never "0/0 match"."""
    from dt_circuits.cli import main

    rc = main(
        ["claims", "--checkpoint", str(memory_reference_checkpoint()), "--only", "rtg-embedding-forward", "--no-report"]
    )
    out, err = capsys.readouterr()
    assert rc == 2
    assert "no selected claim applies to dti-memory" in out and "match expectations" not in out
    assert "no selected claim applies to any checkpoint" in err
