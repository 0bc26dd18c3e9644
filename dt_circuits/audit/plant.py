"""Train one planted model (an arm and a seed) and record its independently checked truth in its manifest.

Arms (issue 28): A plants "ball in front" in head 1 (L0H1), B in the MLP, C in head 0 (L0H0), D plants nothing
(today's recipe: the truth is whatever the check measures), E in head 1's direct path to the logits (the path
claim's truth: arm A left it partial in 14 of 15 seeds, so the path claim's sensitivity rested on one model).
Every arm trains on the same data with the same recipe; only ``iit_component`` differs, so D is byte-for-byte
``dt-circuits train`` at the same steps and seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dt_circuits.core.errors import ConfigError

ARMS: dict[str, str] = {"A": "L0H1", "B": "mlp", "C": "L0H0", "D": "", "E": "L0H1-direct"}
#: the manifest key of the truth (never shown to the claims: the game strips it, see audit.game)
TRUTH_KEY = "planted_truth"


def arm_component(arm: str) -> str:
    if arm not in ARMS:
        known = ", ".join(f"{a} ({c or 'none'})" for a, c in ARMS.items())
        raise ConfigError(f"unknown arm {arm!r}; arms: {known}")
    return ARMS[arm]


def plant(
    arm: str,
    seed: int,
    *,
    steps: int,
    data_path: str,
    out_dir: str | Path,
    progress: bool = False,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train arm ``arm`` at ``seed`` for ``steps`` steps, save it to ``out_dir``, check and record its truth."""
    import torch

    from dt_circuits.audit.truth import planted_truth
    from dt_circuits.evaluation.calibration import update_manifest
    from dt_circuits.training.config import TrainConfig, command_line
    from dt_circuits.training.train import save_run, train
    from dt_circuits.trajectories.dataset import TrajectoryDataset

    component = arm_component(arm)
    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict({"steps": steps, "seed": seed, "iit_component": component, **(overrides or {})})
    data = TrajectoryDataset.load(data_path)
    start = time.perf_counter()
    result = train(cfg, data, progress=progress)
    wall = time.perf_counter() - start
    out = Path(out_dir)
    command = command_line(["dt-circuits", "train", "--data", str(data_path), "--out", str(out)], cfg,
                           ["--table1-episodes", "0"])  # fmt: skip
    save_run(result, out, name=out.name, data_path=data_path, data=data, command=command)
    (out / "loss_curve.png").unlink(missing_ok=True)  # the JSON curve is kept; the figure is 80 kB of it
    truth = planted_truth(result.model)
    truth.update(
        arm=arm,
        seed=seed,
        planted=component or None,
        steps=steps,
        train_wall_seconds=round(wall, 1),
        in_env=result.evaluations[-1]["results"] if result.evaluations else None,
        iit_final=result.curve.get("iit", [None])[-1],
    )
    update_manifest(out, **{TRUTH_KEY: truth})
    return truth


#: what a model's training recorded beside its truth (kept when the truth is checked again)
TRAINING_FIELDS = ("arm", "seed", "planted", "steps", "train_wall_seconds", "in_env", "iit_final")


def record_truth(directory: str | Path) -> dict[str, Any]:
    """Check a planted model's truth again with today's truth code (e.g. a truth added since it was trained, as
    the direct paths were) and record it, keeping what its training recorded. A recorded component number that
    the same weights no longer reproduce is a CheckpointError, and nothing is written."""
    from dt_circuits.audit.truth import planted_truth
    from dt_circuits.core.errors import CheckpointError
    from dt_circuits.dt.checkpoint import load_checkpoint, read_manifest
    from dt_circuits.evaluation.calibration import update_manifest

    old = read_manifest(directory).get(TRUTH_KEY)
    if not old:
        raise CheckpointError(f"{directory} has no {TRUTH_KEY} in its manifest: not a planted model")
    new = planted_truth(load_checkpoint(directory))
    if new["components"] != old["components"]:
        raise CheckpointError(f"{directory}: the recorded component truth does not reproduce ({old['components']} "
                              f"recorded, {new['components']} now)")  # fmt: skip
    truth = {**new, **{k: old[k] for k in TRAINING_FIELDS if k in old}}
    update_manifest(directory, **{TRUTH_KEY: truth})
    return truth


@dataclass(frozen=True)
class PlantTask:
    """One model to plant, picklable for the executor (local processes or Ray)."""

    arm: str
    seed: int
    steps: int
    data_path: str
    out_dir: str
    overrides: dict[str, Any] | None = None


def plant_task(task: PlantTask) -> dict[str, Any]:
    """:func:`plant` for one task (module level, so the executor can send it to another process)."""
    return plant(task.arm, task.seed, steps=task.steps, data_path=task.data_path, out_dir=task.out_dir,
                 overrides=task.overrides)  # fmt: skip
