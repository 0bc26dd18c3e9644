"""Claims: falsifiable hypotheses as data — scenario, RTG, intervention, metric, threshold, controls, baseline.

A :class:`Claim` is a list of :class:`Check` s. Each check pairs a *measure* (what to compute over a state family,
a rollout batch or the weights, per example) with a *bound* (the threshold its whole interval must clear) and a
*kind*: ``baseline`` (the behaviour the mechanism explains, measured on the unablated model on the same states),
``effect`` (what the claim says), or ``control`` ("ablating the other head must not do this"). A claim holds iff
every check holds; when it does not, its ``reason`` says which kind broke first: no behaviour, no mechanism.

Every state-based check is measured on two samples (:mod:`dt_circuits.claims.samples`): the generated family and
the states the checkpoint's own rollouts visit, and needs both. Intervals are cluster-bootstrap intervals
(:func:`dt_circuits.analysis.stats.cluster_bootstrap`) at the suite's family-wise level
(:mod:`dt_circuits.claims.comparisons`). Ablation checks are measured under every recipe
(:mod:`dt_circuits.claims.recipes`); the verdict is the primary recipe's. Components are named through roles
(``obstacle_head``) bound per checkpoint, so the same claim file runs on any checkpoint.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from dt_circuits.analysis.attribution import logit_diff_metric, prob_metric, residual_direction
from dt_circuits.analysis.interventions import Inputs, run
from dt_circuits.analysis.patching import remove_front_obstacle
from dt_circuits.analysis.stats import cluster_bootstrap
from dt_circuits.claims import names
from dt_circuits.claims import recipes as recipe_lib
from dt_circuits.claims import samples as sample_lib
from dt_circuits.claims.comparisons import Comparisons, default_comparisons
from dt_circuits.claims.subject import Subject
from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import GridState, StateFamily, StateRenderer
from dt_circuits.env.spec import FRONT_VIEW_CELL, OBJECT

N_BOOTSTRAP = 20_000
CheckKind = Literal["baseline", "effect", "control"]
REASONS = ("holds", "baseline-absent", "path-unused", "undefined", "effect-too-small", "control-failed", "other")
#: how a check's reason starts when its number does not exist on the model (a ratio whose denominator is 0)
UNDEFINED = "undefined: "


class Undefined(ArithmeticError):
    """Raised by a weight reading whose number does not exist on this model, saying why ("W_rtg . forward-right
    is 0"): the check fails with that reason instead of printing an infinite or meaningless number."""


# -- per-example metrics ------------------------------------------------------------------------------------


def metric_values(subject: Subject, inputs: Inputs, metric: str, fwd_hooks: list | None = None) -> np.ndarray:
    """Per-example metric on ``inputs``.

    ``p_<action>`` an action probability; ``forward-right`` (any preference direction) a logit difference;
    ``attn_to_rtg:<role>`` the head's attention from the state token to the RTG token;
    ``state_embed:<direction>`` the state embedding's direct push along a preference direction.
    """
    model = subject.model
    if metric.startswith("attn_to_rtg"):
        head = subject.component(metric.split(":", 1)[1] if ":" in metric else "obstacle_head")
        name = f"blocks.{head.layer}.attn.hook_pattern"
        with torch.no_grad(), model.hooks(fwd_hooks=fwd_hooks or []):
            _, cache = model.run_with_cache(*inputs.args, names_filter=[name])
        return cache[name][:, head.head, 1, 0].double().numpy()  # state query -> RTG key
    if metric.startswith("state_embed:"):  # the state embedding's direct push along a direction
        with torch.no_grad(), model.hooks(fwd_hooks=fwd_hooks or []):
            _, cache = model.run_with_cache(*inputs.args, names_filter=["hook_state_embed"])
        direction = residual_direction(model, metric.split(":", 1)[1])
        return (cache["hook_state_embed"].double() @ direction).numpy()
    logits = run(model, inputs, fwd_hooks)
    fn = prob_metric(metric[2:]) if metric.startswith("p_") else logit_diff_metric(metric)
    return fn(logits).numpy()


def clean_metric(subject: Subject, sample: sample_lib.Sample, metric: str) -> np.ndarray:
    """The unablated metric on a sample (cached: baseline and every recipe of every check share it)."""
    key = ("clean", id(sample), metric)
    if key not in subject._cache:
        subject._cache[key] = (sample, metric_values(subject, sample.inputs, metric))
    return subject._cache[key][1]


# -- measures -----------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Weights:
    """A number read off the weights (embedding arithmetic, QK/OV circuits): exact, so its CI is the point."""

    fn: Callable[[Subject], float]
    describe: str
    unit: str = "logit"

    def sample_names(self) -> list[str]:
        return []

    def measure(self, subject: Subject) -> Measurement:
        try:
            return Measurement(np.array([float(self.fn(subject))]), self.unit, self.describe)
        except Undefined as why:
            return Measurement(np.array([math.nan]), self.unit, self.describe, undefined=str(why))


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
        )


