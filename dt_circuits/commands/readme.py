"""Regenerate the README's verdict tables from the recorded expectations (JSON) of the checkpoints, and its
Table 1 from our checkpoints' manifests.

Examples:
  dt-circuits readme            # rewrite the block in README.md
  dt-circuits readme --check    # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse

NAME = "readme"
HELP = "regenerate the README's verdict tables from the recorded expectations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--readme", default=None, help="the README to update (default: this checkout's README.md)")
    p.add_argument("--check", action="store_true", help="only check that the README is up to date")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dt_circuits.claims.output.verdict_table import generated_readme
    from dt_circuits.core.io import write_text_atomic
    from dt_circuits.core.paths import REPO_ROOT

    path = Path(args.readme) if args.readme else REPO_ROOT / "README.md"
    text = path.read_text()
    new = generated_readme(text)
    if args.check:
        print("README verdict tables are up to date" if new == text else f"{path} is out of date: dt-circuits readme")
        return 0 if new == text else 1
    if new != text:
        write_text_atomic(path, new)
    print(f"wrote the verdict tables and Table 1 into {path}")
    return 0
