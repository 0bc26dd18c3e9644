"""Determinism: the same inputs give the same numbers, bytes and hypothesis examples, run after run; and the
flake check, which asks whether a verdict survives other equally valid data, reports what it should.

A merge gate that flakes teaches people to re-run until green; these tests pin every source of randomness.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dt_circuits import cli
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.language.claim import Check, Claim
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.claims.measures.rollouts import Rollouts
from dt_circuits.claims.measures.states import Ablation, Behaviour
from dt_circuits.claims.measures.weights import Weights
from dt_circuits.claims.output.suite_output import suite_json
from dt_circuits.claims.plugin import claims_group
from dt_circuits.claims.records.flakecheck import flakecheck, format_report, margin
from dt_circuits.claims.suite.discovery import discover
from dt_circuits.claims.suite.run import run_suite
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.paths import REPO_ROOT, reference_checkpoint
from dt_circuits.dt.checkpoint import MANIFEST_FILE, WEIGHTS_FILE, load_checkpoint, save_checkpoint
from dt_circuits.env.spec import EnvSpec
from tests.helpers import random_model

CLAIMS = {c.id: c for c in discover()}


def _without(data: Any, keys: frozenset[str]) -> Any:
    """The JSON minus every field named in ``keys``, at any depth."""
    if isinstance(data, dict):
        return {k: _without(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [_without(v, keys) for v in data]
    return data


def _without_timings(data: Any) -> Any:
    """The JSON minus wall-clock fields (the only thing allowed to differ between two runs)."""
    return _without(data, frozenset({"seconds"}))


def _canonical(data: Any) -> str:
    """Exact comparison text (NaN compares equal to itself here, unlike in ==)."""
    return json.dumps(_without_timings(data), sort_keys=True)


# -- hypothesis in CI -------------------------------------------------------------------------------------------------


def test_ci_profile_is_derandomized_without_a_database():
    from hypothesis import settings

    ci = settings.get_profile("ci")
    assert ci.derandomize is True and ci.database is None


def test_ci_selects_the_derandomized_profile():
    """With CI set (and no HYPOTHESIS_PROFILE), loading conftest makes the CI profile the default."""
    env = {k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"}
    env["CI"] = "1"
    code = (
        "import conftest\nfrom hypothesis import settings\n"
        "print(settings.default.derandomize, settings.default.database is None)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


# -- bytes ------------------------------------------------------------------------------------------------------------


def test_saving_the_same_model_twice_or_after_a_round_trip_gives_identical_bytes(tmp_path: Path):
    model = random_model(3)
    a = save_checkpoint(model, tmp_path / "a", env=EnvSpec(max_steps=300), name="x")
    b = save_checkpoint(random_model(3), tmp_path / "b", env=EnvSpec(max_steps=300), name="x")
    c = save_checkpoint(load_checkpoint(a), tmp_path / "c", env=EnvSpec(max_steps=300), name="x")
    for name in (WEIGHTS_FILE, MANIFEST_FILE):
        assert (a / name).read_bytes() == (b / name).read_bytes() == (c / name).read_bytes(), name


# -- generation seeds -------------------------------------------------------------------------------------------------


def test_generation_seed_zero_keeps_the_historical_keys_and_other_seeds_move_them():
    model = random_model(0)
    zero, seven = Subject.from_model(model), Subject.from_model(model, generation_seed=7)
    assert zero.generation_seed == 0 and zero.seed_key(11, 5) == [11, 5] and zero.derived_seed(3) == 3
    assert seven.seed_key(11, 5) != [11, 5] and seven.derived_seed(3) != 3
    assert seven.derived_seed(3) == Subject.from_model(model, generation_seed=7).derived_seed(3)
    with pytest.raises(ConfigError, match="generation_seed"):
        Subject.from_model(model, generation_seed=True)


def _numbers(subject: Subject, measure) -> np.ndarray:
    if isinstance(measure, Rollouts):  # episode lengths: rewards alone may all be -1 on a random model
        return subject.rollouts(measure.rtg, measure.episodes, measure.seed).lengths
    return np.asarray(measure.measure(subject).values)


@pytest.mark.parametrize(
    "measure",
    [
        Behaviour(OnFamily("obstacle-in-front", 0.9)),  # layouts and timesteps
        Ablation(OnFamily("goal-from-top", -1.0), "L0H0"),  # ... and the ablation-mean random walk
        Rollouts(0.9, "reward", episodes=6),  # rollout seeds
    ],
    ids=["family", "ablation", "rollouts"],
)
def test_every_random_draw_follows_the_generation_seed(measure):
    model = random_model(2, scale=1.0)
    a = _numbers(Subject.from_model(model, generation_seed=5), measure)
    b = _numbers(Subject.from_model(model, generation_seed=5), measure)
    zero = _numbers(Subject.from_model(model), measure)
    assert np.array_equal(a, b), "same generation seed, different numbers"
    assert not np.array_equal(a, zero), "the generation seed does not reach this draw"


# -- the claims suite on the reference, twice --------------------------------------------------------------------------


def _measure_kinds(claim: Claim) -> set[tuple[str, str, str]]:
    """What code a claim's checks run: each measure's class, where its states come from, and its method."""
    kinds = set()
    for check in claim.checks:
        on = getattr(check.measure, "on", None)
        kinds.add((type(check.measure).__name__, "" if on is None else type(on).__name__,
                   str(getattr(check.measure, "method", ""))))  # fmt: skip
    return kinds


def covering_claims(claims: list[Claim]) -> list[str]:
    """Claims that between them run every kind of measure the given claims use (greedy: most kinds not yet run,
    then fewer checks, then id), in id order."""
    uncovered = set().union(*(_measure_kinds(c) for c in claims))
    chosen: list[str] = []
    while uncovered:
        best = min(claims, key=lambda c: (-len(_measure_kinds(c) & uncovered), len(c.checks), c.id))
        chosen.append(best.id)
        uncovered -= _measure_kinds(best)
    return sorted(chosen)


#: the claims the second, separate process runs: every kind of measure the Dynamic Obstacles claims use, and the
#: search on each of their per-state checks
AGAIN = covering_claims([c for c in CLAIMS.values() if c.env == "dynamic-obstacles"])


@pytest.fixture(scope="session")
def reference_suite(reference_path, tmp_path_factory, pytestconfig):
    """The whole suite (with the counterexample search) on the reference here, and at the same time, in a fresh
    CLI process with its own hash seed, empty disk cache, imported modules and hypothesis state, the claims that
    between them run every kind of measure (``AGAIN``: 14 of 29 today; the whole suite twice was the test command's
    largest item, 136 s on an AMD EPYC with a second process on the other core).

    The suite here is the claims plugin's: its items on the reference run first in this process (the root
    conftest orders them, and the same xdist group keeps them on this worker), and ``run_suite(measured=...)``
    takes their verdicts as they are and adds the counterexample searches. So the plugin's own numbers are what is
    compared with the CLI's and with the record, and the 29 claims are not measured a second time in one process
    (~20 s of a test command, AMD EPYC). A claim whose item has not run here (a selection, ``-p no:dt_circuits``)
    is measured here, from the test run's disk cache (core/cache.py). Either way the comparison is between a
    computation from nothing in the other process and one process's, from nothing or read back from saved
    results, and it must be exact. The run here is one process; the CLI's shares claims and searches out over
    forked workers (``run_suite``), so the comparison also holds the suite's numbers independent of how it is shared."""
    from dt_circuits.claims.plugin import claim_runs
    from dt_circuits.core.cache import CACHE_ENV
    from dt_circuits.core.cores import WORKERS_ENV

    out = tmp_path_factory.mktemp("again") / "again.json"
    argv = [sys.executable, "-m", "dt_circuits.cli", "claims", "--checkpoint", str(reference_path), "--json", str(out),
            "--no-report", "--only", *AGAIN]  # fmt: skip
    # two workers there even where DT_CIRCUITS_WORKERS caps them (core/cores.py): the comparison is across sharings
    env = {**os.environ, CACHE_ENV: str(tmp_path_factory.mktemp("cache-there")), WORKERS_ENV: "2"}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        subject = Subject.load(reference_path)
        subject.workers = 1  # one process here; the CLI shares its claims and searches out over forked workers
        measured = {run.claim.id: run for run in claim_runs(pytestconfig, reference_path)}
        runs = run_suite(subject, discover(), search=True, measured=measured)
        here = suite_json(subject, runs)
        _, err = proc.communicate(timeout=900)
    finally:
        proc.kill()
    assert proc.returncode in (0, 1), err
    return subject, here, json.loads(out.read_text())


