"""Small builders shared by tests: random models with non-trivial weights, and state batches."""

from __future__ import annotations

import numpy as np
import torch

from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.env.scenarios import random_states


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
