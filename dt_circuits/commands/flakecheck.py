"""Run the claims under N generation seeds and report every claim whose verdict changes between runs.

Each run redraws everything a claim's numbers rest on: the obstacle layouts of the state families, their
timesteps, the rollout seeds and the random walk the ablation means come from (run 0 uses generation seed 0,
the recorded numbers). What a claim states stays fixed. The table gives each claim's verdict counts and the
range of its margin (how far its CIs clear their bounds; >= 0 holds); every flaky claim is then listed with the
flipping check's effect, CI and margin in every run. Exits 1 if any verdict flips, 0 otherwise.

Example:
  dt-circuits flakecheck --checkpoint ../shared/reference/dti-dynamic-obstacles-reproduce-original-post-short.pt \\
      --runs 20 --json out/flakecheck-reference.json
"""

from __future__ import annotations

import argparse
import sys

NAME = "flakecheck"
HELP = "run the claims under N generation seeds; report every claim whose verdict flips (exit 1 if any)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="our checkpoint directory or a DTI .pt file")
    p.add_argument(
        "--runs", type=int, default=20, help="number of runs (default 20: a flip rate of 1 in 20 shows with P ≈ 0.64)"
    )
    p.add_argument(
        "--first-seed", type=int, default=0, help="generation seed of the first run (default 0: the recorded run)"
    )
    p.add_argument("--roles", metavar="FILE", help="JSON roles file (as for `dt-circuits claims`)")
    p.add_argument("--only", nargs="+", metavar="ID", help="check only these claim ids")
    p.add_argument("--json", metavar="OUT", help="write every run's verdicts, effects, CIs and margins here")
    p.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where generation seeds run (default local)"
    )
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument(
        "--workers", type=int, default=1,
        help="local executor: seeds in parallel processes (default 1: one after another, rollouts use the cores)",
    )  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no per-run progress lines")


def run(args: argparse.Namespace) -> int:
    from dt_circuits.claims.records.flakecheck import DEFAULT_RUNS, flakecheck, format_report
    from dt_circuits.claims.suite.discovery import select_claims
    from dt_circuits.core.executor import ExecutorSpec
    from dt_circuits.core.io import write_json_atomic
    from dt_circuits.dt.checkpoint import load_checkpoint

    claims = select_claims(args.only)
    load_checkpoint(args.checkpoint)  # a bad file fails here, in one line, before any worker starts
    spec = ExecutorSpec(kind=args.executor, workers=args.workers, address=args.address)

    def progress(seed: int, seconds: float) -> None:
        if not args.quiet:
            print(f"generation seed {seed}: {seconds:.1f} s", file=sys.stderr, flush=True)

    report = flakecheck(
        checkpoint=args.checkpoint,
        executor=spec,
        runs=args.runs or DEFAULT_RUNS,
        first_seed=args.first_seed,
        claims=claims,
        roles_file=args.roles,
        on_run=progress,
    )
    print(f"checkpoint {report.checkpoint}  generation seeds {report.seeds[0]}..{report.seeds[-1]}")
    print(format_report(report))
    if args.json:
        write_json_atomic(args.json, report.to_dict())
    return 1 if report.flaky else 0
