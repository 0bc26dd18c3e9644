"""Model forward: batched vs per-state throughput, and what the hook points cost when nothing is attached.

The floor for "hooks cost nothing" is the plain-torch forward in tests/plain_dti.py (same arithmetic, no
HookPoints, no input validation); the target is ≤ 10 % overhead at batch 4096.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from dt_circuits.env.scenarios import random_states
from tests.plain_dti import plain_dti_logits

BATCH = 4096


@pytest.fixture(scope="module")
def inputs():
    fam = random_states(512, seed=0)
    reps = BATCH // len(fam)
    obs = np.concatenate([fam.obs] * reps)
    rng = np.random.default_rng(0)
    return obs, rng.uniform(-1, 1, len(obs)).astype(np.float32), rng.integers(0, 300, len(obs))


@pytest.fixture(scope="module")
def dti_state_dict(reference_path):
    return torch.load(reference_path, map_location="cpu", weights_only=True)["model_state_dict"]


def _best_of(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_forward_batched(benchmark, figure, reference_model, inputs):
    obs, rtg, t = inputs
    with torch.no_grad():
        benchmark(reference_model, obs, rtg, t)
    figure(benchmark, "forward states/s at batch 4096", BATCH / benchmark.stats.stats.mean, "{:,.0f}")


def test_forward_per_state(benchmark, figure, reference_model, inputs):
    obs, rtg, t = inputs
    n = 256

    def loop():
        with torch.no_grad():
            for i in range(n):
                reference_model(obs[i : i + 1], rtg[i : i + 1], t[i : i + 1])

    benchmark.pedantic(loop, rounds=5, iterations=1)
    per_state = n / benchmark.stats.stats.mean
    batched = BATCH / _best_of(lambda: reference_model(obs, rtg, t))
    figure(benchmark, "forward states/s at batch 1", per_state, "{:,.0f}")
    figure(benchmark, "batched / per-state throughput", batched / per_state, "{:.1f}x")


def test_hook_overhead_with_no_hooks_attached(benchmark, figure, reference_model, inputs, dti_state_dict):
    obs, rtg, t = inputs
    with torch.no_grad():
        benchmark(plain_dti_logits, dti_state_dict, obs, rtg, t)
        ours = _best_of(lambda: reference_model(obs, rtg, t))
    plain = _best_of(lambda: plain_dti_logits(dti_state_dict, obs, rtg, t))
    ratio = ours / plain
    figure(benchmark, "hooked / plain forward time at batch 4096", ratio, "{:.3f}")
    assert ratio <= 1.10, f"hook points cost {ratio - 1:.0%} with nothing attached (target <= 10 %)"
