"""RTG calibration (the post's Fig. 5) and the Table-1 evaluation, parallel but worker-count independent.

For each initial RTG, ``n_episodes`` sampled-action episodes in the real env; the reward distribution gives
the mean and the central 95 % band. Work is cut into fixed chunks of episodes (``rollout(...,
episodes=range(a, b))``) whose boundaries do not depend on the number of workers, and every chunk runs with one
torch thread, so the numbers are identical for ``workers=1`` and ``workers=K``.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import write_bytes_atomic
from dt_circuits.dt.model import DecisionTransformer, DTConfig
from dt_circuits.env.spec import EnvSpec
from dt_circuits.evaluation.rollout import OUTCOMES, RolloutResult, rollout

#: The post's Fig. 5 range, every 0.1.
DEFAULT_RTGS: tuple[float, ...] = tuple(round(-1 + 0.1 * i, 2) for i in range(21))
#: The post's Table 1 conditions.
TABLE1_RTGS: tuple[float, ...] = (-1.0, 0.0, 0.9)
CHUNK = 50

_WORKER: dict[str, Any] = {}


def _model_payload(model: DecisionTransformer, env: EnvSpec) -> dict[str, Any]:
    """What a worker needs to rebuild the model: config, weights as numpy arrays, env."""
    return {
        "cfg": model.cfg.to_dict(),
        "weights": {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()},
        "env": env.to_dict(),
    }


def _build(payload: dict[str, Any]) -> tuple[DecisionTransformer, EnvSpec]:
    model = DecisionTransformer(DTConfig.from_dict(payload["cfg"]))
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in payload["weights"].items()})
    model.eval()
    return model, EnvSpec.from_dict(payload["env"])


def _init_worker(payload: dict[str, Any]) -> None:
    torch.set_num_threads(1)
    _WORKER["model"], _WORKER["env"] = _build(payload)


def _run_chunk(task: tuple) -> tuple:
    k, rtg, seed, start, stop, sample, *record = task
    res = rollout(
        _WORKER["model"],
        rtg=rtg,
        n_episodes=stop - start,
        seed=seed,
        sample=sample,
        env=_WORKER["env"],
        episodes=range(start, stop),
        record_states=bool(record and record[0]),
    )
    return k, start, res.rewards, res.lengths, res.outcomes, res.extra


def _start_method() -> str:
    """``fork`` on Linux: a spawned worker re-imports torch and TransformerLens (~5-7 s each), which cost more
    than a whole claims suite's rollouts gain from a second core. Forked workers inherit the imports and set
    one torch thread before any work, the same guard PyTorch's DataLoader workers use. Elsewhere: ``spawn``."""
    return "fork" if sys.platform == "linux" and "fork" in mp.get_all_start_methods() else "spawn"


