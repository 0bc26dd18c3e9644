"""The flake-check tables of docs/reliability.md, generated from `dt-circuits flakecheck --json` output.

    .venv/bin/python docs/flake_tables.py --from DIR   # DIR/*.json from flakecheck: summarise into docs/flakechecks/
    .venv/bin/python docs/flake_tables.py              # rewrite the marked block of docs/reliability.md

A full flakecheck JSON keeps every run's every check (~400 KB a checkpoint); the summary kept here has what the
page shows: per claim its verdict counts and margin range, and every check that changed outcome between runs
(flipping the verdict or latent). ``tests/test_docs.py`` keeps the page's block equal to the summaries.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
SUMMARIES = DOCS / "flakechecks"
PAGE = DOCS / "reliability.md"
START, END = "<!-- flake-tables:start -->", "<!-- flake-tables:end -->"


def _span(values: list[float]) -> list[float] | None:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return [round(min(finite), 4), round(max(finite), 4)] if finite else None


def summarise(raw: dict) -> dict:
    """The part of one flakecheck JSON the page shows."""
    claims = []
    for c in raw["claims"]:
        changing = [
            {
                "name": ch["name"],
                "bound": ch["bound"],
                "holds": sum(ch["holds"]),
                "margin": _span(ch["margin"]),
                # failing runs whose interval met the bound: the sample was too small (on-policy < 10 episodes)
                "too_few_samples": sum(1 for h, m in zip(ch["holds"], ch["margin"], strict=True) if not h and m >= 0),
                "flips_verdict": bool(c["flips"]),
            }
            for ch in c["checks"]
            if ch["flips"]
        ]
        claims.append(
            {
                "id": c["id"],
                "expected": c["expected"],
                "holds": c["holds"],
                "fails": c["fails"],
                "margin": _span(c["margin"]),
                "changing_checks": changing,
            }
        )
    return {
        "checkpoint": raw["checkpoint"],
        "name": raw["name"],
        "runs": raw["runs"],
        "generation_seeds": [raw["generation_seeds"][0], raw["generation_seeds"][-1]],
        "seconds": round(raw["seconds"]),
        "flaky": raw["flaky"],
        "claims": claims,
        **({"spliced": raw["spliced"]} if raw.get("spliced") else {}),
    }


def _fmt_span(span: list[float] | None) -> str:
    if span is None:
        return "n/a"
    lo, hi = span
    return f"{lo:+.3f}" if lo == hi else f"{lo:+.3f}..{hi:+.3f}"


def render(summaries: list[dict]) -> str:
    """Markdown: one section per checkpoint, a row per claim, then the checks that changed outcome."""
    out: list[str] = []
    for s in summaries:
        n = s["runs"]
        flaky = ", ".join(f"`{c}`" for c in s["flaky"]) or "none"
        out += [
            f"### {s['name']}, N = {n} (generation seeds {s['generation_seeds'][0]}–{s['generation_seeds'][1]})",
            "",
            f"`{s['checkpoint']}`: claims whose verdict flips: **{flaky}**. {s['seconds']} s.",
            "",
        ]
        if s.get("spliced"):
            again = ", ".join(f"`{c}`" for c in s["spliced"]["claims"])
            out += [
                f"{again}: from a run of that claim alone after it changed ({round(s['spliced']['seconds'])} s; a "
                "claim's numbers do not depend on which other claims run).",
                "",
            ]
        out += [
            "| claim | expected | verdict in runs | claim margin (min..max) |",
            "|---|---|---|---|",
        ]
        for c in s["claims"]:
            counts = ", ".join(f"{v} {c[v]}/{n}" for v in ("holds", "fails") if c[v])
            out.append(f"| `{c['id']}` | {c['expected']} | {counts} | {_fmt_span(c['margin'])} |")
        changing = [(c["id"], ch) for c in s["claims"] for ch in c["changing_checks"]]
        if changing:
            out += ["", "Checks that changed outcome between runs:", ""]
            for cid, ch in changing:
                kind = "flips the verdict" if ch["flips_verdict"] else "latent: another check decides the verdict"
                short = ch["too_few_samples"]
                why = f"; {short} of its failing runs met the bound on too few on-policy episodes" if short else ""
                out.append(
                    f"- `{cid}`, {ch['name']} (needs {ch['bound']}): holds in {ch['holds']}/{n} runs, margin "
                    f"{_fmt_span(ch['margin'])} ({kind}{why})"
                )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def load_summaries() -> list[dict]:
    order = {"raw-index": 0, "one-hot": 1}
    files = sorted(SUMMARIES.glob("*.json"), key=lambda p: (order.get(p.stem, 2), p.stem))
    return [json.loads(p.read_text()) for p in files]


def block(text: str) -> str:
    """The generated part of the page, between the markers."""
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", metavar="DIR", help="summarise DIR/*.json (flakecheck --json output)")
    args = p.parse_args(argv)
    if args.source:
        SUMMARIES.mkdir(exist_ok=True)
        for raw_file in sorted(Path(args.source).glob("*.json")):
            summary = summarise(json.loads(raw_file.read_text()))
            (SUMMARIES / raw_file.name).write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    text = PAGE.read_text()
    if START not in text or END not in text:
        print(f"{PAGE} has no {START} ... {END} block", file=sys.stderr)
        return 2
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    PAGE.write_text(f"{head}{START}\n{render(load_summaries())}{END}{tail}")
    print(f"wrote the flake-check tables into {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
