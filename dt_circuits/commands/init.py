"""Scaffold a repository of your own claims: a claims folder with one worked claim, a roles file, pytest
settings, and a CI workflow that runs the claims on every push.

Then: `cd DIR && pytest` (or `dt-circuits claims --claims-dir DIR/claims`). Existing files are never
overwritten: init stops, naming the first one, before writing anything.

Example:
  dt-circuits init my-claims
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

NAME = "init"
HELP = "scaffold a repository of your own claims (claims/, roles.json, pytest.ini, CI workflow)"

#: scaffold file -> where it goes in the new repository
FILES = {
    "walls_avoided.py": "claims/walls_avoided.py",
    "roles.json": "roles.json",
    "pytest.ini": "pytest.ini",
    "workflow.yml": ".github/workflows/dt-circuits.yml",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("directory", metavar="DIR", help="the repository folder to scaffold (created if missing)")


def run(args: argparse.Namespace) -> int:
    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.io import write_bytes_atomic

    root = Path(args.directory)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder")
    targets = {src: root / dst for src, dst in FILES.items()}
    clash = next((t for t in targets.values() if t.exists()), None)
    if clash is not None:
        raise ConfigError(f"{clash} already exists; init never overwrites (move it away or pick another DIR)")
    scaffold = resources.files("dt_circuits.commands") / "scaffold"
    for src, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, (scaffold / src).read_bytes())
        if not args.quiet:
            print(f"wrote {target}")
    if not args.quiet:
        print(f"next: cd {root} && pytest    (or: dt-circuits claims --claims-dir {root / 'claims'})")
    return 0