# -- checks, claims, verdicts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A measure and the bound its whole interval must satisfy: ``at_least``, ``at_most``, or both.

    ``kind``: ``baseline`` (the behaviour explained, on the unablated model), ``effect`` (default) or ``control``
    (``control=True`` is the older spelling of ``kind="control"``).
    """

    name: str
    measure: Measure
    at_least: float | None = None
    at_most: float | None = None
    control: bool = False
    #: what each example is predicted to do: "bound" (meet the bound itself), "increase" (> 0), "decrease" (< 0)
    per_example: Literal["bound", "increase", "decrease"] = "bound"
    kind: CheckKind | None = None
    #: a path the reading describes, which must carry signal on the claim's states (``paths_measures.PathUse``);
    #: a check on an unused path fails with reason "path-unused" whatever its number
    requires_path: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.measure, Measure):
            raise ConfigError(
                f"check {self.name!r}: {type(self.measure).__name__} is not a measure (Behaviour, Ablation, "
                "FrontObstacleRemoved, Weights, Rollouts, or any object with measure() and sample_names())"
            )
        if self.at_least is None and self.at_most is None:
            raise ConfigError(f"check {self.name!r} has no threshold: a claim must be able to fail")
        kind = self.kind or ("control" if self.control else "effect")
        if kind not in ("baseline", "effect", "control"):
            raise ConfigError(f"check {self.name!r}: kind must be baseline, effect or control, got {kind!r}")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "control", kind == "control")

    def measure_samples(self) -> list[str]:
        """The samples this check is tested on (none for an exact weight reading)."""
        return list(self.measure.sample_names())

    def bound_text(self) -> str:
        parts = []
        if self.at_least is not None:
            parts.append(f"≥ {self.at_least:g}")
        if self.at_most is not None:
            parts.append(f"≤ {self.at_most:g}")
        return " and ".join(parts)

    def prediction_text(self) -> str:
        return {"increase": "> 0", "decrease": "< 0"}.get(self.per_example, self.bound_text())

    def clears(self, lo: float, hi: float) -> bool:
        if math.isnan(lo) or math.isnan(hi):
            return False
        return (self.at_least is None or lo >= self.at_least) and (self.at_most is None or hi <= self.at_most)

    def example_holds(self, value: float) -> bool:
        if self.per_example == "increase":
            return bool(value > 0)
        if self.per_example == "decrease":
            return bool(value < 0)
        lo_ok = self.at_least is None or value >= self.at_least
        hi_ok = self.at_most is None or value <= self.at_most
        return bool(lo_ok and hi_ok)


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


@dataclass
class CheckResult:
    name: str
    holds: bool
    effect: float
    ci_low: float
    ci_high: float
    n: int
    frac_as_predicted: float
    bound: str
    unit: str
    describe: str
    control: bool
    kind: str = "effect"
    sample: str = "generated"
    n_clusters: int = 0
    cluster_unit: str = ""
    #: the bootstrap p-value of "the bound is not cleared" (None for exact weight readings)
    p_value: float | None = None
    #: the check's adjusted level (family-wise alpha / family size), None when not tested (exact)
    alpha: float | None = None
    #: too few clusters to support a verdict (an on-policy sample the policy hardly visits)
    insufficient: bool = False
    primary_recipe: str | None = None
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    #: why it failed when not for its bound: "path-unused" (see ``Check.requires_path``), "undefined: <why>" (its
    #: number does not exist here, e.g. a ratio over 0); "" otherwise
    reason: str = ""

    @property
    def undefined(self) -> str:
        """Why this check has no number ("mean direct effect of L0H0 is 0"), or ""."""
        return self.reason.removeprefix(UNDEFINED) if self.reason.startswith(UNDEFINED) else ""

    def numbers(self, fmt: Callable[[float], str] | None = None) -> str:
        """``effect [ci_low, ci_high]``, or why there is none: "undefined (… is 0)", never an infinite interval."""
        fmt = fmt or _fmt
        if not self.undefined:
            return f"{fmt(self.effect)} [{fmt(self.ci_low)}, {fmt(self.ci_high)}]"
        if math.isnan(self.effect):
            return f"undefined ({self.undefined})"
        return f"{fmt(self.effect)} [interval undefined ({self.undefined})]"

    @property
    def recipe_dependent(self) -> bool:
        """The primary recipe clears the bound but another recipe does not."""
        return self.holds and any(not r["holds"] for r in self.recipes.values())

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "values"}
        for k in ("effect", "ci_low", "ci_high", "frac_as_predicted"):
            out[k] = _num(out[k])
        if not self.recipes:
            out.pop("recipes")
            out.pop("primary_recipe")
        out["recipe_dependent"] = self.recipe_dependent
        return out


@dataclass(frozen=True)
class Claim:
    """A falsifiable hypothesis: an id, what it says, where it comes from, and its checks (baseline and headline
    first)."""

    id: str
    statement: str
    source: str
    checks: tuple[Check, ...]
    #: what the claim is about: falsification tests pick their control by it (swapped heads, random init)
    kind: Literal["head", "mlp", "embedding", "behaviour", "path"] = "behaviour"
    #: the controls that show this claim can fail (names.FALSIFIERS); default: what its kind allows
    falsified_by: tuple[str, ...] | None = None
    #: the env family whose checkpoints the claim is about ("dynamic-obstacles", "memory"); on a checkpoint of
    #: another family it is not applicable: not collected by default, skipped when asked for
    env: str = "dynamic-obstacles"

    def __post_init__(self) -> None:
        if self.kind not in names.DEFAULT_FALSIFIERS:
            raise ConfigError(f"claim {self.id!r}: kind must be one of {', '.join(names.DEFAULT_FALSIFIERS)}")
        if not self.checks:
            raise ConfigError(f"claim {self.id!r} has no checks")
        chosen = self.falsified_by or names.DEFAULT_FALSIFIERS[self.kind]
        object.__setattr__(self, "falsified_by", names.check_falsifiers(tuple(chosen)))

    def evaluate(self, subject: Subject, *, search: bool = False) -> Verdict:
        comparisons = subject.comparisons or default_comparisons()
        results = [r for c in self.checks for r in evaluate_check(self.id, c, subject, comparisons)]
        verdict = Verdict(self.id, self.statement, all(r.holds for r in results), results, kind=self.kind)
        if search:
            verdict.counterexamples = [
                find_counterexample(self.id, c, subject) for c in self.checks if isinstance(c.measure, PerStateMeasure)
            ]
        return verdict


@dataclass
class Verdict:
    claim_id: str
    statement: str
    holds: bool
    checks: list[CheckResult] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)
    kind: str = "behaviour"

    @property
    def failing(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.holds]

    @property
    def failing_checks(self) -> list[str]:
        return [c.name for c in self.failing]

    @property
    def headline(self) -> CheckResult:
        """The first failing check if any (what broke), else the first effect check (the claimed effect)."""
        return next(
            (c for c in self.checks if not c.holds),
            next((c for c in self.checks if c.kind == "effect"), self.checks[0]),
        )

    @property
    def reason(self) -> str:
        """Why the claim fails, in order: no behaviour (a baseline check), a reading on a path the head does not
        use (``path-unused``), a number that does not exist here (``undefined``: a ratio over 0), too small an
        effect, a failed control;
        ``other`` when only under-sampled on-policy checks fail, or for a behavioural claim's own checks."""
        if self.holds:
            return "holds"
        real = [c for c in self.failing if not c.insufficient]
        kinds = {c.kind for c in real}
        if "baseline" in kinds:
            return "baseline-absent"
        if any(c.reason == "path-unused" for c in real):
            return "path-unused"
        if any(c.undefined for c in real):
            return "undefined"
        if "effect" in kinds and self.kind != "behaviour":
            return "effect-too-small"
        if "control" in kinds:
            return "control-failed"
        return "other"

    @property
    def recipe_dependent(self) -> bool:
        """An effect check clears its bound under the primary recipe but not under another."""
        return any(c.kind == "effect" and c.recipe_dependent for c in self.checks)

    @property
    def verdict(self) -> str:
        return "holds" if self.holds else "fails"

    def summary(self) -> str:
        h = self.headline
        more = f" (+{len(self.failing) - 1} more failing)" if len(self.failing) > 1 else ""
        return (
            f"{self.claim_id}: {self.verdict} [{self.reason}] — {h.name}: {h.numbers()} "
            f"(needs {h.bound}; n={h.n} in {h.n_clusters} clusters, "
            f"{h.frac_as_predicted:.0%} of examples as predicted){more} — {h.describe}"
        )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.3f}"


