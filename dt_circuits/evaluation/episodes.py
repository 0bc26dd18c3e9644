"""What both rollout backends share: a batch's result, each episode's seeds, its outcome, and how an action is
chosen (so Minigrid and EnvPool rollouts are the same function of the same streams)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

OUTCOMES = ("goal", "collision", "timeout")


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

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as plain arrays (no object arrays: an ``.npz`` that loads without pickle)."""
        out = {
            "rtg": np.array(self.rtg), "rewards": np.asarray(self.rewards), "lengths": np.asarray(self.lengths),
            "outcomes": np.asarray(self.outcomes).astype(str), "sample": np.array(self.sample),
            "seed": np.array(self.seed), "env_backend": np.array(self.env_backend),
        }  # fmt: skip
        if self.extra:
            if set(self.extra) != {"states", "poses", "episodes"}:
                raise ValueError(f"cannot store rollout extras {sorted(self.extra)}")
            obs, rtgs, ts = self.extra["states"]
            out.update(states_obs=obs, states_rtg=rtgs, states_t=ts, poses=self.extra["poses"],
                       episodes=self.extra["episodes"])  # fmt: skip
        return out

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> RolloutResult:
        """The inverse of :meth:`to_arrays`."""
        extra = {}
        if "states_obs" in a:
            extra = {"states": (a["states_obs"], a["states_rtg"], a["states_t"]), "poses": a["poses"],
                     "episodes": a["episodes"]}  # fmt: skip
        return cls(
            rtg=float(a["rtg"]), rewards=a["rewards"], lengths=a["lengths"], outcomes=a["outcomes"],
            sample=bool(a["sample"]), seed=int(a["seed"]), extra=extra, env_backend=str(a["env_backend"]),
        )  # fmt: skip

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
