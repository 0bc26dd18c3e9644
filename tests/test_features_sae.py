"""Sparse autoencoders (issue 27, part 4): a TopK SAE recovers a dictionary it is built from, labels latents by
the world-state variable they fire for, and splices into the model; known truth on the hand-set ball avoiders
(head 1 writes "ball in front" exactly, or nothing on the ``direct`` twin)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.analysis.interventions import run
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.handset import ball_avoider
from dt_circuits.env.spec import Action
from dt_circuits.features.data import probe_set
from dt_circuits.features.sae import (
    SAEConfig,
    f1_matrix,
    latent_labels,
    load_sae,
    sae_metrics,
    save_sae,
    splice_hook,
    spliced_loss,
    train_sae,
)
from dt_circuits.features.sites import Site, activations
from dt_circuits.features.variables import variable

L0H1 = Site("blocks.0.attn.hook_z", 1)
FWD = int(Action.FORWARD)


def sparse_dictionary_data(n: int = 4000, d: int = 24, m: int = 12, active: int = 2, seed: int = 0):
    """Rows that are sums of ``active`` of ``m`` known unit directions with positive magnitudes."""
    rng = np.random.default_rng(seed)
    dictionary = rng.normal(size=(m, d))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = np.zeros((n, m))
    for i in range(n):
        codes[i, rng.choice(m, size=active, replace=False)] = rng.uniform(0.5, 2.0, size=active)
    return torch.tensor(codes @ dictionary, dtype=torch.float32), dictionary


def test_a_topk_sae_recovers_the_dictionary_its_data_is_built_from():
    x, dictionary = sparse_dictionary_data()
    sae, curve = train_sae(x, SAEConfig(n_latents=24, k=2, steps=1500, batch=256, lr=3e-3, seed=0))
    metrics = sae_metrics(sae, x)
    assert metrics["fvu"] < 0.1 and metrics["l0"] <= 2.0 and curve[-1] < curve[0]
    cos = dictionary @ sae.W_dec.numpy().T  # (m, n_latents): decoder rows are unit norm
    assert np.median(cos.max(axis=1)) >= 0.9, cos.max(axis=1)


def test_training_is_seeded_and_deterministic():
    x, _ = sparse_dictionary_data(n=500)
    cfg = SAEConfig(n_latents=16, k=2, steps=50, seed=3)
    a, b = train_sae(x, cfg)[0], train_sae(x, cfg)[0]
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_f1_is_two_tp_over_two_tp_fp_fn():
    active = np.array([[1, 0], [1, 0], [0, 0], [1, 1]], bool)
    target = np.array([[1], [0], [0], [1]], bool)
    f1 = f1_matrix(active, target)
    assert f1[0, 0] == pytest.approx(2 * 2 / (2 * 2 + 1 + 0)) and f1[1, 0] == pytest.approx(2 / (2 + 0 + 1))


@pytest.fixture(scope="module")
def probes():
    return probe_set(seed=0, n_random=100)


def test_a_latent_tracks_ball_in_front_where_head_1_writes_it_and_none_on_the_twin(probes):
    """Known truth: on the ``head1`` avoider L0H1's output is exactly "ball in front", so some latent fires for
    it with F1 1; ablating that latent (keeping the SAE's error) makes the agent walk into the ball. On the
    ``direct`` twin (same behaviour, head 1 writes nothing) no latent tracks it."""
    front = np.array(variable("front_object").values)[probes.labels("front_object")]
    ball = front == "ball"
    results = {}
    for route in ("head1", "direct"):
        model = ball_avoider(route)
        acts = activations(model, probes.inputs, L0H1)
        sae, _ = train_sae(acts, SAEConfig(n_latents=8, k=1, steps=300, seed=0))
        per_latent, per_value = latent_labels(sae, acts, {"front_object": front})
        results[route] = (model, sae, per_value["front_object=ball"])
    model, sae, best = results["head1"]
    assert best["f1"] == pytest.approx(1.0)
    balls = probes.inputs[torch.as_tensor(np.flatnonzero(ball))]
    before = torch.softmax(run(model, balls), -1)[:, FWD]
    ablated = [splice_hook(L0H1, sae, ablate=(best["latent"],), reconstruct=False)]
    after = torch.softmax(run(model, balls, ablated), -1)[:, FWD]
    # the obstacle claims' bar: P(forward into the ball) rises by >= 0.25 (the latent's "off" is b_dec, the mean)
    assert before.max() < 0.05 and (after - before).min() >= 0.25
    assert results["direct"][2]["f1"] < 0.5


def test_splicing_a_good_sae_barely_changes_the_action_loss(probes):
    model = ball_avoider("head1")
    acts = activations(model, probes.inputs, L0H1)
    sae, _ = train_sae(acts, SAEConfig(n_latents=8, k=1, steps=300, seed=0))
    out = spliced_loss(model, probes.inputs, L0H1, sae)
    assert abs(out["delta_loss"]) < 0.01, out


def test_save_and_load_round_trip_and_bad_files_are_one_line_errors(tmp_path):
    x, _ = sparse_dictionary_data(n=200)
    sae, _ = train_sae(x, SAEConfig(n_latents=8, k=2, steps=20))
    save_sae(tmp_path / "sae", sae, {"site": "blocks.0.hook_resid_post", "seed": 0})
    back, manifest = load_sae(tmp_path / "sae")
    assert manifest["site"] == "blocks.0.hook_resid_post" and manifest["k"] == 2
    assert torch.equal(back(x), sae(x))
    with pytest.raises(ConfigError, match="no readable SAE manifest"):
        load_sae(tmp_path / "missing")
    (tmp_path / "sae" / "sae.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ConfigError, match="does not load"):
        load_sae(tmp_path / "sae")
    with pytest.raises(ConfigError, match="k <= n_latents"):
        SAEConfig(n_latents=4, k=5)
