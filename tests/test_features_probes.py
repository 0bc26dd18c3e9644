"""Probes: known truth on planted directions, the cluster split, the control task, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from dt_circuits.core.errors import ConfigError
from dt_circuits.features.probes import control_labels, held_out_predictions, probe, probe_direction


def _data(planted: bool, seed: int = 0, n_clusters: int = 60, per: int = 8, d: int = 16):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_clusters), per)
    y = rng.integers(2, size=len(groups))
    y[: len(y) // 4] = 0  # imbalanced: the majority class is 0 (~62 %)
    x = rng.normal(size=(len(groups), d))
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    if planted:
        x += 3.0 * (y - 0.5)[:, None] * u
    types = rng.integers(20, size=len(groups))  # "local input types", shared across clusters
    return x, y, groups, types, u


def test_a_planted_direction_is_found_and_an_absent_one_is_not():
    x, y, groups, types, u = _data(planted=True)
    found = probe(x, y, groups, types, seed=0)
    bayes = 0.9332  # Phi(1.5): class means 3 apart along u, unit noise
    assert found.accuracy > bayes - 0.03 and found.majority < 0.7 and found.selectivity > 0.25, found
    assert abs(float(probe_direction(x, y) @ u)) > 0.9  # the direction itself, not only the accuracy
    x, y, groups, types, _ = _data(planted=False)
    absent = probe(x, y, groups, types, seed=0)
    assert absent.accuracy <= absent.majority + 0.03, absent


def test_no_cluster_is_both_trained_and_tested_on():
    """A cluster-constant label carried by a cluster-constant random code is memorised by a random split but not
    by the cluster split: held-out accuracy stays at chance."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(40), 10)
    code = rng.normal(size=(40, 32))
    x = code[groups] + 0.01 * rng.normal(size=(400, 32))
    y = rng.integers(2, size=40)[groups]
    pred, _ = held_out_predictions(x, y, groups)
    assert np.mean(pred == y) < 0.75


def test_control_labels_are_a_seeded_function_of_the_type():
    y = np.array([0, 0, 0, 1] * 50)
    types = np.arange(200) % 7
    a, b = control_labels(y, types, 3), control_labels(y, types, 3)
    assert (a == b).all()
    for t in range(7):
        assert len(set(a[types == t])) == 1
    assert set(a) <= {0, 1}


def test_bad_probe_input_is_one_line():
    x = np.zeros((10, 3))
    with pytest.raises(ConfigError, match="do not match"):
        probe(x, np.zeros(9), np.arange(10), np.zeros(10))
    with pytest.raises(ConfigError, match="two clusters"):
        probe(x, np.zeros(10), np.zeros(10), np.zeros(10))
    with pytest.raises(ConfigError, match="binary"):
        probe_direction(x, np.arange(10) % 3)
