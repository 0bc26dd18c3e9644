"""Generate the README's population tables from `gate --seeds K --json` files: k/K per claim for each
checkpoint, and the cross-kind comparison of two populations of one recipe (two CPU kinds or kernel paths).

Each --json TITLE=FILE becomes one column of the first table (the title gets "(K=...)" from the file); each
--cross A=FILE B=FILE gives one cross-kind table (k/K on each, Fisher's p, the main effect check's spread, and
B's values outside A's bands). Prints the markdown; --write README.md replaces the blocks between
`<!-- population-table:start -->` / `<!-- population-table:end -->` and `<!-- cross-kind-table:start -->` /
`<!-- cross-kind-table:end -->` (the cross-kind tables one after the other), so the numbers in the README are
never typed by hand (tests/test_population.py keeps README and JSON equal).

Example:
  dt-circuits population-table --write README.md
"""

from __future__ import annotations

import argparse

NAME = "population-table"
HELP = "the README's k/K-per-claim table, generated from population gate JSON files"

DEFAULT_JSON = (
    "raw-index=docs/populations/raw-index.json",
    "one-hot=docs/populations/one-hot.json",
    "raw-index, previous 40k-step recipe=docs/populations/raw-index-long-recipe.json",
)
_INTEL = "raw-index on an Intel Xeon (cpu family 6, model 207), default kernels=docs/populations/raw-index.json"
#: each pair is one table: the recorded population (A) against the same seeds another way (B)
DEFAULT_CROSS = (
    (_INTEL, "the same seeds through MKL's AVX2 path (MKL_CBWR=AVX2)=docs/populations/raw-index-mkl-avx2.json"),
    (
        _INTEL,
        "the same seeds on an AMD EPYC (cpu family 25, model 1), default kernels=docs/populations/raw-index-amd.json",
    ),
)
START, END = "<!-- population-table:start -->", "<!-- population-table:end -->"
CROSS_START, CROSS_END = "<!-- cross-kind-table:start -->", "<!-- cross-kind-table:end -->"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", nargs="+", default=list(DEFAULT_JSON), metavar="TITLE=FILE",
        help="population JSON files, one column each (default: " + " ".join(DEFAULT_JSON) + ")",
    )  # fmt: skip
    p.add_argument(
        "--cross", nargs=2, action="append", metavar="TITLE=FILE",
        help="two populations of one recipe to compare, one table per --cross (default: "
        + "; ".join(" vs ".join(pair) for pair in DEFAULT_CROSS) + ")",
    )  # fmt: skip
    p.add_argument("--write", metavar="README", help="replace the marked blocks in this markdown file")


def load_columns(items: list[str]) -> dict[str, dict]:
    from pathlib import Path

    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.io import read_json
    from dt_circuits.core.paths import REPO_ROOT

    columns = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--json {item!r} must look like TITLE=FILE")
        title, path = item.rsplit("=", 1)  # a title may hold "=" (MKL_CBWR=AVX2), a path does not
        p = Path(path)
        data = read_json(p if p.is_absolute() or p.exists() else REPO_ROOT / p, "population JSON", ConfigError)
        if not isinstance(data, dict) or "claims" not in data or "K" not in data:
            raise ConfigError(f"{path}: not a population JSON (written by `dt-circuits gate --seeds K --json`)")
        columns[f"{title} (K={data['K']})"] = data
    return columns


def cross_table(pairs: list[list[str]] | tuple[tuple[str, str], ...]) -> str:
    """One cross-kind table per pair of TITLE=FILE items, separated by a blank line."""
    from dt_circuits.claims.records.population import cross_kind_table

    tables = []
    for pair in pairs:
        (ta, a), (tb, b) = load_columns(list(pair)).items()
        tables.append(cross_kind_table(a, b, (ta, tb)))
    return "\n\n".join(tables)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dt_circuits.claims.records.population import population_table
    from dt_circuits.core.io import write_text_atomic
    from dt_circuits.core.readme_blocks import replace_block

    table = population_table(load_columns(args.json))
    cross = cross_table(args.cross or DEFAULT_CROSS)
    if not args.write:
        print(table + "\n\n" + cross)
        return 0
    path = Path(args.write)
    text = path.read_text() if path.exists() else ""
    text = replace_block(text, table, START, END, "population")
    text = replace_block(text, cross, CROSS_START, CROSS_END, "cross-kind")
    write_text_atomic(path, text)
    print(f"wrote the population tables into {path}")
    return 0
