"""Which math-kernel settings give which trained weight bytes, measured per CPU model.

The gate compares bytes only where they can match (``core.machine.same_kind``); this module is the evidence for
where that is. One measurement: the sha256 of raw-index's weights after 300 steps of its committed recipe (one
thread) under a kernel setting, in a fresh process (MKL and ATen read their settings when torch starts).
``python -m dt_circuits.claims.records.kernel_hashes [--record]`` measures every setting on this CPU and, with
``--record``, writes this CPU's runs into ``docs/populations/kernel-hashes.json`` beside other CPUs' runs;
``tests/test_portability.py`` (``pytest -m portability``) measures them again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dt_circuits.core.io import read_json, write_json_atomic
from dt_circuits.core.machine import KERNEL_VARIABLES, cpu_model
from dt_circuits.core.paths import CHECKPOINTS_DIR, REPO_ROOT

RECORD = REPO_ROOT / "docs" / "populations" / "kernel-hashes.json"

#: the settings measured: MKL's code paths (``MKL_CBWR``) and ATen's vector capability, alone and together
SETTINGS = (
    "(default)",
    "MKL_CBWR=AVX2",
    "ATEN_CPU_CAPABILITY=avx2",
    "MKL_CBWR=AVX2 ATEN_CPU_CAPABILITY=avx2",
    "MKL_CBWR=COMPATIBLE",
    "MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=avx2",
    "MKL_CBWR=AVX512",
)

_TRAIN = """
import json, sys, time, torch
from pathlib import Path
from dt_circuits.claims.records.gate import retrain
from dt_circuits.core.machine import kernel_settings
from dt_circuits.training.train import weights_digest
torch.set_num_threads(1)
start = time.perf_counter()
result, _, _ = retrain(Path(sys.argv[1]), {"steps": int(sys.argv[2])}, progress=False)
print(json.dumps({"sha256": weights_digest(result.model), "seconds": round(time.perf_counter() - start, 1),
                  "final_loss": round(result.curve["loss"][-1], 5), "aten": kernel_settings().get("aten")}))
"""


def measure(setting: str, checkpoint: Path = CHECKPOINTS_DIR / "raw-index", steps: int = 300) -> dict[str, Any]:
    """Train ``steps`` steps of ``checkpoint``'s recipe under ``setting`` ("(default)" or space-separated
    ``VAR=VALUE`` pairs) in a fresh process, every other kernel variable unset; the run's record."""
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARIABLES}
    if setting != "(default)":
        env.update(dict(pair.split("=", 1) for pair in setting.split()))
    proc = subprocess.run([sys.executable, "-c", _TRAIN, str(checkpoint), str(steps)], env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"training under {setting} failed: {proc.stderr.strip().splitlines()[-1:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"setting": setting, "cpu": cpu_model(), **out}


def recorded_runs(path: Path = RECORD) -> list[dict[str, Any]]:
    return list(read_json(path, "kernel hashes", ValueError)["runs"])


def record(runs: list[dict[str, Any]], path: Path = RECORD, when: str | None = None) -> None:
    """Replace the runs of the CPUs in ``runs`` with them, keep every other CPU's, write atomically."""
    data = read_json(path, "kernel hashes", ValueError)
    cpus = {r["cpu"] for r in runs}
    data["runs"] = [r for r in data["runs"] if r["cpu"] not in cpus] + runs
    if when:
        data.setdefault("measured_on", {}).update({cpu: when for cpu in cpus})
    write_json_atomic(path, data)


def main(argv: list[str] | None = None) -> int:
    import datetime

    p = argparse.ArgumentParser(prog="python -m dt_circuits.claims.records.kernel_hashes", description=__doc__)
    p.add_argument("--record", action="store_true", help=f"write this CPU's runs into {RECORD}")
    args = p.parse_args(argv)
    runs = []
    for setting in SETTINGS:
        run = measure(setting)
        print(f"{setting:<48} {run['sha256'][:12]}  {run['seconds']:6.1f} s  loss {run['final_loss']}", flush=True)
        runs.append(run)
    if args.record:
        record(runs, when=datetime.date.today().isoformat())
        print(f"recorded {len(runs)} runs on {cpu_model()} in {RECORD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
