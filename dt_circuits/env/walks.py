"""Seeded random walks in the real env, computed once: the mean-ablation walk and the SAEs' unlabelled states.

A walk is a function of its arguments, the env code and the library versions, never of the CPU (integer grid
states, an integer action stream), so the walks a default run needs are shipped with the package
(``walk_data/*.npz``, named and keyed exactly as disk-cache entries are, so a file is used only for the key the code
asks for now) and any other walk is taken once per machine and kept in the disk cache (:mod:`dt_circuits.core.cache`).
20,000 Minigrid steps cost 3.4 s (Intel Xeon), in every process that needed them and found an empty cache: every
xdist worker and test subprocess of a CI run, every user's first claims run. ``python -m dt_circuits.env.walks``
rewrites the shipped files after a change to the walk or an upgrade of Minigrid (``tests/test_walks.py`` fails
until then, naming the command).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dt_circuits.core.cache import cached_arrays, shipped_entry, source_key, write_entry
from dt_circuits.env.scenarios import WalkDataset, random_walk
from dt_circuits.env.spec import EnvSpec

#: where the shipped walks live (package data)
SHIPPED_DIR = Path(__file__).resolve().parent / "walk_data"
#: (states, seed, episode cap) of the walks shipped: the mean-ablation walk of generation seed 0
#: (claims.evaluation.subject.mean_walk) and the SAEs' walk of seed 0 (features.sae.walk_inputs)
SHIPPED = ((20_000, 0, 100), (4096, 0, None))
KIND = "walk"

_WALKS: dict[tuple[int, int, int | None], WalkDataset] = {}


def walk_key(n: int, seed: int, max_episode_steps: int | None) -> dict[str, Any] | None:
    """Everything a walk depends on: its arguments, the code that takes it (the walk and the env it makes) and the
    versions of the libraries that step and seed it; None (no caching) when the code cannot be read."""
    source = source_key(random_walk, EnvSpec)
    if source is None:
        return None
    spec = EnvSpec().to_dict()
    return {"n": int(n), "seed": int(seed), "max_episode_steps": max_episode_steps, "spec": spec, **source}


def walk(n: int, *, seed: int, max_episode_steps: int | None = None) -> WalkDataset:
    """:func:`~dt_circuits.env.scenarios.random_walk` of the default env, taken once: from this process, the
    shipped files, the disk cache, or the env (then kept in the disk cache). Callers share the arrays: read only."""
    request = (int(n), int(seed), max_episode_steps)
    if request not in _WALKS:
        arrays = cached_arrays(KIND, walk_key(*request), lambda: _take(*request), shipped=SHIPPED_DIR)
        _WALKS[request] = WalkDataset(obs=arrays["obs"], timesteps=arrays["timesteps"])
    return _WALKS[request]


def _take(n: int, seed: int, max_episode_steps: int | None) -> dict[str, np.ndarray]:
    """The walk, stepped in the env."""
    w = random_walk(n, seed=seed, max_episode_steps=max_episode_steps)
    return {"obs": w.obs, "timesteps": w.timesteps}


def stale_shipped() -> list[tuple[int, int, int | None]]:
    """The shipped walks with no file for the key the code asks for now (the walk's code or Minigrid changed)."""
    return [w for w in SHIPPED if shipped_entry(SHIPPED_DIR, KIND, walk_key(*w)) is None]


def ship() -> list[Path]:
    """Take every shipped walk from the env and write it (atomically) into the package; remove files no shipped
    walk names any more."""
    written = []
    for n, seed, cap in SHIPPED:
        key = walk_key(n, seed, cap)
        if key is None:
            raise SystemExit("the walk's source cannot be read: nothing to key shipped walks on")
        written.append(write_entry(SHIPPED_DIR, KIND, key, _take(n, seed, cap)))
    for old in SHIPPED_DIR.glob(f"{KIND}-*.npz"):
        if old not in written:
            old.unlink()
    return written


if __name__ == "__main__":
    for path in ship():
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
