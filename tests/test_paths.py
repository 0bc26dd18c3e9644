"""Path patching from input tokens and by head path: exact identities of a one-layer model without LayerNorm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.analysis import paths
from dt_circuits.analysis.attribution import logit_diff_metric, residual_direction
from dt_circuits.analysis.interventions import Inputs, run
from dt_circuits.core.errors import ConfigError
from dt_circuits.env.scenarios import in_front
from tests.test_interventions import MODELS

METRIC = logit_diff_metric("forward-right")
OBSTACLE = in_front("obstacle")
BASE = Inputs.make(OBSTACLE.obs[:32], -1.0, np.arange(32))
SOURCE = BASE.with_rtg(0.9)


def m(model, inputs, hooks=None) -> np.ndarray:
    return METRIC(run(model, inputs, hooks)).numpy()


@pytest.mark.parametrize("encoding", sorted(MODELS))
def test_rtg_through_every_head_is_the_whole_rtg_switch(encoding):
    """The RTG token reaches the state position only through the heads' keys and values at its position."""
    model = MODELS[encoding]
    hooks = [h for head in ("L0H0", "L0H1") for h in paths.token_head_hooks(model, BASE, SOURCE, "rtg", head)]
    np.testing.assert_allclose(m(model, BASE, hooks), m(model, SOURCE), atol=1e-4)


@pytest.mark.parametrize("encoding", sorted(MODELS))
@pytest.mark.parametrize("token", ["rtg", "state"])
def test_token_paths_add_up_and_vanish_without_a_change(encoding, token):
    model = MODELS[encoding]
    for head in ("L0H0", "L0H1"):
        full = paths.token_path_effect(model, BASE, SOURCE, token, head, METRIC)
        direct = paths.token_path_effect(model, BASE, SOURCE, token, head, METRIC, "unembed")
        via_mlp = paths.token_path_effect(model, BASE, SOURCE, token, head, METRIC, "mlp")
        np.testing.assert_allclose(direct + via_mlp, full, atol=1e-4)
        assert np.allclose(paths.token_path_effect(model, BASE, BASE, token, head, METRIC), 0.0, atol=1e-6)
    if token == "rtg":  # a real effect (else the identities above are vacuous)
        assert np.abs(paths.token_path_effect(model, BASE, SOURCE, "rtg", "L0H0", METRIC)).mean() > 1e-3


@pytest.mark.parametrize("encoding", sorted(MODELS))
def test_head_paths_add_up(encoding):
    model = MODELS[encoding]
    for head in ("L0H0", "L0H1"):
        eff = paths.head_path_effects(model, BASE, SOURCE, head, METRIC)
        np.testing.assert_allclose(eff["direct"] + eff["mlp"], eff["total"], atol=1e-4)
        # with only RTG changed, the head's output change is exactly the RTG token's path through it
        np.testing.assert_allclose(
            eff["total"], paths.token_path_effect(model, BASE, SOURCE, "rtg", head, METRIC), atol=1e-4
        )


@pytest.mark.parametrize("encoding", sorted(MODELS))
def test_attention_knockout_and_rtg_value_push(encoding):
    model = MODELS[encoding]
    att = paths.attention(model, BASE, "L0H1", "rtg")
    np.testing.assert_allclose(att + paths.attention(model, BASE, "L0H1", "state"), 1.0, atol=1e-6)
    hooks = paths.attention_knockout_hooks(model, "L0H1", "rtg")
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        _, cache = model.run_with_cache(*BASE.args, names_filter=["blocks.0.attn.hook_pattern"])
    assert torch.all(cache["blocks.0.attn.hook_pattern"][:, 1, 1, 0] == 0)
    # at attention 1 on RTG, the head's direct write along forward-right is its RTG value push (no b_O: shared)
    on_rtg = paths.attention_knockout_hooks(model, "L0H1", "state")
    with torch.no_grad(), model.hooks(fwd_hooks=on_rtg):
        _, cache = model.run_with_cache(*BASE.args, names_filter=["blocks.0.attn.hook_result"])
    r = residual_direction(model, "forward-right")
    written = (cache["blocks.0.attn.hook_result"][:, 1, 1].double() @ r).numpy()
    np.testing.assert_allclose(paths.rtg_value_push(model, BASE, "L0H1", r), written, atol=1e-4)


def test_paths_refuse_what_is_not_a_head_or_token():
    model = MODELS["index"]
    with pytest.raises(ConfigError, match="not an attention head"):
        paths.token_path_effect(model, BASE, SOURCE, "rtg", "mlp", METRIC)
    with pytest.raises(ConfigError, match="unknown token"):
        paths.token_head_hooks(model, BASE, SOURCE, "action", "L0H0")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="same batch size"):
        paths.token_head_hooks(model, BASE, SOURCE[:3], "rtg", "L0H0")