def _interval(
    check: Check, values: np.ndarray, clusters: np.ndarray, comparisons: Comparisons, seed: int
) -> dict[str, Any]:
    if values.shape[-1] == 0:
        nan = float("nan")
        return {"effect": nan, "ci_low": nan, "ci_high": nan, "holds": False, "p_value": 1.0}
    boot = cluster_bootstrap(values, clusters, n_resamples=N_BOOTSTRAP, seed=seed)
    lo, hi = boot.interval(comparisons.confidence)
    return {
        "effect": boot.effect,
        "ci_low": lo,
        "ci_high": hi,
        "holds": check.clears(lo, hi),
        "p_value": boot.p_value(check.at_least, check.at_most),
    }


def evaluate_check(
    claim_id: str, check: Check, subject: Subject, comparisons: Comparisons | None = None
) -> list[CheckResult]:
    """One result per sample the check is tested on (generated and on-policy; rollouts; or the exact weights)."""
    comparisons = comparisons or subject.comparisons or default_comparisons()
    results = _results(claim_id, check, subject, comparisons)
    unused = check.requires_path.unused(subject) if check.requires_path is not None else ""
    if unused:  # the reading describes a path that carries no signal on the claim's states
        for r in results:
            r.holds, r.reason, r.describe = False, "path-unused", f"{r.describe}; {unused}"
    return results


