"""Interchange intervention training (IIT, Geiger et al. 2022) with SIIT's strictness term (InterpBench,
Gupta et al. 2024): plant "a ball is in front" in one chosen component of the DT, so the truth is known.

The high-level model is "ball in front -> avoid": the action depends on whether the front cell holds a ball. A
pair is one grid state with a ball in front and the same state with that ball removed, both rendered through the
real env (``env.scenarios.in_front``, ``analysis.patching.remove_front_obstacle``), at one RTG and timestep. Their
labels are a *teacher's* greedy actions on each: a trained DT of the same data and recipe (by default the shipped
checkpoint of the same encoding), i.e. the dataset policy's action as the teacher imitates it. Each step, for a
batch of pairs run in both directions (base = one side, source = the other):

- IIT term: patch the chosen component's output at the state token from the source run into the base run and
  train the patched logits toward the source's label (the pair differs only in the ball, so the high-level
  model's counterfactual output is the source's own action);
- SIIT term: patch each *other* component the same way and train toward the base's own label, so no other
  component may carry the ball.

Components are ``L0H0`` / ``L0H1`` (``hook_z`` of that head) and ``mlp`` (``mlp.hook_post``): the same hooks the
claims ablate. A head's **direct path** can be planted too (``L0H0-direct`` / ``L0H1-direct``, for the game's path
claim): the IIT term then swaps the head's state-token write only where the unembedding reads it (base logits
plus the change in its ``hook_result`` times ``W_U``, the MLP still seeing the base: the intervention the path
truth scores, ``audit.truth.direct_path_iia``), and SIIT keeps the whole MLP and the other head from carrying it.
Pair layouts use seeds from :data:`LAYOUT_SEED0` on, disjoint from the seeds (0, 1, ...) the truth check and the
claims draw their ball-in-front states from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dt_circuits.analysis.patching import edit_family, remove_front_obstacle
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import STATE_POS, DecisionTransformer
from dt_circuits.env.scenarios import StateRenderer, in_front
from dt_circuits.env.spec import EnvSpec

#: the components a variable can be planted in, and their hooks
COMPONENTS: dict[str, str] = {
    "L0H0": "blocks.0.attn.hook_z",
    "L0H1": "blocks.0.attn.hook_z",
    "mlp": "blocks.0.mlp.hook_post",
}
#: layouts of the training pairs are in_front("obstacle", seed=LAYOUT_SEED0 + j): never a held-out layout
LAYOUT_SEED0 = 1000
#: timesteps of the pairs, uniform in this range (the features package's probe range)
TIMESTEPS = (0, 30)


#: the direct paths a variable can be planted in (a head's write read by the unembedding alone)
DIRECT_PATHS: dict[str, int] = {"L0H0-direct": 0, "L0H1-direct": 1}
#: everything ``iit_component`` may name
PLANTABLE: tuple[str, ...] = (*COMPONENTS, *DIRECT_PATHS)
RESULT_HOOK = "blocks.0.attn.hook_result"


def _head(name: str) -> int | None:
    return int(name[-1]) if name.startswith("L0H") else None


def direct_path_logits(
    model: DecisionTransformer, base_logits: torch.Tensor, result: torch.Tensor, swap: torch.Tensor, head: int
) -> torch.Tensor:
    """The base logits with ``head``'s state-token write swapped from the source rows (``swap``) only along its
    direct path: + (result_source - result_base) @ W_U (exact in a one-layer model without LayerNorm)."""
    change = result[swap][:, STATE_POS, head] - result[:, STATE_POS, head]
    return base_logits + change @ model.W_U


@dataclass(frozen=True)
class PairBank:
    """Ball-in-front pairs with teacher labels: ``obs[0]`` with the ball, ``obs[1]`` without; rows aligned."""

    ball: torch.Tensor  # (N, 7, 7, 3) uint8
    clear: torch.Tensor
    rtg: torch.Tensor  # (N,)
    timestep: torch.Tensor  # (N,)
    label_ball: torch.Tensor  # (N,) teacher's greedy action with the ball in front
    label_clear: torch.Tensor  # (N,) and without it

    def __len__(self) -> int:
        return int(self.ball.shape[0])


def teacher_actions(
    teacher: DecisionTransformer, obs: torch.Tensor, rtg: torch.Tensor, ts: torch.Tensor
) -> torch.Tensor:
    """The teacher's greedy actions (no autograd)."""
    with torch.no_grad():
        return teacher(obs, rtg, ts).argmax(-1)


def build_pairs(
    teacher: DecisionTransformer,
    *,
    layouts: int,
    rtgs: tuple[float, ...],
    seed: int,
    spec: EnvSpec | None = None,
) -> PairBank:
    """Every pose with a ball in front over ``layouts`` seeded layouts, each at every RTG of ``rtgs``, with a
    seeded timestep per row and the teacher's labels on both sides."""
    if layouts < 1 or not rtgs:
        raise ConfigError(f"IIT needs at least one layout and one RTG, got {layouts} layouts and rtgs {rtgs}")
    spec = spec or EnvSpec()
    renderer = StateRenderer(spec)
    ball, clear = [], []
    for j in range(layouts):
        fam = in_front("obstacle", seed=LAYOUT_SEED0 + j, spec=spec, renderer=renderer)
        ball.append(fam.obs)
        clear.append(edit_family(fam, remove_front_obstacle, renderer=renderer).obs)
    b, c = np.concatenate(ball), np.concatenate(clear)
    n = len(b)
    rtg = np.repeat(np.asarray(rtgs, dtype=np.float32), n)
    b, c = np.tile(b, (len(rtgs), 1, 1, 1)), np.tile(c, (len(rtgs), 1, 1, 1))
    lo, hi = TIMESTEPS
    hi = min(hi, teacher.cfg.max_timestep, spec.max_steps)
    ts = np.random.default_rng([seed, 28, 1]).integers(lo, hi + 1, size=len(b))
    obs_b, obs_c = torch.from_numpy(b).to(torch.uint8), torch.from_numpy(c).to(torch.uint8)
    rtg_t, ts_t = torch.from_numpy(rtg), torch.from_numpy(ts).long()
    return PairBank(
        obs_b,
        obs_c,
        rtg_t,
        ts_t,
        teacher_actions(teacher, obs_b, rtg_t, ts_t),
        teacher_actions(teacher, obs_c, rtg_t, ts_t),
    )


