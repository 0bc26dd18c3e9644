"""Small builders shared by tests: random models with non-trivial weights, state batches, and a tiny trained
checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.env.scenarios import random_states
from dt_circuits.env.spec import EnvSpec

#: a tiny recipe: d_model 32, 40 steps, one thread (a retrain takes about a second)
TINY = dict(d_model=32, d_head=16, d_mlp=64, steps=40, log_every=10, eval_episodes=2, threads=1)


def random_model(seed: int = 0, scale: float = 5.0, **cfg) -> DecisionTransformer:
    """A seeded random DT with weights scaled up so attention and ReLUs do something non-trivial."""
    model = DecisionTransformer(DTConfig(**cfg))
    model.init_weights(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model.eval()


def batch(n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    fam = random_states(n, seed=seed)
    return fam.obs, rng.uniform(-1, 1, n).astype(np.float32), rng.integers(0, 300, n)


def tiny_checkpoint(root: Path, env: EnvSpec) -> Path:
    """A checkpoint trained with :data:`TINY` on 30 scripted episodes in ``env``, saved as ``root/ckpt``; its
    manifest points at the data file ``root/tiny.npz`` (absolute path), so it can be retrained."""
    from dt_circuits.training.config import TrainConfig
    from dt_circuits.training.train import save_run, train
    from dt_circuits.trajectories.dataset import collect_scripted
    from dt_circuits.trajectories.mix import DEFAULT_MIX

    data = collect_scripted(DEFAULT_MIX, n_episodes=30, seed=0, env=env, progress=False)
    data_file = data.save(root / "tiny.npz")
    result = train(TrainConfig(**TINY), data, progress=False)
    return save_run(result, root / "ckpt", name="tiny", data_path=data_file, data=data, command="test")
