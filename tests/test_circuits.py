"""QK/OV circuits: FactoredMatrix products equal the explicit matrices, and the views reproduce the model."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformer_lens import FactoredMatrix

from dt_circuits.analysis.attribution import attribute, direction_vector
from dt_circuits.analysis.circuits import obs_ov, obs_rtg_qk, ov_circuit, ov_view, qk_circuit, qk_view, rtg_ov
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import RTG_POS, STATE_POS
from tests.helpers import random_model
from tests.test_interventions import MODELS, input_batches


def w(t: torch.Tensor) -> torch.Tensor:
    return t.detach().double()


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("head", [0, 1])
def test_factored_matrices_equal_the_explicit_products(name, head):
    model = MODELS[name]
    attn = model.blocks[0].attn
    wq, wk, wv, wo = w(attn.W_Q[head]), w(attn.W_K[head]), w(attn.W_V[head]), w(attn.W_O[head])
    scale = 1 / math.sqrt(model.cfg.d_head)
    expected = {
        "qk": (qk_circuit(model, 0, head), wq @ wk.T),
        "ov": (ov_circuit(model, 0, head), wv @ wo),
        "obs_rtg_qk": (obs_rtg_qk(model, 0, head), (w(model.W_state) @ wq @ wk.T @ w(model.W_rtg))[:, None] * scale),
        "obs_ov": (obs_ov(model, 0, head), w(model.W_state) @ wv @ wo @ w(model.W_U)),
    }
    n_in = model.cfg.n_obs_inputs
    shapes = {"qk": (128, 128), "ov": (128, 128), "obs_rtg_qk": (n_in, 1), "obs_ov": (n_in, 3)}
    for key, (fm, explicit) in expected.items():
        assert isinstance(fm, FactoredMatrix) and tuple(fm.shape) == shapes[key]
        assert fm.mdim == model.cfg.d_head  # kept factored through the head dimension
        assert torch.allclose(fm.AB, explicit, atol=1e-10, rtol=1e-9), key
    u = direction_vector("forward-right")
    assert torch.allclose(obs_ov(model, 0, head) @ u, expected["obs_ov"][1] @ u, atol=1e-10)


@settings(max_examples=30)
@given(inp=input_batches(), name=st.sampled_from(sorted(MODELS)), head=st.sampled_from([0, 1]))
def test_views_with_biases_reproduce_scores_and_head_attribution_terms(inp, name, head):
    model = MODELS[name]
    t = int(inp.timestep[0])
    inp = type(inp).make(inp.obs, inp.rtg, t)  # one timestep per batch: the views fix it
    with torch.no_grad():
        _, cache = model.run_with_cache(*inp.args)
    scores = cache["blocks.0.attn.hook_attn_scores"][:, head, STATE_POS, RTG_POS].double()
    pattern = cache["blocks.0.attn.hook_pattern"][:, head, STATE_POS].double()
    attr = attribute(model, inp, "forward-right")
    for i in range(len(inp)):
        rtg = float(inp.rtg[i])
        view = qk_view(model, 0, head, rtg=rtg, timestep=t)
        assert view.weights.shape == (model.cfg.n_obs_inputs // 49, 7, 7)
        assert torch.allclose(view.score(model, inp.obs[i : i + 1]), scores[i : i + 1], atol=1e-4)
        per_rtg, bias = rtg_ov(model, 0, head, "forward-right", timestep=t)
        rtg_term = pattern[i, RTG_POS] * (rtg * per_rtg + bias)
        assert float(rtg_term) == pytest.approx(float(attr.terms[f"L0H{head} <- rtg"][i]), abs=1e-5)
    ov = ov_view(model, 0, head, "forward-right", timestep=t)
    state_term = pattern[:, STATE_POS] * ov.value(model, inp.obs)
    assert torch.allclose(state_term, attr.terms[f"L0H{head} <- state"], atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bias_free_views_are_the_post_figures(name):
    model = MODELS[name]
    n_channels = model.cfg.n_obs_inputs // 49
    qk = qk_view(model, 0, 1, rtg=0.9, biases=False)
    assert qk.bias == 0.0 and qk.weights.shape == (n_channels, 7, 7)
    assert torch.allclose(qk.weights.flatten(), obs_rtg_qk(model, 0, 1).AB[:, 0] * 0.9)
    ov = ov_view(model, 0, 1, "forward", biases=False)
    assert ov.bias == 0.0 and ov.weights.shape == (n_channels, 7, 7)
    assert torch.allclose(ov.weights.flatten(), obs_ov(model, 0, 1).AB[:, 2])
    assert ov.direction == "forward"


def test_unknown_heads_and_non_embedding_layers_are_refused():
    model = MODELS["index"]
    with pytest.raises(ConfigError, match="unknown head 2"):
        qk_circuit(model, 0, 2)
    with pytest.raises(ConfigError, match="unknown layer 1"):
        ov_view(model, 1, 0)
    two = random_model(0, n_layers=2)
    assert tuple(ov_circuit(two, 1, 0).shape) == (128, 128)  # weight circuits exist in every layer
    with pytest.raises(ConfigError, match="layer 0"):
        qk_view(two, 1, 0)
    with pytest.raises(ConfigError, match="timestep 5000"):
        qk_view(model, 0, 0, timestep=5000)
