"""Train a one-timestep Decision Transformer on offline trajectories (CleanRL style: one file, config on top).

What the recipe keeps from DTI (the post's training code):
- a step is drawn with probability proportional to its trajectory's length (trajectory ~ length, then a
  uniform step), and with probability ``prob_go_from_end`` the trajectory's final step instead -- DTI's
  over-sampling of the end, which the post credits for fixing "avoids the goal" early models;
- the RTG label of a step is its return-to-go, which for this env's single terminal reward is the episode's
  final reward; the time input is the step index;
- AdamW with weight decay on a cross-entropy loss over the logged action.

Runs are deterministic on CPU: ``model.init_weights(seed)`` sets the initial weights, one ``torch.Generator``
seeded from ``seed`` draws every batch, ``torch.use_deterministic_algorithms`` is on, and the thread count is
explicit and recorded (another thread count could change the float summation order; 1 and 2 gave the same
bytes here). Periodic evaluation rolls the model out in
the real env with its own seeds, so it never perturbs the weights.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import write_json_atomic
from dt_circuits.core.machine import cpu_model, kernel_settings
from dt_circuits.dt.model import DecisionTransformer, weights_digest  # noqa: F401 (re-exported)
from dt_circuits.env.spec import EnvSpec
from dt_circuits.training.config import TrainConfig
from dt_circuits.trajectories.dataset import TrajectoryDataset


class StepSampler:
    """DTI's batch sampler for one timestep of context, vectorised over the flat step arrays."""

    def __init__(self, data: TrajectoryDataset, prob_go_from_end: float, exclude_outcome: str = "") -> None:
        self.obs = torch.from_numpy(data.obs)
        self.actions = torch.from_numpy(data.actions.astype(np.int64))
        self.rtg = torch.from_numpy(data.rtg)
        self.timesteps = torch.from_numpy(data.timesteps)
        ends = data.starts + data.lengths - 1
        self.last = torch.from_numpy(np.repeat(ends, data.lengths).astype(np.int64))
        self.p_end = prob_go_from_end
        self.n = data.n_steps
        #: the steps a batch may draw from when some episodes are excluded (None: all, the recipe's own path,
        #: drawing exactly as before so the recipe's bytes stay the same)
        self.allowed: torch.Tensor | None = None
        if exclude_outcome:
            keep = np.repeat(data.outcomes != exclude_outcome, data.lengths)
            if not keep.any():
                raise ConfigError(f"exclude_outcome={exclude_outcome!r} leaves no training data")
            self.allowed = torch.from_numpy(np.flatnonzero(keep).astype(np.int64))

    def sample(self, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        # a uniform step == a trajectory drawn in proportion to its length, then a uniform step within it
        if self.allowed is None:
            idx = torch.randint(0, self.n, (batch,), generator=gen)
        else:
            idx = self.allowed[torch.randint(0, len(self.allowed), (batch,), generator=gen)]
        from_end = torch.rand(batch, generator=gen) < self.p_end
        idx = torch.where(from_end, self.last[idx], idx)
        return self.obs[idx], self.rtg[idx], self.timesteps[idx], self.actions[idx]


@dataclass
class TrainResult:
    """The trained model and everything needed to judge and reproduce the run."""

    model: DecisionTransformer
    config: TrainConfig
    env: EnvSpec
    curve: dict[str, Any]
    wall_seconds: float
    steps_per_second: float
    evaluations: list[dict[str, Any]] = field(default_factory=list)


def evaluate_in_env(
    model: DecisionTransformer, env: EnvSpec, rtgs: tuple[float, ...], episodes: int, seed: int
) -> dict[str, Any]:
    """Quick in-process rollouts (sampled actions) for the training log; not the Table-1 evaluation."""
    from dt_circuits.evaluation.rollout import rollout

    out = {}
    for rtg in rtgs:
        s = rollout(model, rtg=rtg, n_episodes=episodes, seed=seed, env=env, sample=True).summary()
        out[f"{rtg:g}"] = {k: round(s[k], 4) for k in ("goal_rate", "collision_rate", "timeout_rate", "mean_reward")}
    return out


def train(cfg: TrainConfig, data: TrajectoryDataset, *, progress: bool = True) -> TrainResult:
    """Train from scratch; the same (cfg, data) and thread count give identical weight bytes."""
    from dt_circuits.core.progress import progress as progress_reporter

    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    env = data.env
    model = DecisionTransformer(cfg.model_config(env))
    model.init_weights(cfg.seed)
    model.train()
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        betas=cfg.betas,
        **({"fused": True} if cfg.fused_adamw else {"foreach": False}),
    )
    gen = torch.Generator().manual_seed(cfg.seed)
    sampler = StepSampler(data, cfg.prob_go_from_end, cfg.exclude_outcome)
    frozen = _frozen_slices(model, cfg)

    curve: dict[str, Any] = {"step": [], "loss": [], "accuracy": [], "eval": []}
    iit = None  # interchange intervention training (training/iit.py): only when a variable is planted
    if cfg.iit_component:
        from dt_circuits.training.iit import build_iit_loss

        iit = build_iit_loss(cfg, env)
        iit_gen = torch.Generator().manual_seed(cfg.seed * 1000 + 28)  # its own draws: the data batches as ever
        curve["iit"] = []
        iit_window: dict[str, float] = {}
    window_loss = window_acc = 0.0
    window_n = 0
    t_train = 0.0
    bar = progress_reporter(cfg.steps, f"train {cfg.obs_encoding}", "step", enabled=progress)
    for step in range(1, cfg.steps + 1):
        bar.update(1)
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        obs, rtg, ts, actions = sampler.sample(cfg.batch_size, gen)
        with _flushed_denormals():
            logits = model(obs, rtg, ts)
            loss = F.cross_entropy(logits, actions)
            opt.zero_grad(set_to_none=True)
            if iit is None:
                loss.backward()
            else:
                iit_loss, parts = iit(model, iit_gen)
                (loss + iit_loss).backward()
                for key, value in parts.items():
                    iit_window[key] = iit_window.get(key, 0.0) + value
            opt.step()
            _restore(frozen)
        t_train += time.perf_counter() - t0
        window_loss += loss.item()
        window_acc += float((logits.argmax(-1) == actions).float().mean())
        window_n += 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            curve["step"].append(step)
            curve["loss"].append(round(window_loss / window_n, 5))
            curve["accuracy"].append(round(window_acc / window_n, 4))
            bar.set_postfix(loss=f"{window_loss / window_n:.4f}")
            if iit is not None:
                curve["iit"].append({k: round(v / window_n, 5) for k, v in iit_window.items()})
                iit_window = {}
            window_loss = window_acc = 0.0
            window_n = 0
        if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
            ev = evaluate_in_env(model, env, cfg.eval_rtgs, cfg.eval_episodes, cfg.eval_seed)
            curve["eval"].append({"step": step, "results": ev})
            if progress:
                print(f"step {step}: " + json.dumps(ev), file=sys.stderr, flush=True)
            model.train()
    bar.close()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return TrainResult(model, cfg, env, curve, t_train, cfg.steps / max(t_train, 1e-9), curve["eval"])


