"""Claims: falsifiable hypotheses as data — scenario, RTG, intervention, metric, threshold, controls.

A :class:`Claim` is a list of :class:`Check` s. Each check pairs a *measure* (what to compute over a state family,
a rollout batch or the weights, per example) with a *bound* (the threshold the whole bootstrap 95 % CI must
clear). The first check is the claim's headline effect; the others are controls ("ablating the other head must
not do this") or further conditions. A claim holds iff every check holds. Components are named through roles
(``obstacle_head``) bound per checkpoint, so the same claim file runs on any checkpoint.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from dt_circuits.analysis.attribution import logit_diff_metric, prob_metric, residual_direction
from dt_circuits.analysis.interventions import Inputs, ablation_hooks, run
from dt_circuits.analysis.patching import remove_front_obstacle
from dt_circuits.analysis.stats import bootstrap_ci
from dt_circuits.claims.subject import Subject
from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import GridState, StateFamily, StateRenderer

N_BOOTSTRAP = 2000


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


# -- measures -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """Per-example values of a measure (one value for a weight probe) and how they were obtained."""

    values: np.ndarray
    unit: str
    describe: str


@dataclass(frozen=True)
class OnFamily:
    """The states a measure is taken on: a named family, at one RTG, with seeded timesteps."""

    family: str
    rtg: float
    timesteps: tuple[int, int] = (0, 60)

    def inputs(self, subject: Subject) -> tuple[StateFamily, Inputs]:
        """The family's states at this RTG; layouts and timesteps follow the subject's generation seed."""
        fam = subject.family(self.family)
        rng = np.random.default_rng(subject.seed_key(zlib.crc32(self.family.encode()), 5))
        lo, hi = self.timesteps
        t = rng.integers(lo, min(hi, subject.model.cfg.max_timestep) + 1, len(fam))
        return fam, Inputs.make(fam.obs, np.full(len(fam), self.rtg, np.float32), t)


@dataclass(frozen=True)
class Behaviour:
    """The model's metric (e.g. P(forward)) on every state of a family at an RTG: what the agent does."""

    on: OnFamily
    metric: str = "p_forward"

    def measure(self, subject: Subject) -> Measurement:
        fam, inputs = self.on.inputs(subject)
        return Measurement(
            metric_values(subject, inputs, self.metric),
            self.metric,
            f"{self.metric} on {fam.name} ({len(fam)} states) at RTG {self.on.rtg:g}",
        )

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float:
        inputs = Inputs.make(subject.renderer.render(state)[None], rtg, t)
        return float(metric_values(subject, inputs, self.metric)[0])


@dataclass(frozen=True)
class Ablation:
    """Change in a metric when components are ablated (dataset mean by default), per state of a family."""

    on: OnFamily
    ablate: str | tuple[str, ...]
    metric: str = "p_forward"
    method: str = "mean"

    def hooks(self, subject: Subject, rtg: float) -> list:
        comps = [subject.component(a) for a in ((self.ablate,) if isinstance(self.ablate, str) else self.ablate)]
        means = subject.ablation_means(comps, rtg) if self.method == "mean" else None
        return ablation_hooks(subject.model, comps, self.method, means=means)

    def _delta(self, subject: Subject, inputs: Inputs, rtg: float) -> np.ndarray:
        clean = metric_values(subject, inputs, self.metric)
        return metric_values(subject, inputs, self.metric, self.hooks(subject, rtg)) - clean

    def measure(self, subject: Subject) -> Measurement:
        fam, inputs = self.on.inputs(subject)
        bound = "+".join(subject.component_label(a) for a in np.atleast_1d(self.ablate))
        return Measurement(
            self._delta(subject, inputs, self.on.rtg),
            f"Δ{self.metric}",
            f"Δ{self.metric} when {self.method}-ablating {bound} on {fam.name} ({len(fam)}) at RTG {self.on.rtg:g}",
        )

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float:
        """One state's change; the ablation value stays the dataset mean at the claim's RTG."""
        inputs = Inputs.make(subject.renderer.render(state)[None], rtg, t)
        return float(self._delta(subject, inputs, self.on.rtg)[0])


@dataclass(frozen=True)
class FrontObstacleRemoved:
    """Paired edit: metric with the ball in front minus the same state with that ball removed."""

    on: OnFamily
    metric: str = "attn_to_rtg"

    def _delta(self, subject: Subject, states: Sequence[GridState], inputs: Inputs) -> np.ndarray:
        cleared = subject.renderer.render_many([remove_front_obstacle(s) for s in states])
        edited = Inputs.make(cleared, inputs.rtg, inputs.timestep)
        return metric_values(subject, inputs, self.metric) - metric_values(subject, edited, self.metric)

    def measure(self, subject: Subject) -> Measurement:
        fam, inputs = self.on.inputs(subject)
        return Measurement(
            self._delta(subject, fam.states, inputs),
            f"Δ{self.metric}",
            f"{self.metric} with the ball in front minus without it, {fam.name} ({len(fam)}) at RTG {self.on.rtg:g}",
        )

    def per_state(self, subject: Subject, state: GridState, rtg: float, t: int) -> float:
        inputs = Inputs.make(subject.renderer.render(state)[None], rtg, t)
        return float(self._delta(subject, [state], inputs)[0])


@dataclass(frozen=True)
class Weights:
    """A number read off the weights (embedding arithmetic, QK/OV circuits): exact, so its CI is the point."""

    fn: Callable[[Subject], float]
    describe: str
    unit: str = "logit"

    def measure(self, subject: Subject) -> Measurement:
        return Measurement(np.array([float(self.fn(subject))]), self.unit, self.describe)


