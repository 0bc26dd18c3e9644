"""The script Streamlit runs (``dt-circuits app`` starts it): read the app's arguments, render the page.

Arguments come after Streamlit's ``--``: ``--checkpoint PATH`` (repeatable), ``--claims-dir DIR``, ``--cache-dir
DIR``. Anything the page did not turn into a one-line error is still caught here and shown as one line, so a user
never gets a traceback page and the server keeps running.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st


def parse(argv: list[str]):  # noqa: ANN201 - page.AppConfig, imported lazily
    from dt_circuits.app.page import AppConfig

    p = argparse.ArgumentParser(prog="dt-circuits app (page)")
    p.add_argument("--checkpoint", action="append", default=[])
    p.add_argument("--claims-dir", default=None)
    p.add_argument("--cache-dir", default=".dt-circuits-app")
    args, _ = p.parse_known_args(argv)
    checkpoints = args.checkpoint
    if not checkpoints:
        from dt_circuits.claims.suite.discovery import default_checkpoints

        checkpoints = [c for c in default_checkpoints() if Path(c).exists()]
    if args.claims_dir:
        claims_dir = Path(args.claims_dir)
    else:
        from dt_circuits.core.paths import BUILTIN_CLAIMS_DIR

        claims_dir = BUILTIN_CLAIMS_DIR
    return AppConfig(tuple(checkpoints), claims_dir, Path(args.cache_dir))


def main() -> None:
    from dt_circuits.core.threads import configure_threads

    configure_threads()
    try:
        from dt_circuits.app.page import first_line, render

        render(parse(sys.argv[1:]))
    except Exception as exc:  # noqa: BLE001 - the page shows one line, never a traceback
        st.error(f"{type(exc).__name__}: {first_line(exc)}")


main()
