"""Calibration against its floor: ``dt-circuits calibrate`` wall time ÷ stepping the raw env for as many steps.

The floor is the real MiniGrid env driven by random actions on one core, nothing else: no model, no workers.
A calibration that uses both cores and batches its model calls should cost well under one floor (goal ≤ 0.6).
The whole command is timed (process start-up and imports included), as a user pays it; the steady-state ratio,
without the ~7 s of imports, is reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from dt_circuits.core.paths import CHECKPOINTS_DIR
from dt_circuits.env.spec import EnvSpec

RTGS = ("-1", "0", "0.9")  # Table 1: short (collide), full-length (time out) and goal-seeking episodes
EPISODES = 500


def raw_env_seconds(n_steps: int, spec: EnvSpec) -> float:
    """Wall time of ``n_steps`` random-action steps of the raw env in this process (one core)."""
    env = spec.make()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    start = time.perf_counter()
    for i in range(n_steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(3)))
        if terminated or truncated:
            env.reset(seed=i)
    return time.perf_counter() - start


def test_calibration_vs_raw_env_floor(benchmark, figure, tmp_path):
    out = tmp_path / "calibration.json"
    cmd = [sys.executable, "-m", "dt_circuits.cli", "calibrate", "--checkpoint", str(CHECKPOINTS_DIR / "raw-index"),
           "--episodes", str(EPISODES), "--rtgs", *RTGS, "--json", str(out), "--quiet"]  # fmt: skip

    def run() -> None:
        subprocess.run(cmd, check=True, capture_output=True)

    benchmark.pedantic(run, rounds=1, iterations=1)
    calibrate_s = benchmark.stats.stats.mean
    rows = json.loads(out.read_text())["rows"]
    n_steps = int(round(sum(r["episodes"] * r["mean_length"] for r in rows)))
    import_s = _import_seconds()
    floor_s = raw_env_seconds(n_steps, EnvSpec(max_steps=300))
    figure(benchmark, "calibration env steps", n_steps, "{:,}")
    figure(benchmark, "raw env floor, µs/step (1 core)", floor_s / n_steps * 1e6, "{:.0f}")
    figure(benchmark, "calibrate ÷ floor (whole command)", calibrate_s / floor_s, "{:.2f}")
    figure(benchmark, "calibrate ÷ floor (without imports)", (calibrate_s - import_s) / floor_s, "{:.2f}")
    assert calibrate_s / floor_s <= 0.6, f"calibrate {calibrate_s:.1f} s vs raw env {floor_s:.1f} s for {n_steps} steps"


def _import_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dt_circuits.evaluation.calibration"], check=True)
    return time.perf_counter() - start
