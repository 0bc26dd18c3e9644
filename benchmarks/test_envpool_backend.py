"""EnvPool against Minigrid, side by side in one run: raw env steps/s and ``dt-circuits calibrate`` wall time.

Steps/s: uniform random actions, one core, no model (Minigrid: one env; EnvPool: one env and 64 envs stepped
together, as the backend steps them). Calibrate: the whole command (imports included) on raw-index, Table 1's
three RTGs, 500 episodes each, ``--workers 1`` so the two backends get the same core.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from benchmarks.test_calibration_floor import raw_env_seconds
from dt_circuits.core.paths import CHECKPOINTS_DIR
from dt_circuits.env.spec import EnvSpec

pytest.importorskip("envpool", reason="pip install envpool")

SPEC = EnvSpec(max_steps=300)
N_STEPS = 20_000
_CALIBRATE: dict[str, float] = {}


def minigrid_steps_per_s(n_steps: int) -> float:
    return n_steps / raw_env_seconds(n_steps, SPEC)


def envpool_steps_per_s(n_steps: int, n_envs: int) -> float:
    from dt_circuits.evaluation.envpool_rollout import make_pool

    pool = make_pool(SPEC, list(range(n_envs)))
    pool.reset()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(n_steps // n_envs):
        pool.step(rng.integers(0, 3, n_envs))  # finished envs auto-reset: fine for a raw speed figure
    return n_steps // n_envs * n_envs / (time.perf_counter() - start)


def test_env_steps_per_second(benchmark, figure):
    def run() -> tuple[float, float, float]:
        return minigrid_steps_per_s(N_STEPS), envpool_steps_per_s(N_STEPS, 1), envpool_steps_per_s(N_STEPS, 64)

    minigrid, one, many = benchmark.pedantic(run, rounds=1, iterations=1)
    figure(benchmark, "minigrid steps/s (1 env, 1 core)", minigrid, "{:,.0f}")
    figure(benchmark, "envpool steps/s (1 env, 1 core)", one, "{:,.0f}")
    figure(benchmark, "envpool steps/s (64 envs, 1 core)", many, "{:,.0f}")
    figure(benchmark, "envpool 64 envs ÷ minigrid", many / minigrid, "{:.1f}")


@pytest.mark.parametrize("backend", ["minigrid", "envpool"])
def test_calibrate_wall_time(benchmark, figure, tmp_path, backend):
    out = tmp_path / "calibration.json"
    cmd = [sys.executable, "-m", "dt_circuits.cli", "calibrate", "--checkpoint", str(CHECKPOINTS_DIR / "raw-index"),
           "--episodes", "500", "--rtgs", "-1", "0", "0.9", "--workers", "1", "--env-backend", backend,
           "--json", str(out), "--quiet"]  # fmt: skip
    benchmark.pedantic(lambda: subprocess.run(cmd, check=True, capture_output=True), rounds=1, iterations=1)
    _CALIBRATE[backend] = benchmark.stats.stats.mean
    steps = sum(r["episodes"] * r["mean_length"] for r in json.loads(out.read_text())["rows"])
    figure(benchmark, f"calibrate {backend} s (3 RTGs × 500, 1 worker)", _CALIBRATE[backend], "{:.1f}")
    figure(benchmark, f"calibrate {backend} env steps", steps, "{:,.0f}")
    if len(_CALIBRATE) == 2:
        figure(benchmark, "calibrate minigrid ÷ envpool", _CALIBRATE["minigrid"] / _CALIBRATE["envpool"], "{:.2f}")
