"""The counterexample search: the simplest state where a check's per-state prediction fails.

Hypothesis (derandomized) searches states of the check's family, RTGs in its regime and timesteps, and shrinks
what it finds to a minimal example.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from dt_circuits.claims.evaluation.measurement import PerStateMeasure
from dt_circuits.claims.evaluation.results import Counterexample
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import GridState, state_key

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
    # the strategy is built from its key alone, so checks that share a key share a strategy (and their draws)
    key = strategy_key(check, subject)
    family, lo, hi, rtg, t_lo, t_max = key
    # the regime's end points and the claim's own RTG are tried explicitly (hypothesis reaches float bounds only
    # by chance), then any RTG in between
    rtgs = st.one_of(st.sampled_from(sorted({lo, hi, rtg})), st.floats(lo, hi, allow_nan=False))
    strategy = st.tuples(family_states(family), rtgs, st.integers(t_lo, t_max))
    drawn_key = (max_examples, *key)
    counted = [0]
    #: values already known per (state, rtg, t): from one batched forward over every draw of the first pass
    scored: dict[tuple, float] = {}
    collecting: list[tuple[GridState, float, int]] = []
    batch = getattr(measure, "per_states", None)
    mode = ["collect" if batch is not None else "search"]

    def violates(example: tuple[GridState, float, int]) -> bool:
        counted[0] += 1
        state, rtg, t = example
        if mode[0] == "collect":
            collecting.append(example)
            return False
        key = _key(state, rtg, t)
        value = scored.get(key) if key is not None else None
        if value is None or not check.example_holds(value):  # a batch's failure is confirmed state by state
            value = measure.per_state(subject, state, rtg, t)
        return not check.example_holds(value)

    cfg = settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )

    def search() -> tuple[GridState, float, int] | None:
        try:
            with source_constants_off():
                return find(strategy, violates, settings=cfg)
        except Exception as exc:  # hypothesis.errors.NoSuchExample: the prediction held everywhere searched
            if type(exc).__name__ != "NoSuchExample":
                raise
            return None

    if mode[0] == "collect":
        # First pass: the draws only (derandomized: the same sequence every time), scored in one forward. Only
        # when one fails does a second pass run, identical up to that draw, which then shrinks it state by state.
        if drawn_key in _DRAWN:  # another check searched the same strategy: its first pass drew these
            collecting[:] = _DRAWN[drawn_key]
            counted[0] = len(collecting)
        elif (kept := _kept_draws(draws_key := _draws_key(drawn_key))) is not None:  # an earlier run's (disk)
            collecting[:] = _DRAWN[drawn_key] = kept
            counted[0] = len(collecting)
        else:
            search()
            _DRAWN[drawn_key] = list(collecting)
            _keep_draws(draws_key, collecting)
        values = batch(subject, [e[0] for e in collecting], np.array([e[1] for e in collecting]),
                       np.array([e[2] for e in collecting])) if collecting else np.zeros(0)  # fmt: skip
        if values is None:  # this measure cannot score a batch (e.g. resample): search state by state
            mode[0], counted[0] = "search", 0
        else:
            for (state, rtg, t), value in zip(collecting, values, strict=True):
                if (key := _key(state, rtg, t)) is not None:
                    scored[key] = float(value)
            if all(check.example_holds(float(v)) for v in values):
                return Counterexample(check.name, counted[0], prediction=check.prediction_text())
            mode[0], counted[0] = "search", 0
    found = search()
    if found is None:
        return Counterexample(check.name, counted[0], prediction=check.prediction_text())
    state, rtg, t = found
    value = measure.per_state(subject, state, rtg, t)
    return Counterexample(check.name, counted[0], state, float(rtg), int(t), float(value), check.prediction_text())


#: the first pass's draws per (max_examples, strategy): derandomized hypothesis draws the same examples for the
#: same strategy whatever the predicate, so checks on one family, RTG regime and timesteps share one pass
_DRAWN: dict[tuple, list[tuple[GridState, float, int]]] = {}


_DRAWS_KIND = "search-draws"


def _draws_key(drawn_key: tuple) -> dict | None:
    """The disk-cache key of a first pass's draws: they are a function of the strategy's key, the number of
    examples, the code that builds and runs the strategy and hypothesis' version alone (derandomized, no
    database, no constants from the source), never of a model."""
    from dt_circuits.core.cache import fit_key
    from dt_circuits.env import scenarios, strategies

    return fit_key(find_counterexample, source_constants_off, rtg_search_range, strategies, scenarios.GridState,
                   libraries=("hypothesis",), strategy=list(drawn_key))  # fmt: skip


def _kept_draws(key: dict | None) -> list[tuple[GridState, float, int]] | None:
    """The first pass's draws an earlier run kept under ``key`` (:func:`_draws_key`; None: none kept)."""
    from dt_circuits.core.cache import load_arrays

    found = load_arrays(_DRAWS_KIND, key) if key is not None else None
    if found is None:
        return None
    ends = np.cumsum(found["n_obstacles"])
    obstacles = np.split(found["obstacles"], ends[:-1]) if len(ends) else []
    return [
        (GridState((int(p[0]), int(p[1])), int(d), tuple((int(x), int(y)) for x, y in o), (int(g[0]), int(g[1]))),
         float(r), int(t))
        for p, d, o, g, r, t in zip(found["pos"], found["dir"], obstacles, found["goal"], found["rtg"],
                                    found["t"], strict=True)
    ]  # fmt: skip