def _frozen_slices(model: DecisionTransformer, cfg: TrainConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(view into a parameter, its initial values) for every weight of ``cfg.frozen_head``: its Q, K, V and O
    slices and biases. Restoring them after each step keeps the head exactly at init, whatever AdamW's decay."""
    if not cfg.frozen_head:
        return []
    layer, head = cfg.frozen_layer_head()
    attn = model.blocks[layer].attn
    views = [getattr(attn, name)[head] for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V")]
    return [(v, v.detach().clone()) for v in views]


def _restore(frozen: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for view, initial in frozen:
            view.copy_(initial)


@contextmanager
def _flushed_denormals():
    """Denormal floats flushed to zero inside an optimisation step only.

    Tiny gradients and Adam moments made some seeds train at a third of the speed (raw-index seed 1: 33 steps/s
    against 89 with flushing). Flushing left the weight bytes of both committed checkpoints and of all six
    population seeds unchanged (measured), and evaluations and the caller keep the default.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def save_run(
    result: TrainResult,
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    data_path: str | os.PathLike[str],
    data: TrajectoryDataset,
    command: str,
) -> Path:
    """Write the checkpoint (weights + manifest with provenance) plus loss_curve.json / loss_curve.png."""
    from dt_circuits.core.io import sha256_file
    from dt_circuits.dt.checkpoint import save_checkpoint

    out_dir = Path(out_dir)
    data_path = Path(data_path)
    try:
        shown = str(data_path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(data_path)
    training = {
        "recipe": "dt_circuits.training.train (DTI sampling: length-weighted, prob_go_from_end; RTG = final reward)",
        "config": result.config.to_dict(),
        "data": {"path": shown, "sha256": sha256_file(data_path), "summary": data.summary(), "meta": data.meta},
        "seed": result.config.seed,
        "threads": result.config.threads,
        "command": command,
        "wall_seconds": round(result.wall_seconds, 1),
        "steps_per_second": round(result.steps_per_second, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        # weight bytes reproduce only on the CPU kind and kernel settings that trained them (README "Gating")
        "cpu": cpu_model(),
        "kernels": kernel_settings(),
        "final_loss": result.curve["loss"][-1] if result.curve["loss"] else None,
    }
    save_checkpoint(result.model, out_dir, env=result.env, name=name, training=training)
    write_json_atomic(out_dir / "loss_curve.json", result.curve)
    from dt_circuits.analysis.figures import loss_curve_figure, save_png

    title = f"{name}: {result.config.obs_encoding} observations"
    save_png(loss_curve_figure(result.curve, title=title), out_dir / "loss_curve.png", dpi=110)
    return out_dir
