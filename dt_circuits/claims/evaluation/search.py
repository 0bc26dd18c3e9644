"""The counterexample search: the simplest state where a check's per-state prediction fails.

Hypothesis (derandomized) searches states of the check's family, RTGs in its regime and timesteps, and shrinks
what it finds to a minimal example.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from dt_circuits.claims.evaluation.measurement import PerStateMeasure
from dt_circuits.claims.evaluation.results import Counterexample
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import GridState

if TYPE_CHECKING:
    from dt_circuits.claims.language.claim import Check

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
