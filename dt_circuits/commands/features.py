"""Localise world-state variables in a checkpoint: probes (accuracy, majority, selectivity) at every site and the
input, and ball-in-front by interchange (IIA of DAS, a probe's direction, the best neuron) — issue 27.

Examples:
  dt-circuits features --checkpoint checkpoints/raw-index --json docs/features/raw-index.json
  dt-circuits features --checkpoint ../shared/reference/dti-memory-s7-fixed-start-gated-mlp.pt \
      --json docs/features/dti-memory.json   # MemoryDT: the instruction, in view, the correct side (probes)
  dt-circuits features --checkpoint checkpoints/raw-index --k 2 --json k2.json   # DAS with two dimensions
  dt-circuits features --from docs/features/raw-index.json --report dt-circuits-report/features-raw-index
                                         # the figures and table of a table computed before (no model)
  dt-circuits features --readme          # rewrite the README's features table from docs/features/*.json
  dt-circuits features --readme --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse

NAME = "features"
HELP = "probe and DAS localisation table of world-state variables (issue 27)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="our checkpoint directory or a DTI .pt file")
    p.add_argument("--json", metavar="OUT", help="write the table as JSON (with the checkpoint's name and sha256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the states, splits, control task and DAS (0)")
    p.add_argument("--k", type=_positive, default=1, help="dimensions of the DAS subspace at each interchange site (1)")
    p.add_argument(
        "--interchange",
        nargs="+",
        metavar="VAR",
        help="variables localised by interchange (Dynamic Obstacles: ball_in_front rtg_sign, the default)",
    )
    p.add_argument("--readme", action="store_true", help="regenerate the README's features table from JSON files")
    p.add_argument("--check", action="store_true", help="with --readme: only check that the README is up to date")
    p.add_argument("--report", metavar="DIR", help="also write the table and its figures as a static report in DIR")
    p.add_argument("--from", dest="table_json", metavar="JSON", help="read a table written by --json (no model)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dt_circuits.core.errors import ConfigError
    from dt_circuits.core.io import write_json_atomic
    from dt_circuits.core.paths import REPO_ROOT
    from dt_circuits.features.readme_table import FEATURES_DIR, generated_readme, terminal_table

    if args.readme:
        from dt_circuits.core.readme_blocks import write_or_check

        path = REPO_ROOT / "README.md"
        return write_or_check(
            path, generated_readme(path.read_text(), REPO_ROOT / FEATURES_DIR), "features", check=args.check
        )
    if args.table_json:
        from dt_circuits.core.io import read_json
        from dt_circuits.features.report import check_table

        table = check_table(read_json(args.table_json, "features table", ConfigError))
        print(terminal_table(table))
        return _report(args, table)
    if not args.checkpoint:
        raise ConfigError("--checkpoint is required (or --readme, or --from a table)")

    from dt_circuits.core.io import sha256_file
    from dt_circuits.core.machine import cpu_model
    from dt_circuits.core.threads import configure_threads
    from dt_circuits.dt.checkpoint import load_checkpoint
    from dt_circuits.features.table import localisation_table, memory_localisation_table

    if args.interchange:  # a misspelt variable fails before the model and its rollouts are loaded
        from dt_circuits.features.data import check_interchanged

        check_interchanged(args.interchange)
    configure_threads()
    model = load_checkpoint(args.checkpoint)
    source = Path(args.checkpoint)
    weights = source / "model.safetensors" if source.is_dir() else source
    if model.cfg.n_timesteps > 1:
        if args.interchange:
            raise ConfigError("--interchange: a MemoryDT table localises the instruction only")
        computed = memory_localisation_table(model, seed=args.seed, k=args.k, progress=not args.quiet)
    else:
        states, describe = _on_policy_states(model)
        chosen = {"interchanged": tuple(args.interchange)} if args.interchange else {}
        computed = localisation_table(
            model, seed=args.seed, k=args.k, progress=not args.quiet, on_policy=states, **chosen
        )
        computed["on_policy"]["states"] = describe
    table = {"checkpoint": source.name.removesuffix(".pt"), "sha256": sha256_file(weights), "cpu": cpu_model(),
             **computed}  # fmt: skip
    print(terminal_table(table))
    if args.json:
        write_json_atomic(args.json, table)
        print(f"wrote {args.json}")
    return _report(args, table)


def _positive(text: str) -> int:
    """argparse type: a positive integer (a bad value is one line from argparse)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _on_policy_states(model):
    """The checkpoint's own states, as the claims' on-policy probes take them (``ProbeStates(sample="on-policy")``:
    the suite's rollouts, disk-cached), and their description."""
    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.claims.measures.features import ProbeStates
    from dt_circuits.features.data import RTGS

    on = ProbeStates(sample="on-policy")
    rtgs = ", ".join(f"{r:g}" for r in RTGS)
    describe = f"the first {on.per_rtg} of {on.episodes} sampled episodes (seed {on.seed}) at each RTG {rtgs}"
    return on.states(Subject.from_model(model)), describe


def _report(args: argparse.Namespace, table: dict) -> int:
    if args.report:
        from dt_circuits.features.report import write_features_report

        print(f"report: {write_features_report(args.report, table)}")
    return 0
