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
from dt_circuits.claims.evaluation.metrics import clean_metric, metric_values, paired_metric
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import GridState


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
        return float(self.per_states(subject, [state], [rtg], [t])[0])

    def per_states(self, subject: Subject, states: Sequence[GridState], rtgs: Sequence[float], ts: Sequence[int]):
        """:meth:`per_state` for many states in one forward (the counterexample search scores its draws so)."""
        return metric_values(subject, _batch(subject, states, rtgs, ts), self.metric)


@dataclass(frozen=True)
class Ablation(_OnStates):
    """Change in a metric when components are ablated, per state, under every recipe.

    ``method`` is the primary recipe (its result is the verdict): ``mean`` (dataset mean at the claim's RTG,
    the default), ``mean-rtg-mix``, ``zero``, ``resample``, ``dti-dhead-mean`` or ``counterfactual`` (the
    component's output from the same state with the object in front removed: on families with an object in front).
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
        if self.method in recipe_lib.PAIRED_RECIPES and sample_lib.front_object(self.on.family) is None:
            raise ConfigError(
                f"the {self.method} recipe patches from the state with the object in front removed; "
                f"family {self.on.family!r} puts none there"
            )

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

    def _delta(
        self, subject: Subject, inputs: Inputs, clean: np.ndarray, recipe: str, paired: Inputs | None = None
    ) -> np.ndarray:
        comps = self.components(subject)
        hooks, k = recipe_lib.recipe_hooks(
            subject, comps, recipe, self.on.rtg, len(inputs), self._recipe_seed(recipe), paired=paired
        )
        ablated = metric_values(subject, inputs, self.metric, hooks)
        if len(ablated) != k * len(inputs):  # the metric is read upstream of the hooks: the same in every variant
            ablated = np.tile(ablated, k)
        return ablated.reshape(k, len(inputs)) - clean[None]

    def _recipe_seed(self, recipe: str) -> int:
        """The recipe's draws (resample donors) for these components: the same in the ablation and its reading."""
        return zlib.crc32(f"{self.ablate}/{recipe}".encode())

    def recipe_values(self, subject: Subject, sample: sample_lib.Sample, recipe: str) -> np.ndarray:
        """(variants, n) changes under one recipe on a sample; cached per subject, so a control repeated across
        claims, or a share and its ablation check, cost one pass. Keyed by the components the roles resolve to as
        well as the role names (the resample seed's): subjects rebound with other roles share the cache."""
        comps = tuple(self.components(subject))
        key = ("ablation", self.ablate, comps, self.metric, recipe, self.on.rtg, id(sample))
        if key not in subject._cache:
            clean = clean_metric(subject, sample, self.metric)
            paired = sample_lib.without_front_object(subject, sample)
            subject._cache[key] = (sample, self._delta(subject, sample.inputs, clean, recipe, paired))
        return subject._cache[key][1]

    def replacement_reading(self, subject: Subject, sample: sample_lib.Sample, recipe: str) -> float | None:
        """Where the recipe's replacement value sits between "no object" (0) and "the object" (1), read by the
        behaviour: on the sample's object-removed states, the change in the metric when the components carry the
        recipe's value, as a share of the object's own effect (mean(metric(removed, ablated) − metric(removed)) /
        mean(metric(with object) − metric(removed)); variant 0, the point estimate).

        Near 1, the replacement already reads as the object (a zeroed head that the rest of the model reads as
        "ball"): ablating to it cannot take the object's information away, so a failure under it says nothing
        about whether the components carry the object (:data:`~dt_circuits.claims.evaluation.recipes.READS_AS_OBJECT`).
        None on families with no object in front, or when the object does not move the metric."""
        paired = sample_lib.without_front_object(subject, sample)
        if paired is None:
            return None
        key = ("replacement-reading", self.ablate, tuple(self.components(subject)), self.metric, recipe,
               self.on.rtg, id(sample))  # fmt: skip
        if key not in subject._cache:
            removed = paired_metric(subject, sample, paired, self.metric)
            object_effect = float(np.mean(clean_metric(subject, sample, self.metric) - removed))
            reading = None
            if abs(object_effect) > 1e-9:
                hooks, _ = recipe_lib.recipe_hooks(
                    subject, self.components(subject), recipe, self.on.rtg, len(paired), self._recipe_seed(recipe),
                    point=True, paired=paired,
                )  # fmt: skip
                ablated = metric_values(subject, paired, self.metric, hooks)
                reading = float(np.mean(ablated - removed)) / object_effect
            subject._cache[key] = (sample, reading)
        return subject._cache[key][1]

    def recipes(self, sample: sample_lib.Sample) -> tuple[str, ...]:
        """The recipes this check is measured under on ``sample``: every recipe, the paired ones only where the
        family puts an object in front to remove."""
        paired = sample_lib.front_object(sample.family) is not None
        return tuple(r for r in recipe_lib.RECIPES if paired or r not in recipe_lib.PAIRED_RECIPES)

    def values(self, subject: Subject, sample: sample_lib.Sample) -> dict[str, np.ndarray]:
        recipes = (self.primary,) if subject.verdict_only else self.recipes(sample)
        if len(sample) == 0:
            return {r: np.zeros((1, 0)) for r in recipes}
        return {r: self.recipe_values(subject, sample, r) for r in recipes}

    def object_effect(self, subject: Subject, sample: sample_lib.Sample) -> np.ndarray | None:
        """Per state, the metric's change when the object in front is removed (the whole effect the
        counterfactual patch of a component can carry a share of); None when the family has no object in front."""
        paired = sample_lib.without_front_object(subject, sample)
        if paired is None:
            return None
        return paired_metric(subject, sample, paired, self.metric) - clean_metric(subject, sample, self.metric)

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float:
        """One state's change; dataset means stay those of the claim's RTG."""
        return float(self._changes(subject, [state], [rtg], [t])[0])

    def per_states(self, subject: Subject, states: Sequence[GridState], rtgs: Sequence[float], ts: Sequence[int]):
        """:meth:`per_state` for many states in one forward; None for ``resample`` (its donors depend on the batch,
        so a batch would not give each state's own value)."""
        return None if self.method == "resample" else self._changes(subject, states, rtgs, ts)

    def _changes(self, subject: Subject, states: Sequence[GridState], rtgs: Sequence[float], ts: Sequence[int]):
        """The primary recipe's change on each state (variant 0: the point estimate)."""
        inputs = _batch(subject, states, rtgs, ts)
        paired = None
        if self.method in recipe_lib.PAIRED_RECIPES:
            obs = np.stack([_without_front_object(subject, s, self.on.family) for s in states])
            paired = Inputs.make(obs, inputs.rtg, inputs.timestep)
        comps = self.components(subject)
        hooks = recipe_lib.recipe_hooks(
            subject, comps, self.method, self.on.rtg, len(states), point=True, paired=paired
        )[0]
        return metric_values(subject, inputs, self.metric, hooks) - metric_values(subject, inputs, self.metric)