def evaluate_rtgs(
    model: DecisionTransformer,
    rtgs: Sequence[float],
    *,
    n_episodes: int = 500,
    seed: int = 0,
    env: EnvSpec | None = None,
    workers: int | None = None,
    sample: bool = True,
    progress: bool = True,
    record_states: bool = False,
) -> list[RolloutResult]:
    """Roll out ``n_episodes`` per RTG; ``workers`` processes (default: all cores), same numbers for any count.

    ``record_states`` keeps every queried state (``extra["states"]``, ``["poses"]``, ``["episodes"]``, in episode
    order whatever the worker count), as :func:`rollout` does."""
    from dt_circuits.core.progress import progress as progress_reporter

    if n_episodes < 1:
        raise ConfigError(f"episodes per RTG must be >= 1, got {n_episodes}")
    if not rtgs:
        raise ConfigError("no RTGs to evaluate")
    env = env or getattr(getattr(model, "checkpoint_info", None), "env", None) or EnvSpec()
    if env.max_steps > model.cfg.max_timestep + 1:
        raise ConfigError(
            f"env max_steps {env.max_steps} needs timesteps beyond the model's time embedding "
            f"(max_timestep {model.cfg.max_timestep})"
        )
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    tasks = [
        (k, float(rtg), seed, a, min(a + CHUNK, n_episodes), sample, record_states)
        for k, rtg in enumerate(rtgs)
        for a in range(0, n_episodes, CHUNK)
    ]
    rewards = np.zeros((len(rtgs), n_episodes))
    lengths = np.zeros((len(rtgs), n_episodes), np.int64)
    outcomes = np.empty((len(rtgs), n_episodes), dtype=object)
    bar = progress_reporter(len(rtgs) * n_episodes, "rollouts", "ep", enabled=progress)

    extras: dict[tuple[int, int], dict] = {}

    def store(out: tuple) -> None:
        k, start, r, n, o, extra = out
        extras[(k, start)] = extra
        rewards[k, start : start + len(r)], lengths[k, start : start + len(r)] = r, n
        outcomes[k, start : start + len(r)] = o
        bar.update(len(r))

    payload = _model_payload(model, env)
    if workers == 1 or len(tasks) == 1:
        threads = torch.get_num_threads()
        saved = dict(_WORKER)
        try:
            _init_worker(payload)
            for task in tasks:
                store(_run_chunk(task))
        finally:
            torch.set_num_threads(threads)
            _WORKER.clear()
            _WORKER.update(saved)
    else:
        ctx = mp.get_context(_start_method())
        with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker, initargs=(payload,)) as pool:
            for out in pool.imap_unordered(_run_chunk, tasks):
                store(out)
    bar.close()
    return [
        RolloutResult(
            rtg=float(rtg),
            rewards=rewards[k],
            lengths=lengths[k],
            outcomes=outcomes[k].astype(str),
            sample=sample,
            seed=seed,
            extra=_merge_extras([extras[key] for key in sorted(extras) if key[0] == k]) if record_states else {},
        )
        for k, rtg in enumerate(rtgs)
    ]


def _merge_extras(parts: list[dict]) -> dict:
    """Recorded states of consecutive episode chunks, concatenated in episode order."""
    return {
        "states": tuple(np.concatenate(arrays) for arrays in zip(*(p["states"] for p in parts), strict=True)),
        "poses": np.concatenate([p["poses"] for p in parts]),
        "episodes": np.concatenate([p["episodes"] for p in parts]),
    }


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
) -> Calibration:
    """Fig. 5: mean reward and its 95 % band against the initial RTG, sampled actions."""
    env = env or getattr(getattr(model, "checkpoint_info", None), "env", None) or EnvSpec()
    results = evaluate_rtgs(model, rtgs, n_episodes=n_episodes, seed=seed, env=env, workers=workers, progress=progress)
    return Calibration(results, env, source)


def plot_calibration(cal: Calibration, path: str | os.PathLike[str], title: str = "") -> Path:
    """Post-style calibration figure: mean reward, 95 % band, ideal diagonal; outcome rates underneath."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cal.rows()
    x = np.array([r["rtg"] for r in rows])
    mean = np.array([r["mean_reward"] for r in rows])
    lo = np.array([r["band_95"][0] for r in rows])
    hi = np.array([r["band_95"][1] for r in rows])
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(6.5, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    ax.fill_between(x, lo, hi, alpha=0.25, color="tab:blue", label="95% of episode rewards")
    ax.plot(x, mean, "-o", color="tab:blue", ms=3, label="mean reward")
    ax.plot([-1, 1], [-1, 1], ":", color="teal", label="perfect calibration")
    ax.set_ylabel("reward obtained")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or f"RTG calibration ({rows[0]['episodes']} episodes per RTG, sampled actions)")
    for o, c in (("goal", "tab:red"), ("timeout", "tab:green"), ("collision", "tab:blue")):
        bx.plot(x, [r[f"{o}_rate"] for r in rows], "-o", ms=3, color=c, label=o)
    bx.set_xlabel("initial RTG")
    bx.set_ylabel("outcome rate")
    bx.set_ylim(-0.02, 1.02)
    bx.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_bytes_atomic(path, buf.getvalue())


def table1(results: Sequence[RolloutResult]) -> dict[str, Any]:
    """The post's Table 1 as numbers, with the project's pass thresholds next to them."""
    by = {round(r.rtg, 6): r for r in results}
    out: dict[str, Any] = {"episodes_per_rtg": results[0].n, "seed": results[0].seed, "sample": results[0].sample}
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
