"""Where the project's data lives: what the package ships, the checkout (when there is one), and the reference.

The checkpoints and claims this project ships live *inside* the package, so ``dt-circuits claims`` finds them
after a wheel install as well as in a checkout. The training data and ``../shared`` exist only in a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
#: the checkout the package runs from; in a wheel install this is site-packages, which has no pyproject.toml
REPO_ROOT = PACKAGE_ROOT.parent
CHECKPOINTS_DIR = PACKAGE_ROOT / "checkpoints"
BUILTIN_CLAIMS_DIR = PACKAGE_ROOT / "claims" / "library"
REFERENCE_NAME = "dti-dynamic-obstacles-reproduce-original-post-short.pt"
#: MemoryDT-GatedMLP, the published Memory checkpoint: the memory claims run on it.
MEMORY_REFERENCE_NAME = "dti-memory-s7-fixed-start-gated-mlp.pt"


def in_checkout() -> bool:
    """True when the package runs from this project's source tree (not from an installed wheel)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / ".git").exists()


def shared_dir() -> Path:
    """``../shared`` beside the checkout (CI puts it there); ``DT_CIRCUITS_SHARED`` overrides."""
    return Path(os.environ.get("DT_CIRCUITS_SHARED", REPO_ROOT.parent / "shared"))


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
