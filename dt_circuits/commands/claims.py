"""Run every claim in claims/ on a checkpoint: a verdict table, JSON, and a static HTML report.

Exits 0 iff every claim's verdict matches what is expected for that checkpoint (our manifest's expectations,
claims/expectations/<sha256>.json for a foreign file, else "holds" for every claim); 1 otherwise.

Example:
  dt-circuits claims --checkpoint checkpoints/raw-index --json out/raw-index.json --report out/raw-index
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

NAME = "claims"
HELP = "run the claims on a checkpoint; table, JSON and HTML report; exit 0 iff verdicts match expectations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="our checkpoint directory or a DTI .pt file")
    p.add_argument(
        "--roles",
        metavar="FILE",
        help='JSON roles file, e.g. {"obstacle_head": "L0H1", "goal_head": "L0H0", "goal_mlp": "mlp"}; '
        "default: the checkpoint manifest's roles, else the post's binding",
    )
    p.add_argument("--json", metavar="OUT", help="write the verdicts as JSON to this file")
    p.add_argument("--report", metavar="DIR", help="write a static HTML report with figures into this folder")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these claim ids")
    p.add_argument(
        "--no-search",
        action="store_true",
        help="skip the hypothesis counterexample search for per-state predictions (faster)",
    )
    p.add_argument(
        "--record-expectations",
        action="store_true",
        help="record the measured verdicts as this checkpoint's expectations (a deliberate, reviewed act: "
        "writes the manifest for our checkpoints, claims/expectations/<sha256>.json for foreign files)",
    )


def run(args: argparse.Namespace) -> int:
    from dt_circuits.expectations import record_expectations
    from dt_circuits.io import write_json_atomic
    from dt_circuits.subject import Subject
    from dt_circuits.suite import format_table, run_suite, select_claims, suite_json

    start = time.perf_counter()
    subject = Subject.load(args.checkpoint, roles_file=args.roles)
    claims = select_claims(args.only)
    runs = run_suite(subject, claims, search=not args.no_search)
    print(f"checkpoint {subject.source}  roles {json.dumps(subject.roles)}")
    print(format_table(runs))
    for r in runs:
        for cx in r.verdict.counterexamples:
            if cx.state is not None:
                print(f"counterexample  {r.claim.id}  {cx.describe()}")
    data = suite_json(subject, runs)
    data["seconds"] = round(time.perf_counter() - start, 2)
    if args.json:
        write_json_atomic(args.json, data)
    if args.report:
        from dt_circuits.report import write_report

        index = write_report(Path(args.report), subject, runs, data)
        print(f"report: {index}")
    if args.record_expectations:
        where = record_expectations(subject, runs)
        print(f"recorded expectations in {where}")
        return 0
    mismatches = [r.claim.id for r in runs if not r.matches]
    print(f"{len(runs) - len(mismatches)}/{len(runs)} claims match expectations ({data['seconds']:.1f} s)")
    if mismatches:
        print("verdict differs from expectation: " + ", ".join(mismatches))
    return 1 if mismatches else 0