def _slice(act: torch.Tensor, head: int | None) -> tuple[Any, ...]:
    return (slice(None), STATE_POS, head) if head is not None else (slice(None), STATE_POS)


def _capture(store: dict[str, torch.Tensor]) -> Callable[..., torch.Tensor]:
    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        store[hook.name] = act
        return act

    return hook


def _patch(source: torch.Tensor, head: int | None) -> Callable[..., torch.Tensor]:
    """Replace the component's state-token slice by the source's (differentiable, no in-place write)."""

    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        out = act.clone()
        idx = _slice(act, head)
        out[idx] = source[idx]
        return out

    return hook


def interchange_logits(
    model: DecisionTransformer, component: str, base: tuple[torch.Tensor, ...], source_act: torch.Tensor
) -> torch.Tensor:
    """Logits of the base inputs with ``component``'s state-token output taken from ``source_act`` (the full
    activation at the component's hook, aligned row by row)."""
    hook = COMPONENTS[component]
    with model.hooks(fwd_hooks=[(hook, _patch(source_act, _head(component)))]):
        return model(*base)


@dataclass
class IITLoss:
    """The IIT + SIIT loss for one planted component, sampled each step from a fixed pair bank."""

    component: str
    bank: PairBank
    batch: int
    iit_weight: float
    siit_weight: float

    def __post_init__(self) -> None:
        if self.component not in PLANTABLE:
            raise ConfigError(f"iit_component must be one of {', '.join(PLANTABLE)}, got {self.component!r}")
        if self.batch < 1:
            raise ConfigError(f"iit_batch must be >= 1, got {self.batch}")

    def __call__(self, model: DecisionTransformer, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        """(weighted IIT + SIIT loss, its parts) on ``batch`` pairs drawn with ``gen``, both directions."""
        idx = torch.randint(0, len(self.bank), (self.batch,), generator=gen)
        bk = self.bank
        obs = torch.cat([bk.ball[idx], bk.clear[idx]])  # base rows; the source of row i is row i ± batch
        rtg, ts = bk.rtg[idx].repeat(2), bk.timestep[idx].repeat(2)
        labels = torch.cat([bk.label_ball[idx], bk.label_clear[idx]])
        swap = torch.cat([torch.arange(self.batch, 2 * self.batch), torch.arange(self.batch)])
        store: dict[str, torch.Tensor] = {}
        direct = DIRECT_PATHS.get(self.component)
        hooks = sorted(set(COMPONENTS.values())) + ([RESULT_HOOK] if direct is not None else [])
        with model.hooks(fwd_hooks=[(h, _capture(store)) for h in hooks]):
            base_logits = model(obs, rtg, ts)
        parts: dict[str, float] = {}
        total = torch.zeros(())
        # SIIT keeps every whole component but the planted one (for a direct path: but its head) from the ball
        kept = [n for n in COMPONENTS if n != self.component and not (direct is not None and _head(n) == direct)]
        if direct is not None:
            logits = direct_path_logits(model, base_logits, store[RESULT_HOOK], swap, direct)
            loss = F.cross_entropy(logits, labels[swap])
            total = total + self.iit_weight * loss
            parts["iit"] = float(loss.detach())
        for name, hook in COMPONENTS.items():
            planted = name == self.component
            if not planted and name not in kept:
                continue
            logits = interchange_logits(model, name, (obs, rtg, ts), store[hook][swap])
            loss = F.cross_entropy(logits, labels[swap] if planted else labels)
            total = total + (self.iit_weight * loss if planted else self.siit_weight * loss / len(kept))
            parts["iit" if planted else f"siit_{name}"] = float(loss.detach())
        return total, parts


def teacher_path(cfg_teacher: str, obs_encoding: str) -> str:
    """The teacher checkpoint: ``cfg_teacher``, or the shipped checkpoint trained on the same encoding."""
    if cfg_teacher:
        return cfg_teacher
    from dt_circuits.core.paths import CHECKPOINTS_DIR

    return str(CHECKPOINTS_DIR / ("raw-index" if obs_encoding == "index" else "one-hot"))


def build_iit_loss(cfg: Any, spec: EnvSpec) -> IITLoss:
    """The IIT loss a TrainConfig asks for (``cfg.iit_component`` set): teacher loaded, pairs rendered."""
    from dt_circuits.dt.checkpoint import load_checkpoint

    teacher = load_checkpoint(teacher_path(cfg.iit_teacher, cfg.obs_encoding))
    teacher.eval()
    bank = build_pairs(teacher, layouts=cfg.iit_layouts, rtgs=tuple(cfg.iit_rtgs), seed=cfg.seed, spec=spec)
    return IITLoss(cfg.iit_component, bank, cfg.iit_batch, cfg.iit_weight, cfg.siit_weight)
