"""The ``dt-circuits`` command: one subcommand per module in ``dt_circuits.commands``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``, so a new
capability adds a file without touching this one. User errors (DTCircuitsError) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from dt_circuits import commands
from dt_circuits.errors import DTCircuitsError
from dt_circuits.threads import configure_threads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dt-circuits",
        description="Circuit hypotheses about Decision Transformers on MiniGrid Dynamic Obstacles, as tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"dt_circuits.commands.{info.name}")
        p = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_threads()
    try:
        return int(args._run(args) or 0)
    except DTCircuitsError as exc:
        print(f"dt-circuits {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dt-circuits {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
