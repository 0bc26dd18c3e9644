"""DAS and the interchange comparison: known truth on hand-set DTs whose ball-avoidance, or whose use of the RTG,
runs through one head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.handset import ball_avoider, rtg_follower
from dt_circuits.features.das import Pairs, das_basis, iia
from dt_circuits.features.data import ball_pairs, rtg_pairs
from dt_circuits.features.localise import localise
from dt_circuits.features.sites import Site, parse_site


@pytest.fixture(scope="module")
def pairs() -> Pairs:
    return ball_pairs(layouts=1, max_timestep=1000)


@pytest.mark.parametrize("route", ["head0", "head1"])
def test_das_finds_the_ball_at_the_head_that_carries_it_and_not_at_the_other(route, pairs):
    model = ball_avoider(route, decoys=True)
    carrier, other = (0, 1) if route == "head0" else (1, 0)
    found = localise(model, pairs, parse_site(model, f"L0H{carrier}"), seed=0)
    assert found.n_test_pairs > 50
    assert found.das >= 0.95 and found.probe >= 0.95 and found.neuron >= 0.95, found
    absent = localise(model, pairs, parse_site(model, f"L0H{other}"), seed=0)
    assert absent.das <= 0.05 and absent.probe <= 0.05 and absent.neuron <= 0.05, absent


@pytest.mark.parametrize("route", ["head0", "head1"])
def test_the_rtgs_sign_is_found_in_the_head_that_relays_it_and_not_before_it_or_in_the_other(route):
    """The second interchanged variable: the RTG lives on the RTG token; only the relay head moves it to the state
    token. Every method swaps it there (IIA 1); at the state token before the heads (identical on both sides of
    a pair) and in the other head nothing does (IIA 0), decoy or not."""
    model = rtg_follower(route, decoys=True)
    pairs = rtg_pairs(layouts=1, max_timestep=1000)
    assert set(pairs.base_values) == {0, 2}  # negative, positive
    relay, other = (0, 1) if route == "head0" else (1, 0)
    found = localise(model, pairs, parse_site(model, f"L0H{relay}"), seed=0)
    _, test = pairs.split(0)
    assert found.n_test_pairs == len(test)  # every held-out pair changes the action
    assert found.das == found.probe == found.neuron == 1.0, found
    for where in (f"L0H{other}", "blocks.0.hook_resid_pre"):
        absent = localise(model, pairs, parse_site(model, where), seed=0)
        assert absent.das == absent.probe == absent.neuron == 0.0, (where, absent)


def test_the_held_out_split_shares_no_pose_and_iia_counts_only_pairs_whose_action_changes(pairs):
    train, test = pairs.split(seed=3)
    assert not set(train.clusters) & set(test.clusters) and len(train) + len(test) == len(pairs)
    model = ball_avoider("head0")
    site = parse_site(model, "L0H0")
    nothing = torch.zeros(model.cfg.d_head, 0)
    assert iia(model, test, site, nothing) == (0.0, len(test))  # every pair changes the action; none is moved
    everything = torch.eye(model.cfg.d_head)
    assert iia(model, test, site, everything) == (1.0, len(test))


def test_das_is_seeded(pairs):
    model = ball_avoider("mlp")
    sub, _ = pairs.split(seed=0)
    site = Site("blocks.0.mlp.hook_post")
    a, b = das_basis(model, sub, site, 1, seed=5), das_basis(model, sub, site, 1, seed=5)
    assert torch.equal(a, b)


def test_bad_das_requests_are_one_line(pairs):
    model = ball_avoider("head0")
    with pytest.raises(ConfigError, match="needs a head"):
        parse_site(model, "blocks.0.attn.hook_z")
    with pytest.raises(ConfigError, match="k must be"):
        das_basis(model, pairs, parse_site(model, "L0H0"), k=99)
    with pytest.raises(ConfigError, match="differ"):
        Pairs(pairs.base, pairs.source, pairs.clusters, pairs.base_values, pairs.base_values)
    with pytest.raises(ConfigError, match="unequal"):
        Pairs(pairs.base, pairs.source, pairs.clusters[:3], pairs.base_values, pairs.source_values)
    with pytest.raises(ConfigError, match="two clusters"):
        pairs.subset(np.flatnonzero(pairs.clusters == pairs.clusters[0])).split(0)