def _replicate_interval(check: Check, m: Measurement, comparisons: Comparisons) -> dict[str, Any]:
    """Interval and p-value of a statistic from its own bootstrap replicates (ratios, slopes, coefficients).

    Undefined in some resample (a ratio whose denominator is 0 there): no interval (NaN, not ±inf), and the
    check fails with reason "undefined: <why>", the measure's own words when it gives them."""
    draws = np.asarray(m.draws, dtype=float)
    estimate = math.nan if m.estimate is None else float(m.estimate)
    if np.isnan(draws).any() or math.isnan(estimate):
        why = m.undefined or (
            "no number on this sample"
            if math.isnan(estimate)
            else f"no number in {int(np.isnan(draws).sum())} of {len(draws)} bootstrap resamples"
        )
        nan, reason = math.nan, UNDEFINED + why
        return {"effect": estimate, "ci_low": nan, "ci_high": nan, "holds": False, "p_value": 1.0, "reason": reason}
    tail = (1 - comparisons.confidence) / 2
    lo, hi = (float(q) for q in np.quantile(draws, [tail, 1 - tail]))
    p = max(
        float(np.mean(draws < check.at_least)) if check.at_least is not None else 0.0,
        float(np.mean(draws > check.at_most)) if check.at_most is not None else 0.0,
    )
    return {"effect": float(m.estimate), "ci_low": lo, "ci_high": hi, "holds": check.clears(lo, hi), "p_value": p}


