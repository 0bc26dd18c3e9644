"""Matplotlib figures: attribution bars, per-channel heatmaps, scan line plots, calibration and loss curves.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot, so importing
this module changes no global backend state and works headless (CI, worker processes). Every function returns
the Figure; :func:`save_png` writes it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dt_circuits.analysis.attribution import Attribution
from dt_circuits.analysis.scans import InjectionScan, RTGScan
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import write_bytes_atomic
from dt_circuits.env.spec import ACTION_NAMES, AGENT_VIEW_CELL, FRONT_VIEW_CELL
from dt_circuits.evaluation.calibration import Calibration

DIVERGING = "RdBu"


def _new(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def png_bytes(fig: Figure, *, dpi: int = 80) -> bytes:
    """``fig`` drawn as PNG, in memory (a worker process can draw a figure and hand back the bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_png(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 80) -> Path:
    """Write ``fig`` as PNG (parents created) atomically: an interrupted run never leaves half an image."""
    return write_bytes_atomic(Path(path), png_bytes(fig, dpi=dpi))


def _means(attr: Attribution | Mapping[str, float], grouped: bool) -> dict[str, float]:
    return attr.mean(grouped) if isinstance(attr, Attribution) else {k: float(v) for k, v in attr.items()}


def attribution_bars(
    attr: Attribution | Mapping[str, float],
    *,
    compare: Attribution | Mapping[str, float] | None = None,
    labels: tuple[str, str] = ("clean", "intervened"),
    grouped: bool = False,
    title: str | None = None,
) -> Figure:
    """Horizontal bars of mean term values (optionally side by side with ``compare``, as in Fig. 8-10)."""
    a = _means(attr, grouped)
    b = _means(compare, grouped) if compare is not None else None
    names = list(a) + [k for k in (b or {}) if k not in a]
    fig = _new((6.0, 0.32 * len(names) + 1.2))
    ax = fig.add_subplot()
    y = np.arange(len(names))
    h = 0.4 if b is not None else 0.7
    ax.barh(y - (h / 2 if b else 0), [a.get(n, 0.0) for n in names], height=h, label=labels[0], color="tab:blue")
    if b is not None:
        ax.barh(y + h / 2, [b.get(n, 0.0) for n in names], height=h, label=labels[1], color="tab:orange")
        ax.legend(loc="best", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8)
    direction = attr.direction if isinstance(attr, Attribution) else "direction"
    ax.set_xlabel(f"mean contribution to {direction} logit difference")
    ax.set_title(title or f"Direct logit attribution ({direction})", fontsize=10)
    return fig


def channel_heatmaps(
    weights: torch.Tensor | np.ndarray,
    *,
    channel_names: Sequence[str] | None = None,
    title: str | None = None,
    channels: Sequence[int] | None = None,
    ncols: int | None = None,
) -> Figure:
    """One 7x7 panel per channel of a (channels, 7, 7) [channel, x, y] array, diverging colours centred on 0.

    Each panel has its own symmetric range (the post's "colour ranges vary") and its own colour bar. The view is
    drawn as the agent sees it: x across, y down, the agent at the bottom centre (outlined), its front cell
    dotted.
    """
    w = _np(weights).astype(np.float64)
    if w.ndim != 3 or w.shape[1:] != (7, 7):
        raise ConfigError(f"heatmap weights must have shape (channels, 7, 7), got {w.shape}")
    chans = list(channels) if channels is not None else list(range(w.shape[0]))
    names = list(channel_names) if channel_names is not None else [f"channel {c}" for c in range(w.shape[0])]
    ncols = ncols or min(len(chans), 5)
    nrows = int(np.ceil(len(chans) / ncols))
    fig = _new((2.6 * ncols, 2.4 * nrows + (0.4 if title else 0)))
    for i, c in enumerate(chans):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        panel = w[c].T  # rows = y, columns = x
        lim = float(np.abs(panel).max()) or 1.0
        im = ax.imshow(panel, cmap=DIVERGING, norm=TwoSlopeNorm(0.0, -lim, lim))
        for (x, y), style in ((AGENT_VIEW_CELL, "-"), (FRONT_VIEW_CELL, ":")):
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, ec="black", lw=1.2, ls=style))
        ax.set_title(names[c], fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _action_probs(ax, x: np.ndarray, mean_probs: np.ndarray, xlabel: str) -> None:
    """One line per action: mean probability against ``x`` (a scan's RTGs or coefficients)."""
    for a in range(mean_probs.shape[-1]):
        ax.plot(x, mean_probs[:, a], label=ACTION_NAMES[a] if a < len(ACTION_NAMES) else str(a))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean P(action)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)


