"""The claims suite per checkpoint: wall time (goal ≤ 60 s on 2 cores) and generated states evaluated per second."""

from __future__ import annotations

import pytest

from dt_circuits.claims.discovery import default_checkpoints, discover
from dt_circuits.claims.subject import Subject
from dt_circuits.claims.suite import run_suite

CHECKPOINTS = default_checkpoints()


@pytest.mark.parametrize("path", CHECKPOINTS, ids=[p.rsplit("/", 1)[-1] for p in CHECKPOINTS])
def test_claims_suite_wall_time(benchmark, figure, path):
    def once():
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
