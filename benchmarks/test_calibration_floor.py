"""Calibration against its floor: ``dt-circuits calibrate`` wall time ÷ stepping Minigrid for as many steps.

The setting is the post's Fig. 5: 500 episodes at each of 9 RTGs (−1 to 1 every 0.25), the default backend
(EnvPool) and workers. The floor is Farama Minigrid driven by random actions on one core, nothing else: no model,
no workers; its µs/step is measured on ``FLOOR_SAMPLE`` steps in this run and multiplied by the calibration's
step count (the rate does not depend on how many steps are taken). Goal (issue 14): ≤ 0.15 floor for the whole
command, process start-up and imports included, as a user pays it; the ratio without imports is reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from dt_circuits.core.paths import CHECKPOINTS_DIR
from dt_circuits.env.spec import EnvSpec

RTGS = ("-1", "-0.75", "-0.5", "-0.25", "0", "0.25", "0.5", "0.75", "1")  # Fig. 5's range, 9 RTGs
EPISODES = 500
FLOOR_SAMPLE = 60_000
GOAL = 0.15


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
    floor_s = raw_env_seconds(FLOOR_SAMPLE, EnvSpec(max_steps=300)) / FLOOR_SAMPLE * n_steps
    figure(benchmark, "calibrate Fig. 5 (9 RTGs × 500), whole command s", calibrate_s, "{:.1f}")
    figure(benchmark, "calibration env steps", n_steps, "{:,}")
    figure(benchmark, "raw env floor, µs/step (1 core)", floor_s / n_steps * 1e6, "{:.0f}")
    figure(benchmark, "calibrate ÷ floor (whole command)", calibrate_s / floor_s, "{:.2f}")
    figure(benchmark, "calibrate ÷ floor (without imports)", (calibrate_s - import_s) / floor_s, "{:.2f}")
    assert calibrate_s / floor_s <= GOAL, f"calibrate {calibrate_s:.1f} s vs floor {floor_s:.1f} s for {n_steps} steps"


def _import_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dt_circuits.evaluation.calibration"], check=True)
    return time.perf_counter() - start
