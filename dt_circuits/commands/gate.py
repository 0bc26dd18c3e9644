"""Retrain a committed checkpoint from its committed data and recorded config, re-run every claim, and fail
with a side-by-side diff when a claim's verdict moved from what the checkpoint records.

Exits 0 when every verdict is as recorded, 1 when any moved. A claim whose recorded headline effect left its
recorded interval is DRIFT in the table; --strict exits 1 on DRIFT too.
--record re-records the checkpoint deliberately: new weights, manifest and expected verdicts.

With --seeds K the gate judges the training recipe instead of one run: it retrains K seeds (recorded seed + k,
k = 0..K-1) with the recorded config plus the population's recorded overrides, runs every claim on each, and
reports per claim how many seeds hold (k/K, Clopper-Pearson 95 % interval) and its population verdict: holds
(>= 80 % of seeds), fails (<= 20 %), seed-dependent otherwise. It exits 1 when a population verdict moved from the
manifest's population_expectations; --seeds K --record records them (and leaves the weights alone) with the
recipe given by --recipe/--override, or, with neither, the recorded population's recipe again (--recipe
committed: the checkpoint's own config, nothing overridden). Seeds run
on one executor: local processes (default) or Ray (--executor ray [--address ADDR]), same results either way.

Examples:
  dt-circuits gate --checkpoint checkpoints/raw-index
  dt-circuits gate --checkpoint checkpoints/raw-index --override seed=1   # another seed?
  dt-circuits gate --checkpoint checkpoints/raw-index --record            # an intended change
  dt-circuits gate --checkpoint checkpoints/raw-index --seeds 3 --json out/population.json
  dt-circuits gate --checkpoint checkpoints/one-hot --seeds 5 --recipe fast --record
  dt-circuits gate --checkpoint checkpoints/raw-index --rejudge out/population.json  # no retrain
"""

from __future__ import annotations

import argparse

NAME = "gate"
HELP = "retrain a checkpoint (or K seeds of its recipe), re-run the claims, fail when a verdict moved"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dt_circuits.core.executor import EXECUTORS
    from dt_circuits.training.config import RECIPES

    p.add_argument("--checkpoint", required=True, help="one of our checkpoint directories (with manifest.json)")
    p.add_argument(
        "--override",
        action="append",
        metavar="KEY=VALUE",
        help="change one recorded train-config field for this retrain, e.g. seed=1 or obs_encoding=one_hot "
        "(repeatable)",
    )
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="apply a named set of train-config overrides (docs/training.md), before any --override",
    )
    p.add_argument("--record", action="store_true", help="re-record the checkpoint (with --seeds: its population)")
    p.add_argument("--json", metavar="OUT", help="write the gate result as JSON")
    p.add_argument("--strict", action="store_true", help="also fail when a recorded number drifted (DRIFT)")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these claims (on the retrain, or on each seed)")
    pop = p.add_argument_group("populations (--seeds K)")
    pop.add_argument("--seeds", type=int, metavar="K", help="retrain K seeds of the recipe and gate k/K per claim")
    pop.add_argument("--keep", metavar="DIR", help="save each seed's retrained checkpoint as DIR/seed-N")
    pop.add_argument("--executor", choices=EXECUTORS, default="local", help="where seeds run (default local)")
    pop.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    pop.add_argument("--workers", type=int, help="local executor: parallel seeds (default: cores // --threads)")
    pop.add_argument("--threads", type=int, default=1, help="torch threads per seed (default 1; see docs/training.md)")
    pop.add_argument(
        "--rejudge",
        metavar="JSON",
        help="judge the seeds of an earlier `--seeds K --json` run against the current record, without retraining",
    )
    p.add_argument("--quiet", action="store_true", help="no training progress")


def run(args: argparse.Namespace) -> int:
    from dt_circuits.claims.records.gate import format_gate, parse_overrides, run_gate
    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.io import write_json_atomic
    from dt_circuits.training.config import RECIPES

    overrides = dict(RECIPES[args.recipe]) if args.recipe else {}
    overrides.update(parse_overrides(args.override))
    if args.rejudge:
        from dt_circuits.claims.records.population import format_population, rejudge_population
        from dt_circuits.core.io import read_json

        if args.seeds is not None or args.record or overrides or args.only:
            raise ConfigError("--rejudge takes a population JSON as it is: no --seeds, --record, --override or --only")
        result = rejudge_population(args.checkpoint, read_json(args.rejudge, "population JSON", ConfigError))
        print(format_population(result))
        if args.json:
            write_json_atomic(args.json, result.to_dict())
        return 0 if result.passed else 1
    if args.seeds is None:
        if args.executor != "local" or args.address or args.workers or args.keep or args.threads != 1:
            raise ConfigError("--executor, --address, --workers, --threads and --keep apply to populations (--seeds K)")
        gate = run_gate(
            args.checkpoint, overrides=overrides, update=args.record, progress=not args.quiet, only=args.only
        )
        print(format_gate(gate))
        if args.json:
            write_json_atomic(args.json, gate.to_dict())
        if args.record:
            print(f"re-recorded {args.checkpoint}")
            return 0
        return 0 if (gate.strict_passed if args.strict else gate.passed) else 1

    from dt_circuits.claims.records.population import format_population, run_population
    from dt_circuits.core.executor import ExecutorSpec

    spec = ExecutorSpec(kind=args.executor, workers=args.workers, threads=args.threads, address=args.address)
    chosen = args.recipe is not None or bool(args.override)  # neither: keep the recorded population's recipe
    result = run_population(
        args.checkpoint,
        args.seeds,
        overrides=overrides if chosen else None,
        executor=spec,
        record=args.record,
        only=args.only,
        keep=args.keep,
        progress=not args.quiet,
    )
    print(format_population(result))
    if args.json:
        write_json_atomic(args.json, result.to_dict())
    if args.record:
        print(f"recorded population expectations in {args.checkpoint}/manifest.json")
        return 0
    return 0 if result.passed else 1
