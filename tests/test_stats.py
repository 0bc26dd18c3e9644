"""Bootstrap effects: deterministic, calibrated, honest about direction; and the head 1 / head 0 ablation check."""

from __future__ import annotations

import numpy as np
import pytest

from dt_circuits.analysis.attribution import prob_metric
from dt_circuits.analysis.interventions import Inputs, ablation_hooks, dataset_means
from dt_circuits.analysis.stats import bootstrap_ci, intervention_effect, summarize
from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import in_front, random_walk
from tests.test_interventions import DATASET, MODELS


def test_bootstrap_is_deterministic_given_the_seed():
    x = np.random.default_rng(0).exponential(size=40)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=3) != bootstrap_ci(x, seed=4)
    mean, lo, hi = bootstrap_ci(x, n_resamples=5000, seed=3)
    assert mean == pytest.approx(x.mean()) and lo < mean < hi
    assert bootstrap_ci(np.full(10, 0.25)) == (0.25, 0.25, 0.25)


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    """400 seeded normal samples of n=50: coverage must be near 0.95 (binomial sd ~0.011 at 400 draws)."""
    rng = np.random.default_rng(123)
    hits = [
        lo <= 1.0 <= hi
        for lo, hi in (bootstrap_ci(rng.normal(1.0, 2.0, 50), n_resamples=1000, seed=s)[1:] for s in range(400))
    ]
    assert 0.90 <= np.mean(hits) <= 0.99


def test_summary_reports_direction_and_keeps_the_examples():
    eff = summarize(np.array([0.5, 0.2, 0.0, -0.1, 0.3]), n_resamples=2000, seed=1)
    assert eff.n == 5 and eff.frac_in_direction == pytest.approx(3 / 5)  # zeros do not count as moving
    assert eff.per_example.tolist() == [0.5, 0.2, 0.0, -0.1, 0.3]
    down = summarize(np.array([0.5, 0.2, 0.0, -0.1, 0.3]), expected_sign=-1, n_resamples=2000, seed=1)
    assert down.frac_in_direction == pytest.approx(1 / 5) and down.effect == eff.effect
    assert summarize(np.ones(4)).ci_in_direction and not summarize(np.ones(4), expected_sign=-1).ci_in_direction
    assert "n=5" in str(eff)
    for kwargs, fragment in [({"expected_sign": 0}, "expected_sign"), ({"confidence": 1.0}, "confidence")]:
        with pytest.raises(ConfigError, match=fragment):
            summarize(np.ones(3), **kwargs)
    with pytest.raises(ConfigError, match="empty"):
        summarize(np.array([]))


def test_an_intervention_that_does_nothing_has_zero_effect():
    eff = intervention_effect(MODELS["index"], DATASET, [], prob_metric("forward"))
    assert eff.effect == 0 and (eff.ci_low, eff.ci_high) == (0, 0) and eff.frac_in_direction == 0
    assert not eff.excludes_zero


