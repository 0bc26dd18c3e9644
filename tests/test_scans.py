"""RTG and injection scans: batched equals one-at-a-time, end points are the clean/corrupt runs, exact sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dt_circuits.analysis.attribution import direction_vector
from dt_circuits.analysis.interventions import Inputs, ablation_hooks, run
from dt_circuits.analysis.scans import injection_scan, rtg_scan
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import STATE_POS
from tests.test_interventions import DATASET, MODELS

OBS = DATASET.obs[:10]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_rtg_scan_matches_separate_runs_and_chunking_does_not_matter(name):
    model = MODELS[name]
    rtgs = np.linspace(-1, 1, 7)
    scan = rtg_scan(model, OBS, rtgs, timestep=4, direction="forward-right", batch_size=9)  # chunks cut rows
    assert scan.probs.shape == (7, 10, 3) and scan.logit_diff.shape == (7, 10)
    for i, r in enumerate(rtgs):
        logits = run(model, Inputs.make(OBS, float(r), 4)).double()
        np.testing.assert_allclose(scan.probs[i], torch.softmax(logits, -1).numpy(), atol=1e-6)
        np.testing.assert_allclose(scan.logit_diff[i], (logits @ direction_vector("forward-right")).numpy(), atol=1e-5)
    total = sum(scan.terms.values())
    np.testing.assert_allclose(total, scan.logit_diff, atol=1e-5)
    again = rtg_scan(model, OBS, rtgs, timestep=4, direction="forward-right")
    np.testing.assert_allclose(again.probs, scan.probs, atol=1e-6)
    assert scan.mean_probs.shape == (7, 3) and scan.direction == "forward-right"


def test_rtg_scan_under_an_ablation():
    model = MODELS["index"]
    hooks = ablation_hooks(model, "L0H1", "zero")
    scan = rtg_scan(model, OBS, [0.0, 0.9], fwd_hooks=hooks)
    logits = run(model, Inputs.make(OBS, 0.9, 0), hooks).double()
    np.testing.assert_allclose(scan.probs[1], torch.softmax(logits, -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(sum(scan.terms.values()), scan.logit_diff, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_injection_scan_end_points_and_linearity(name):
    model = MODELS[name]
    clean = Inputs.make(OBS, 0.9, 3)
    corrupt = Inputs.make(DATASET.obs[10:20], -0.3, 7)
    coeffs = np.array([0.0, 0.5, 1.0, 2.0])
    scan = injection_scan(model, clean, corrupt, "blocks.0.hook_resid_pre", coeffs, batch_size=7)
    u = direction_vector("forward-right")
    np.testing.assert_allclose(scan.logit_diff[0], (run(model, clean).double() @ u).numpy(), atol=1e-5)
    np.testing.assert_allclose(scan.logit_diff[2], (run(model, corrupt).double() @ u).numpy(), atol=1e-5)
    # at the final residual the readout is linear, so the logit difference is affine in the coefficient
    last = injection_scan(model, clean, corrupt, "blocks.0.hook_resid_post", coeffs, pos=STATE_POS)
    d = last.logit_diff
    np.testing.assert_allclose(d[1] - d[0], 0.5 * (d[2] - d[0]), atol=1e-5)
    np.testing.assert_allclose(d[3] - d[0], 2.0 * (d[2] - d[0]), atol=1e-5)
    np.testing.assert_allclose(d[2], (run(model, corrupt).double() @ u).numpy(), atol=1e-5)
    assert last.site == "blocks.0.hook_resid_post @ pos 1"


def test_injection_at_a_head_touches_only_that_head():
    model = MODELS["index"]
    clean, corrupt = Inputs.make(OBS, 0.9, 0), Inputs.make(OBS, -1.0, 0)
    scan = injection_scan(model, clean, corrupt, "L0H0", [1.0])
    src = {}

    def keep(act, hook):
        src["z"] = act
        return act

    run(model, corrupt, [("blocks.0.attn.hook_z", keep)])

    def patch(act, hook):
        out = act.clone()
        out[:, :, 0] = src["z"][:, :, 0]
        return out

    expected = run(model, clean, [("blocks.0.attn.hook_z", patch)]).double() @ direction_vector("forward-right")
    np.testing.assert_allclose(scan.logit_diff[0], expected.numpy(), atol=1e-5)
    with pytest.raises(ConfigError, match="same number of states"):
        injection_scan(model, clean, corrupt[:3], "L0H0", [1.0])
    with pytest.raises(ConfigError, match="finite"):
        injection_scan(model, clean, corrupt, "L0H0", [float("nan")])
