"""PPO as a trajectory source, as in the post: keep every episode played while PPO learns (random -> competent).

The learner is Stable-Baselines3's PPO with its default hyperparameters and ``MlpPolicy`` on the flattened
7x7x3 view (``ImgObsWrapper`` + ``FlattenObservation``), over ``n_envs`` synchronous envs. An
:class:`~dt_circuits.trajectories.dataset.EpisodeRecorder` under those wrappers keeps the raw views, actions and
terminal rewards. PPO on this env is seed-sensitive (some seeds never leave "turn in place"), so the learning
curve is returned with the data and the caller decides with evidence.

Stable-Baselines3 is imported lazily: only ``dt-circuits collect --source ppo`` needs it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.env.spec import EnvSpec
from dt_circuits.trajectories.dataset import Episode, EpisodeRecorder, TrajectoryDataset, outcome_of


@dataclass(frozen=True)
class PPOConfig:
    """One PPO run; SB3's defaults for everything not named here."""

    total_timesteps: int = 250_000
    n_envs: int = 8
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if self.total_timesteps < 1 or self.n_envs < 1 or self.threads < 1:
            raise ConfigError("total_timesteps, n_envs and threads must be positive")


def learning_curve(episodes: list[Episode], window: int = 500) -> list[dict[str, Any]]:
    """Outcome rates over consecutive windows of finished episodes (the evidence that PPO learned)."""
    rows = []
    for a in range(0, len(episodes), window):
        chunk = episodes[a : a + window]
        rewards = np.array([e.reward for e in chunk])
        outcomes = outcome_of(rewards)
        rows.append(
            {
                "episodes": [a, a + len(chunk)],
                "env_steps_end": int(sum(len(e.actions) for e in episodes[: a + len(chunk)])),
                **{f"{o}_rate": round(float(np.mean(outcomes == o)), 4) for o in ("goal", "collision", "timeout")},
                "mean_length": round(float(np.mean([len(e.actions) for e in chunk])), 1),
            }
        )
    return rows


def collect_ppo(
    cfg: PPOConfig, env: EnvSpec, *, progress: bool = True, on_log: Callable[[str], None] | None = None
) -> TrajectoryDataset:
    """Train PPO for ``cfg.total_timesteps`` env steps and return every episode it finished on the way."""
    try:
        import gymnasium as gym
        from minigrid.wrappers import ImgObsWrapper
        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(f"PPO collection needs stable-baselines3 (pip install stable-baselines3): {exc}") from None

    torch.set_num_threads(cfg.threads)
    sink: list[Episode] = []

    def make(i: int) -> Callable[[], gym.Env]:
        def thunk() -> gym.Env:
            inner = EpisodeRecorder(env.make(), sink, f"ppo-seed{cfg.seed}")
            return gym.wrappers.FlattenObservation(ImgObsWrapper(inner))

        return thunk

    from stable_baselines3.common.callbacks import BaseCallback

    from dt_circuits.core.progress import progress as progress_reporter

    class Progress(BaseCallback):
        """tqdm over env steps with the running goal rate (SB3's own bar needs the optional 'rich')."""

        def _on_training_start(self) -> None:
            self.bar = progress_reporter(cfg.total_timesteps, f"ppo seed {cfg.seed}", "step", enabled=progress)
            self.done = 0

        def _on_step(self) -> bool:
            now = min(self.num_timesteps, cfg.total_timesteps)
            self.bar.update(now - self.done)
            self.done = now
            if sink and self.n_calls % 256 == 0:
                recent = [e.reward > 0 for e in sink[-200:]]
                self.bar.set_postfix(episodes=len(sink), goal=f"{np.mean(recent):.0%}")
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    venv = DummyVecEnv([make(i) for i in range(cfg.n_envs)])
    model = PPO("MlpPolicy", venv, seed=cfg.seed, device="cpu", verbose=0)
    t0 = time.time()
    model.learn(total_timesteps=cfg.total_timesteps, callback=Progress())
    wall = time.time() - t0
    venv.close()
    curve = learning_curve(sink)
    if on_log:
        for row in curve:
            on_log(json.dumps(row))
    return TrajectoryDataset.from_episodes(
        sink,
        env,
        meta={
            "source": "ppo",
            "ppo": {
                **asdict(cfg),
                "library": "stable-baselines3",
                "policy": "MlpPolicy",
                "hyperparameters": "defaults",
            },
            "learning_curve": curve,
            "wall_seconds": round(wall, 1),
        },
    )
