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
import shlex

NAME = "train"
HELP = "train a one-timestep Decision Transformer on a trajectory file (deterministic, seeded)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dt_circuits.training.train import TrainConfig

    d = TrainConfig()
    p.add_argument("--data", required=True, help="trajectory file written by `dt-circuits collect`")
    p.add_argument("--out", required=True, help="checkpoint directory to write (replaced atomically)")
    p.add_argument("--name", help="checkpoint name in the manifest (default: the --out folder name)")
    p.add_argument(
        "--encoding",
        choices=["index", "one_hot"],
        default=d.obs_encoding,
        help="observation encoding inside the model: raw Minigrid indices (the post) or one-hot (default index)",
    )
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"batch size (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr:g})")
    p.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        default=d.lr_schedule,
        help=f"constant (as DTI) or linear warm-up then cosine decay to 0 (default {d.lr_schedule})",
    )
    p.add_argument(
        "--warmup-steps", type=int, default=d.warmup_steps, help=f"warm-up steps for cosine (default {d.warmup_steps})"
    )
    p.add_argument(
        "--weight-decay", type=float, default=d.weight_decay, help=f"AdamW weight decay (default {d.weight_decay:g})"
    )
    p.add_argument(
        "--prob-go-from-end",
        type=float,
        default=d.prob_go_from_end,
        help="chance a sampled step is replaced by its trajectory's last step, as DTI "
        f"(default {d.prob_go_from_end:g})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed for init and batch sampling (default {d.seed})")
    p.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help=f"torch threads; part of the reproducibility contract, recorded in the manifest (default {d.threads})",
    )
    p.add_argument("--n-layers", type=int, default=d.n_layers, help=f"transformer layers (default {d.n_layers})")
    p.add_argument("--n-heads", type=int, default=d.n_heads, help=f"attention heads (default {d.n_heads})")
    p.add_argument("--d-model", type=int, default=d.d_model, help=f"residual width (default {d.d_model})")
    p.add_argument("--d-head", type=int, default=d.d_head, help=f"head width (default {d.d_head})")
    p.add_argument("--d-mlp", type=int, default=d.d_mlp, help=f"MLP width (default {d.d_mlp})")
    p.add_argument(
        "--log-every", type=int, default=d.log_every, help=f"steps per loss-curve point (default {d.log_every})"
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=2000,
        help="steps between quick in-env evaluations during training (0: only at the end; default 2000)",
    )
    p.add_argument(
        "--eval-episodes",
        type=int,
        default=d.eval_episodes,
        help=f"episodes per RTG in those (default {d.eval_episodes})",
    )
    p.add_argument(
        "--table1-episodes",
        type=int,
        default=500,
        help="episodes per RTG for the final Table-1 evaluation stored in the manifest (0 skips it; default 500)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="processes for the Table-1 evaluation (default: all cores)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def command_line(args: argparse.Namespace) -> str:
    """The complete command that reproduces this run (every training option spelled out)."""
    parts = [
        "dt-circuits", "train", "--data", args.data, "--out", args.out, "--encoding", args.encoding,
        "--steps", args.steps, "--batch-size", args.batch_size, "--lr", args.lr,
        "--lr-schedule", args.lr_schedule, "--warmup-steps", args.warmup_steps,
        "--weight-decay", args.weight_decay, "--prob-go-from-end", args.prob_go_from_end, "--seed", args.seed,
        "--threads", args.threads, "--n-layers", args.n_layers, "--n-heads", args.n_heads,
        "--d-model", args.d_model, "--d-head", args.d_head, "--d-mlp", args.d_mlp,
        "--eval-every", args.eval_every, "--eval-episodes", args.eval_episodes,
        "--table1-episodes", args.table1_episodes,
    ]  # fmt: skip
    if args.name:
        parts += ["--name", args.name]
    return shlex.join(str(x) for x in parts)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from dt_circuits.evaluation.calibration import TABLE1_RTGS, evaluate_rtgs, table1, update_manifest
    from dt_circuits.training.train import TrainConfig, save_run, train
    from dt_circuits.trajectories.dataset import TrajectoryDataset

    cfg = TrainConfig(
        obs_encoding=args.encoding,
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        d_model=args.d_model,
        d_head=args.d_head,
        d_mlp=args.d_mlp,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        prob_go_from_end=args.prob_go_from_end,
        steps=args.steps,
        seed=args.seed,
        threads=args.threads,
        log_every=args.log_every,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
    )
    data = TrajectoryDataset.load(args.data)
    result = train(cfg, data, progress=not args.quiet)
    name = args.name or Path(args.out).name
    out = save_run(result, args.out, name=name, data_path=args.data, data=data, command=command_line(args))
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