def _results(claim_id: str, check: Check, subject: Subject, comparisons: Comparisons) -> list[CheckResult]:
    seed = zlib.crc32(f"{claim_id}/{check.name}".encode())
    measure = check.measure
    common = dict(bound=check.bound_text(), control=check.control, kind=check.kind)
    if isinstance(measure, Weights):
        m = measure.measure(subject)
        v = float(m.values[0])
        return [
            CheckResult(check.name, check.clears(v, v), v, v, v, 1, float(check.example_holds(v)), unit=m.unit,
                        describe=m.describe, sample="weights", n_clusters=1, cluster_unit="exact reading",
                        values=m.values, reason=UNDEFINED + m.undefined if m.undefined else "", **common)
        ]  # fmt: skip
    if isinstance(measure, Rollouts):
        m = measure.measure(subject)
        stats = _interval(check, m.values, np.arange(len(m.values)), comparisons, seed)
        return [
            CheckResult(check.name, stats["holds"], stats["effect"], stats["ci_low"], stats["ci_high"], len(m.values),
                        float(np.mean([check.example_holds(x) for x in m.values])), unit=m.unit, describe=m.describe,
                        sample="rollouts", n_clusters=len(m.values), cluster_unit="episodes",
                        p_value=stats["p_value"], alpha=comparisons.check_alpha, values=m.values, **common)
        ]  # fmt: skip
    if not isinstance(measure, _OnStates):  # any other measure: per-example values, or its own replicates
        m = measure.measure(subject)
        if m.draws is not None:
            stats, unit_of_clusters = _replicate_interval(check, m, comparisons), "bootstrap replicates"
        else:
            stats = _interval(check, m.values, np.arange(len(m.values)), comparisons, seed)
            unit_of_clusters = "examples"
        frac = float(np.mean([check.example_holds(x) for x in m.values])) if len(m.values) else math.nan
        return [
            CheckResult(check.name, bool(stats["holds"]), stats["effect"], stats["ci_low"], stats["ci_high"],
                        len(m.values), frac, unit=m.unit, describe=m.describe, sample="generated",
                        n_clusters=len(m.values), cluster_unit=unit_of_clusters, p_value=stats["p_value"],
                        alpha=comparisons.check_alpha, values=np.asarray(m.values, dtype=float),
                        reason=stats.get("reason", ""), **common)
        ]  # fmt: skip
    results = []
    for sample in measure.on.samples(subject):
        by_recipe = measure.values(subject, sample)
        per = {r: _interval(check, v, sample.clusters, comparisons, seed) for r, v in by_recipe.items()}
        main = per[measure.primary]
        primary_values = by_recipe[measure.primary][0]
        insufficient = not sample.sufficient
        frac = float(np.mean([check.example_holds(x) for x in primary_values])) if len(primary_values) else math.nan
        describe = measure.text(subject, sample)
        if insufficient:
            describe += f" — too few {sample.cluster_unit} to support a verdict (< {sample_lib.MIN_CLUSTERS})"
        recipes = {
            r: {k: _num(s[k]) for k in ("effect", "ci_low", "ci_high")} | {"holds": s["holds"] and not insufficient}
            for r, s in per.items()
        } if isinstance(measure, Ablation) else {}  # fmt: skip
        for r in recipes:
            recipes[r]["describe"] = recipe_lib.DESCRIBE[r]
            if r == "mean-rtg-mix":
                recipes[r]["mixture"] = list(recipe_lib.RTG_MIX)
        results.append(
            CheckResult(
                check.name if sample.kind == "generated" else f"{check.name} [on-policy]",
                bool(main["holds"] and not insufficient),
                main["effect"],
                main["ci_low"],
                main["ci_high"],
                len(sample),
                frac,
                unit=measure.unit,
                describe=describe,
                sample=sample.kind,
                n_clusters=sample.n_clusters,
                cluster_unit=sample.cluster_unit,
                p_value=main["p_value"],
                alpha=comparisons.check_alpha,
                insufficient=insufficient,
                primary_recipe=measure.primary if recipes else None,
                recipes=recipes,
                values=np.asarray(primary_values, dtype=float),
                **common,
            )
        )
    return results


# -- counterexample search -------------------------------------------------------------------------------------


@dataclass
class Counterexample:
    """The simplest state found where a check's per-state prediction fails (None when none was found)."""

    check: str
    searched: int
    state: GridState | None = None
    rtg: float | None = None
    timestep: int | None = None
    value: float | None = None
    prediction: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "searched": self.searched, "prediction": self.prediction}
        out["found"] = False
        if self.state is not None:
            out.update(
                found=True,
                agent_pos=list(self.state.agent_pos),
                agent_dir=self.state.agent_dir,
                obstacles=[list(o) for o in self.state.obstacles],
                rtg=self.rtg,
                timestep=self.timestep,
                value=self.value,
            )
        return out

    def describe(self) -> str:
        if self.state is None:
            return f"{self.check}: no counterexample in {self.searched} searched states"
        s = self.state
        return (
            f"{self.check}: agent at {s.agent_pos} facing {s.agent_dir}, obstacles {list(s.obstacles)}, "
            f"RTG {self.rtg:.3f}, t={self.timestep}: value {self.value:+.4f}, predicted {self.prediction}"
        )


SEARCH_EXAMPLES = 150


@contextmanager
def source_constants_off() -> Iterator[None]:
    """Keep hypothesis from mixing constants found in the source of imported local modules into its draws.

    Since 6.131 hypothesis sometimes draws literals from every *local* module in ``sys.modules``. A derandomized
    search then depends on which modules the entry point imported (the CLI imports every command, pytest the
    conftests) and on edits to unrelated code, so ``dt-circuits claims`` and ``pytest claims/`` would report
    different counterexamples. Inside this block the search draws from its strategy and its seed only.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - older hypothesis: no source constants to turn off
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if original is None or cache is None or not hasattr(providers, "Constants"):
        yield
        return
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    cache.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.cache.clear()


def rtg_search_range(rtg: float) -> tuple[float, float]:
    """The RTGs a per-state prediction is searched over: the behaviour regime the claim's RTG belongs to."""
    if rtg >= 0.5:
        return (0.5, 1.0)
    if rtg <= -0.5:
        return (-1.0, -0.5)
    return (max(-1.0, rtg - 0.1), min(1.0, rtg + 0.1))


