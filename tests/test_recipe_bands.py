"""The recipe's prediction bands (what the gate judges a retrain with other bytes against), on populations whose
truth is known by construction: draws from one distribution stay inside at the promised family-wise rate, also
when the distribution is a heavy-tailed mixture (as seeds' mechanism readings are), a far-shifted draw is
outside, and the measurement's own interval is allowed for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dt_circuits.claims.records.recipe_bands import (
    FAMILY_ALPHA,
    Band,
    bands,
    chebyshev_multiplier,
    check_numbers,
    has_bands,
    population_recipe_differs,
    recorded_effects,
)


def _population(values: dict[str, list[float | None]], claim: str = "c") -> dict:
    return {"seeds": list(range(len(next(iter(values.values()))))), "claims": {claim: {"checks": values}}}


def test_the_band_is_chebyshevs_at_the_family_wise_level():
    vals = [0.1, 0.2, 0.3, 0.4, 0.5]
    band = bands(_population({"x": vals}), family_size=4)[("c", "x")]
    mean, sd = float(np.mean(vals)), float(np.std(vals, ddof=1))
    half = math.sqrt(4 / FAMILY_ALPHA) * sd * math.sqrt(1 + 1 / 5)
    assert band.low == pytest.approx(mean - half, abs=1e-6) and band.high == pytest.approx(mean + half, abs=1e-6)
    # a larger family widens every band
    assert chebyshev_multiplier(100) > chebyshev_multiplier(10) > chebyshev_multiplier(1) == 10.0


@pytest.mark.parametrize("shape", ["normal", "mixture"])
def test_new_draws_of_the_same_recipe_stay_inside_at_the_family_wise_rate(shape):
    """Known truth: 20 checks, each its own distribution; 10 recorded seeds, then one new seed judged on all 20.
    At most FAMILY_ALPHA of such runs may raise any alarm (plus Monte-Carlo slack), for normal checks and for
    heavy-tailed mixtures (90 % of seeds near one value, 10 % at 10 sd: a seed that solves it another way,
    the shape a normal-theory band fails on); a seed of a recipe shifted by 500 sd on one check is caught."""
    rng = np.random.default_rng(0)
    means, sds = rng.normal(0, 1, 20), rng.uniform(0.01, 0.5, 20)

    def draw(n: int) -> np.ndarray:
        x = rng.normal(means, sds, (n, 20))
        if shape == "mixture":
            x += 10 * sds * (rng.random((n, 20)) < 0.1)
        return x

    alarms = shifted_alarms = 0
    runs = 400
    for _ in range(runs):
        recorded = draw(10)
        recipe = bands(_population({f"x{i}": list(recorded[:, i]) for i in range(20)}), family_size=20)
        new = draw(1)[0]
        alarms += any(recipe[("c", f"x{i}")].outside(new[i]) for i in range(20))
        shifted_alarms += recipe[("c", "x0")].outside(means[0] + 500 * sds[0])
    assert alarms / runs <= FAMILY_ALPHA + 3 * math.sqrt(FAMILY_ALPHA / runs)
    assert shifted_alarms / runs > 0.95


def test_outside_allows_for_the_measurement_interval_and_skips_an_undefined_number():
    band = Band("c", "x", (0.0, 0.01, -0.01), 0.0, 0.01, 10.0)
    assert not band.outside(0.0) and band.outside(0.5)
    assert not band.outside(0.5, 0.0, 0.9)  # the retrain's own interval overlaps: not told apart
    assert band.outside(0.5, 0.4, 0.6)
    assert not band.outside(None) and not band.outside(float("nan"))  # undefined (a ratio over 0): not judged
    assert band.distance(0.0) == 0.0 and band.distance(band.high + band.half_width) == pytest.approx(1.0)
    # a zero-spread check (a number every seed gave) still admits its own rounding in the record
    flat = Band("c", "y", (0.25, 0.25, 0.25), 0.25, 0.0, 10.0)
    assert not flat.outside(0.25 + 4e-7) and flat.outside(0.25 + 1e-5)


def test_only_checks_every_seed_measured_and_enough_seeds_make_bands():
    pop = _population({"x": [0.1, 0.2, 0.3], "y": [0.1, None, 0.3], "z": [1.0, 2.0, float("nan")]})
    assert set(recorded_effects(pop)) == {("c", "x")}
    assert set(bands(pop, 3)) == {("c", "x")} and has_bands(pop)
    same = _population({"x": [0.125, 0.125, 0.125]})  # a discrete reading every seed agreed on: no band
    assert bands(same, 1) == {}
    two = _population({"x": [0.1, 0.2]})
    assert bands(two, 1) == {} and not has_bands(two)
    assert not has_bands({"claims": {"c": {"expected": "holds", "k": 3, "K": 3}}})  # an old verdict-only record


def test_check_numbers_keys_every_check_uniquely_and_keeps_no_infinity():
    from types import SimpleNamespace

    def check(name, sample, effect):
        return SimpleNamespace(name=name, sample=sample, effect=effect, ci_low=effect, ci_high=effect, holds=True,
                               kind="effect", recipes={"zero": {"effect": effect, "holds": True}})  # fmt: skip

    out = check_numbers([check("a", "generated", 0.5), check("a", "on-policy", math.inf)])
    assert list(out) == ["a", "a [on-policy]"]
    assert out["a"]["effect"] == 0.5 and out["a"]["recipes"] == {"zero": 0.5}
    assert out["a [on-policy]"]["effect"] is None


def test_a_population_of_another_recipe_is_named():
    manifest = {"training": {"config": {"steps": 5000, "batch_size": 256, "threads": 1}}}
    assert population_recipe_differs(manifest, {"overrides": {"steps": 5000, "threads": 2}}) == ""
    assert "steps=40000" in population_recipe_differs(manifest, {"overrides": {"steps": 40000}})
