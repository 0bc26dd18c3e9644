"""The disk cache of deterministic arrays (the mean-ablation walk): used only for exactly its key, recomputed
whenever a file is missing, damaged or another key's, skipped when off or unwritable — never a different result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.core import cache
from dt_circuits.core.cache import CACHE_ENV, cached_arrays


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, np.ndarray]:
        self.calls += 1
        return {"obs": np.arange(12, dtype=np.uint8).reshape(3, 4), "t": np.array([0, 1, 2], np.int64)}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_computed_once_then_loaded_with_the_same_arrays(folder):
    compute = _Counting()
    first = cached_arrays("probe", {"seed": 1}, compute)
    again = cached_arrays("probe", {"seed": 1}, compute)
    assert compute.calls == 1 and _same(first, again) and len(list(folder.glob("probe-*.npz"))) == 1
    cached_arrays("probe", {"seed": 2}, compute)  # another key, another entry
    assert compute.calls == 2 and len(list(folder.glob("probe-*.npz"))) == 2


def test_a_damaged_or_foreign_file_is_recomputed_and_replaced(folder):
    compute = _Counting()
    expected = cached_arrays("probe", {"seed": 1}, compute)
    (path,) = folder.glob("probe-*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert _same(cached_arrays("probe", {"seed": 1}, compute), expected) and compute.calls == 2
    # a whole file whose stored key is another's (same name): never used
    np.savez(path, obs=np.zeros((3, 4), np.uint8), t=np.zeros(3, np.int64), __key__=np.array("another key"))
    assert _same(cached_arrays("probe", {"seed": 1}, compute), expected) and compute.calls == 3
    assert _same(cached_arrays("probe", {"seed": 1}, compute), expected) and compute.calls == 3  # replaced


def test_off_computes_every_time_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    compute = _Counting()
    cached_arrays("probe", {"seed": 1}, compute)
    cached_arrays("probe", {"seed": 1}, compute)
    assert compute.calls == 2 and cache.cache_dir() is None and not any(tmp_path.iterdir())


def test_an_unwritable_folder_costs_time_not_a_result(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    compute = _Counting()
    assert _same(cached_arrays("probe", {"seed": 1}, compute), _Counting()()) and compute.calls == 1


def test_the_default_folder_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "dt-circuits"


def test_the_cached_mean_walk_is_the_walk(folder, monkeypatch):
    """A walk no file ships (seed 3), loaded from the disk cache, equals a fresh walk bit for bit."""
    from dt_circuits.claims.evaluation import subject
    from dt_circuits.env import walks

    monkeypatch.setattr(walks, "_WALKS", {})
    written = subject.mean_walk(3)  # computed and written
    assert len(list(folder.glob("walk-*.npz"))) == 1
    monkeypatch.setattr(walks, "_WALKS", {})
    hits = []
    load = cache._load
    monkeypatch.setattr(cache, "_load", lambda *args: hits.append(load(*args)) or hits[-1])
    loaded = subject.mean_walk(3)
    assert [h is not None for h in hits] == [False, True], "the second walk was not loaded from the cache"
    for a, b in ((written.obs, loaded.obs), (written.timesteps, loaded.timesteps)):  # written: the walk itself
        assert np.array_equal(a, b) and a.dtype == b.dtype
    assert walks.walk_key(20_000, 3, 100) != walks.walk_key(20_000, 4, 100) != walks.walk_key(20_000, 4, None)


def test_without_readable_sources_the_walk_is_not_cached(folder, monkeypatch):
    import inspect

    from dt_circuits.env import walks

    def unreadable(obj):
        raise OSError("could not get source code")

    monkeypatch.setattr(inspect, "getsource", unreadable)
    assert walks.walk_key(20_000, 0, 100) is None


def test_a_large_family_renders_once_and_loads_the_same_observations(folder, monkeypatch):
    """A claim family's observations are rendered through Minigrid once per machine: the cached family is the
    rendered one, state for state; a family with other states is another entry; small families are not kept."""
    from dt_circuits.env import scenarios

    fresh = scenarios.goal_in_front("top", n=300, seed=3)
    assert len(list(folder.glob("rendered-states-*.npz"))) == 1
    renders = []
    original = scenarios.StateRenderer.render_many
    monkeypatch.setattr(scenarios.StateRenderer, "render_many", lambda self, s: renders.append(1) or original(self, s))
    again = scenarios.goal_in_front("top", n=300, seed=3)
    assert not renders and again.states == fresh.states and np.array_equal(again.obs, fresh.obs)
    monkeypatch.setenv(CACHE_ENV, "off")
    assert np.array_equal(scenarios.goal_in_front("top", n=300, seed=3).obs, fresh.obs) and renders
    monkeypatch.setenv(CACHE_ENV, str(folder))
    scenarios.goal_in_front("top", n=300, seed=4)  # other layouts
    scenarios.goal_in_front("top", n=10, seed=3)  # below CACHED_FAMILY_SIZE
    assert len(list(folder.glob("rendered-states-*.npz"))) == 2


# -- recorded rollouts of a subject ----------------------------------------------------------------------------


def _rollouts_equal(a, b) -> bool:
    fields = ("rtg", "rewards", "lengths", "outcomes", "sample", "seed", "env_backend")
    same = all(np.array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f))) for f in fields)
    states = all(np.array_equal(x, y) for x, y in zip(a.extra["states"], b.extra["states"], strict=True))
    rest = all(np.array_equal(a.extra[k], b.extra[k]) for k in ("poses", "episodes"))
    return same and a.extra.keys() == b.extra.keys() and states and rest


def test_recorded_rollouts_are_kept_by_weights_and_request(folder, monkeypatch):
    """A claims run rolls out once per (weights, RTG, episodes, seed, backend) on a machine: a fresh subject of the
    same checkpoint loads exactly the episodes it recorded; other weights or another request roll out again."""
    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.core.paths import CHECKPOINTS_DIR
    from dt_circuits.dt.controls import random_like
    from dt_circuits.evaluation import pool

    calls = []
    real = pool.evaluate_rtgs

    def counting(model, rtgs, **kw):
        calls.append(list(rtgs))
        return real(model, rtgs, **kw)

    monkeypatch.setattr(pool, "evaluate_rtgs", counting)
    first = Subject.load(str(CHECKPOINTS_DIR / "raw-index"))
    first.workers = 1
    a = first.rollouts(0.9, 8, 0)
    assert calls == [[0.9]] and len(list(folder.glob("rollouts-*.npz"))) == 1
    again = Subject.load(str(CHECKPOINTS_DIR / "raw-index"))
    b = again.rollouts(0.9, 8, 0)
    assert calls == [[0.9]], "the same weights and request rolled out again"
    assert _rollouts_equal(a, b) and b.n == 8 and len(b.extra["states"][0]) > 0
    again.prefetch_rollouts([(0.9, 8, 0), (-1.0, 8, 0)])  # only the missing RTG is rolled out
    assert calls == [[0.9], [-1.0]]
    other = Subject.from_model(random_like(first.model, seed=0), name="random")
    other.workers = 1
    other.rollouts(0.9, 8, 0)
    assert calls[-1] == [0.9] and len(calls) == 3, "other weights loaded another model's rollouts"


def test_rollout_arrays_round_trip_without_pickle(tmp_path):
    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.core.paths import CHECKPOINTS_DIR
    from dt_circuits.evaluation.rollout import RolloutResult

    subject = Subject.load(str(CHECKPOINTS_DIR / "raw-index"))
    subject.workers = 1
    res = subject.rollouts(0.0, 4, 3)
    np.savez(tmp_path / "r.npz", **res.to_arrays())
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        back = RolloutResult.from_arrays(dict(npz))
    assert _rollouts_equal(res, back)
    plain = RolloutResult(0.5, np.zeros(2), np.ones(2, np.int64), np.array(["goal", "timeout"]), True, 1)
    assert RolloutResult.from_arrays(plain.to_arrays()).extra == {}


def test_a_claims_das_basis_is_fitted_once_and_loads_the_same_basis(folder, monkeypatch):
    """A claim's DAS fit (``Subspace(method="das")``) is kept by weights, pairs, site and settings: the loaded basis
    is the fitted one bit for bit; other weights fit again."""
    from dt_circuits.features import localise
    from dt_circuits.features.data import ball_pairs
    from dt_circuits.features.sites import Site
    from tests.helpers import random_model

    model, site = random_model(0), Site("blocks.0.hook_resid_mid")
    train = ball_pairs(seed=0, layouts=2, rtg=0.9, max_timestep=model.cfg.max_timestep)
    fits = []
    original = localise.das_basis
    monkeypatch.setattr(localise, "das_basis", lambda *a, **k: fits.append(1) or original(*a, **k))
    first = localise.fit_basis(model, train, site, "das", steps=5, cache=True)
    again = localise.fit_basis(model, train, site, "das", steps=5, cache=True)
    assert len(fits) == 1 and torch.equal(first, again) and len(list(folder.glob("das-basis-*.npz"))) == 1
    assert torch.equal(first, original(model, train, site, 1, seed=0, steps=5))
    localise.fit_basis(random_model(1), train, site, "das", steps=5, cache=True)
    assert len(fits) == 2
