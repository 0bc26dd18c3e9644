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


@pytest.fixture(scope="session")
def reference_path() -> Path:
    return require_reference()


@pytest.fixture(scope="session")
def reference_model(reference_path: Path):
    from dt_circuits import load_checkpoint

    return load_checkpoint(reference_path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n N --dist loadgroup``), keep a test module's tests on one worker: module and
    session fixtures here load checkpoints, roll out episodes and run claim suites, and splitting a module would
    pay for them twice. Claim items carry their checkpoint's group already (the plugin).

    ``tryfirst``: xdist's worker turns ``xdist_group`` marks into the node ids it schedules by in its own
    ``pytest_collection_modifyitems``, registered after this conftest, so (hooks run last-registered first) without
    it these marks arrived too late and reached no scheduler."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if not any(m.name == "xdist_group" for m in item.iter_markers()):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
