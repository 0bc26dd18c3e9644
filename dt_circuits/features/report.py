"""The localisation table as a static report: two figures and the table, in one folder (index.html + PNGs).

What a researcher looks at first: where along the model each variable becomes decodable beyond the majority class
(a heatmap of probe accuracy minus majority, variable × site), and which method's subspace moves the behaviour at
the sites localised by interchange (IIA bars per method). Written from the table's JSON alone, so a table computed
once (``docs/features/*.json``) is drawn again without the model. index.html is written last, atomically.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dt_circuits.analysis.figures import save_png
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import write_text_atomic
from dt_circuits.features.readme_table import _caption, _on_policy_rows, _rows

METHODS = ("das", "probe", "neuron", "sae")


def probe_figure(table: dict[str, Any], path: Path) -> Path:
    """Heatmap: held-out probe accuracy above the majority class, per variable (rows) and site (columns)."""
    variables, sites = list(table["variables"]), list(table["sites"])
    probes = {(p["variable"], p["site"]): p for p in table["probes"]}
    gain = np.array([[probes[(v, s)]["accuracy"] - probes[(v, s)]["majority"] for s in sites] for v in variables])
    fig = Figure(figsize=(1.2 + 0.55 * len(sites), 1.9 + 0.45 * len(variables)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    im = ax.imshow(gain, cmap="viridis", vmin=min(0.0, float(gain.min())), vmax=max(0.5, float(gain.max())))
    ax.set_xticks(range(len(sites)), sites, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(variables)), variables, fontsize=7)
    for (i, j), g in np.ndenumerate(gain):
        ax.text(j, i, f"{g:+.2f}", ha="center", va="center", fontsize=6, color="w" if g < 0.3 else "k")
    ax.set_title(f"{table['checkpoint']}: probe accuracy − majority class (held out)", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return save_png(fig, path)


def iia_figure(table: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars, one panel per variable localised by interchange: held-out IIA of each method's subspace at
    each site (None: no site was)."""
    rows = table.get("iia") or []
    if not rows:
        return None
    names = list(dict.fromkeys(r["variable"] for r in rows))
    methods = [m for m in METHODS if any(r.get(m) is not None for r in rows)]
    n_sites = max(sum(r["variable"] == name for r in rows) for name in names)
    fig = Figure(figsize=(max(5.0, 1.5 + 1.1 * n_sites), 2.6 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    width = 0.8 / len(methods)
    for ax, name in zip(np.atleast_1d(fig.subplots(len(names), 1)), names, strict=True):
        mine = [r for r in rows if r["variable"] == name]
        for k, m in enumerate(methods):
            values = [np.nan if r.get(m) is None else float(r[m]) for r in mine]
            ax.bar(np.arange(len(mine)) + (k - (len(methods) - 1) / 2) * width, values, width, label=m)
        ax.set_xticks(range(len(mine)), [r["site"] for r in mine], rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 1.2)  # headroom for the legend above the bars
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("IIA (held out)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_title(f"{table['checkpoint']}: {name} by interchange", fontsize=8)
        ax.legend(fontsize=6, ncol=len(methods), loc="upper center")
    return save_png(fig, path)


def check_table(table: Any) -> dict[str, Any]:
    """``table`` if it has what the text and the figures read, else a one-line ConfigError naming what is missing."""
    if not isinstance(table, dict):
        raise ConfigError("not a features table: expected a JSON object")
    for field in ("checkpoint", "sha256", "variables", "sites", "probes", "iia", "seed", "seconds"):
        if field not in table:
            raise ConfigError(f"not a features table: no {field!r}")
    return table


def write_features_report(directory: str | Path, table: dict[str, Any]) -> Path:
    """index.html (caption, table, figures) and its PNGs in ``directory``; returns index.html."""
    check_table(table)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    e = html.escape
    probes = probe_figure(table, out / "probes.png")
    iia = iia_figure(table, out / "iia.png")
    on_policy = _on_policy_section(table, out)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>features: {e(table['checkpoint'])}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2em .5em;font-size:.85em}img{display:block;margin:.5em 0}</style>"
        f"</head><body><h1>Features of {e(table['checkpoint'])}</h1><p>{e(_caption(table))}</p>"
        f"<img src='{probes.name}' alt='probe accuracy above the majority class, variable by site'>"
        + (f"<img src='{iia.name}' alt='held-out IIA per method and site'>" if iia else "")
        + _html_table(*_rows(table)) + on_policy + "</body></html>"
    )  # fmt: skip
    return write_text_atomic(out / "index.html", page)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    cells = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + f"</tr>{cells}</table>"


def _on_policy_section(table: dict[str, Any], out: Path) -> str:
    """The probes on the agent's own states (when the table has them): a heatmap like the generated states' and
    the rows, under their own heading; "" otherwise."""
    on = _on_policy_rows(table)
    if on is None:
        return ""
    caption, header, rows = on
    drawn = {"checkpoint": f"{table['checkpoint']}, on-policy", "variables": table["on_policy"]["variables"],
             "sites": table["sites"], "probes": table["on_policy"]["probes"]}  # fmt: skip
    figure = probe_figure(drawn, out / "probes-on-policy.png")
    e = html.escape
    return (
        f"<h2>On the agent's own states</h2><p>{e(caption)}</p>"
        f"<img src='{figure.name}' alt='on-policy probe accuracy above the majority class, variable by site'>"
        + _html_table(header, rows)
    )
