"""The EnvPool rollout backend: the same episodes' protocol as :func:`.rollout.rollout`, stepped by EnvPool's C++
MiniGrid (``--env-backend envpool``, the default for Dynamic Obstacles).

Why it is shaped like this (measurements in ``docs/envpool.md``):

* **Seeds.** Each episode keeps its seed from :func:`.rollout.episode_seeds` (``seed``, episode index), so results
  do not depend on batching, chunking or worker count. EnvPool takes int32 seeds only and ignores
  ``reset(seed=...)``, so the uint32 env seed is mapped to ``env_seed & 0x7FFFFFFF`` (its low 31 bits) and every
  EnvPool env runs exactly one episode: a pool is built per block of episodes from their seed list (~1.5 ms for
  64 envs) and only the active envs are stepped (``step(a, env_id=...)``); EnvPool's auto-reset is never used.
  EnvPool's generator is not Minigrid's: the same seed gives *other* layouts than Minigrid, so numbers are
  equal in distribution to Minigrid's (``tests/test_envpool_equivalence.py``), not episode by episode.
* **Poses.** ``record_states`` needs the agent's (x, y, direction): EnvPool reports them (``info["agent_pos"]``,
  ``obs["direction"]``), so no Minigrid fallback is needed.
* **Import.** envpool is a 741 MB compiled dependency (no wheel for Intel macOS), imported only when this
  backend steps an episode, so ``--help`` and weight-only claims stay light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.spec import ENV_ID, EnvSpec
from dt_circuits.evaluation.episodes import RolloutResult, choose_actions, episode_seeds, outcome_of, recorded_extra

INT32_MASK = 0x7FFFFFFF


def import_envpool() -> Any:
    """The envpool module with its Minigrid envs registered, or a one-line ConfigError naming the missing extra.

    ``import envpool`` runs ``envpool.entry``, which registers all 17 env families (Atari, MuJoCo, Jumanji's
    renderers, ...): ~1 s of every cold process (measured 0.94-1.11 s against 0.16-0.20 s on an Intel Xeon). Only
    Minigrid is needed, so unless envpool is already imported, ``envpool.entry`` is stood in for by an empty
    module and the Minigrid registration is imported alone; the lockstep tests against Minigrid
    (tests/test_envpool_equivalence.py) run through this import."""
    import sys
    import types

    try:
        if "envpool" not in sys.modules:
            sys.modules.setdefault("envpool.entry", types.ModuleType("envpool.entry"))
        import envpool
        import envpool.minigrid.registration  # noqa: F401  (the one family used: registers its env ids)
    except ImportError as exc:
        raise ConfigError(
            f"the envpool env backend needs envpool, which is not importable ({exc}): pip install envpool, "
            "or pass --env-backend minigrid"
        ) from None
    return envpool


def envpool_seed(env_seed: int) -> int:
    """The int32 EnvPool seed of an episode's uint32 env seed: its low 31 bits."""
    return int(env_seed) & INT32_MASK


def make_pool(env: EnvSpec, seeds: list[int]) -> Any:
    """A synchronous EnvPool of ``len(seeds)`` Dynamic Obstacles envs, env i seeded with ``seeds[i]``, one thread."""
    if env.env_id != ENV_ID:
        raise ConfigError(f"--env-backend envpool supports {ENV_ID} only, not {env.env_id} (use minigrid)")
    envpool = import_envpool()
    return envpool.make_gymnasium(
        env.env_id, num_envs=len(seeds), seed=list(seeds), num_threads=1, max_episode_steps=env.max_steps
    )


class _Block:
    """One pool whose env i plays the block's i-th episode, from its reset observation to its end."""

    def __init__(self, env: EnvSpec, first: int, seeds: list[int]) -> None:
        self.first = first
        self.pool = make_pool(env, seeds)
        obs, info = self.pool.reset()
        self.obs = obs["image"]
        self.pos = np.asarray(info["agent_pos"], np.int64)
        self.dir = np.asarray(obs["direction"], np.int64)
        self.left = len(seeds)