#: the reference's suite here shares a worker, and so its disk cache and its verdicts, with the claims plugin's
#: items on the reference (see ``reference_suite``)
ON_THE_REFERENCES_WORKER = pytest.mark.xdist_group(claims_group(reference_checkpoint()))


def _same_claims(data: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    """The run's JSON on the claims ``ids``; p-values adjusted over a run's own checks are left out (another
    set of claims adjusts over other p-values; the p-values themselves stay)."""
    top = {k: v for k, v in data.items() if k not in ("claims", "multiple_comparisons", "all_match_expectations")}
    family = {k: v for k, v in data["multiple_comparisons"].items() if k != "tests_in_this_run"}
    claims = {c["id"]: _without(c, frozenset({"p_adjusted"})) for c in data["claims"] if c["id"] in ids}
    return {**top, "multiple_comparisons": family, "claims": claims}


def test_a_suite_takes_runs_already_measured_and_measures_the_rest():
    """``run_suite(measured=...)``: a run made elsewhere (the plugin's) comes back as it was made, not measured
    again, with its counterexamples searched here; the other claims are measured; the numbers are the suite's own."""
    from dataclasses import replace

    subject = Subject.load(REPO_ROOT / "checkpoints" / "raw-index")
    subject.workers = 1
    claims = [CLAIMS["wall-detection-embedding"], CLAIMS["rtg-embedding-forward"]]
    full = run_suite(subject, claims, search=True)
    assert full[0].verdict.counterexamples, "the taken claim must have a search to add"
    made = replace(full[0], verdict=replace(full[0].verdict, statement="made elsewhere", counterexamples=[]))
    runs = run_suite(subject, claims, search=True, measured={made.claim.id: made})
    assert runs[0].verdict.statement == "made elsewhere" and made.verdict.counterexamples == []  # taken; a copy
    assert _canonical([r.to_dict() for r in runs]) == _canonical([r.to_dict() for r in full])


def test_the_second_process_runs_every_kind_of_measure():
    dynamic = [c for c in CLAIMS.values() if c.env == "dynamic-obstacles"]
    assert set().union(*(_measure_kinds(CLAIMS[i]) for i in AGAIN)) == set().union(*map(_measure_kinds, dynamic))
    assert len(AGAIN) < len(dynamic)


@pytest.mark.reference
@ON_THE_REFERENCES_WORKER
def test_claims_suite_twice_on_the_reference_gives_identical_json(reference_suite):
    _, here, there = reference_suite
    assert sorted(c["id"] for c in there["claims"]) == AGAIN
    assert _canonical(_same_claims(there, AGAIN)) == _canonical(_same_claims(json.loads(json.dumps(here)), AGAIN))


@pytest.mark.reference
@ON_THE_REFERENCES_WORKER
def test_generation_seed_zero_reproduces_the_recorded_numbers(reference_suite):
    subject, data, _ = reference_suite
    assert subject.expectations, "no recorded expectations for the reference"
    for claim in data["claims"]:
        recorded = subject.expectations[claim["id"]]["measured"]
        for key in ("effect", "ci_low", "ci_high"):
            assert round(claim[key], 6) == pytest.approx(recorded[key], abs=1e-6), (claim["id"], key)


# -- the flake check ---------------------------------------------------------------------------------------------------


#: a measure for checks whose bound arithmetic is under test (never measured)
_ANY = Weights(lambda subject: 0.0, "unused")


def test_margin_is_how_far_the_ci_clears_the_bound():
    from dt_circuits.claims.evaluation.results import CheckResult

    def result(lo: float, hi: float) -> CheckResult:
        return CheckResult("c", True, (lo + hi) / 2, lo, hi, 10, 1.0, "", "", "", False)

    assert margin(Check("c", _ANY, at_least=0.25), result(0.3, 0.4)) == pytest.approx(0.05)
    assert margin(Check("c", _ANY, at_most=0.1), result(0.0, 0.15)) == pytest.approx(-0.05)
    assert margin(Check("c", _ANY, at_least=-0.25, at_most=0.25), result(-0.2, 0.1)) == pytest.approx(0.05)
    assert np.isnan(margin(Check("c", _ANY, at_least=0.0), result(float("nan"), float("nan"))))


def _claim(check: Check) -> Claim:
    return Claim(id="probe", statement="probe", source="test", checks=(check,))


def test_flakecheck_reports_a_verdict_that_flips_with_its_runs_and_margins():
    """A bound placed between two seeds' CI lower ends must be reported as flaky, run by run."""
    model = random_model(2, scale=1.0)
    measure = Behaviour(OnFamily("obstacle-in-front", 0.9))
    probe = Check("probe", measure, at_least=-1.0)
    lows = [
        Claim("x", "x", "x", (probe,)).evaluate(Subject.from_model(model, generation_seed=s)).checks[0].ci_low
        for s in (0, 1)
    ]
    assert lows[0] != lows[1]
    bound = float(np.mean(lows))
    report = flakecheck(model, runs=2, claims=[_claim(Check("probe", measure, at_least=bound))])
    (entry,) = report.claims
    assert entry.flips and report.flaky == [entry] and sorted(entry.verdicts) == ["fails", "holds"]
    assert [m >= 0 for m in entry.checks[0].margins] == [lo >= bound for lo in lows]
    text = format_report(report)
    assert "FLAKY probe" in text and "generation seed   1" in text and "1 of 1 claims flip" in text
    stable = flakecheck(model, runs=2, claims=[_claim(Check("probe", measure, at_least=-1.0))])
    assert not stable.flaky and "no verdict flips" in format_report(stable)


def test_flakecheck_refuses_fewer_than_two_runs():
    with pytest.raises(ConfigError, match="at least 2 runs"):
        flakecheck(random_model(0), runs=1, claims=[CLAIMS["rtg-embedding-forward"]])


def test_flakecheck_command_writes_json_and_exits_0_when_nothing_flips(tmp_path, capsys):
    ckpt = save_checkpoint(random_model(3), tmp_path / "ckpt", env=EnvSpec(), name="t")
    out = tmp_path / "flake.json"
    argv = ["flakecheck", "--checkpoint", str(ckpt), "--runs", "3", "--only", "rtg-embedding-forward"]
    rc = cli.main([*argv, "--json", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr()
    data = json.loads(out.read_text())
    assert data["runs"] == 3 and data["generation_seeds"] == [0, 1, 2] and data["flaky"] == []
    (claim,) = data["claims"]
    assert claim["id"] == "rtg-embedding-forward" and len(set(claim["checks"][0]["effect"])) == 1  # weights only
    assert cli.main(["flakecheck", "--checkpoint", str(ckpt), "--runs", "1"]) == 2
    assert "at least 2 runs" in capsys.readouterr().err


# -- the counterexample search ----------------------------------------------------------------------------------------


class _Recorder:
    """A measure that records every state the search tries and never fails: the whole generated sequence."""

    def __init__(self) -> None:
        self.on = OnFamily("obstacle-in-front", 0.9)
        self.seen: list = []

    def sample_names(self) -> list[str]:
        return ["generated"]

    def measure(self, subject: Subject):
        raise AssertionError("the search probes states one by one; it never measures the whole family")

    def per_state(self, subject: Subject, state, rtg: float, t: int) -> float:
        self.seen.append((state, rtg, t))
        return 0.0


def _searched_sequence(subject: Subject) -> list:
    from dt_circuits.claims.evaluation.search import find_counterexample

    recorder = _Recorder()
    cx = find_counterexample("probe", Check("probe", recorder, at_most=1.0), subject)
    assert cx.state is None and len(recorder.seen) >= 100
    return recorder.seen


def test_counterexample_search_does_not_depend_on_which_local_modules_are_imported(tmp_path, monkeypatch):
    """Hypothesis can draw literals from imported local modules' source; the search must not (the CLI and pytest
    import different modules, and unrelated edits would move the counterexamples)."""
    import importlib.util

    subject = Subject.from_model(random_model(4, scale=1.0))
    before = _searched_sequence(subject)
    literals = ", ".join([*(str(i) for i in range(70)), *(f"{x / 40:.3f}" for x in range(-40, 41))])
    module = tmp_path / "probe_constants.py"
    module.write_text(f"VALUES = [{literals}]\n")
    spec = importlib.util.spec_from_file_location("probe_constants", module)
    monkeypatch.setitem(sys.modules, "probe_constants", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(sys.modules["probe_constants"])
    assert _searched_sequence(subject) == before


def test_flakecheck_skips_claims_of_another_env_family():
    """The memory claims in the library never run on a Dynamic Obstacles model; the flake check must say nothing
    about them instead of failing to find their runs."""
    model = random_model(2, scale=1.0)
    weights = Check("weights", Weights(lambda subject: 0.0, "constant"), at_most=1.0)
    memory = Claim("m", "m", "m", (weights,), kind="embedding", env="memory")
    report = flakecheck(model, runs=2, claims=[_claim(weights), memory])
    assert [c.claim_id for c in report.claims] == [_claim(weights).id]


def test_checks_sharing_a_search_strategy_find_what_each_finds_alone():
    """The counterexample search draws a strategy's first pass once and scores it for every check with that
    strategy; each check must report exactly what a search of its own reports (examples, state, value)."""
    from dt_circuits.claims.evaluation import search
    from dt_circuits.claims.evaluation.measurement import PerStateMeasure

    subject = Subject.load(REPO_ROOT / "checkpoints" / "raw-index")
    shared: dict[tuple, list] = {}
    for claim in CLAIMS.values():
        for check in claim.checks:
            if claim.env == subject.env_family and isinstance(check.measure, PerStateMeasure):
                shared.setdefault(search.strategy_key(check, subject), []).append((claim.id, check))
    groups = sorted((g for g in shared.values() if len(g) > 1), key=len)[:2]  # two of the 12, the smallest
    assert groups, "no two checks share a strategy: nothing to compare"

    def alone(claim_id, check):
        search._DRAWN.clear()
        return search.find_counterexample(claim_id, check, subject).to_dict()

    separately = [[alone(*task) for task in group] for group in groups]
    search._DRAWN.clear()
    for group, expected in zip(groups, separately, strict=True):
        # the last check draws the first pass, the others reuse it
        found = [search.find_counterexample(*task, subject).to_dict() for task in reversed(group)][::-1]
        assert found == expected


def test_a_first_pass_kept_on_disk_reads_back_as_the_draws_and_finds_the_same(monkeypatch, tmp_path):
    """A strategy's first-pass draws depend on no model, so the disk cache keeps them for later runs: read back
    they must be the same objects (states, float RTGs, integer timesteps), and a search that reads them must
    report exactly what the search that drew them reported."""
    from dt_circuits.claims.evaluation import search
    from dt_circuits.claims.evaluation.measurement import PerStateMeasure
    from dt_circuits.core.cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    subject = Subject.load(REPO_ROOT / "checkpoints" / "raw-index")
    claim_id, check = next(
        (claim.id, check) for claim in CLAIMS.values() for check in claim.checks
        if claim.env == subject.env_family and isinstance(check.measure, PerStateMeasure)
    )  # fmt: skip
    drawn_key = (search.SEARCH_EXAMPLES, *search.strategy_key(check, subject))
    key = search._draws_key(drawn_key)
    search._DRAWN.clear()
    try:
        assert search._kept_draws(key) is None
        drawn = search.find_counterexample(claim_id, check, subject).to_dict()
        first = list(search._DRAWN[drawn_key])
        search._DRAWN.clear()
        kept = search._kept_draws(key)
        assert kept == first and len(kept) == search.SEARCH_EXAMPLES
        assert [tuple(map(type, e)) for e in kept] == [tuple(map(type, e)) for e in first]
        assert search.find_counterexample(claim_id, check, subject).to_dict() == drawn
    finally:
        search._DRAWN.clear()