@pytest.mark.reference
def test_mean_ablating_head_1_but_not_head_0_raises_p_forward_facing_an_obstacle(reference_model):
    """Every valid pose with a ball directly in front (in_front("obstacle"), 116 states), RTG 0.9, timestep 0.

    Ablation value: the mean of hook_z over 2000 random-walk observations (seed 0) taken at the *evaluation* RTG
    and timestep (0.9, 0), so the replacement removes what the head reads from the state, not the RTG or time
    signal. Effect per state = P(forward | head mean-ablated) - P(forward | clean); 95 % percentile bootstrap CI
    of the mean (10 000 resamples, seed 0).

    Asserted: head 1's CI lies entirely above 0 and most states move up; head 0's CI does *not* lie entirely
    above 0 (it may include 0 or be negative: the claim is "ablating head 0 does not raise P(forward)", which
    only a CI wholly above 0 would contradict); and head 1's effect exceeds head 0's state by state (paired CI
    of the difference above 0), so the effect is specific to head 1 rather than to ablating any head.
    """
    model = reference_model
    family = in_front("obstacle")
    inputs = Inputs.make(family.obs, 0.9, 0)
    walk = random_walk(2000, seed=0)
    means = dataset_means(model, Inputs.make(walk.obs, 0.9, 0), ["L0H0", "L0H1"])
    metric = prob_metric("forward")
    h1 = intervention_effect(model, inputs, ablation_hooks(model, "L0H1", "mean", means=means), metric)
    h0 = intervention_effect(model, inputs, ablation_hooks(model, "L0H0", "mean", means=means), metric)
    print(f"\nhead 1: {h1}\nhead 0: {h0}")
    assert h1.n == h0.n == len(family) > 100
    assert h1.ci_low > 0, f"head 1 ablation does not raise P(forward): {h1}"
    assert h1.frac_in_direction > 0.5, f"head 1 ablation raises P(forward) in a minority of states: {h1}"
    assert not h0.ci_low > 0, f"head 0 ablation also raises P(forward): {h0}"
    specific = summarize(h1.per_example - h0.per_example)
    print(f"head 1 - head 0 (paired): {specific}")
    assert specific.ci_low > 0


