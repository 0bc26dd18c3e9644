"""Roll a checkpoint out in the real env and print goal / collision / timeout rates per initial RTG.

A Memory checkpoint (MemoryDT) is rolled out with its context window, episodes capped at 50 steps
(``dt_circuits.env.memory.EVAL_MAX_STEPS``), and reports success / wrong object / timeout with Wilson intervals.

Examples:
  dt-circuits evaluate --checkpoint ../shared/reference/dti-memory-s7-fixed-start-gated-mlp.pt --rtgs 0.892 0 \
      --episodes 1000
  dt-circuits evaluate --checkpoint ../shared/reference/dti-dynamic-obstacles-reproduce-original-post-short.pt \\
      --rtgs -1 0 0.9 --episodes 200
"""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = "roll a checkpoint out in the real env and report outcome rates per RTG"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="our checkpoint directory or a DTI .pt file")
    p.add_argument(
        "--rtgs",
        type=float,
        nargs="+",
        default=[-1.0, 0.0, 0.9],
        help="initial RTGs (default -1 0 0.9)",
    )
    p.add_argument("--episodes", type=int, default=200, help="episodes per RTG (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed for env layouts and action sampling (default 0)")
    p.add_argument("--argmax", action="store_true", help="take the argmax action instead of sampling")
    p.add_argument("--json", metavar="OUT", help="also write the per-RTG summaries to this JSON file")

    from dt_circuits.core.backends import DEFAULT_ENV_BACKEND, add_env_backend_argument

    # no default here: a Memory checkpoint is always stepped by Minigrid, and only an explicit envpool is refused
    add_env_backend_argument(p, default=None, help_suffix=f"; default {DEFAULT_ENV_BACKEND} (Memory: always minigrid)")


def run(args: argparse.Namespace) -> int:
    from dt_circuits.core.backends import DEFAULT_ENV_BACKEND
    from dt_circuits.core.errors import ConfigError
    from dt_circuits.dt.checkpoint import load_checkpoint
    from dt_circuits.evaluation.rollout import rollout

    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    model = load_checkpoint(args.checkpoint)
    if model.checkpoint_info.env.family == "memory":
        if args.env_backend == "envpool":
            raise ConfigError("--env-backend envpool applies to Dynamic Obstacles checkpoints only, not Memory")
        return _run_memory(args, model)
    rows = []
    print(f"{'rtg':>6} {'episodes':>8} {'goal':>6} {'collide':>8} {'timeout':>8} {'reward':>8} {'length':>7}")
    for rtg in args.rtgs:
        res = rollout(
            model, rtg=rtg, n_episodes=args.episodes, seed=args.seed, sample=not args.argmax,
            env_backend=args.env_backend or DEFAULT_ENV_BACKEND,
        )  # fmt: skip
        s = res.summary()
        rows.append(s)
        print(
            f"{rtg:>6.2f} {s['episodes']:>8d} {s['goal_rate']:>6.1%} {s['collision_rate']:>8.1%} "
            f"{s['timeout_rate']:>8.1%} {s['mean_reward']:>8.3f} {s['mean_length']:>7.1f}"
        )
    if args.json:
        from dt_circuits.core.io import write_json_atomic

        write_json_atomic(args.json, {"checkpoint": str(args.checkpoint), "results": rows})
    return 0


def _run_memory(args: argparse.Namespace, model: object) -> int:
    from dt_circuits.evaluation.memory_rollout import memory_rollouts

    rows = []
    for rtg in args.rtgs:
        res = memory_rollouts(model, rtg, args.episodes, seed=args.seed, sample=not args.argmax)  # type: ignore[arg-type]
        print(res.summary())
        rows.append({"rtg": rtg, "episodes": res.n, "sample": res.sample, "max_steps": res.max_steps,
                     **{o: res.count(o) for o in ("success", "wrong", "timeout")},
                     "mean_length": float(res.lengths.mean())})  # fmt: skip
    if args.json:
        from dt_circuits.core.io import write_json_atomic

        write_json_atomic(args.json, {"checkpoint": str(args.checkpoint), "results": rows})
    return 0
