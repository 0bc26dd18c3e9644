"""Where the project's data lives: what the package ships, the checkout (when there is one), and the reference.

The checkpoints and claims this project ships live at the top of the checkout (``checkpoints/``, ``claims/``), as
in a user's repository of claims. The wheel ships the same files inside the package (setuptools maps the two
folders to ``dt_circuits/shipped_checkpoints`` and ``dt_circuits/shipped_claims``: one copy of each file in the
repository), so ``dt-circuits claims`` finds them after a wheel install as well as in a checkout. The training
data and ``../shared`` exist only in a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: the checkout the package runs from; in a wheel install this is site-packages, which has no pyproject.toml
REPO_ROOT = PACKAGE_ROOT.parent

REFERENCE_NAME = "dti-dynamic-obstacles-reproduce-original-post-short.pt"
#: MemoryDT-GatedMLP, the published Memory checkpoint: the memory claims run on it.
MEMORY_REFERENCE_NAME = "dti-memory-s7-fixed-start-gated-mlp.pt"


def in_checkout() -> bool:
    """True when the package runs from this project's source tree (not from an installed wheel)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / ".git").exists()


def _shipped(folder: str) -> Path:
    """A shipped folder: ``<source tree>/<folder>`` when running from the sources (a checkout, an editable install),
    ``dt_circuits/shipped_<folder>`` in an installed wheel."""
    top = REPO_ROOT / folder
    return top if (REPO_ROOT / "pyproject.toml").is_file() and top.is_dir() else PACKAGE_ROOT / f"shipped_{folder}"


def shared_dir() -> Path:
    """``../shared`` beside the checkout (CI puts it there); ``DT_CIRCUITS_SHARED`` overrides."""
    return Path(os.environ.get("DT_CIRCUITS_SHARED", REPO_ROOT.parent / "shared"))


#: the checkpoints this project ships, one folder each
CHECKPOINTS_DIR = _shipped("checkpoints")
#: the claims this project ships (one file per hypothesis) and their recorded expectations
BUILTIN_CLAIMS_DIR = _shipped("claims")


def reference_checkpoint() -> Path:
    """The published DTI checkpoint. It is read from shared/, never copied into the repo."""
    return shared_dir() / "reference" / REFERENCE_NAME


def memory_reference_checkpoint() -> Path:
    """The published MemoryDT-GatedMLP checkpoint, read from shared/ like the Dynamic Obstacles reference."""
    return shared_dir() / "reference" / MEMORY_REFERENCE_NAME


def own_checkpoints() -> list[Path]:
    """Every checkpoint directory this project ships (those with a manifest)."""
    if not CHECKPOINTS_DIR.exists():
        return []
    return sorted(p for p in CHECKPOINTS_DIR.iterdir() if (p / "manifest.json").exists())


def checkpoint_label(path: str | Path) -> str:
    """A short name for a checkpoint (test ids, report folders): the folder's name, the file's stem, or
    dti-reference / dti-memory for the published DTI checkpoints."""
    p = Path(path)
    if p.suffix == ".pt" and p.name == reference_checkpoint().name:
        return "dti-reference"
    if p.suffix == ".pt" and p.name == memory_reference_checkpoint().name:
        return "dti-memory"
    return p.stem if p.suffix else p.name