def rtg_scan_plot(scan: RTGScan, *, terms: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """Mean action probabilities over RTG (left) and mean attribution terms over RTG (right)."""
    fig = _new((10.0, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    _action_probs(ax1, scan.rtgs, scan.mean_probs, "RTG")
    chosen = list(terms) if terms is not None else [k for k, v in scan.terms.items() if np.abs(v).max() > 0]
    for k in chosen:
        ax2.plot(scan.rtgs, scan.terms[k].mean(axis=1), label=k)
    ax2.plot(scan.rtgs, scan.logit_diff.mean(axis=1), color="black", lw=2, label="total")
    ax2.axhline(0, color="grey", lw=0.6)
    ax2.set_xlabel("RTG")
    ax2.set_ylabel(f"mean {scan.direction} contribution")
    ax2.legend(fontsize=6, ncol=2)
    fig.suptitle(title or f"RTG scan over {scan.probs.shape[1]} states", fontsize=10)
    return fig


def injection_scan_plot(scan: InjectionScan, *, title: str | None = None) -> Figure:
    """Mean action probabilities and mean logit difference against the injection coefficient."""
    fig = _new((10.0, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    _action_probs(ax1, scan.coeffs, scan.mean_probs, "injection coefficient")
    lo, hi = np.quantile(scan.logit_diff, [0.1, 0.9], axis=1)
    ax2.fill_between(scan.coeffs, lo, hi, alpha=0.25, label="10-90 % of states")
    ax2.plot(scan.coeffs, scan.logit_diff.mean(axis=1), color="black", label="mean")
    ax2.axhline(0, color="grey", lw=0.6)
    ax2.set_xlabel("injection coefficient")
    ax2.set_ylabel(f"{scan.direction} logit difference")
    ax2.legend(fontsize=8)
    fig.suptitle(title or f"Injection scan at {scan.site}", fontsize=10)
    return fig


def line_plot(
    x: Sequence[float] | np.ndarray | torch.Tensor,
    y: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
) -> Figure:
    """A plain line plot, e.g. the time embedding projected on forward-right over t (Fig. 11)."""
    fig = _new((6.0, 3.2))
    ax = fig.add_subplot()
    ax.plot(_np(x), _np(y), lw=0.8)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return fig


def calibration_figure(cal: Calibration, title: str = "") -> Figure:
    """Post-style calibration figure (Fig. 5): mean reward, 95 % band, ideal diagonal; outcome rates below."""
    rows = cal.rows()
    x = np.array([r["rtg"] for r in rows])
    mean = np.array([r["mean_reward"] for r in rows])
    lo = np.array([r["band_95"][0] for r in rows])
    hi = np.array([r["band_95"][1] for r in rows])
    fig = _new((6.5, 7))
    ax, bx = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    ax.fill_between(x, lo, hi, alpha=0.25, color="tab:blue", label="95% of episode rewards")
    ax.plot(x, mean, "-o", color="tab:blue", ms=3, label="mean reward")
    ax.plot([-1, 1], [-1, 1], ":", color="teal", label="perfect calibration")
    ax.set_ylabel("reward obtained")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"RTG calibration ({rows[0]['episodes']} episodes per RTG, sampled actions)")
    for o, c in (("goal", "tab:red"), ("timeout", "tab:green"), ("collision", "tab:blue")):
        bx.plot(x, [r[f"{o}_rate"] for r in rows], "-o", ms=3, color=c, label=o)
    bx.set_xlabel("initial RTG")
    bx.set_ylabel("outcome rate")
    bx.set_ylim(-0.02, 1.02)
    bx.legend(fontsize=8)
    return fig


def loss_curve_figure(curve: Mapping[str, Any], title: str = "") -> Figure:
    """Training loss and accuracy per logged step, and the in-env outcome rates at each evaluation."""
    fig = _new((11, 4))
    ax, ex = fig.subplots(1, 2)
    ax.plot(curve["step"], curve["loss"], label="cross-entropy")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax2 = ax.twinx()
    ax2.plot(curve["step"], curve["accuracy"], color="tab:orange", alpha=0.6, label="accuracy")
    ax2.set_ylabel("action accuracy")
    ax.set_title("training loss")
    evals = curve.get("eval") or []
    if evals:
        steps = [e["step"] for e in evals]
        colours = [f"C{k}" for k in range(10)]
        for k, rtg in enumerate(evals[0]["results"]):
            for outcome, style in (("goal_rate", "-"), ("timeout_rate", "--"), ("collision_rate", ":")):
                ex.plot(steps, [e["results"][rtg][outcome] for e in evals], style, marker="o", ms=3,
                        color=colours[k % len(colours)], label=f"RTG {rtg} {outcome.split('_')[0]}")  # fmt: skip
        ex.legend(fontsize=6, ncol=2)
    ex.set_xlabel("optimizer step")
    ex.set_ylabel("rate (sampled actions)")
    ex.set_ylim(-0.02, 1.02)
    ex.set_title("in-env evaluation during training")
    fig.suptitle(title)
    return fig


def path_bars(
    panels: Mapping[str, Mapping[str, Mapping[str, float]]], *, ylabel: str, title: str | None = None
) -> Figure:
    """Grouped bars of path effects: one panel per entry of ``panels`` (e.g. a checkpoint), one group per sender
    (e.g. a head), one bar per path (``direct``, ``mlp``, ``total``)."""
    if not panels:
        raise ConfigError("path_bars needs at least one panel")
    fig = _new((3.4 * len(panels), 3.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, groups) in zip(axes, panels.items(), strict=True):
        senders = list(groups)
        kinds = list(next(iter(groups.values())))
        width = 0.8 / len(kinds)
        for j, kind in enumerate(kinds):
            vals = [groups[s][kind] for s in senders]
            ax.bar(np.arange(len(senders)) + (j - (len(kinds) - 1) / 2) * width, vals, width, label=kind)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xticks(np.arange(len(senders)), senders, fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
