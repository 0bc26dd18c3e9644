"""Evaluate a model in the real environment: many seeded episodes, model calls batched across envs.

The RTG starts at the target and drops by each reward received; the timestep is the step count (DTI's
evaluation). Each episode owns its env seed and its action-sampling stream, derived from (seed, episode index),
so results do not depend on how episodes are batched or split across workers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from dt_circuits.core.backends import DEFAULT_ENV_BACKEND, ENV_BACKENDS, check_env_backend
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.spec import EnvSpec
from dt_circuits.evaluation.episodes import (
    OUTCOMES,
    RolloutResult,
    choose_actions,
    episode_seeds,
    outcome_of,
    recorded_extra,
)

__all__ = ["DEFAULT_ENV_BACKEND", "ENV_BACKENDS", "OUTCOMES", "RolloutResult", "check_env_backend", "rollout"]


def rollout(
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
    env_backend: str = DEFAULT_ENV_BACKEND,
) -> RolloutResult:
    """Run ``n_episodes`` (or the slice ``episodes`` of them) at initial ``rtg``; argmax or sampled actions.

    ``record_states`` keeps every (obs, rtg, timestep) the model was queried on in ``extra["states"]``, and for
    each of them the agent's pose in ``extra["poses"]`` ((n, 3): x, y, direction) and the episode's index in
    ``extra["episodes"]`` (on-policy state families and their clusters are built from these).
    ``env_backend="envpool"`` steps the episodes in EnvPool (:mod:`.envpool_rollout`) instead of Minigrid.
    """
    if check_env_backend(env_backend) == "envpool":
        from dt_circuits.evaluation.envpool_rollout import envpool_rollout

        return envpool_rollout(
            model, rtg=rtg, n_episodes=n_episodes, seed=seed, sample=sample, env=env, n_envs=n_envs,
            episodes=episodes, on_episode=on_episode, record_states=record_states,
        )  # fmt: skip
    env = env or getattr(getattr(model, "checkpoint_info", None), "env", None) or EnvSpec()
    todo = list(episodes if episodes is not None else range(n_episodes))
    n_slots = max(1, min(n_envs, len(todo)))
    envs = [env.make() for _ in range(n_slots)]
    rewards = np.zeros(len(todo))
    lengths = np.zeros(len(todo), dtype=np.int64)
    outcomes = np.empty(len(todo), dtype=object)

    slot_ep: list[int | None] = [None] * n_slots  # index into todo
    slot_obs = np.zeros((n_slots, 7, 7, 3), dtype=np.uint8)
    slot_rtg = np.zeros(n_slots, dtype=np.float32)
    slot_t = np.zeros(n_slots, dtype=np.int64)
    slot_rng: list[np.random.Generator | None] = [None] * n_slots
    next_ep = 0

    def start(slot: int) -> None:
        nonlocal next_ep
        if next_ep >= len(todo):
            slot_ep[slot] = None
            return
        env_seed, rng = episode_seeds(seed, todo[next_ep])
        obs, _ = envs[slot].reset(seed=env_seed)
        slot_ep[slot], slot_rng[slot] = next_ep, rng
        slot_obs[slot], slot_rtg[slot], slot_t[slot] = obs["image"], rtg, 0
        next_ep += 1

    for s in range(n_slots):
        start(s)
    recorded: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    recorded_poses: list[np.ndarray] = []
    recorded_episodes: list[np.ndarray] = []
    model.eval()
    while True:
        active = [s for s in range(n_slots) if slot_ep[s] is not None]
        if not active:
            break
        if record_states:
            recorded.append((slot_obs[active].copy(), slot_rtg[active].copy(), slot_t[active].copy()))
            recorded_poses.append(
                np.array([(*envs[s].unwrapped.agent_pos, envs[s].unwrapped.agent_dir) for s in active], np.int64)
            )
            recorded_episodes.append(np.array([todo[slot_ep[s]] for s in active], np.int64))
        with torch.no_grad():
            logits = model(slot_obs[active], slot_rtg[active], slot_t[active])
        actions = choose_actions(logits, [slot_rng[s] for s in active], sample)
        for s, a in zip(active, actions, strict=True):
            obs, reward, terminated, truncated, _ = envs[s].step(int(a))
            slot_t[s] += 1
            slot_rtg[s] -= reward
            slot_obs[s] = obs["image"]
            if terminated or truncated:
                i = slot_ep[s]
                rewards[i], lengths[i] = reward, slot_t[s]
                outcomes[i] = outcome_of(reward)
                if on_episode:
                    on_episode(1)
                start(s)
    return RolloutResult(
        extra=recorded_extra(recorded, recorded_poses, recorded_episodes) if record_states else {},
        rtg=float(rtg),
        rewards=rewards,
        lengths=lengths,
        outcomes=outcomes.astype(str),
        sample=sample,
        seed=seed,
        env_backend="minigrid",
    )
