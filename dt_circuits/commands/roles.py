"""Find which component plays each claim role (obstacle_head, goal_head, goal_mlp) in a checkpoint.

For each role's defining scenario (post Fig. 8/9/10) every head and the MLP is mean-ablated and the change in
P(forward) printed; the role goes to the component with the largest increase. Then path patching says what each
head does there (relays RTG, reads the state token, both), so a checkpoint whose heads only relay RTG — which
no ablation at a fixed RTG can see — says so instead of silently keeping the post's binding. --record stores
the binding (and the path findings, as head_paths) in our checkpoint's manifest (a deliberate act, like
recording expectations); for a foreign file write a roles JSON with --out and pass it to `dt-circuits claims
--roles`.

Example:
  dt-circuits roles --checkpoint checkpoints/raw-index --record
"""

from __future__ import annotations

import argparse
import json

NAME = "roles"
HELP = "find which head / MLP plays each claim role by ablation; optionally record the binding"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="our checkpoint directory or a DTI .pt file")
    p.add_argument("--record", action="store_true", help="store the discovered roles in our checkpoint's manifest")
    p.add_argument("--out", metavar="FILE", help="write the discovered roles as a roles JSON file")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.claims.roles.paths import scan_head_paths
    from dt_circuits.claims.roles.scan import MIN_ROLE_EFFECT, ROLE_SCENARIOS, discovered_roles, scan_roles
    from dt_circuits.core.errors import CheckpointError
    from dt_circuits.core.io import write_json_atomic
    from dt_circuits.dt.checkpoint import MANIFEST_FILE, read_manifest

    subject = Subject.load(args.checkpoint)
    scans = scan_roles(subject)
    head_paths = scan_head_paths(subject)
    relay_only = [h.head for h in head_paths if h.finding == "relays RTG only"]
    for s in scans:
        effects = "  ".join(f"{c}: {v:+.3f}" for c, v in s.effects.items())
        why = ""
        kind = ROLE_SCENARIOS[s.role][2]
        if max(v for c, v in s.effects.items() if ("mlp" in c) == (kind == "mlp")) < MIN_ROLE_EFFECT:
            why = f" (post's binding kept: no ablation effect reaches {MIN_ROLE_EFFECT:g}"
            why += f"; path patching: {', '.join(relay_only)} relay RTG only)" if relay_only else ")"
        print(f"{s.role:<14} {s.family} @ RTG {s.rtg:g}  ΔP(forward) {effects}  -> {s.chosen}{why}")
    print("path patching, per head:")
    for h in head_paths:
        print(f"  {h.line()}")
    roles = discovered_roles(scans)
    if args.out:
        write_json_atomic(args.out, roles)
    if args.record:
        directory = Path(args.checkpoint)
        if not directory.is_dir():
            raise CheckpointError("--record needs one of our checkpoint directories; use --out for foreign files")
        manifest = read_manifest(directory)
        manifest["roles"] = roles
        manifest["roles_method"] = "dt-circuits roles: largest mean-ablation ΔP(forward) in each role's scenario"
        manifest["head_paths"] = {h.head: h.to_dict() for h in head_paths}
        write_json_atomic(directory / MANIFEST_FILE, manifest)
        print(f"wrote roles {json.dumps(roles)} to {directory / MANIFEST_FILE}")
    return 0
