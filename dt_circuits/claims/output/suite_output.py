"""A suite run as people and programs read it: the JSON every record is made from, and the terminal table."""

from __future__ import annotations

from typing import Any

from dt_circuits.claims.evaluation.comparisons import default_comparisons
from dt_circuits.claims.evaluation.results import _fmt, mediation_text, reading_text
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.suite.run import ClaimRun
from dt_circuits.core.tables import aligned_lines


def suite_json(subject: Subject, runs: list[ClaimRun]) -> dict[str, Any]:
    """The run as JSON: every claim, every check, and the multiple-comparison family with adjusted p-values."""
    comparisons = subject.comparisons or default_comparisons()
    claims = [r.to_dict() for r in runs]
    tested = [c for claim in claims for c in claim["checks"] if c.get("p_value") is not None]
    for check, p in zip(tested, comparisons.adjust([c["p_value"] for c in tested]), strict=True):
        check["p_adjusted"] = float(p)
    return {
        "checkpoint": subject.source,
        "name": subject.name,
        "roles": subject.roles,
        "env_backend": subject.rollout_backend,
        "all_match_expectations": all(r.matches for r in runs),
        "multiple_comparisons": comparisons.to_dict() | {"tests_in_this_run": len(tested)},
        "claims": claims,
    }


def format_table(runs: list[ClaimRun], width: int | None = None) -> str:
    """One row per claim: verdict, reason, the headline check's numbers (or why it has none: "undefined (… is
    0)"), recipe dependence, and every failing check.

    ``width``: the columns a line may take (None: no limit). When the full table is wider, each row keeps
    claim, verdict, reason, numbers and recipe dependence, and the rest (expected verdict, bound, clusters,
    failing checks) goes on indented lines under it, wrapped to ``width``: an 80–120 column terminal shows a
    table, not wrapped noise."""
    import textwrap

    full = [("claim", "verdict", "reason", "expected", "effect", "interval", "bound", "clusters", "recipe", "failing")]
    short = [("claim", "verdict", "reason", "effect [interval]", "recipe")]
    details = []
    for r in runs:
        h = r.verdict.headline
        effect, interval = (
            (h.numbers(), "") if h.undefined else (_fmt(h.effect), f"[{_fmt(h.ci_low)}, {_fmt(h.ci_high)}]")
        )
        verdict = r.verdict.verdict + ("" if r.matches else " (!)")
        recipe = r.verdict.recipe_dependent  # "", "primary-only" or "fails-under-primary"
        failing = "; ".join(r.verdict.failing_checks)
        full.append((r.claim.id, verdict, r.verdict.reason, r.expected, effect, interval, h.bound, str(h.n_clusters),
                     recipe, failing))  # fmt: skip
        short.append((r.claim.id, verdict, r.verdict.reason, f"{effect} {interval}".rstrip(), recipe))
        clusters = f"{h.n_clusters} cluster{'' if h.n_clusters == 1 else 's'}"
        details.append(f"expected {r.expected}; bound {h.bound}; {clusters}"
                       + (f"; failing: {failing}" if failing else ""))  # fmt: skip
    lines = aligned_lines(full)
    if width is None or max(len(line) for line in lines) <= width:
        return "\n".join(lines)
    rows = aligned_lines(short)
    out = rows[:1]
    for row, detail in zip(rows[1:], details, strict=True):
        out.append(row)
        out.extend(textwrap.wrap(detail, width=max(40, width), initial_indent="    ", subsequent_indent="      "))
    return "\n".join(out)


def terminal_width() -> int | None:
    """Columns of the terminal stdout writes to (``COLUMNS`` if set); None when it is not a terminal (a log or a
    pipe keeps the full rows, one line per claim, for grep)."""
    import os
    import shutil
    import sys

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def recipe_lines(runs: list[ClaimRun]) -> list[str]:
    """One line per generated-family check that has a counterfactual recipe or depends on the recipe: the primary
    recipe's effect beside the others that disagree with it and the counterfactual patch, with the share of the
    object's effect the patch carries (✓ / ✗: clears the check's bound)."""
    lines = []
    for r in runs:
        for c in r.verdict.checks:
            if not c.recipes or c.sample != "generated" or not (c.recipe_dependent or "counterfactual" in c.recipes):
                continue
            primary = c.recipes.get(c.primary_recipe or "", {})
            shown = [
                name
                for name, v in c.recipes.items()
                if name != c.primary_recipe and (name == "counterfactual" or v["holds"] != primary.get("holds"))
            ]
            note = "; ".join(filter(None, ["primary", mediation_text(primary), reading_text(primary)]))
            parts = [f"{c.primary_recipe} {_fmt(c.effect)} {'✓' if c.holds else '✗'} ({note})"]
            for name in shown:
                v = c.recipes[name]
                part = f"{name} {_fmt(v['effect'])} {'✓' if v['holds'] else '✗'}"
                share = "; ".join(filter(None, [mediation_text(v), reading_text(v)]))
                parts.append(f"{part} ({share})" if share else part)
            lines.append(f"recipes  {r.claim.id}  {c.name} ({c.bound}): " + " · ".join(parts))
    return lines
