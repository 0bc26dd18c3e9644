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


def _contracts() -> list[dict]:
    import tomllib

    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _members(package: Path, prefix: str) -> set[str]:
    """The sub-packages and modules directly in ``package``, named ``prefix + name``."""
    present = {f"{prefix}{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()}
    return present | {f"{prefix}{p.stem}" for p in package.glob("*.py") if p.name != "__init__.py"}


def _listed(contract: dict) -> set[str]:
    return {name.strip() for layer in contract["layers"] for name in layer.split("|")}


def test_the_layers_cover_every_sub_package():
    """A new sub-package must be placed in the layers contract, or it escapes the check."""
    (contract,) = [c for c in _contracts() if c["type"] == "layers" and "containers" not in c]
    assert _members(REPO_ROOT / "dt_circuits", "dt_circuits.") == _listed(contract)


def test_the_claims_package_is_layered_by_job_and_covers_every_part():
    """``dt_circuits.claims`` by job (issue 30): every sub-package and module of it sits in the claims contract's
    layers, so a new part must be placed there (a part left out would import anything)."""
    (contract,) = [c for c in _contracts() if c.get("containers") == ["dt_circuits.claims"]]
    assert _members(REPO_ROOT / "dt_circuits" / "claims", "") == _listed(contract)
    assert contract["layers"][-1] == "evaluation" and contract["layers"][0] == "plugin"


def test_no_import_cycle_anywhere_in_the_package():
    """The acyclic-siblings contract covers the whole package at every depth (lint-imports, above, checks it);
    before issue 30 four pairs of modules imported each other."""
    (contract,) = [c for c in _contracts() if c["type"] == "acyclic_siblings"]
    assert contract["ancestors"] == ["dt_circuits"] and "depth" not in contract and not contract.get("ignore_imports")


def test_the_wheel_lists_every_package_of_the_source_tree():
    """pyproject lists the packages by hand (the shipped folders are mapped from the top of the repository, which
    setuptools' discovery cannot combine): a new sub-package must be listed, or the wheel would lack it."""
    import tomllib

    from setuptools import find_namespace_packages

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {p for p in find_namespace_packages(str(REPO_ROOT), include=["dt_circuits*"]) if "__pycache__" not in p}
    mapped = set(config["package-dir"])
    assert found == listed - mapped
    assert {"dt_circuits.shipped_claims", "dt_circuits.shipped_checkpoints"} <= mapped
