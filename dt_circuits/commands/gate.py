"""Retrain a committed checkpoint from its committed data and recorded config, re-run every claim, and fail
with a side-by-side diff when a claim's verdict moved from what the checkpoint records.

Exits 0 when every verdict is as recorded, 1 when any moved. A claim whose recorded headline effect left its
recorded interval is DRIFT in the table; --strict exits 1 on DRIFT too.
--record re-records the checkpoint deliberately: new weights, manifest and expected verdicts.

Examples:
  dt-circuits gate --checkpoint dt_circuits/checkpoints/raw-index
  dt-circuits gate --checkpoint dt_circuits/checkpoints/raw-index --override seed=1   # another seed?
  dt-circuits gate --checkpoint dt_circuits/checkpoints/raw-index --record            # an intended change
"""

from __future__ import annotations

import argparse

NAME = "gate"
HELP = "retrain a checkpoint, re-run the claims, fail with a diff when a verdict moved"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="one of our checkpoint directories (with manifest.json)")
    p.add_argument(
        "--override",
        action="append",
        metavar="KEY=VALUE",
        help="change one recorded train-config field for this retrain, e.g. seed=1 or obs_encoding=one_hot "
        "(repeatable)",
    )
    p.add_argument("--record", action="store_true", help="re-record the checkpoint with the retrained model")
    p.add_argument("--json", metavar="OUT", help="write the gate result as JSON")
    p.add_argument("--strict", action="store_true", help="also fail when a recorded number drifted (DRIFT)")
    p.add_argument("--quiet", action="store_true", help="no training progress")


def run(args: argparse.Namespace) -> int:
    from dt_circuits.claims.gate import format_gate, parse_overrides, run_gate
    from dt_circuits.core.io import write_json_atomic

    gate = run_gate(
        args.checkpoint, overrides=parse_overrides(args.override), update=args.record, progress=not args.quiet
    )
    print(format_gate(gate))
    if args.json:
        write_json_atomic(args.json, gate.to_dict())
    if args.record:
        print(f"re-recorded {args.checkpoint}")
        return 0
    return 0 if (gate.strict_passed if args.strict else gate.passed) else 1
