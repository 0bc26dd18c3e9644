"""Generate the README's population table (k/K per claim for each checkpoint) from `gate --seeds K --json` files.

Each --json TITLE=FILE becomes one column (the title gets "(K=...)" from the file). Prints the markdown table;
--write README.md replaces the block between `<!-- population-table:start -->` and
`<!-- population-table:end -->` in that file, so the numbers in the README are never typed by hand
(tests/test_population.py keeps README and JSON equal).

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
START, END = "<!-- population-table:start -->", "<!-- population-table:end -->"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", nargs="+", default=list(DEFAULT_JSON), metavar="TITLE=FILE",
        help="population JSON files, one column each (default: " + " ".join(DEFAULT_JSON) + ")",
    )  # fmt: skip
    p.add_argument("--write", metavar="README", help="replace the marked block in this markdown file")


def load_columns(items: list[str]) -> dict[str, dict]:
    from pathlib import Path

    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.io import read_json
    from dt_circuits.core.paths import REPO_ROOT

    columns = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--json {item!r} must look like TITLE=FILE")
        title, path = item.split("=", 1)
        p = Path(path)
        data = read_json(p if p.is_absolute() or p.exists() else REPO_ROOT / p, "population JSON", ConfigError)
        if not isinstance(data, dict) or "claims" not in data or "K" not in data:
            raise ConfigError(f"{path}: not a population JSON (written by `dt-circuits gate --seeds K --json`)")
        columns[f"{title} (K={data['K']})"] = data
    return columns


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dt_circuits.claims.population import population_table
    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.io import write_text_atomic

    table = population_table(load_columns(args.json))
    if not args.write:
        print(table)
        return 0
    path = Path(args.write)
    text = path.read_text() if path.exists() else ""
    if START not in text or END not in text:
        raise ConfigError(f"{path} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text_atomic(path, f"{head}{START}\n{table}\n{END}{tail}")
    print(f"wrote the population table into {path}")
    return 0