def _keep_draws(key: dict | None, draws: list[tuple[GridState, float, int]]) -> None:
    """Keep a first pass's draws under ``key`` (:func:`_draws_key`) for later runs when each is plain data (a state
    of integer cells, a float RTG, an integer timestep) that reads back as the same objects; anything else is drawn
    again next time."""
    from dt_circuits.core.cache import save_arrays

    plain = draws and all(
        state_key(s) is not None and type(s.agent_dir) is int and type(r) is float and type(t) is int
        and all(type(v) is int for cell in (s.agent_pos, s.goal, *s.obstacles) for v in cell)
        for s, r, t in draws
    )  # fmt: skip
    if key is None or not plain:
        return
    obstacles = [cell for s, _, _ in draws for cell in s.obstacles]
    save_arrays(_DRAWS_KIND, key, {
        "pos": np.array([s.agent_pos for s, _, _ in draws], dtype=np.int64).reshape(-1, 2),
        "dir": np.array([s.agent_dir for s, _, _ in draws], dtype=np.int64),
        "goal": np.array([s.goal for s, _, _ in draws], dtype=np.int64).reshape(-1, 2),
        "n_obstacles": np.array([len(s.obstacles) for s, _, _ in draws], dtype=np.int64),
        "obstacles": np.array(obstacles, dtype=np.int64).reshape(-1, 2),
        "rtg": np.array([r for _, r, _ in draws], dtype=np.float64),
        "t": np.array([t for _, _, t in draws], dtype=np.int64),
    })  # fmt: skip


def strategy_key(check: Check, subject: Subject) -> tuple:
    """What a check's search strategy is a function of: the family, the RTG regime and the claim's own RTG (tried
    explicitly), and the timesteps (capped by the model's time embedding)."""
    on = check.measure.on
    t_lo, t_hi = on.search_timesteps
    return (on.family, *rtg_search_range(on.rtg), float(on.rtg), t_lo, min(t_hi, subject.model.cfg.max_timestep))


def _key(state: GridState, rtg: float, t: int) -> tuple | None:
    """The exact (state, RTG, timestep) a value belongs to (None: not a plain state; scored one by one)."""
    cell = state_key(state)
    return None if cell is None else (cell, float(rtg), int(t))


def timed_search(subject: Subject, claim_id: str, check: Check) -> tuple[Counterexample, float]:
    """:func:`find_counterexample` and its seconds."""
    import time

    start = time.perf_counter()
    return find_counterexample(claim_id, check, subject), time.perf_counter() - start


def strategy_groups(subject: Subject, tasks: list[tuple[str, Check]]) -> list[list[int]]:
    """The tasks' indices grouped by search strategy (a group's checks share their first pass's draws, so one
    worker takes a whole group), the largest group first (the workers finish together)."""
    groups: dict[tuple, list[int]] = {}
    for i, (_, check) in enumerate(tasks):
        groups.setdefault(strategy_key(check, subject), []).append(i)
    return sorted(groups.values(), key=len, reverse=True)
