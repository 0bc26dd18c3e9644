"""DT training throughput: optimizer steps per second for the post's architecture at batch 128, 2 threads.

Target (issue 4): >= 150 steps/s on an otherwise idle 2-core machine. Two torch threads on a machine shared
with other busy processes need ``OMP_WAIT_POLICY=PASSIVE`` (set before Python starts) or they spin against
each other: run as ``OMP_WAIT_POLICY=PASSIVE pytest benchmarks/test_train_speed.py``.
"""

from __future__ import annotations

import os

import pytest

from dt_circuits.env.spec import EnvSpec
from dt_circuits.training.config import TrainConfig
from dt_circuits.training.train import train
from dt_circuits.trajectories.dataset import collect_scripted
from dt_circuits.trajectories.mix import DEFAULT_MIX


@pytest.mark.parametrize("encoding", ["index", "one_hot"])
def test_train_steps_per_second(benchmark, figure, encoding):
    data = collect_scripted(DEFAULT_MIX, n_episodes=20, seed=0, env=EnvSpec(max_steps=300), progress=False)
    cfg = TrainConfig(obs_encoding=encoding, steps=600, threads=2, eval_episodes=1, eval_rtgs=(0.9,))
    result = benchmark.pedantic(lambda: train(cfg, data, progress=False), rounds=1, iterations=1)
    figure(benchmark, f"train steps/s ({encoding}, batch 128, 2 threads)", result.steps_per_second, "{:.0f}")
    load = os.getloadavg()[0]
    assert result.steps_per_second >= 150, (
        f"{result.steps_per_second:.0f} steps/s (target >= 150 on an idle machine; load average now {load:.1f})"
    )
