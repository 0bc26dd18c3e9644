"""Regenerate docs/figures/*.png from the reference checkpoint: one example of each primitive's figure.

Run from the repo root: ``.venv/bin/python docs/make_figures.py``. Deterministic (seeded families, no sampling).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from dt_circuits import load_checkpoint
from dt_circuits.analysis.attribution import attribute, logit_diff_metric
from dt_circuits.analysis.circuits import ov_view, qk_view
from dt_circuits.analysis.embeddings import input_channel_names, state_embedding_projection, time_embedding_projection
from dt_circuits.analysis.figures import (
    attribution_bars,
    channel_heatmaps,
    injection_scan_plot,
    line_plot,
    path_bars,
    rtg_scan_plot,
    save_png,
)
from dt_circuits.analysis.interventions import Inputs, ablation_hooks, dataset_means
from dt_circuits.analysis.patching import edit_family, remove_front_obstacle
from dt_circuits.analysis.paths import head_path_effects
from dt_circuits.analysis.scans import injection_scan, rtg_scan
from dt_circuits.core.paths import CHECKPOINTS_DIR, reference_checkpoint
from dt_circuits.env.scenarios import in_front, random_walk

OUT = Path(__file__).resolve().parent / "figures"
DPI = 80


def main() -> int:
    torch.set_num_threads(1)
    path = reference_checkpoint()
    if not path.exists():
        print(f"reference checkpoint missing at {path}", file=sys.stderr)
        return 1
    model = load_checkpoint(path)
    names = input_channel_names(model)
    obstacle = in_front("obstacle")
    cleared = edit_family(obstacle, remove_front_obstacle, name="obstacle-removed")
    inputs = Inputs.make(obstacle.obs, 0.9, 0)
    walk = random_walk(2000, seed=0)
    means = dataset_means(model, Inputs.make(walk.obs, 0.9, 0), ["L0H1"])

    clean = attribute(model, inputs, "forward-right")
    ablated = attribute(model, inputs, "forward-right", fwd_hooks=ablation_hooks(model, "L0H1", "mean", means=means))
    fig = attribution_bars(
        clean,
        compare=ablated,
        labels=("clean", "L0H1 mean-ablated"),
        title=f"Obstacle in front, RTG 0.9 ({len(obstacle)} states): direct attribution",
    )
    written = [save_png(fig, OUT / "attribution_obstacle_head1.png", dpi=DPI)]

    fig = channel_heatmaps(
        state_embedding_projection(model, "forward-right"),
        channel_names=names,
        title="State embedding . (forward - right) per input (Fig. 14)",
    )
    written.append(save_png(fig, OUT / "embedding_forward_right.png", dpi=DPI))
    fig = channel_heatmaps(
        qk_view(model, 0, 1, rtg=1.0, biases=False).weights,
        channel_names=names,
        title="L0H1 QK: observation input -> score for the RTG token, per unit RTG (Fig. 16)",
    )
    written.append(save_png(fig, OUT / "qk_head1.png", dpi=DPI))
    fig = channel_heatmaps(
        ov_view(model, 0, 1, "forward", biases=False).weights,
        channel_names=names,
        title="L0H1 OV: observation input -> forward logit (Fig. 17)",
    )
    written.append(save_png(fig, OUT / "ov_head1_forward.png", dpi=DPI))

    scan = rtg_scan(model, obstacle.obs, np.linspace(-1, 1, 41), direction="forward-right")
    fig = rtg_scan_plot(
        scan,
        terms=["state_embed", "L0H0 <- rtg", "L0H0 <- state", "L0H1 <- rtg", "L0H1 <- state", "L0 MLP"],
        title="Obstacle in front: behaviour and attribution over RTG",
    )
    written.append(save_png(fig, OUT / "rtg_scan_obstacle.png", dpi=DPI))

    inj = injection_scan(
        model,
        inputs,
        Inputs.make(cleared.obs, 0.9, 0),
        "L0H1",
        np.linspace(-1, 3, 33),
        direction="forward-right",
    )
    fig = injection_scan_plot(inj, title="Obstacle in front + c x (L0H1 without obstacle - with obstacle)")
    written.append(save_png(fig, OUT / "injection_head1_obstacle_removed.png", dpi=DPI))

    times = time_embedding_projection(model, "forward-right")
    fig = line_plot(
        np.arange(len(times)),
        times,
        xlabel="timestep",
        ylabel="W_time[t] . (forward - right)",
        title="Time embedding projected on forward - right (Fig. 11)",
    )
    written.append(save_png(fig, OUT / "time_embedding_forward_right.png", dpi=DPI))

    # path patching: each head's output switched from RTG 0.9 to RTG -1 (ball in front), split by path
    metric = logit_diff_metric("forward-right")
    panels = {}
    for name, m in (("DTI reference", model), ("raw-index (ours)", load_checkpoint(CHECKPOINTS_DIR / "raw-index"))):
        base = Inputs.make(obstacle.obs, 0.9, 0)
        panels[name] = {
            head: {k: float(v.mean()) for k, v in head_path_effects(m, base, base.with_rtg(-1.0), head, metric).items()}
            for head in ("L0H0", "L0H1")
        }
    fig = path_bars(
        panels,
        ylabel="Δ logit(forward) - logit(right)",
        title="Ball in front: each head's output from RTG −1 instead of 0.9, by path",
    )
    written.append(save_png(fig, OUT / "path_patching_heads_rtg.png", dpi=DPI))
    for p in written:
        print(f"{p.relative_to(OUT.parent.parent)}  {p.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
