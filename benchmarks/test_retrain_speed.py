"""Fast retrains and populations (issue 14): wall time of one full retrain of each committed checkpoint with its
own recorded recipe, the fast one (goal: <= 120 s on the project's 2-core machine), and of a K=2 population gate
run (retrain + every claim per seed, two 1-thread seeds in parallel on the local executor).

The machine's load average is recorded next to each figure, since a shared machine stretches wall time (CPU
seconds are recorded too).
"""

from __future__ import annotations

import os
import resource
import time

import pytest

from dt_circuits.claims.records.gate import retrain
from dt_circuits.core.paths import CHECKPOINTS_DIR
from dt_circuits.training.config import RECIPES


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.parametrize("checkpoint", ["raw-index", "one-hot"])
def test_fast_recipe_full_retrain_wall_time(benchmark, figure, checkpoint):
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    result, _, _ = benchmark.pedantic(
        lambda: retrain(CHECKPOINTS_DIR / checkpoint, {}, progress=False), rounds=1, iterations=1
    )
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    figure(benchmark, f"fast retrain {checkpoint}: wall s", wall, "{:.0f}")
    figure(benchmark, f"fast retrain {checkpoint}: CPU s", cpu, "{:.0f}")
    figure(benchmark, f"fast retrain {checkpoint}: load average", os.getloadavg()[0], "{:.1f}")
    assert all(getattr(result.config, k) == v for k, v in RECIPES["fast"].items())  # the committed recipe is fast
    assert wall <= 120, f"fast retrain took {wall:.0f} s (goal <= 120 s; load average {os.getloadavg()[0]:.1f})"


def test_population_gate_wall_time(benchmark, figure, tmp_path):
    import shutil

    from dt_circuits.claims.records.population import run_population
    from dt_circuits.core.executor import ExecutorSpec

    ckpt = shutil.copytree(CHECKPOINTS_DIR / "raw-index", tmp_path / "raw-index")
    t0 = time.perf_counter()
    result = benchmark.pedantic(
        lambda: run_population(ckpt, 2, overrides=dict(RECIPES["fast"]), record=True, progress=False,
                               executor=ExecutorSpec(workers=2, threads=1)),
        rounds=1, iterations=1,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    figure(benchmark, "population K=2 raw-index (2 x 1 thread): wall s", wall, "{:.0f}")
    figure(benchmark, "population K=2: retrain s per seed", max(s["retrain_seconds"] for s in result.per_seed))
    figure(benchmark, "population K=2: load average", os.getloadavg()[0], "{:.1f}")
    assert len(result.per_seed) == 2 and len(result.claims) >= 9
