"""The ``dt-circuits`` command: one subcommand per module in ``dt_circuits.commands``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``, so a new
capability adds a file without touching this one. Only the chosen command's arguments are built, and command
modules import torch inside ``run``: ``--help`` and argument errors answer without loading torch.
User errors (DTCircuitsError) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from dt_circuits import commands
from dt_circuits.core.errors import DTCircuitsError


def _command_modules() -> dict[str, object]:
    modules = {}
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.ispkg:
            continue
        module = importlib.import_module(f"dt_circuits.commands.{info.name}")
        modules[module.NAME] = module
    return modules


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; a subcommand's own arguments are built only when ``argv`` names it (or always when None)."""
    parser = argparse.ArgumentParser(
        prog="dt-circuits",
        description="Circuit hypotheses about Decision Transformers on MiniGrid Dynamic Obstacles, as tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    for name, module in _command_modules().items():
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if argv is None or name == chosen:
            module.add_arguments(p)
            if "--quiet" not in p._option_string_actions:  # every command takes --quiet
                p.add_argument("--quiet", action="store_true", help="no progress output")
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    from dt_circuits.core.threads import configure_threads

    try:
        configure_threads()
        return int(args._run(args) or 0)
    except DTCircuitsError as exc:
        print(f"dt-circuits {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dt-circuits {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
