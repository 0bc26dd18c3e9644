"""Shared pytest set-up: hypothesis profiles, the reference checkpoint, and our checkpoints.

A test that needs ``../shared`` skips on a laptop without it but FAILS when ``CI`` is set: CI always has
shared/, so a missing reference there is a broken pipeline, not a reason to go green.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from dt_circuits.core.paths import reference_checkpoint
from dt_circuits.core.threads import configure_threads

configure_threads()

# CI: derandomized (a fixed example sequence) and no example database, so a run is a pure function of the code.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def require_reference() -> Path:
    """Path of the published DTI checkpoint; fail under CI, skip elsewhere, when it is missing."""
    path = reference_checkpoint()
    if not path.exists():
        msg = (
            f"the published DTI checkpoint is not at {path}: download ReproduceOriginalPostShort.pt from the public "
            "DecisionTransformerInterpretability repository (README: 'The published DTI checkpoints') and save it "
            "there, or set DT_CIRCUITS_SHARED"
        )
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The DTI reference's claim items first, then the tests that read the determinism test's reference suite:
    that suite takes the claim items' verdicts when they have run in the same process (same xdist group, so the
    same worker), instead of measuring the 29 claims again. First in the whole run, too: the group is the longest
    (~80 s of a test command, AMD EPYC), and a long unit scheduled last would leave the other worker idle."""
    from dt_circuits.claims.plugin import ClaimItem

    reference = reference_checkpoint().resolve()
    claims = [i for i in items if isinstance(i, ClaimItem) and Path(i.checkpoint).resolve() == reference]
    suite = [i for i in items if "reference_suite" in getattr(i, "fixturenames", ())]
    if claims and suite:
        first = {*claims, *suite}
        items[:] = [*claims, *suite, *(i for i in items if i not in first)]


@pytest.fixture(scope="session")
def reference_path() -> Path:
    return require_reference()


@pytest.fixture(scope="session")
def reference_model(reference_path: Path):
    from dt_circuits import load_checkpoint

    return load_checkpoint(reference_path)


@pytest.fixture(scope="module")
def memory_path() -> Path:
    """Path of the published MemoryDT-GatedMLP checkpoint; fail under CI, skip elsewhere, when it is missing."""
    from dt_circuits.core.paths import memory_reference_checkpoint

    path = memory_reference_checkpoint()
    if not path.exists():
        msg = (
            f"MemoryDT-GatedMLP checkpoint missing at {path}: download MemoryGatedMLP.pt "
            "(README: 'The published DTI checkpoints')"
        )
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="module")
def memory_model(memory_path: Path):
    """MemoryDT-GatedMLP, loaded once per test module."""
    from dt_circuits import load_checkpoint

    return load_checkpoint(memory_path)


# Scheduling under pytest-xdist (``-n 2 --dist loadgroup``): tests go to workers one by one, except those with an
# explicit ``xdist_group`` mark: a module whose shared fixtures are expensive (the EnvPool lockstep runs) carries one,
# each gate retrain is its own group, and the claims plugin groups claim items by checkpoint (the determinism test's
# reference suite joins the reference's group and takes its claim items' verdicts: pytest_collection_modifyitems
# above). A conftest hook grouping *every* module was dropped: it reached xdist only as ``tryfirst`` (xdist reads the
# marks in a hook registered after this file), and then the test command took 14 min 22 s on a fresh clone of 07c1a48
# (Intel Xeon) against 12 min 57 s at de246b4 without it, the 14-test falsifiability module running on one worker
# (its fixtures load checkpoints, a second or two; its tests take ~15 s each).