@dataclass(frozen=True)
class Mediation(_OnStates):
    """The share of the object's effect that components carry: mean change in the metric when their output is
    patched from the same state with the object in front removed (the ``counterfactual`` recipe), over the mean
    change when the object itself is removed. 1 means they carry all of what the object does to the metric; 0,
    none of it. A ratio of two means over the same states, with a cluster-bootstrap interval (undefined where the
    object has no effect on the metric). The family must put an object in front."""

    on: OnFamily
    carried_by: str | tuple[str, ...]
    metric: str = "p_forward"

    def __post_init__(self) -> None:
        self._patch()  # validates the components, the metric and the family

    def _patch(self) -> Ablation:
        return Ablation(self.on, self.carried_by, self.metric, method="counterfactual")

    @property
    def unit(self) -> str:
        return f"share of Δ{self.metric}"

    def text(self, subject: Subject, sample: sample_lib.Sample) -> str:
        who = "+".join(subject.component_label(a) for a in np.atleast_1d(self.carried_by))
        what = sample_lib.front_object(self.on.family)
        return (
            f"share of the {what}'s effect on {self.metric} that {who} carries (counterfactual patch / removing the "
            f"{what}), {sample.describe()} at RTG {self.on.rtg:g}"
        )

    def values(self, subject: Subject, sample: sample_lib.Sample) -> dict[str, np.ndarray]:
        if len(sample) == 0:
            return {"": np.zeros((1, 0))}
        return {"": self._patch().recipe_values(subject, sample, "counterfactual")[:1]}

    def denominator(self, subject: Subject, sample: sample_lib.Sample) -> np.ndarray:
        if len(sample) == 0:
            return np.zeros(0)
        effect = self._patch().object_effect(subject, sample)
        assert effect is not None  # the family has an object in front (checked at construction)
        return effect


def _without_front_object(subject: Subject, state: GridState, family: str) -> np.ndarray:
    """One state's counterfactual observation: a ball removed through the env, another object's cell emptied."""
    if sample_lib.front_object(family) == "ball":
        return subject.renderer.render(remove_front_obstacle(state))
    return sample_lib.front_cleared(torch.as_tensor(subject.renderer.render(state)[None]))[0].numpy()


@dataclass(frozen=True)
class FrontObstacleRemoved(_OnStates):
    """Paired edit: metric with the object in front minus the same state with that object removed
    (:func:`~dt_circuits.claims.evaluation.samples.without_front_object`: a ball re-rendered away through the env
    for generated states, the front cell emptied otherwise). The family must put an object in front."""

    on: OnFamily
    metric: str = "attn_to_rtg"

    def __post_init__(self) -> None:
        names.check_metric(self.metric)
        if sample_lib.front_object(self.on.family) is None:
            raise ConfigError(f"FrontObstacleRemoved: family {self.on.family!r} puts no object in front to remove")

    @property
    def unit(self) -> str:
        return f"Δ{self.metric}"

    def text(self, subject: Subject, sample: sample_lib.Sample) -> str:
        what = sample_lib.front_object(self.on.family)
        return f"{self.metric} with the {what} in front minus without it, {sample.describe()} at RTG {self.on.rtg:g}"

    def values(self, subject: Subject, sample: sample_lib.Sample) -> dict[str, np.ndarray]:
        if len(sample) == 0:
            return {"": np.zeros((1, 0))}
        paired = sample_lib.without_front_object(subject, sample)
        delta = clean_metric(subject, sample, self.metric) - paired_metric(subject, sample, paired, self.metric)
        return {"": delta[None]}

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float:
        return float(self.per_states(subject, [state], [rtg], [t])[0])

    def per_states(self, subject: Subject, states: Sequence[GridState], rtgs: Sequence[float], ts: Sequence[int]):
        inputs = _batch(subject, states, rtgs, ts)
        edited = np.stack([_without_front_object(subject, s, self.on.family) for s in states])
        edited_inputs = Inputs.make(edited, inputs.rtg, inputs.timestep)
        return metric_values(subject, inputs, self.metric) - metric_values(subject, edited_inputs, self.metric)


def _batch(subject: Subject, states: Sequence[GridState], rtgs: Sequence[float], ts: Sequence[int]) -> Inputs:
    return Inputs.make(subject.renderer.render_many(states), np.asarray(rtgs, np.float64), np.asarray(ts, np.int64))
