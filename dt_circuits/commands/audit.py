"""The auditing game (issue 28): train DTs with a planted circuit, then score the claims' verdicts against it.

Planting: each arm trains on the same data and recipe plus an interchange-intervention loss (training/iit.py)
that puts "ball in front" in one component — A: L0H1, B: the MLP, C: L0H0, D: nothing (today's recipe), E: L0H1's
direct path to the logits — and records the truth, checked independently by interchange on held-out pairs, in the
manifest (planted_truth).
Playing: the claims run blind (the suite never sees the truth) with the obstacle head bound to every component
in turn; the command prints each model's truth and the confusion table (sensitivity, specificity, Clopper–Pearson
95 % intervals, per claim, component kind and recipe; what cost the misses), and writes it as JSON.

Examples:
  dt-circuits audit --plant A B C D --seeds 0 1 2 3 4 --steps 1500        # into checkpoints/audit/<arm>-s<seed>
  dt-circuits audit --json docs/audit/game.json                           # play on checkpoints/audit
  dt-circuits audit --readme                                              # README block from docs/audit/game.json
  dt-circuits audit --populations                                         # docs/populations/audit-<arm>.json
"""

from __future__ import annotations

import argparse

NAME = "audit"
HELP = "the auditing game: train DTs with planted circuits, run the claims blind, print the confusion table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", default="checkpoints/audit", help="folder of planted models (default checkpoints/audit)")
    p.add_argument("--json", metavar="OUT", help="write the game's results as JSON (the README's source)")
    p.add_argument("--from-json", metavar="JSON", help="print the table of an earlier --json run, without playing")
    p.add_argument("--only", nargs="+", metavar="ID", help="play only these of the game's claims (default: all)")
    p.add_argument(
        "--readme", action="store_true", help="regenerate the README's audit block from docs/audit/game.json"
    )
    p.add_argument("--check", action="store_true", help="with --readme: exit 1 if the README is out of date")
    p.add_argument(
        "--populations",
        action="store_true",
        help="write each arm of docs/audit/game.json as a population (docs/populations/audit-<arm>.json; "
        "weights hashes and recipes from --models)",
    )
    plant = p.add_argument_group("planting (--plant)")
    plant.add_argument("--plant", nargs="+", metavar="ARM", help="train these arms (A B C D E) into --models")
    plant.add_argument("--seeds", nargs="+", type=int, default=[0], help="train seeds (default 0)")
    plant.add_argument("--steps", type=int, default=1500, help="optimizer steps per model (default 1500)")
    plant.add_argument("--data", default="fixtures/trajectories-scripted.npz", help="training data")
    plant.add_argument("--override", action="append", metavar="KEY=VALUE", help="another train-config field")
    plant.add_argument("--executor", choices=("local", "ray"), default="local", help="where models train (local)")
    plant.add_argument("--workers", type=int, help="local executor: models trained at once (default: every core)")
    plant.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    p.add_argument(
        "--record-truth",
        action="store_true",
        help="check every planted model's truth in --models again and record it (kept: what training recorded)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from dt_circuits.audit import table
    from dt_circuits.core.io import write_json_atomic
    from dt_circuits.core.paths import REPO_ROOT

    if args.readme:
        from dt_circuits.core.readme_blocks import write_or_check

        path = REPO_ROOT / "README.md"
        new = table.generated_readme(path.read_text(), table.load_game(REPO_ROOT / table.GAME_JSON))
        return write_or_check(path, new, "audit", check=args.check)
    if args.populations:
        from dt_circuits.audit.population import arm_populations, population_path, populations_markdown

        populations = arm_populations(table.load_game(REPO_ROOT / table.GAME_JSON), args.models)
        for arm, population in populations.items():
            write_json_atomic(REPO_ROOT / population_path(arm), population)
        print(populations_markdown(populations))
        print("wrote " + ", ".join(population_path(arm) for arm in populations))
        return 0
    if args.from_json:
        print(table.terminal(table.load_game(args.from_json)))
        return 0
    if args.plant:
        from dt_circuits.audit.plant import PlantTask, arm_component, plant_task
        from dt_circuits.claims.records.gate import parse_overrides
        from dt_circuits.core.executor import ExecutorSpec, run_tasks

        for arm in args.plant:
            arm_component(arm)  # every arm checked before any training
        spec = ExecutorSpec(kind=args.executor, workers=args.workers, address=args.address)
        overrides = parse_overrides(args.override)
        tasks = [PlantTask(arm, seed, args.steps, args.data, str(Path(args.models) / f"{arm}-s{seed}"), overrides)
                 for arm in args.plant for seed in args.seeds]  # fmt: skip

        def done(i: int, truth: dict, seconds: float) -> None:
            iia = " ".join(f"{c} {v['iia']:.2f}" for c, v in truth["components"].items())
            print(f"{tasks[i].out_dir}: IIA {iia}; P(fwd) ball {truth['p_forward_ball']:.3f}; "
                  f"{truth['train_wall_seconds']} s", flush=True)  # fmt: skip

        run_tasks(plant_task, tasks, spec, on_done=done)  # one process per model: bytes as trained alone
        return 0

    if args.record_truth:
        from dt_circuits.audit.plant import record_truth
        from dt_circuits.audit.results import planted_dirs

        for directory in planted_dirs(args.models):
            truth = record_truth(directory)
            paths = " ".join(f"{c} {v['iia']:.2f}" for c, v in truth["direct_paths"].items())
            print(f"{directory}: direct-path IIA {paths}")
        return 0

    from dt_circuits.audit.results import play

    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    game = play(args.models, log=log, only=args.only)
    if args.json:
        write_json_atomic(args.json, game)
    print(table.terminal(game))
    if args.json:
        print(f"wrote {args.json}")
    return 0
