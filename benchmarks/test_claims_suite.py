"""The claims suite per checkpoint: wall time (goal ≤ 60 s on 2 cores) and generated states evaluated per second;
and the mean-ablation walk computed against loaded from the disk cache, side by side."""

from __future__ import annotations

import time

import pytest

from dt_circuits.claims.evaluation.subject import MEAN_DATASET_SIZE, WALK_EPISODE_STEPS, Subject, mean_walk
from dt_circuits.claims.suite.discovery import default_checkpoints, discover
from dt_circuits.claims.suite.run import run_suite
from dt_circuits.env import walks
from dt_circuits.env.scenarios import random_walk

CHECKPOINTS = default_checkpoints()


@pytest.mark.parametrize("path", CHECKPOINTS, ids=[p.rsplit("/", 1)[-1] for p in CHECKPOINTS])
def test_claims_suite_wall_time(benchmark, figure, path):
    mean_walk(0)  # on disk (dt_circuits.core.cache), as for every run on a machine after its first

    def once():
        walks._WALKS.clear()  # every checkpoint loads the walk, none inherits it from the one before
        subject = Subject.load(path)  # fresh caches: the full cost a CI run pays
        return run_suite(subject, discover(), search=True)

    runs = benchmark.pedantic(once, rounds=1, iterations=1)
    assert runs, f"no claim applies to {path}: the figure would time nothing"
    seconds = benchmark.stats.stats.mean
    states = sum(c.n for r in runs for c in r.verdict.checks if c.unit != "reward")
    name = path.rsplit("/", 1)[-1]
    figure(benchmark, f"claims suite seconds ({name})", seconds, "{:.1f}")
    figure(benchmark, f"claim examples evaluated per second ({name})", states / seconds, "{:,.0f}")
    assert seconds <= 60, f"claims suite took {seconds:.1f} s on {name} (goal <= 60 s)"


def test_mean_walk_computed_vs_cached(benchmark, figure):
    """What taking the walk (20,000 Minigrid steps) costs against what every run pays: loading it (seed 0's ships
    with the package, any other seed's is disk-cached)."""
    mean_walk(0)

    def loaded():
        walks._WALKS.clear()
        return mean_walk(0)

    benchmark.pedantic(loaded, rounds=5, iterations=1)
    start = time.perf_counter()
    taken = random_walk(MEAN_DATASET_SIZE, seed=0, max_episode_steps=WALK_EPISODE_STEPS)
    computed = time.perf_counter() - start
    assert (taken.obs == mean_walk(0).obs).all()  # the loaded walk is the walk taken
    figure(benchmark, "mean walk taken in the env, s", computed, "{:.2f}")
    figure(benchmark, "mean walk loaded (shipped with the package), s", benchmark.stats.stats.mean, "{:.3f}")
    assert benchmark.stats.stats.mean < computed / 10
