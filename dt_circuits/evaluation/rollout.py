"""Evaluate a model in the real environment: many seeded episodes, model calls batched across envs.

The RTG starts at the target and drops by each reward received; the timestep is the step count (DTI's
evaluation). Each episode owns its env seed and its action-sampling stream, derived from (seed, episode index),
so results do not depend on how episodes are batched or split across workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from dt_circuits.core.backends import DEFAULT_ENV_BACKEND, ENV_BACKENDS, check_env_backend
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.spec import EnvSpec

OUTCOMES = ("goal", "collision", "timeout")
__all__ = ["DEFAULT_ENV_BACKEND", "ENV_BACKENDS", "OUTCOMES", "RolloutResult", "check_env_backend", "rollout"]


@dataclass
class RolloutResult:
    """Per-episode outcomes for one initial RTG."""

    rtg: float
    rewards: np.ndarray
    lengths: np.ndarray
    outcomes: np.ndarray  # str: goal / collision / timeout
    sample: bool
    seed: int
    extra: dict = field(default_factory=dict)
    #: who stepped the episodes ("envpool" or "minigrid"): same distribution, other episodes for the same seed, so
    #: a recorded number says which it is and a re-measurement uses the same
    env_backend: str = "minigrid"

    @property
    def n(self) -> int:
        return len(self.rewards)

    def rate(self, outcome: str) -> float:
        return float(np.mean(self.outcomes == outcome)) if self.n else float("nan")

    @property
    def mean_reward(self) -> float:
        return float(np.mean(self.rewards)) if self.n else float("nan")

    def summary(self) -> dict:
        return {
            "rtg": self.rtg,
            "episodes": self.n,
            "sample": self.sample,
            "seed": self.seed,
            "env_backend": self.env_backend,
            "mean_reward": self.mean_reward,
            "mean_length": float(np.mean(self.lengths)) if self.n else float("nan"),
            **{f"{o}_rate": self.rate(o) for o in OUTCOMES},
        }


def recorded_extra(
    states: list[tuple[np.ndarray, np.ndarray, np.ndarray]], poses: list[np.ndarray], episodes: list[np.ndarray]
) -> dict:
    """``extra`` of a ``record_states`` rollout (either backend): the queried (obs, rtg, timestep), each state's
    pose (x, y, direction) and its episode's index, concatenated over the rollout's steps."""
    return {
        "states": tuple(np.concatenate(parts) for parts in zip(*states, strict=True)),
        "poses": np.concatenate(poses) if poses else np.zeros((0, 3), np.int64),
        "episodes": np.concatenate(episodes) if episodes else np.zeros(0, np.int64),
    }


def episode_seeds(seed: int, episode: int) -> tuple[int, np.random.Generator]:
    """(env reset seed, action-sampling generator) for one episode, independent of batching."""
    ss = np.random.SeedSequence([seed, episode])
    env_seed = int(ss.generate_state(1)[0])
    return env_seed, np.random.default_rng(ss.spawn(1)[0])


def outcome_of(reward: float) -> str:
    """An ended episode's outcome from its last reward (so Minigrid's and EnvPool's terminated/truncated flags on
    an episode ending on its last allowed step, which differ, do not matter)."""
    return "goal" if reward > 0 else "collision" if reward < 0 else "timeout"


def choose_actions(logits: torch.Tensor, rngs: list[np.random.Generator], sample: bool) -> np.ndarray:
    """Argmax, or one draw per episode from its own stream (inverse CDF in float64), so a draw does not depend on
    which other episodes share the batch."""
    if not sample:
        return logits.argmax(dim=-1).numpy()
    probs = torch.softmax(logits.double(), dim=-1).numpy()
    cdf = np.cumsum(probs, axis=-1)
    u = np.array([rng.random() for rng in rngs])
    return np.minimum((u[:, None] > cdf).sum(axis=-1), probs.shape[-1] - 1)


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
