"""The claims panel's data: the JSON ``dt-circuits claims --json`` writes, made by running that command.

The app never evaluates a claim itself: it runs the CLI in a subprocess (so a claim file that fails to import, or a
slow suite, can never take the page's server down) and reads the JSON it wrote, the same file a user gets.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import read_json


@dataclass(frozen=True)
class ClaimsRun:
    """A finished CLI run: the JSON (None when the command failed) and its last error line."""

    data: dict[str, Any] | None
    error: str
    json_path: Path


def json_path(cache_dir: Path, checkpoint: str, claims_dir: Path, only: str | None = None) -> Path:
    """Where the verdicts of (checkpoint, claims folder[, one claim]) are kept."""
    key = hashlib.sha256(f"{Path(checkpoint).resolve()}|{claims_dir.resolve()}|{only or ''}".encode()).hexdigest()
    return cache_dir / f"claims-{key[:16]}.json"


def run_claims(
    checkpoint: str, claims_dir: Path, out: Path, *, only: str | None = None, search: bool = True
) -> ClaimsRun:
    """``dt-circuits claims --checkpoint X --claims-dir D --json OUT --no-report [--only ID] [--no-search]``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "dt_circuits.cli",
        "claims",
        "--checkpoint",
        str(checkpoint),
        "--claims-dir",
        str(claims_dir),
        "--json",
        str(out),
        "--no-report",
        "--quiet",
    ]
    if only:
        cmd += ["--only", only]
    if not search:
        cmd.append("--no-search")
    if out.exists():
        out.unlink()
    env = {**os.environ, "DT_CIRCUITS_THREADS": os.environ.get("DT_CIRCUITS_THREADS", "1")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in (0, 1) or not out.exists():  # 1: a verdict differs from its record (still a run)
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        return ClaimsRun(None, lines[-1] if lines else f"dt-circuits claims exited {proc.returncode}", out)
    return ClaimsRun(load(out), "", out)


def load(path: Path) -> dict[str, Any]:
    """A claims JSON (ConfigError, one line, when it is not one)."""
    data = read_json(path, "claims JSON", ConfigError)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ConfigError(f"{path} is not a claims JSON (no 'claims' list)")
    return data


def check_rows(claim: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per check of a claim: its sample, effect, interval, bound and whether it holds."""
    return [
        {
            "check": c["name"],
            "kind": c.get("kind", ""),
            "sample": c.get("sample", ""),
            "effect": c.get("effect"),
            "ci_low": c.get("ci_low"),
            "ci_high": c.get("ci_high"),
            "bound": c.get("bound", ""),
            "holds": c.get("holds"),
            "clusters": c.get("n_clusters"),
        }
        for c in claim.get("checks", [])
    ]


def counterexamples(claim: dict[str, Any]) -> list[dict[str, Any]]:
    """The counterexamples the search found (states the inspector can open)."""
    return [c for c in claim.get("counterexamples", []) if c.get("found")]
