"""A static HTML report of a claims run: the verdict table, each check's numbers, and its per-example spread.

Everything is in one folder (index.html + PNGs) so it can be attached to a CI run or opened from disk. Every
file is written atomically, and index.html last, so a report that has an index is a complete one. The figures are
drawn over the claims' worker processes (matplotlib's layout and drawing were ~13 s of a 29-claim report in one
process on the AMD EPYC, as long as the claims themselves); this process writes every file.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dt_circuits.analysis.figures import png_bytes
from dt_circuits.claims.evaluation.results import mediation_text, reading_text, recipe_dependence_text
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.suite.run import ClaimRun
from dt_circuits.core.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from dt_circuits.evaluation.pool import fork_map

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.holds{color:#1a7f37;font-weight:600}.fails{color:#b42318;font-weight:600}.mismatch{background:#fff1f0}
code{background:#f4f4f4;padding:0 .2em}img{max-width:46em;display:block;margin:.5em 0}
"""


def _f(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x:+.4f}"


def _interval(c) -> str:
    """A check's interval, or why it has none (a ratio over 0)."""
    return f"undefined ({c.undefined})" if c.undefined else f"[{_f(c.ci_low)}, {_f(c.ci_high)}]"


def check_figure(run: ClaimRun) -> Figure:
    """One row per check: the per-example values, their mean and CI, and the bound the CI must clear."""
    checks = run.verdict.checks
    fig = Figure(figsize=(7, 0.9 + 0.8 * len(checks)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(checks), 1, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, c in zip(axes[:, 0], checks, strict=True):
        vals = c.values
        if c.effect != c.effect:  # an empty on-policy sample, or an undefined number: nothing to draw
            why = f"undefined ({c.undefined})" if c.undefined else "no states"
            ax.set_title(f"✗ {c.name}: {why}", fontsize=8, loc="left")
            ax.set_yticks([])
            continue
        jitter = rng.uniform(-0.15, 0.15, len(vals))
        ax.scatter(vals, jitter, s=6, alpha=0.4, color="#1f77b4" if c.holds else "#d62728")
        ax.errorbar([c.effect], [0], xerr=[[c.effect - c.ci_low], [c.ci_high - c.effect]], fmt="k|", capsize=4)
        for bound in (b for b in c.bound.replace("≥", "").replace("≤", "").split(" and ") if b.strip()):
            ax.axvline(float(bound), color="grey", ls="--", lw=1)
        ax.set_yticks([])
        ax.set_title(f"{'✓' if c.holds else '✗'} {c.name} (needs {c.bound})", fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    return fig


def counterexample_figure(cx, subject: Subject) -> Figure:
    """The full grid of a counterexample state, rendered by the real env (what a researcher would look at)."""
    subject.renderer.place(cx.state)
    frame = subject.renderer.env.get_frame(highlight=True, tile_size=24)
    fig = Figure(figsize=(2.6, 2.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(frame)
    ax.set_axis_off()
    ax.set_title(f"RTG {cx.rtg:.2f}, t={cx.timestep}", fontsize=8)
    return fig


def _figure_png(shared: tuple[Subject, list[ClaimRun]], task: tuple[int, int | None]) -> bytes:
    """A claim's check figure (``(i, None)``) or its j-th counterexample's image (``(i, j)``), as PNG bytes."""
    subject, runs = shared
    i, j = task
    run = runs[i]
    figure = check_figure(run) if j is None else counterexample_figure(run.verdict.counterexamples[j], subject)
    return png_bytes(figure)


def _figure_name(run: ClaimRun, j: int | None) -> str:
    return f"{run.claim.id}.png" if j is None else f"{run.claim.id}-counterexample-{j}.png"


def write_report(directory: Path, subject: Subject, runs: list[ClaimRun], data: dict[str, Any]) -> Path:
    """Write index.html, results.json and one PNG per claim into ``directory``; returns index.html."""
    directory.mkdir(parents=True, exist_ok=True)
    tasks: list[tuple[int, int | None]] = []
    for i, r in enumerate(runs):
        tasks.append((i, None))
        tasks += [(i, j) for j, cx in enumerate(r.verdict.counterexamples) if cx.state is not None]
    pngs = fork_map(_figure_png, tasks, (subject, runs), subject.workers)  # the same bytes in any process
    for (i, j), png in zip(tasks, pngs, strict=True):
        write_bytes_atomic(directory / _figure_name(runs[i], j), png)
    e = html.escape
    rows, sections = [], []
    for r in runs:
        h = r.verdict.headline
        cls = "" if r.matches else ' class="mismatch"'
        rows.append(
            f"<tr{cls}><td><a href='#{e(r.claim.id)}'>{e(r.claim.id)}</a></td>"
            f"<td class='{r.verdict.verdict}'>{r.verdict.verdict}</td><td>{e(r.verdict.reason)}</td>"
            f"<td>{e(recipe_dependence_text(r.verdict.recipe_dependent))}</td><td>{r.expected}</td>"
            f"<td>{_f(h.effect)}</td><td>{e(_interval(h))}</td><td>{e(h.bound)}</td>"
            f"<td>{h.n_clusters}</td><td>{e('; '.join(r.verdict.failing_checks))}</td></tr>"
        )
        png = directory / _figure_name(r, None)
        check_rows = "".join(
            f"<tr><td class='{'holds' if c.holds else 'fails'}'>{'holds' if c.holds else 'fails'}</td>"
            f"<td>{e(c.name)}</td><td>{c.kind}</td><td>{_f(c.effect)}</td>"
            f"<td>{e(_interval(c))}</td><td>{e(c.bound)}</td><td>{c.n}</td>"
            f"<td>{c.n_clusters} {e(c.cluster_unit)}</td><td>{e(c.describe)}</td></tr>"
            + "".join(
                f"<tr><td></td><td colspan='2'>recipe <code>{e(name)}</code>"
                f"{' (primary)' if name == c.primary_recipe else ''}</td><td>{_f(v['effect'])}</td>"
                f"<td>[{_f(v['ci_low'])}, {_f(v['ci_high'])}]</td>"
                f"<td class='{'holds' if v['holds'] else 'fails'}'>"
                f"{'clears' if v['holds'] else 'does not clear'}</td>"
                f"<td colspan='3'>{e(_recipe_notes(v))}</td></tr>"
                for name, v in c.recipes.items()
            )
            for c in r.verdict.checks
        )
        sections.append(
            f"<h2 id='{e(r.claim.id)}'>{e(r.claim.id)} — <span class='{r.verdict.verdict}'>{r.verdict.verdict}</span>"
            f" (expected {r.expected}; reason {e(r.verdict.reason)})</h2>"
            f"<p>{e(r.claim.statement)}. <i>Source: {e(r.claim.source)}.</i></p>"
            "<table><tr><th>check</th><th>name</th><th>kind</th><th>effect</th><th>interval</th><th>bound</th>"
            f"<th>n</th><th>clusters</th><th>measure</th></tr>{check_rows}</table>"
            f"<img src='{png.name}' alt='per-example values for {e(r.claim.id)}'>"
        )
        for i, cx in enumerate(r.verdict.counterexamples):
            if cx.state is None:
                sections.append(f"<p>Counterexample search — {e(cx.describe())}.</p>")
                continue
            img = directory / _figure_name(r, i)
            sections.append(
                f"<p><b>Counterexample</b> (minimal, found by hypothesis in {cx.searched} states) — {e(cx.describe())}"
                f"</p><img src='{img.name}' alt='counterexample state' style='max-width:16em'>"
            )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>claims: {e(subject.name)}</title>"
        f"<style>{CSS}</style></head><body><h1>Claims on {e(subject.name)}</h1>"
        f"<p>Checkpoint <code>{e(subject.source)}</code>; roles <code>{e(json.dumps(subject.roles))}</code>; "
        f"{sum(r.matches for r in runs)}/{len(runs)} verdicts match expectations.</p>"
        f"<p>Intervals: cluster bootstrap at the family-wise level "
        f"<code>{e(json.dumps(data.get('multiple_comparisons', {})))}</code>.</p>"
        "<table><tr><th>claim</th><th>verdict</th><th>reason</th><th>recipes</th><th>expected</th><th>effect</th>"
        "<th>interval</th><th>bound</th><th>clusters</th>"
        f"<th>failing checks</th></tr>{''.join(rows)}</table>{''.join(sections)}</body></html>"
    )
    write_json_atomic(directory / "results.json", data)
    return write_text_atomic(directory / "index.html", page)


def _recipe_notes(recipe: dict) -> str:
    """What the report says beside a recipe's numbers: what it replaces with, its share, whether it can tell."""
    return "; ".join(filter(None, [recipe.get("describe", ""), mediation_text(recipe), reading_text(recipe)]))