def find_counterexample(claim_id: str, check: Check, subject: Subject, max_examples: int = SEARCH_EXAMPLES):
    """Hypothesis search (derandomized) over states of the check's family, RTGs in its regime and timesteps,
    for a state where the per-example bound fails; hypothesis shrinks it to a minimal example."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st

    from dt_circuits.env.strategies import family_states

    measure = check.measure
    if not isinstance(measure, PerStateMeasure):
        raise ConfigError(f"check {check.name!r}: {type(measure).__name__} cannot be searched state by state")
    on = measure.on
    lo, hi = rtg_search_range(on.rtg)
    t_lo, t_hi = on.search_timesteps
    t_max = min(t_hi, subject.model.cfg.max_timestep)
    # the regime's end points and the claim's own RTG are tried explicitly (hypothesis reaches float bounds only
    # by chance), then any RTG in between
    rtgs = st.one_of(st.sampled_from(sorted({lo, hi, float(on.rtg)})), st.floats(lo, hi, allow_nan=False))
    strategy = st.tuples(family_states(on.family), rtgs, st.integers(t_lo, t_max))
    counted = [0]

    def violates(example: tuple[GridState, float, int]) -> bool:
        counted[0] += 1
        state, rtg, t = example
        return not check.example_holds(measure.per_state(subject, state, rtg, t))

    cfg = settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    try:
        with source_constants_off():
            state, rtg, t = find(strategy, violates, settings=cfg)
    except Exception as exc:  # hypothesis.errors.NoSuchExample: the prediction held everywhere searched
        if type(exc).__name__ != "NoSuchExample":
            raise
        return Counterexample(check.name, counted[0], prediction=check.prediction_text())
    value = measure.per_state(subject, state, rtg, t)
    return Counterexample(check.name, counted[0], state, float(rtg), int(t), float(value), check.prediction_text())


def forward_right_unembed(subject: Subject) -> torch.Tensor:
    """Residual direction of the post's forward − right preference (float64)."""
    return residual_direction(subject.model, "forward-right")


__all__ = [
    "Ablation",
    "Behaviour",
    "Check",
    "Claim",
    "FrontObstacleRemoved",
    "Measure",
    "Measurement",
    "OnFamily",
    "OwnSample",
    "PerStateMeasure",
    "Rollouts",
    "StateRenderer",
    "Undefined",
    "Verdict",
    "Weights",
    "evaluate_check",
    "forward_right_unembed",
    "front_cell_input_delta",
    "front_cell_ov",
    "metric_values",
]


# -- weight probes shared by claims ---------------------------------------------------------------------------


def front_cell_input_delta(subject: Subject, value: str) -> torch.Tensor:
    """Encoded-input change (float64, (n_obs_inputs,)) from an empty front cell to one holding ``value``.

    Built through the model's own encoder, so it is right for index and one-hot checkpoints alike.
    """
    from dt_circuits.analysis.embeddings import CELL_VALUES
    from dt_circuits.env.spec import FRONT_VIEW_CELL

    base = np.zeros((2, 7, 7, 3), dtype=np.uint8)
    base[..., 0] = CELL_VALUES["empty"][0]
    base[1, FRONT_VIEW_CELL[0], FRONT_VIEW_CELL[1]] = CELL_VALUES[value]
    enc = subject.model.encode_obs(torch.as_tensor(base)).to(torch.float64)
    return enc[1] - enc[0]


def front_cell_ov(subject: Subject, role: str, value: str, direction: str = "forward-right") -> float:
    """Through one head's OV circuit (attending fully to the state token): the push along ``direction`` of
    ``value`` in the front cell instead of an empty cell (Fig. 17 read at the front cell)."""
    from dt_circuits.analysis.attribution import direction_vector
    from dt_circuits.analysis.circuits import obs_ov

    head = subject.component(role)
    if not hasattr(head, "head"):
        raise ConfigError(f"role {role!r} is bound to {head}, not to an attention head")
    ov = obs_ov(subject.model, head.layer, head.head).AB.to(torch.float64)
    u = direction_vector(direction, subject.model.cfg.n_actions)
    return float(front_cell_input_delta(subject, value) @ ov @ u)