@dataclass(frozen=True)
class Rollouts:
    """Per-episode outcome in the real env at an initial RTG (sampled actions, seeded).

    ``seed`` is the base seed; the subject moves it with its generation seed (``Subject.derived_seed``).
    """

    rtg: float
    value: Literal["reward", "goal", "collision", "timeout"] = "reward"
    episodes: int = 200
    seed: int = 0

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
    """A measure and the bound its whole 95 % CI must satisfy: ``at_least``, ``at_most``, or both."""

    name: str
    measure: Any
    at_least: float | None = None
    at_most: float | None = None
    control: bool = False
    #: what each example is predicted to do: "bound" (meet the bound itself), "increase" (> 0), "decrease" (< 0)
    per_example: Literal["bound", "increase", "decrease"] = "bound"

    def __post_init__(self) -> None:
        if self.at_least is None and self.at_most is None:
            raise ConfigError(f"check {self.name!r} has no threshold: a claim must be able to fail")

    def bound_text(self) -> str:
        parts = []
        if self.at_least is not None:
            parts.append(f"≥ {self.at_least:g}")
        if self.at_most is not None:
            parts.append(f"≤ {self.at_most:g}")
        return " and ".join(parts)

    def prediction_text(self) -> str:
        return {"increase": "> 0", "decrease": "< 0"}.get(self.per_example, self.bound_text())

    def example_holds(self, value: float) -> bool:
        if self.per_example == "increase":
            return bool(value > 0)
        if self.per_example == "decrease":
            return bool(value < 0)
        lo_ok = self.at_least is None or value >= self.at_least
        hi_ok = self.at_most is None or value <= self.at_most
        return bool(lo_ok and hi_ok)


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
    values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "values"}


@dataclass(frozen=True)
class Claim:
    """A falsifiable hypothesis: an id, what it says, where it comes from, and its checks (headline first)."""

    id: str
    statement: str
    source: str
    checks: tuple[Check, ...]
    #: what the claim is about: falsification tests pick their control by it (swapped heads, random init)
    kind: Literal["head", "mlp", "embedding", "behaviour"] = "behaviour"
    #: the env family whose checkpoints the claim is about ("dynamic-obstacles", "memory"); on a checkpoint of
    #: another family it is not applicable: not collected by default, skipped when asked for
    env: str = "dynamic-obstacles"

    def evaluate(self, subject: Subject, *, search: bool = False) -> Verdict:
        results = [evaluate_check(self.id, c, subject) for c in self.checks]
        verdict = Verdict(self.id, self.statement, all(r.holds for r in results), results)
        if search:
            verdict.counterexamples = [
                find_counterexample(self.id, c, subject) for c in self.checks if hasattr(c.measure, "per_state")
            ]
        return verdict


@dataclass
class Verdict:
    claim_id: str
    statement: str
    holds: bool
    checks: list[CheckResult] = field(default_factory=list)
    counterexamples: list[Counterexample] = field(default_factory=list)

    @property
    def headline(self) -> CheckResult:
        """The first failing check if any (what broke), else the first check (the claimed effect)."""
        return next((c for c in self.checks if not c.holds), self.checks[0])

    @property
    def verdict(self) -> str:
        return "holds" if self.holds else "fails"

    def summary(self) -> str:
        h = self.headline
        return (
            f"{self.claim_id}: {self.verdict} — {h.name}: {h.effect:+.3f} [{h.ci_low:+.3f}, {h.ci_high:+.3f}] "
            f"(needs {h.bound}; n={h.n}, {h.frac_as_predicted:.0%} of examples as predicted) — {h.describe}"
        )


def evaluate_check(claim_id: str, check: Check, subject: Subject) -> CheckResult:
    m = check.measure.measure(subject)
    seed = zlib.crc32(f"{claim_id}/{check.name}".encode())
    effect, lo, hi = bootstrap_ci(m.values, n_resamples=N_BOOTSTRAP, seed=seed)
    holds = (check.at_least is None or lo >= check.at_least) and (check.at_most is None or hi <= check.at_most)
    frac = float(np.mean([check.example_holds(v) for v in m.values])) if len(m.values) else float("nan")
    return CheckResult(
        name=check.name,
        holds=bool(holds),
        effect=float(effect),
        ci_low=float(lo),
        ci_high=float(hi),
        n=len(m.values),
        frac_as_predicted=frac,
        bound=check.bound_text(),
        unit=m.unit,
        describe=m.describe,
        control=check.control,
        values=np.asarray(m.values, dtype=float),
    )


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

    on: OnFamily = check.measure.on
    lo, hi = rtg_search_range(on.rtg)
    t_max = min(on.timesteps[1], subject.model.cfg.max_timestep)
    # the regime's end points and the claim's own RTG are tried explicitly (hypothesis reaches float bounds only
    # by chance), then any RTG in between
    rtgs = st.one_of(st.sampled_from(sorted({lo, hi, float(on.rtg)})), st.floats(lo, hi, allow_nan=False))
    strategy = st.tuples(family_states(on.family), rtgs, st.integers(on.timesteps[0], t_max))
    counted = [0]

    def violates(example: tuple[GridState, float, int]) -> bool:
        counted[0] += 1
        state, rtg, t = example
        return not check.example_holds(check.measure.per_state(subject, state, rtg, t))

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
    value = check.measure.per_state(subject, state, rtg, t)
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
    "Measurement",
    "OnFamily",
    "Rollouts",
    "StateRenderer",
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
