"""ruff (lint and format, configured in pyproject.toml) is part of the test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dt_circuits.core.paths import REPO_ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_ruff_lint_is_clean():
    proc = _ruff("check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_clean():
    proc = _ruff("format", "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_layers_hold():
    """The pipeline's layering (docs/architecture.md) as import-linter contracts in pyproject.toml."""
    exe = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(exe)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_the_layers_cover_every_sub_package():
    """A new sub-package must be placed in the layers contract, or it escapes the check."""
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    listed = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    package = REPO_ROOT / "dt_circuits"
    present = {f"dt_circuits.{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()}
    present |= {f"dt_circuits.{p.stem}" for p in package.glob("*.py") if p.name != "__init__.py"}
    assert present == listed
