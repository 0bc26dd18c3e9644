"""Train a Decision Transformer on a trajectory file and write a checkpoint with full provenance.

The run is deterministic on CPU: the same data file, options and --threads give bit-identical weights. The
checkpoint directory gets model.safetensors, manifest.json (model and train config, env, data sha256, seed,
the exact command, wall time, threads), loss_curve.json and loss_curve.png. Unless --table1-episodes is 0, the
post's Table 1 is then measured (sampled actions at RTG -1, 0, 0.9 in the real env) and stored in the manifest
under "evaluation".

Example (the committed raw-index checkpoint; see docs/training.md):
  dt-circuits train --data fixtures/trajectories-scripted.npz --encoding index --out checkpoints/raw-index
"""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a one-timestep Decision Transformer on a trajectory file (deterministic, seeded)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dt_circuits.training.config import add_config_arguments

    p.add_argument("--data", required=True, help="trajectory file written by `dt-circuits collect`")
    p.add_argument("--out", required=True, help="checkpoint directory to write (replaced atomically)")
    p.add_argument("--name", help="checkpoint name in the manifest (default: the --out folder name)")
    add_config_arguments(p.add_argument_group("training (every field of TrainConfig)"))
    p.add_argument(
        "--table1-episodes",
        type=int,
        default=500,
        help="episodes per RTG for the final Table-1 evaluation stored in the manifest (0 skips it; default 500)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="processes for the Table-1 evaluation (default: all cores)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from dt_circuits.evaluation.calibration import table1, update_manifest
    from dt_circuits.evaluation.pool import evaluate_rtgs
    from dt_circuits.evaluation.rtgs import TABLE1_RTGS
    from dt_circuits.training.config import command_line, config_from_args
    from dt_circuits.training.train import save_run, train
    from dt_circuits.trajectories.dataset import TrajectoryDataset

    cfg = config_from_args(args)
    data = TrajectoryDataset.load(args.data)
    result = train(cfg, data, progress=not args.quiet)
    name = args.name or Path(args.out).name
    out = save_run(
        result,
        args.out,
        name=name,
        data_path=args.data,
        data=data,
        command=command_line(
            ["dt-circuits", "train", "--data", args.data, "--out", args.out],
            cfg,
            ["--table1-episodes", str(args.table1_episodes), *(["--name", args.name] if args.name else [])],
        ),
    )
    print(f"trained {name}: {cfg.steps} steps in {result.wall_seconds:.0f} s ({result.steps_per_second:.0f} steps/s)")
    if args.table1_episodes > 0:
        results = evaluate_rtgs(
            result.model,
            TABLE1_RTGS,
            n_episodes=args.table1_episodes,
            env=data.env,
            workers=args.workers,
            progress=not args.quiet,
        )
        t1 = table1(results)
        update_manifest(out, evaluation=t1)
        print(json.dumps(t1, indent=2))
    print(f"wrote {out}")
    return 0