def envpool_rollout(
    model: DecisionTransformer,
    *,
    rtg: float,
    n_episodes: int,
    seed: int = 0,
    sample: bool = True,
    env: EnvSpec | None = None,
    n_envs: int = 64,
    episodes: range | None = None,
    on_episode: Callable[[int], None] | None = None,
    record_states: bool = False,
) -> RolloutResult:
    """:func:`.rollout.rollout` on EnvPool: same arguments, same result, same per-episode seeds and action
    streams; at most ``n_envs`` episodes in play at once (the model's batch)."""
    env = env or getattr(getattr(model, "checkpoint_info", None), "env", None) or EnvSpec()
    import_envpool()
    todo = list(episodes if episodes is not None else range(n_episodes))
    n_slots = max(1, min(n_envs, len(todo)))
    rewards = np.zeros(len(todo))
    lengths = np.zeros(len(todo), dtype=np.int64)
    outcomes = np.empty(len(todo), dtype=object)
    env_seeds, rngs = zip(*(episode_seeds(seed, e) for e in todo), strict=True) if todo else ((), ())
    blocks: dict[int, _Block] = {}

    # per-episode state of the episodes in play, in the order they started
    active: list[int] = []
    obs = np.zeros((len(todo), 7, 7, 3), np.uint8) if todo else np.zeros((0, 7, 7, 3), np.uint8)
    rtgs = np.zeros(len(todo), np.float32)
    t = np.zeros(len(todo), np.int64)
    poses = np.zeros((len(todo), 3), np.int64)
    next_ep = 0

    def start() -> None:
        nonlocal next_ep
        i, b = next_ep, next_ep // n_slots
        if b not in blocks:
            first = b * n_slots
            blocks[b] = _Block(env, first, [envpool_seed(s) for s in env_seeds[first : first + n_slots]])
        block, k = blocks[b], i - b * n_slots
        obs[i], rtgs[i], t[i] = block.obs[k], rtg, 0
        poses[i] = (*block.pos[k], block.dir[k])
        active.append(i)
        next_ep += 1

    while next_ep < len(todo) and len(active) < n_slots:
        start()
    recorded: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    recorded_poses: list[np.ndarray] = []
    recorded_episodes: list[np.ndarray] = []
    model.eval()
    while active:
        idx = np.array(active)
        if record_states:
            recorded.append((obs[idx].copy(), rtgs[idx].copy(), t[idx].copy()))
            recorded_poses.append(poses[idx].copy())
            recorded_episodes.append(np.array([todo[i] for i in idx], np.int64))
        with torch.no_grad():
            logits = model(obs[idx], rtgs[idx], t[idx])
        actions = choose_actions(logits, [rngs[i] for i in idx], sample)
        finished: list[int] = []
        for b in sorted({i // n_slots for i in idx}):
            mine = idx // n_slots == b
            block = blocks[b]
            o, r, terminated, truncated, info = block.pool.step(actions[mine], env_id=idx[mine] - block.first)
            order = np.asarray(info["env_id"], np.int64) + block.first
            t[order] += 1
            rtgs[order] -= r
            obs[order] = o["image"]
            poses[order, :2], poses[order, 2] = info["agent_pos"], o["direction"]
            ended = np.asarray(terminated) | np.asarray(truncated)
            for j in np.flatnonzero(ended):
                i = int(order[j])
                rewards[i], lengths[i], outcomes[i] = r[j], t[i], outcome_of(float(r[j]))
                finished.append(i)
            block.left -= int(ended.sum())
            if block.left == 0:
                del blocks[b]
        for i in finished:
            active.remove(i)
            if on_episode:
                on_episode(1)
            if next_ep < len(todo):
                start()
    return RolloutResult(
        extra=recorded_extra(recorded, recorded_poses, recorded_episodes) if record_states else {},
        rtg=float(rtg),
        rewards=rewards,
        lengths=lengths,
        outcomes=outcomes.astype(str),
        sample=sample,
        seed=seed,
        env_backend="envpool",
    )
