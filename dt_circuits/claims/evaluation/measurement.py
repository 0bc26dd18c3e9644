"""What a measure is to the evaluation: the protocols it satisfies and the :class:`Measurement` it returns.

The evaluation tests a measure by its shape, never by its class, so a measure written in a user's claim file is
tested like the shipped ones: an exact reading (``Measurement.exact``), per-example values with their clusters,
a statistic with its own bootstrap replicates, or a :class:`StateMeasure` taken on the two samples of a state
family under one or more ablation recipes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from dt_circuits.claims.evaluation import samples as sample_lib
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.env.scenarios import GridState

if TYPE_CHECKING:
    from dt_circuits.claims.measures.family import OnFamily


@runtime_checkable
class Measure(Protocol):
    """What a check measures: per-example values on a subject, and the samples it is tested on."""

    def measure(self, subject: Subject) -> Measurement: ...

    def sample_names(self) -> list[str]: ...


class OwnSample:
    """A base for measures taken on one sample (a generated family, the weights, a batch of rollouts) with their
    own statistic: a check on one is tested once, and ``sample`` names that sample in the results."""

    sample = "generated"

    def sample_names(self) -> list[str]:
        return [self.sample]


@runtime_checkable
class PerStateMeasure(Measure, Protocol):
    """A measure taken state by state on a family (``on``), which the counterexample search can probe one state
    at a time with ``per_state``."""

    on: OnFamily

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float: ...


@runtime_checkable
class StateMeasure(Measure, Protocol):
    """A measure taken on both samples of a state family (generated and on-policy), with one value array per
    recipe: ``values`` maps each recipe to (variants, n) per-state values, ``""`` when there are no recipes;
    ``primary`` names the recipe the verdict is taken from."""

    on: OnFamily
    primary: str
    unit: str

    def values(self, subject: Subject, sample: sample_lib.Sample) -> dict[str, np.ndarray]: ...

    def text(self, subject: Subject, sample: sample_lib.Sample) -> str: ...


@dataclass(frozen=True)
class Measurement:
    """Per-example values of a measure (one value for a weight probe) and how they were obtained."""

    values: np.ndarray
    unit: str
    describe: str
    #: when the statistic is not a mean of ``values`` (a ratio, a slope): its estimate and bootstrap replicates,
    #: from which the check takes its interval at the run's family-wise level
    estimate: float | None = None
    draws: np.ndarray | None = None
    #: why the statistic has no number here, e.g. "mean direct effect of L0H0 is 0" (a ratio over 0); "" if it has
    undefined: str = ""
    #: an exact number with no sampling error (a weight reading): its interval is the point, it is no test
    exact: bool = False
    #: the sample the values come from, as the results name it, and what one cluster of the bootstrap is
    sample: str = "generated"
    cluster_unit: str = "examples"
