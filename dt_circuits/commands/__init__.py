"""Subcommands of ``dt-circuits``; each module is one command (see ``dt_circuits.cli``)."""
