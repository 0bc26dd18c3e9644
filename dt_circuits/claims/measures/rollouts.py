"""Per-episode outcomes in the real env: what the agent achieves, not how."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from dt_circuits.claims.evaluation.measurement import Measurement
from dt_circuits.claims.evaluation.subject import Subject


@dataclass(frozen=True)
class Rollouts:
    """Per-episode outcome in the real env at an initial RTG (sampled actions, seeded).

    ``seed`` is the base seed; the subject moves it with its generation seed (``Subject.derived_seed``).
    """

    rtg: float
    value: Literal["reward", "goal", "collision", "timeout"] = "reward"
    episodes: int = 200
    seed: int = 0

    def sample_names(self) -> list[str]:
        return ["rollouts"]

    def measure(self, subject: Subject) -> Measurement:
        res = subject.rollouts(self.rtg, self.episodes, self.seed)
        vals = res.rewards if self.value == "reward" else (res.outcomes == self.value).astype(float)
        return Measurement(
            np.asarray(vals, dtype=float),
            self.value,
            f"{self.value} over {self.episodes} sampled episodes at RTG {self.rtg:g}",
            sample="rollouts",
            cluster_unit="episodes",
        )
