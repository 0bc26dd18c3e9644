"""Collect offline trajectories for DT training into one safe file (zip of .npy arrays + JSON, never pickle).

Sources:
  scripted  a seeded mix of scripted policies with epsilon-noise (goal seeker, delayed seeker, survivor,
            ball crasher, wall crasher); episode i depends only on (mix, seed, i), so --workers never
            changes the data.
  ppo       Stable-Baselines3 PPO (defaults, MlpPolicy on the flattened view) trained for --timesteps env
            steps; every episode played during training is kept (random -> competent), as in the post.
  dti       convert a DecisionTransformerInterpretability trajectory pickle. Unpickling runs code from the
            file, so this needs --allow-pickle; use it only on files you trust.
  merge     concatenate files written by this command (--inputs), e.g. PPO data plus scripted survivors.

Examples:
  dt-circuits collect --source scripted --episodes 6000 --seed 0 --max-steps 300 --workers 2 \\
      --out fixtures/trajectories-scripted.npz
  dt-circuits collect --source ppo --timesteps 250000 --seed 0 --max-steps 300 --out /tmp/ppo-seed0.npz
"""

from __future__ import annotations

import argparse
import json

NAME = "collect"
HELP = "collect trajectories (scripted mix, PPO training run, DTI pickle, merge) into a data file"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from dt_circuits.trajectories.mix import DEFAULT_MIX

    p.add_argument(
        "--source", choices=["scripted", "ppo", "dti", "merge"], required=True, help="where the data comes from"
    )
    p.add_argument("--out", required=True, help="output file (.npz); written atomically")
    p.add_argument("--seed", type=int, default=0, help="scripted: episode seeds; ppo: PPO's seed (default 0)")
    p.add_argument(
        "--max-steps",
        type=int,
        default=300,
        help="env max_steps (timeout length; reward is 1 - 0.9 * steps / max_steps). Default 300, like DTI's PPO",
    )
    g = p.add_argument_group("scripted")
    g.add_argument("--episodes", type=int, default=6000, help="number of episodes (default 6000)")
    g.add_argument(
        "--mix",
        nargs="+",
        metavar="NAME:WEIGHT[:eps=E]",
        default=[m.to_text() for m in DEFAULT_MIX],
        help="policies, their sampling weights and epsilon-noise (default: %(default)s)",
    )
    g.add_argument("--workers", type=int, default=1, help="processes for scripted collection (default 1)")
    g = p.add_argument_group("ppo")
    g.add_argument("--timesteps", type=int, default=250_000, help="PPO env steps (default 250000)")
    g.add_argument("--n-envs", type=int, default=8, help="parallel envs PPO learns from (default 8)")
    g.add_argument("--threads", type=int, default=1, help="torch threads for PPO (default 1)")
    g = p.add_argument_group("dti / merge")
    g.add_argument("--inputs", nargs="+", default=[], help="dti: the pickle file; merge: files to concatenate")
    g.add_argument(
        "--allow-pickle",
        action="store_true",
        help="dti: allow unpickling the input. Unpickling runs code from the file: only for files you trust",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.io import sha256_file
    from dt_circuits.env.spec import EnvSpec
    from dt_circuits.trajectories.dataset import (
        TrajectoryDataset,
        collect_scripted,
        load_dti_trajectories,
    )
    from dt_circuits.trajectories.mix import parse_mix

    env = EnvSpec(max_steps=args.max_steps)
    if args.source == "scripted":
        if args.episodes < 1 or args.workers < 1:
            raise ConfigError("--episodes and --workers must be >= 1")
        data = collect_scripted(
            parse_mix(args.mix),
            n_episodes=args.episodes,
            seed=args.seed,
            env=env,
            workers=args.workers,
            progress=not args.quiet,
        )
    elif args.source == "ppo":
        from dt_circuits.trajectories.ppo import PPOConfig, collect_ppo

        cfg = PPOConfig(total_timesteps=args.timesteps, n_envs=args.n_envs, seed=args.seed, threads=args.threads)
        data = collect_ppo(cfg, env, progress=not args.quiet)
    elif args.source == "dti":
        if len(args.inputs) != 1:
            raise ConfigError("--source dti needs exactly one file in --inputs")
        data = load_dti_trajectories(args.inputs[0], env=env, allow_pickle=args.allow_pickle)
    else:
        if not args.inputs:
            raise ConfigError("--source merge needs --inputs")
        parts = [TrajectoryDataset.load(path) for path in args.inputs]
        data = TrajectoryDataset.concat(
            parts,
            meta={"source": "merge", "inputs": [{"path": path, "sha256": sha256_file(path), "meta": d.meta}
                                                for path, d in zip(args.inputs, parts, strict=True)]},
        )  # fmt: skip
    data.save(args.out)
    print(json.dumps({"out": args.out, "sha256": sha256_file(args.out), **data.summary()}, indent=2))
    return 0
