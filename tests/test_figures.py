"""Every figure renders headless to a non-empty PNG."""

from __future__ import annotations

import numpy as np
import pytest

from dt_circuits.analysis.attribution import attribute
from dt_circuits.analysis.circuits import ov_view, qk_view
from dt_circuits.analysis.embeddings import input_channel_names, state_embedding_projection, time_embedding_projection
from dt_circuits.analysis.figures import (
    attribution_bars,
    channel_heatmaps,
    injection_scan_plot,
    line_plot,
    rtg_scan_plot,
    save_png,
)
from dt_circuits.analysis.interventions import Inputs, ablation_hooks
from dt_circuits.analysis.scans import injection_scan, rtg_scan
from dt_circuits.core.errors import ConfigError
from tests.test_interventions import DATASET, MODELS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_attribution_bars(tmp_path):
    model = MODELS["index"]
    inp = DATASET[:16]
    clean = attribute(model, inp, "forward-right")
    ablated = attribute(model, inp, "forward-right", fwd_hooks=ablation_hooks(model, "L0H1", "zero"))
    assert_png(save_png(attribution_bars(clean, grouped=True), tmp_path / "single.png"))
    fig = attribution_bars(clean, compare=ablated, labels=("clean", "L0H1 zero"), title="before/after")
    assert_png(save_png(fig, tmp_path / "sub" / "compare.png"))  # parents are created


@pytest.mark.parametrize("name", sorted(MODELS))
def test_channel_heatmaps_for_index_and_one_hot(tmp_path, name):
    model = MODELS[name]
    names = input_channel_names(model)
    views = [
        ("ov", ov_view(model, 0, 1, "forward").weights),
        ("qk", qk_view(model, 0, 1, rtg=0.9).weights),
        ("embed", state_embedding_projection(model, "forward-right")),
    ]
    for label, weights in views[: 3 if name == "index" else 1]:  # 20 one-hot panels are slow to lay out
        assert weights.shape == (len(names), 7, 7)
        assert_png(save_png(channel_heatmaps(weights, channel_names=names, title=label), tmp_path / f"{label}.png"))
    with pytest.raises(ConfigError, match="channels, 7, 7"):
        channel_heatmaps(np.zeros((3, 7)))


def test_scan_and_line_plots(tmp_path):
    model = MODELS["index"]
    scan = rtg_scan(model, DATASET.obs[:8], np.linspace(-1, 1, 9))
    assert_png(save_png(rtg_scan_plot(scan), tmp_path / "rtg.png"))
    clean, corrupt = Inputs.make(DATASET.obs[:8], 0.9, 0), Inputs.make(DATASET.obs[:8], -1.0, 0)
    inj = injection_scan(model, clean, corrupt, "blocks.0.hook_resid_mid", np.linspace(-1, 2, 7))
    assert_png(save_png(injection_scan_plot(inj), tmp_path / "inj.png"))
    times = time_embedding_projection(model, "forward-right")
    fig = line_plot(np.arange(len(times)), times, xlabel="t", ylabel="W_time . (forward-right)", title="Fig 11")
    assert_png(save_png(fig, tmp_path / "time.png"))
