"""RTG calibration curve (the post's Fig. 5): mean reward and 95% band against the initial RTG.

For every RTG, --episodes episodes in the real env with sampled actions; the RTG drops by each reward received
and the time input is the step count (DTI's evaluation). Episodes run in --workers processes in fixed chunks,
so the numbers are the same for any worker count. Works on our checkpoint directories and on DTI .pt files
(evaluated in the env their config names, e.g. max_steps 1000 for the reference).

Examples:
  dt-circuits calibrate --checkpoint checkpoints/raw-index --record
  dt-circuits calibrate --checkpoint ../shared/reference/dti-dynamic-obstacles-reproduce-original-post-short.pt \\
      --episodes 200 --json /tmp/dti-calibration.json --plot /tmp/dti-calibration.png
"""

from __future__ import annotations

import argparse

NAME = "calibrate"
HELP = "RTG calibration curve (post Fig. 5): mean reward and 95%% band vs initial RTG, as JSON and PNG"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dt_circuits.evaluation.rtgs import DEFAULT_RTGS

    p.add_argument("--checkpoint", required=True, help="our checkpoint directory or a DTI .pt file")
    p.add_argument("--episodes", type=int, default=500, help="episodes per RTG (default 500, as the post)")
    p.add_argument(
        "--rtgs",
        type=float,
        nargs="+",
        default=list(DEFAULT_RTGS),
        help="initial RTGs to test (default: -1 to 1 in steps of 0.1)",
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed for env layouts and action sampling (default 0)")
    p.add_argument("--json", metavar="OUT", help="write the per-RTG table (episodes, rates, mean length, band) here")
    p.add_argument("--plot", metavar="OUT.png", help="write the calibration figure here")
    p.add_argument(
        "--record",
        action="store_true",
        help="for our checkpoints: also write calibration.json/.png into the directory and a summary into its "
        "manifest (and the Table-1 numbers when the RTGs include -1, 0 and 0.9)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    from dt_circuits.core.backends import add_env_backend_argument

    add_env_backend_argument(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dt_circuits.analysis.figures import calibration_figure, save_png
    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.io import write_json_atomic
    from dt_circuits.dt.checkpoint import load_checkpoint
    from dt_circuits.evaluation.calibration import calibrate

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    model = load_checkpoint(args.checkpoint)
    info = model.checkpoint_info
    if args.record and info.kind != "dt-circuits":
        raise ConfigError("--record only applies to our checkpoint directories")
    cal = calibrate(
        model,
        args.rtgs,
        n_episodes=args.episodes,
        seed=args.seed,
        workers=args.workers,
        progress=not args.quiet,
        source=str(args.checkpoint),
        env_backend=args.env_backend,
    )
    print(f"{'rtg':>6} {'reward':>8} {'95% band':>17} {'goal':>6} {'collide':>8} {'timeout':>8} {'length':>7}")
    for r in cal.rows():
        lo, hi = r["band_95"]
        print(
            f"{r['rtg']:>6.2f} {r['mean_reward']:>8.3f} [{lo:>6.3f}, {hi:>6.3f}] {r['goal_rate']:>6.1%} "
            f"{r['collision_rate']:>8.1%} {r['timeout_rate']:>8.1%} {r['mean_length']:>7.1f}"
        )
    title = f"{info.name}: RTG calibration ({args.episodes} episodes per RTG, max_steps {cal.env.max_steps})"
    if args.json:
        write_json_atomic(args.json, cal.to_json())
    if args.plot:
        save_png(calibration_figure(cal, title=title), args.plot, dpi=110)
    if args.record:
        from dt_circuits.training.record import write_calibration

        directory = Path(args.checkpoint)
        write_calibration(directory if directory.is_dir() else directory.parent, cal, name=info.name)
    return 0
