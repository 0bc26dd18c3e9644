"""RTG calibration (the post's Fig. 5) and the Table-1 evaluation, on the rollout pool.

For each initial RTG, ``n_episodes`` sampled-action episodes in the real env (:mod:`.pool`: parallel, and the
same numbers for any worker count); the reward distribution gives the mean and the central 95 % band.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.spec import EnvSpec
from dt_circuits.evaluation.pool import evaluate_rtgs
from dt_circuits.evaluation.rollout import DEFAULT_ENV_BACKEND, OUTCOMES, RolloutResult
from dt_circuits.evaluation.rtgs import DEFAULT_RTGS


@dataclass
class Calibration:
    """Per-RTG reward distribution and outcome rates: the data behind the Fig. 5 plot."""

    results: list[RolloutResult]
    env: EnvSpec
    source: str = ""

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for r in self.results:
            s = r.summary()
            lo, hi = np.quantile(r.rewards, [0.025, 0.975])
            out.append(
                {
                    "rtg": r.rtg,
                    "episodes": r.n,
                    "mean_reward": round(s["mean_reward"], 5),
                    "band_95": [round(float(lo), 5), round(float(hi), 5)],
                    **{f"{o}_rate": round(s[f"{o}_rate"], 5) for o in OUTCOMES},
                    "mean_length": round(s["mean_length"], 2),
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        first = self.results[0]
        return {
            "checkpoint": self.source,
            "env": self.env.to_dict(),
            "episodes_per_rtg": first.n,
            "seed": first.seed,
            "sample": first.sample,
            "env_backend": first.env_backend,
            "band": "central 95% of episode rewards (2.5th to 97.5th percentile)",
            "rows": self.rows(),
        }

    def summary(self) -> dict[str, Any]:
        """Compact form for a manifest: the curve plus how far it is from perfect calibration."""
        rows = self.rows()
        errs = [abs(r["mean_reward"] - r["rtg"]) for r in rows]
        return {
            "episodes_per_rtg": rows[0]["episodes"],
            "seed": self.results[0].seed,
            "env_backend": self.results[0].env_backend,
            "mean_abs_calibration_error": round(float(np.mean(errs)), 4),
            "curve": [
                {k: r[k] for k in ("rtg", "mean_reward", "goal_rate", "collision_rate", "timeout_rate")} for r in rows
            ],
        }


def calibrate(
    model: DecisionTransformer,
    rtgs: Sequence[float] = DEFAULT_RTGS,
    *,
    n_episodes: int = 500,
    seed: int = 0,
    env: EnvSpec | None = None,
    workers: int | None = None,
    progress: bool = True,
    source: str = "",
    env_backend: str = DEFAULT_ENV_BACKEND,
) -> Calibration:
    """Fig. 5: mean reward and its 95 % band against the initial RTG, sampled actions; ``env_backend`` as in
    :func:`~dt_circuits.evaluation.pool.evaluate_rtgs`."""
    env = env or getattr(getattr(model, "checkpoint_info", None), "env", None) or EnvSpec()
    results = evaluate_rtgs(
        model, rtgs, n_episodes=n_episodes, seed=seed, env=env, workers=workers, progress=progress,
        env_backend=env_backend,
    )  # fmt: skip
    return Calibration(results, env, source)


def table1(results: Sequence[RolloutResult]) -> dict[str, Any]:
    """The post's Table 1 as numbers, with the project's pass thresholds next to them."""
    by = {round(r.rtg, 6): r for r in results}
    first = results[0]
    out: dict[str, Any] = {
        "episodes_per_rtg": first.n,
        "seed": first.seed,
        "sample": first.sample,
        "env_backend": first.env_backend,
    }
    out["rows"] = [r.summary() for r in results]
    checks = {}
    if 0.9 in by:
        checks["rtg_0.9_goal_rate>=0.90"] = by[0.9].rate("goal") >= 0.90
    if -1.0 in by:
        checks["rtg_-1_no_goal_rate>=0.95"] = 1 - by[-1.0].rate("goal") >= 0.95
    if 0.0 in by:
        checks["rtg_0_timeout_rate>=0.50"] = by[0.0].rate("timeout") >= 0.50
    out["checks"] = checks
    out["passed"] = bool(checks) and all(checks.values())
    return out


def update_manifest(directory: str | os.PathLike[str], **entries: Any) -> Path:
    """Add or replace top-level manifest entries (evaluation, calibration) of one of our checkpoints.

    The weights are untouched, so ``weights_sha256`` stays valid; the manifest is rewritten atomically.
    """
    from dt_circuits.core.io import write_json_atomic
    from dt_circuits.dt.checkpoint import MANIFEST_FILE, read_manifest

    manifest = read_manifest(directory)
    manifest.update(entries)
    return write_json_atomic(Path(directory) / MANIFEST_FILE, manifest)
