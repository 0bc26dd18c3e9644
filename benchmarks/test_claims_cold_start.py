"""A claims run from a cold process: the whole command against the claims' own seconds (issue 29, part 3).

What a researcher waits for beyond the claims: the interpreter, torch and TransformerLens imports, the claim files,
the walk from the disk cache and the model. Measured on weight readings (no rollouts, no search), so the claims'
own time is a few milliseconds and nearly all of the whole is start-up. Goal: at most 3 s more than the claims.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from dt_circuits.core.paths import CHECKPOINTS_DIR

#: weight readings: the claims' own time is ~0, so the whole command is its start-up
CLAIMS = ["rtg-embedding-forward", "rtg-embedding-right-left", "encoding-shapes-algorithm"]


@pytest.mark.xfail(
    strict=True,
    reason="not met: 4.1-5.7 s beyond the claims on an Intel Xeon (2026-12-06), of which torch and TransformerLens "
    "(its package imports transformers and pandas) are ~3.3 s",
)
def test_cold_claims_run_costs_at_most_3_s_more_than_its_claims(benchmark, figure, tmp_path):
    exe = shutil.which("dt-circuits") or pytest.skip("dt-circuits is not on PATH")
    out = tmp_path / "run"
    cmd = [exe, "claims", "--checkpoint", str(CHECKPOINTS_DIR / "raw-index"), "--only", *CLAIMS, "--no-report",
           "--no-search", "--json", str(out)]  # fmt: skip
    subprocess.run(
        cmd, capture_output=True, check=True
    )  # the walk and the families in the disk cache, as after a first run
    benchmark.pedantic(lambda: subprocess.run(cmd, capture_output=True, check=True), rounds=5, iterations=1)
    whole = benchmark.stats.stats.median
    claims = sum(c["seconds"] for c in json.loads(out.read_text())["claims"])
    figure(benchmark, "cold claims run (3 weight claims), whole command s", whole, "{:.2f}")
    figure(benchmark, "cold claims run: beyond the claims' own s", whole - claims, "{:.2f}")
    assert whole - claims <= 3.0, f"{whole - claims:.2f} s beyond the claims (goal <= 3 s)"
