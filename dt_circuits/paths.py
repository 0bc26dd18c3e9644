"""Where the project's data lives: the repo root, our checkpoints, fixtures, and the shared reference."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
FIXTURES_DIR = REPO_ROOT / "fixtures"
REFERENCE_NAME = "dti-dynamic-obstacles-reproduce-original-post-short.pt"


def shared_dir() -> Path:
    """``../shared`` beside the repo (CI puts it there); ``DT_CIRCUITS_SHARED`` overrides."""
    return Path(os.environ.get("DT_CIRCUITS_SHARED", REPO_ROOT.parent / "shared"))


def reference_checkpoint() -> Path:
    """The published DTI checkpoint. It is read from shared/, never copied into the repo."""
    return shared_dir() / "reference" / REFERENCE_NAME


def own_checkpoints() -> list[Path]:
    """Every checkpoint directory this project trained (those with a manifest)."""
    if not CHECKPOINTS_DIR.exists():
        return []
    return sorted(p for p in CHECKPOINTS_DIR.iterdir() if (p / "manifest.json").exists())
