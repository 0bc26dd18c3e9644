"""The retrain gate on the committed raw-index checkpoint: the full retrain passes with identical weight bytes,
and a deliberately broken retrain (a changed config) fails with a readable diff.

The full retrain is the CI gate (issue 6): it runs in the default test command, so `.ci/run` gates every change
to the training code, data or config. Its wall time is printed in the terminal summary.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from dt_circuits.claims.gate import format_gate, run_gate
from dt_circuits.core.paths import CHECKPOINTS_DIR

RAW_INDEX = CHECKPOINTS_DIR / "raw-index"
pytestmark = pytest.mark.gate


@pytest.fixture(scope="module")
def raw_index():
    if not (RAW_INDEX / "manifest.json").exists():
        pytest.fail(f"committed checkpoint missing: {RAW_INDEX}")
    return RAW_INDEX


def test_full_retrain_gate_passes_with_identical_weights(raw_index, record_property, capsys):
    gate = run_gate(raw_index, progress=False)
    table = format_gate(gate)
    with capsys.disabled():
        print("\n" + table)
    record_property("gate_retrain_seconds", gate.retrain_seconds)
    assert gate.identical_weights, table
    assert gate.passed, table


def test_deliberate_break_fails_with_a_readable_diff(raw_index, tmp_path):
    """A retrain cut to 300 optimizer steps no longer has the recorded circuits: the gate must say which moved."""
    out = tmp_path / "gate.json"
    proc = subprocess.run(
        [sys.executable, "-m", "dt_circuits.cli", "gate", "--checkpoint", str(raw_index), "--override", "steps=300",
         "--quiet", "--json", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gate FAILED" in proc.stdout and "MOVED" in proc.stdout, proc.stdout
    assert "weights differ" in proc.stdout and "overrides {'steps': 300}" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_gate_refuses_unknown_overrides(raw_index):
    from dt_circuits.core.errors import ConfigError

    with pytest.raises(ConfigError, match="bogus"):
        run_gate(raw_index, overrides={"bogus": 1}, progress=False)
