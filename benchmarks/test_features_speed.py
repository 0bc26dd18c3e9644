"""What the features table's learned parts cost per site and per checkpoint (issue 27: "SAE training and DAS are
benchmarked"): one TopK SAE at the table's shape and one DAS rotation at the table's 300 steps, at the residual
after the heads of a shipped checkpoint, side by side in one run; and the whole table's SAE and interchange
phases on that checkpoint, from the table's own timings."""

from __future__ import annotations

import pytest
import torch

from dt_circuits.dt.checkpoint import load_checkpoint
from dt_circuits.features.das import das_basis
from dt_circuits.features.data import ball_pairs
from dt_circuits.features.sae import site_sae, walk_inputs
from dt_circuits.features.sites import activations, parse_site
from dt_circuits.features.table import at_state_token, default_sites, localisation_table

CHECKPOINT = "checkpoints/raw-index"
SITE = "blocks.0.hook_resid_mid"


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_checkpoint(CHECKPOINT)


def test_sae_training_per_site(benchmark, figure, model):
    site = at_state_token(model, parse_site(model, SITE))
    acts = activations(model, walk_inputs(model, seed=0), site)
    sae, _ = benchmark.pedantic(lambda: site_sae(model, site, acts, seed=0), rounds=2, iterations=1)
    figure(benchmark, f"SAE training seconds per site ({SITE}, {len(acts)} states)", benchmark.stats.stats.mean)
    assert sae.n_latents == 2 * acts.shape[1]


def test_das_per_site(benchmark, figure, model):
    site = at_state_token(model, parse_site(model, SITE))
    train, _ = ball_pairs(seed=0, layouts=2, rtg=0.9, max_timestep=model.cfg.max_timestep).split(0)
    basis = benchmark.pedantic(lambda: das_basis(model, train, site, 1, seed=0), rounds=2, iterations=1)
    figure(benchmark, f"DAS seconds per site ({SITE}, 300 steps, {len(train)} pairs)", benchmark.stats.stats.mean)
    assert basis.shape[1] == 1


def test_features_table_per_checkpoint(benchmark, figure, model):
    table = benchmark.pedantic(lambda: localisation_table(model), rounds=1, iterations=1)
    seconds = table["seconds"]
    figure(benchmark, "features table: SAE seconds per checkpoint (raw-index)", seconds["sae"], "{:.1f}")
    figure(benchmark, "features table: interchange seconds per checkpoint", seconds["interchange"], "{:.1f}")
    assert len(table["sae"]) == len(default_sites(model))
