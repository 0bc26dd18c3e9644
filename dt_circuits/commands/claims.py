"""Run every claim on checkpoints: a verdict table per checkpoint, JSON, and a static HTML report.

With no --checkpoint it runs on the checkpoints this package ships (raw-index and one-hot). Claims come from
--claims-dir (default: the claims this package ships). Exits 0 iff every claim's verdict matches what is
recorded for that checkpoint (our manifest's expectations, <claims-dir>/expectations/<sha256>.json for a
foreign file, else "holds" for every claim); 1 otherwise; 2 on a usage error (no claims found, bad file).

Examples:
  dt-circuits claims                                   # shipped checkpoints; report in ./dt-circuits-report
  dt-circuits claims --checkpoint path/to/ReproduceOriginalPostShort.pt --report out/reference
  dt-circuits claims --claims-dir claims/ --checkpoint my-checkpoint/ --json out/mine.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

NAME = "claims"
HELP = "run the claims on checkpoints; tables, JSON and HTML report; exit 0 iff verdicts match expectations"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        action="append",
        metavar="PATH",
        help="our checkpoint directory or a DTI .pt file (repeatable; default: the checkpoints this package ships)",
    )
    p.add_argument(
        "--claims-dir",
        metavar="DIR",
        help="folder of claim files (default: the claims this package ships)",
    )
    p.add_argument(
        "--roles",
        metavar="FILE",
        help='JSON roles file, e.g. {"obstacle_head": "L0H1", "goal_head": "L0H0", "goal_mlp": "mlp"}; '
        "default: the checkpoint manifest's roles, else the post's binding",
    )
    p.add_argument(
        "--json", metavar="OUT", help="write the verdicts as JSON (one checkpoint: OUT; several: OUT per name)"
    )
    p.add_argument(
        "--report",
        metavar="DIR",
        default="dt-circuits-report",
        help="folder for the static HTML report with figures, one subfolder per checkpoint when there are "
        "several (default: ./dt-circuits-report)",
    )
    p.add_argument("--no-report", action="store_true", help="write no HTML report")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these claim ids")
    p.add_argument(
        "--no-search",
        action="store_true",
        help="skip the hypothesis counterexample search for per-state predictions (faster)",
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="record the measured verdicts as the checkpoint's expectations (a deliberate, reviewed act: "
        "writes the manifest for our checkpoints, <claims-dir>/expectations/<sha256>.json for foreign files)",
    )

    from dt_circuits.core.backends import add_env_backend_argument

    add_env_backend_argument(p)


def _out_path(base: str, label: str, several: bool, *, folder: bool) -> Path:
    """OUT itself for one checkpoint; for several, a subfolder per checkpoint (a report) or OUT's stem + label
    (a file: out/x.json -> out/x-raw-index.json)."""
    p = Path(base)
    if not several:
        return p
    return p / label if folder else p.with_name(f"{p.stem}-{label}{p.suffix}")


def run(args: argparse.Namespace) -> int:
    from dt_circuits.claims.suite.discovery import default_checkpoints, select_claims
    from dt_circuits.core.paths import BUILTIN_CLAIMS_DIR, checkpoint_label

    claims_dir = Path(args.claims_dir) if args.claims_dir else BUILTIN_CLAIMS_DIR
    claims = select_claims(args.only, claims_dir)
    checkpoints = args.checkpoint or default_checkpoints()
    several = len(checkpoints) > 1
    failed, checked = False, 0
    for path in checkpoints:
        label = checkpoint_label(path)
        outcome = _run_one(args, path, label, claims, claims_dir, several)
        failed |= outcome is False
        checked += outcome is not None
        if several:
            print()
    if not checked:
        where = ", ".join(map(str, checkpoints))
        print(f"dt-circuits claims: no selected claim applies to any checkpoint run ({where})", file=sys.stderr)
        return 2
    return 1 if failed else 0


def _run_one(
    args: argparse.Namespace, path: str, label: str, claims: list, claims_dir: Path, several: bool
) -> bool | None:
    """True if every claim run matches its expectation (or was recorded), False if not, None if none applied."""
    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.claims.output.suite_output import format_table, recipe_lines, suite_json, terminal_width
    from dt_circuits.claims.records.expectations import record_expectations
    from dt_circuits.claims.suite.run import run_suite
    from dt_circuits.core.io import write_json_atomic

    start = time.perf_counter()
    expectations_dir = claims_dir / "expectations"
    from dt_circuits.claims.suite.discovery import for_claims_dir

    subject = Subject.load(path, roles_file=args.roles, expectations_dir=expectations_dir)
    subject.env_backend = args.env_backend
    runs = run_suite(subject, claims, search=not args.no_search, comparisons=for_claims_dir(claims_dir))
    print(f"== {label}: {subject.source}  roles {json.dumps(subject.roles)}  env backend {subject.rollout_backend}")
    if not runs:
        print(f"no selected claim applies to {label} ({subject.env_family} checkpoint): nothing checked, nothing "
              f"recorded")  # fmt: skip
        return None
    mc = subject.comparisons
    print(f"family-wise alpha {mc.alpha:g} over {mc.family_size} tests ({mc.method}): each interval at "
          f"{mc.confidence:.5f}")  # fmt: skip
    print(format_table(runs, terminal_width()))
    for line in recipe_lines(runs):
        print(line)
    skipped = sorted({c.id for c in claims} - {r.claim.id for r in runs})
    if skipped:
        print(f"not applicable ({subject.env_family} checkpoint): {', '.join(skipped)}")
    for r in runs:
        for cx in r.verdict.counterexamples:
            if cx.state is not None:
                print(f"counterexample  {r.claim.id}  {cx.describe()}")
    data = suite_json(subject, runs)
    data["seconds"] = round(time.perf_counter() - start, 2)
    if args.json:
        out = _out_path(args.json, label, several, folder=False)
        write_json_atomic(out, data)
        print(f"json: {out}")
    if not args.no_report:
        from dt_circuits.claims.output.report import write_report

        index = write_report(_out_path(args.report, label, several, folder=True), subject, runs, data)
        print(f"report: {index}")
    if args.record:
        where = record_expectations(subject, runs, expectations_dir)
        print(f"recorded expectations in {where}")
        return True
    mismatches = [r.claim.id for r in runs if not r.matches]
    print(f"{len(runs) - len(mismatches)}/{len(runs)} claims match expectations on {label} ({data['seconds']:.1f} s)")
    if mismatches:
        print("verdict differs from expectation: " + ", ".join(mismatches))
    return not mismatches
