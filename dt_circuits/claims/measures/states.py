"""Measures taken state by state on a family: the behaviour, its change under ablation (every recipe), and the
change when the object in front is removed."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.analysis.interventions import Inputs
from dt_circuits.analysis.patching import remove_front_obstacle
from dt_circuits.claims.evaluation import names
from dt_circuits.claims.evaluation import recipes as recipe_lib
from dt_circuits.claims.evaluation import samples as sample_lib
from dt_circuits.claims.evaluation.measurement import Measurement
from dt_circuits.claims.evaluation.metrics import clean_metric, metric_values
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.env.scenarios import GridState
from dt_circuits.env.spec import FRONT_VIEW_CELL, OBJECT


class _OnStates:
    """Shared by the measures taken on states: two samples, one value array per recipe."""

    on: OnFamily
    metric: str

    primary = ""

    def sample_names(self) -> list[str]:
        return ["generated", "on-policy"]

    def values(self, subject: Subject, sample: sample_lib.Sample) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def measure(self, subject: Subject) -> Measurement:
        """The primary values on the generated family (what the counterexample search and role scans use)."""
        sample = self.on.generated(subject)
        return Measurement(self.values(subject, sample)[self.primary][0], self.unit, self.text(subject, sample))


@dataclass(frozen=True)
class Behaviour(_OnStates):
    """The model's metric (e.g. P(forward)) on every state of a family at an RTG: what the agent does."""

    on: OnFamily
    metric: str = "p_forward"

    def __post_init__(self) -> None:
        names.check_metric(self.metric)

    @property
    def unit(self) -> str:
        return self.metric

    def text(self, subject: Subject, sample: sample_lib.Sample) -> str:
        return f"{self.metric} on {sample.describe()} at RTG {self.on.rtg:g}"

    def values(self, subject: Subject, sample: sample_lib.Sample) -> dict[str, np.ndarray]:
        return {"": clean_metric(subject, sample, self.metric)[None]}

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float:
        inputs = Inputs.make(subject.renderer.render(state)[None], rtg, t)
        return float(metric_values(subject, inputs, self.metric)[0])


@dataclass(frozen=True)
class Ablation(_OnStates):
    """Change in a metric when components are ablated, per state, under every recipe.

    ``method`` is the primary recipe (its result is the verdict): ``mean`` (dataset mean at the claim's RTG,
    the default), ``mean-rtg-mix``, ``zero``, ``resample`` or ``dti-dhead-mean``.
    """

    on: OnFamily
    ablate: str | tuple[str, ...]
    metric: str = "p_forward"
    method: str = "mean"

    def __post_init__(self) -> None:
        recipe_lib.check_recipe(self.method)
        names.check_metric(self.metric)
        for spec in (self.ablate,) if isinstance(self.ablate, str) else self.ablate:
            names.check_component(spec)

    @property
    def primary(self) -> str:  # type: ignore[override]
        return self.method

    @property
    def unit(self) -> str:
        return f"Δ{self.metric}"

    def components(self, subject: Subject) -> list:
        return [subject.component(a) for a in ((self.ablate,) if isinstance(self.ablate, str) else self.ablate)]

    def text(self, subject: Subject, sample: sample_lib.Sample) -> str:
        bound = "+".join(subject.component_label(a) for a in np.atleast_1d(self.ablate))
        return f"Δ{self.metric} when ablating {bound} on {sample.describe()} at RTG {self.on.rtg:g}"

    def _delta(self, subject: Subject, inputs: Inputs, clean: np.ndarray, recipe: str) -> np.ndarray:
        comps = self.components(subject)
        seed = zlib.crc32(f"{self.ablate}/{recipe}".encode())
        hooks, k = recipe_lib.recipe_hooks(subject, comps, recipe, self.on.rtg, len(inputs), seed)
        ablated = metric_values(subject, recipe_lib.tiled(inputs, k), self.metric, hooks)
        return ablated.reshape(k, len(inputs)) - clean[None]

    def values(self, subject: Subject, sample: sample_lib.Sample) -> dict[str, np.ndarray]:
        if len(sample) == 0:
            return {r: np.zeros((1, 0)) for r in recipe_lib.RECIPES}
        clean = clean_metric(subject, sample, self.metric)
        return {r: self._delta(subject, sample.inputs, clean, r) for r in recipe_lib.RECIPES}

    def hooks(self, subject: Subject, rtg: float) -> list:
        """The primary recipe's hooks for a single state (variant 0: the point estimate)."""
        return recipe_lib.recipe_hooks(subject, self.components(subject), self.method, rtg, 1, point=True)[0]

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float:
        """One state's change; dataset means stay those of the claim's RTG."""
        inputs = Inputs.make(subject.renderer.render(state)[None], rtg, t)
        clean = metric_values(subject, inputs, self.metric)
        hooks = self.hooks(subject, self.on.rtg)
        return float(metric_values(subject, inputs, self.metric, hooks)[0] - clean[0])


def _front_cleared(obs: torch.Tensor) -> torch.Tensor:
    """The observations with the front cell made empty, as the env renders an empty cell."""
    out = obs.clone()
    out[:, FRONT_VIEW_CELL[0], FRONT_VIEW_CELL[1]] = torch.tensor([OBJECT["empty"], 0, 0], dtype=out.dtype)
    return out


@dataclass(frozen=True)
class FrontObstacleRemoved(_OnStates):
    """Paired edit: metric with the ball in front minus the same state with that ball removed (re-rendered
    through the env for generated states; the front cell emptied in the observation for on-policy states)."""

    on: OnFamily
    metric: str = "attn_to_rtg"

    def __post_init__(self) -> None:
        names.check_metric(self.metric)

    @property
    def unit(self) -> str:
        return f"Δ{self.metric}"

    def text(self, subject: Subject, sample: sample_lib.Sample) -> str:
        return f"{self.metric} with the ball in front minus without it, {sample.describe()} at RTG {self.on.rtg:g}"

    def _delta(self, subject: Subject, states: Sequence[GridState] | None, inputs: Inputs) -> np.ndarray:
        if states is not None:
            cleared = torch.as_tensor(subject.renderer.render_many([remove_front_obstacle(s) for s in states]))
        else:
            cleared = _front_cleared(inputs.obs)
        edited = Inputs.make(cleared, inputs.rtg, inputs.timestep)
        return metric_values(subject, inputs, self.metric) - metric_values(subject, edited, self.metric)

    def values(self, subject: Subject, sample: sample_lib.Sample) -> dict[str, np.ndarray]:
        if len(sample) == 0:
            return {"": np.zeros((1, 0))}
        return {"": self._delta(subject, sample.states, sample.inputs)[None]}

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float:
        inputs = Inputs.make(subject.renderer.render(state)[None], rtg, t)
        return float(self._delta(subject, [state], inputs)[0])
