"""Start the interactive app: play a checkpoint in the real env, edit the view, inspect attention, DLA, the claims'
ablation recipes, path patching and QK/OV, see the claims' verdicts, and save what you see as a claim.

A Streamlit page on localhost (usage statistics off). Every checkpoint the suite loads works: ours, DTI Dynamic
Obstacles files and MemoryDT-GatedMLP. The page's state is in its URL, so a view can be shared and reopened.

Examples:
  dt-circuits app                                            # the shipped checkpoints (and ../shared's DTI files)
  dt-circuits app --checkpoint path/to/ReproduceOriginalPostShort.pt --claims-dir my-claims/claims --port 8600
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

NAME = "app"
HELP = "start the interactive app (Streamlit, localhost): play, edit, inspect, claims, save as claim"

#: the page's script, found by path: nothing in the package imports the app (import-linter: app is the top layer)
APP_SCRIPT = Path(__file__).resolve().parent.parent / "app" / "main.py"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        action="append",
        metavar="PATH",
        help="checkpoint to offer (repeatable; default: the checkpoints the claims suite runs on)",
    )
    p.add_argument(
        "--claims-dir",
        metavar="DIR",
        help="claims folder whose verdicts are shown and where 'save as claim' writes "
        "(default: the claims this package ships)",
    )
    p.add_argument("--port", type=int, default=8501, metavar="N", help="port on localhost (default: 8501)")
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=".dt-circuits-app",
        help="where the claims' JSON is kept (default: ./.dt-circuits-app)",
    )


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """``python -m streamlit run <page> ... -- <page args>``: headless, localhost only, no usage statistics."""
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.headless",
        "true",
        "--server.address",
        "localhost",
        "--server.port",
        str(args.port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--",
    ]
    for path in args.checkpoint or []:
        cmd += ["--checkpoint", str(Path(path).resolve())]
    if args.claims_dir:
        cmd += ["--claims-dir", str(Path(args.claims_dir).resolve())]
    return [*cmd, "--cache-dir", str(Path(args.cache_dir).resolve())]


def run(args: argparse.Namespace) -> int:
    from dt_circuits.core.errors import CheckpointError, ConfigError

    for path in args.checkpoint or []:
        if not Path(path).exists():
            raise CheckpointError(f"checkpoint not found: {path}")
    if args.claims_dir and not Path(args.claims_dir).is_dir():
        raise ConfigError(f"claims folder {args.claims_dir} does not exist")
    if not args.quiet:
        print(f"dt-circuits app: http://localhost:{args.port}  (Ctrl-C to stop)", flush=True)
    # the process becomes the Streamlit server (no child left behind): a stop signal reaches the server itself
    sys.stdout.flush()
    cmd = streamlit_command(args)
    os.execv(cmd[0], cmd)
    return 0  # not reached
