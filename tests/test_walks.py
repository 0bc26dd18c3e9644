"""The walks shipped with the package: the walks the code would take, for the key it asks for now, read whatever
the disk cache holds or says — and a walk no file ships is taken in the env and disk-cached, never read from one."""

from __future__ import annotations

import numpy as np
import pytest

from dt_circuits.core import cache
from dt_circuits.core.cache import CACHE_ENV
from dt_circuits.env import walks
from dt_circuits.env.scenarios import random_walk


def test_every_shipped_walk_has_a_file_for_the_key_the_code_asks_for():
    stale = walks.stale_shipped()
    assert not stale, f"shipped walks {stale} are stale (the walk or Minigrid changed): python -m dt_circuits.env.walks"
    names = {p.name for p in walks.SHIPPED_DIR.glob("*.npz")}
    assert len(names) == len(walks.SHIPPED), f"files no shipped walk names: {sorted(names)}"


@pytest.mark.parametrize("n, seed, cap", walks.SHIPPED, ids=[f"{n}-states" for n, _, _ in walks.SHIPPED])
def test_a_shipped_walk_is_the_walk_taken_in_the_env(n, seed, cap, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))  # an empty disk cache: the walk can only come from the package
    monkeypatch.setattr(walks, "_WALKS", {})
    taken = []
    original = walks._take
    monkeypatch.setattr(walks, "_take", lambda *a: taken.append(1) or original(*a))
    shipped = walks.walk(n, seed=seed, max_episode_steps=cap)
    assert not taken and not any(tmp_path.iterdir()), "a shipped walk was taken in the env or written to the cache"
    fresh = random_walk(n, seed=seed, max_episode_steps=cap)
    for a, b in ((shipped.obs, fresh.obs), (shipped.timesteps, fresh.timesteps)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_the_shipped_walks_are_read_with_the_cache_off(monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "off")
    monkeypatch.setattr(walks, "_WALKS", {})
    monkeypatch.setattr(walks, "_take", lambda *a: pytest.fail("taken in the env"))
    n, seed, cap = walks.SHIPPED[0]
    assert len(walks.walk(n, seed=seed, max_episode_steps=cap).obs) == n


def test_a_shipped_file_for_another_key_is_never_used(tmp_path, monkeypatch):
    """A file under the right name whose stored key is another's (edited by hand, or a stale copy): ignored."""
    key = {"seed": 1}
    path = cache.write_entry(tmp_path, "walk", key, {"obs": np.zeros((2, 7, 7, 3), np.uint8)})
    np.savez(path, obs=np.ones((2, 7, 7, 3), np.uint8), __key__=np.array("another key"))
    assert cache.shipped_entry(tmp_path, "walk", key) is None and cache.shipped_entry(tmp_path, "walk", None) is None