@pytest.mark.parametrize("n_clusters", [1, 4, 116, 511, 512, 1024, 4096])
def test_resample_counts_are_numpys_default_draws_counted(n_clusters):
    """The counts come from int32 draws for speed: each must be exactly the resample numpy's default (int64) draws
    give, chunk by chunk, and the stream must go on where the default leaves it (the variant draws between chunks,
    and so every recorded interval, depend on it)."""
    from dt_circuits.analysis.stats import _cluster_counts

    mine, plain = np.random.default_rng(11), np.random.default_rng(11)
    chunks = 0
    for start, stop, counts in _cluster_counts(mine, n_clusters, 3000):
        picks = plain.integers(n_clusters, size=(stop - start, n_clusters))
        expected = np.stack([np.bincount(p, minlength=n_clusters) for p in picks]).astype(np.float64)
        assert counts.dtype == np.float64 and np.array_equal(counts, expected)
        assert np.array_equal(mine.integers(3, size=stop - start), plain.integers(3, size=stop - start))
        chunks += 1
    assert chunks == -(-3000 // max(1, 2_000_000 // n_clusters))


@pytest.mark.parametrize("n", [1, 7, 33, 464, 2048])
def test_paired_bootstrap_in_chunks_draws_what_one_call_per_resample_draws(n):
    """The paired bootstrap draws a chunk of resamples per call; the resamples, their statistics and the stream
    after them must be those of one call per resample (the one-by-one ``stat`` path), for odd and even n."""
    from dt_circuits.claims.measures.paths import paired_bootstrap

    cols = np.random.default_rng(3).normal(size=(n, 8))
    seen: list[np.ndarray] = []

    def stats(stack: np.ndarray) -> np.ndarray:
        seen.append(stack)
        return stack[..., 0].mean(-1) - stack[..., 1].mean(-1)

    est, draws = paired_bootstrap(lambda c: float(c[:, 0].mean() - c[:, 1].mean()), cols, 5, 1200, stats=stats)
    rng = np.random.default_rng(5)
    one_by_one = np.stack([cols[rng.integers(n, size=n)] for _ in range(1200)])
    assert len(seen) == -(-1200 // max(1, 4_000_000 // (8 * n)))  # n = 464: 2 chunks, 2048: 5
    assert np.array_equal(np.concatenate(seen), one_by_one)
    assert np.array_equal(draws, one_by_one[..., 0].mean(-1) - one_by_one[..., 1].mean(-1))
    assert est == float(cols[:, 0].mean() - cols[:, 1].mean())


@pytest.mark.parametrize(("n", "n_clusters"), [(464, 116), (1024, 32), (2048, 2048), (17, 7)])
def test_bootstraps_drawn_together_equal_each_drawn_alone(n, n_clusters):
    """One check's recipes share rows, clusters and seed, so the suite draws their resample counts once: every
    result must equal its own bootstrap bit for bit (several-variant samples and ratios included)."""
    from dt_circuits.analysis.stats import (
        cluster_bootstrap,
        cluster_bootstraps,
        cluster_ratio_bootstrap,
        cluster_ratio_bootstraps,
    )

    rng = np.random.default_rng(n)
    clusters = rng.integers(n_clusters, size=n)
    values = [
        rng.normal(size=n),
        rng.normal(size=(3, n)),
        rng.normal(size=(1, n)),
        rng.normal(size=(3, n)) - 1,
        rng.normal(size=n) + 1,
    ]
    for together, v in zip(cluster_bootstraps(values, clusters, n_resamples=3000, seed=7), values, strict=True):
        alone = cluster_bootstrap(v, clusters, n_resamples=3000, seed=7)
        assert np.array_equal(together.draws, alone.draws) and together.effect == alone.effect
    den = rng.normal(size=n) + 2
    numerators = [values[0], 0.3 * den]
    ratios = cluster_ratio_bootstraps(numerators, den, clusters, n_resamples=3000, seed=8)
    for together, num in zip(ratios, numerators, strict=True):
        alone = cluster_ratio_bootstrap(num, den, clusters, n_resamples=3000, seed=8)
        assert np.array_equal(together.draws, alone.draws, equal_nan=True) and together.effect == alone.effect
    with pytest.raises(ConfigError, match="bootstrapped together"):
        cluster_bootstraps([values[0], values[0][:-1]], clusters)


@pytest.mark.parametrize("method", ["bonferroni", "holm"])
def test_family_adjustment_is_statsmodels_multipletests(method):
    """Bonferroni is computed without importing statsmodels (start-up); it must stay statsmodels' numbers, padded
    to the family as any other method is."""
    from statsmodels.stats.multitest import multipletests

    from dt_circuits.claims.evaluation.comparisons import Comparisons

    p = np.random.default_rng(0).uniform(0, 0.02, 40)
    p[:3] = [0.0, 1e-9, 0.5]
    family = Comparisons(150, method=method)
    padded = np.concatenate([p, np.ones(110)])
    assert np.array_equal(family.adjust(p), multipletests(padded, alpha=0.05, method=method)[1][:40])
    assert family.adjust([]).shape == (0,)


def test_group_shuffle_split_is_scikit_learns_index_for_index():
    """The same (train, test) rows as scikit-learn's GroupShuffleSplit for every seed, test size and group count
    tried, integer and string labels, groups of unequal sizes in any order."""
    from sklearn.model_selection import GroupShuffleSplit

    from dt_circuits.analysis.stats import group_shuffle_split

    rng = np.random.default_rng(0)
    tried = 0
    for n_groups in (2, 3, 7, 16, 60, 251):
        for test_size in (0.5, 0.25, 0.3, 0.9):
            labels = rng.integers(0, n_groups, size=5 * n_groups)
            labels[:n_groups] = np.arange(n_groups)  # every group present
            rng.shuffle(labels)
            for groups in (labels, np.array([f"episode-{g}" for g in labels])):
                for seed in (0, 1, 7, 12345):
                    if np.ceil(test_size * n_groups) >= n_groups:
                        with pytest.raises(ConfigError, match="none to train on"):
                            group_shuffle_split(groups, seed, test_size)
                        continue
                    ours = group_shuffle_split(groups, seed, test_size)
                    split = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
                    theirs = next(split.split(groups, groups=groups))
                    for a, b in zip(ours, theirs, strict=True):
                        np.testing.assert_array_equal(a, b)
                    assert not set(groups[ours[0]]) & set(groups[ours[1]])
                    tried += 1
    assert tried > 150
    with pytest.raises(ConfigError, match="test_size"):
        group_shuffle_split(labels, 0, 1.0)
