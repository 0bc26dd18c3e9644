"""The states a state measure is taken on: a family at an RTG, generated and on the checkpoint's own rollouts."""

from __future__ import annotations

from dataclasses import dataclass

from dt_circuits.analysis.interventions import Inputs
from dt_circuits.claims.evaluation import names
from dt_circuits.claims.evaluation import samples as sample_lib
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.env.scenarios import StateFamily


@dataclass(frozen=True)
class OnFamily:
    """The states a measure is taken on: a named family at one RTG, and the checkpoint's own rollouts at that RTG.

    ``timesteps`` None (default) draws the generated family's timesteps from those at which the rollouts meet the
    family's object in front; a (lo, hi) range draws them uniformly instead. ``episodes`` / ``seed``: the sampled
    rollouts the on-policy sample (and the matched timesteps) come from.
    """

    family: str
    rtg: float
    timesteps: tuple[int, int] | None = None
    episodes: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        names.check_family(self.family)

    def generated(self, subject: Subject) -> sample_lib.Sample:
        return sample_lib.generated(subject, self.family, self.rtg, self.episodes, self.seed, self.timesteps)

    def on_policy(self, subject: Subject) -> sample_lib.Sample:
        return sample_lib.on_policy(subject, self.family, self.rtg, self.episodes, self.seed)

    def samples(self, subject: Subject) -> list[sample_lib.Sample]:
        return [self.generated(subject), self.on_policy(subject)]

    def inputs(self, subject: Subject) -> tuple[StateFamily, Inputs]:
        """The generated family's states and inputs at this RTG (layouts and timesteps follow the generation
        seed)."""
        s = self.generated(subject)
        return StateFamily(self.family, s.describe(), s.states or (), s.inputs.obs.numpy()), s.inputs

    @property
    def search_timesteps(self) -> tuple[int, int]:
        return self.timesteps or (0, 60)
