"""The whole game over a folder of planted models: every model's truth, every verdict, the confusion cells, as
one JSON-ready dict (``docs/audit/game.json``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dt_circuits.audit.confusion import confusion
from dt_circuits.audit.game import Row, play_model
from dt_circuits.audit.plant import TRUTH_KEY
from dt_circuits.core.errors import ConfigError


def planted_dirs(root: str | Path) -> list[Path]:
    """The planted models under ``root`` (folders whose manifest has a planted truth), by name."""
    from dt_circuits.dt.checkpoint import read_manifest

    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"no folder of planted models at {root}")
    found = [d for d in sorted(root.iterdir()) if (d / "manifest.json").is_file() and TRUTH_KEY in read_manifest(d)]
    if not found:
        raise ConfigError(f"no planted models (manifest with {TRUTH_KEY}) under {root}: run dt-circuits audit --plant")
    return found


def score(rows: list[Row], models: list[dict[str, Any]], cpu: str) -> dict[str, Any]:
    """The JSON the README block and the terminal table are generated from."""
    return {
        "cpu": cpu,
        "models": models,
        "rows": [r.to_json() for r in rows],
        "cells": [c.to_json() for c in confusion(rows)],
    }


def play(
    root: str | Path, *, log: Callable[[str], None] | None = None, only: list[str] | None = None
) -> dict[str, Any]:
    """Run the game on every planted model under ``root``."""
    from dt_circuits.core.machine import cpu_model
    from dt_circuits.dt.checkpoint import read_manifest

    rows: list[Row] = []
    models = []
    for d in planted_dirs(root):
        truth = read_manifest(d)[TRUTH_KEY]
        models.append({"model": d.name, **truth})
        rows.extend(play_model(d, log=log, only=only))
    return score(rows, models, cpu_model())
