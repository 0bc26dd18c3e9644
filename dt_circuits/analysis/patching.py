"""Activation patching and path patching between a clean and a corrupted run.

Ablation asks "what if this component carried a typical value?"; patching asks the sharper question "how much
of the clean-vs-corrupted difference flows through this component (or this path)?". Both runs use the same
states except for one edit (an obstacle removed from the front cell, another RTG), so the normalised metric

    (patched - corrupt) / (clean - corrupt)

reads 1 when the component alone carries the whole difference and 0 when it carries none. Patching is
*denoising*: the corrupted run gets the clean activation.

Path patching separates *where* a sender's clean output is read: e.g. head 1's state-position output as seen
by the MLP input versus directly by the unembed. In a model without LayerNorm (ours) the direct path and the
path through the next-layer MLP add up exactly to patching the sender's output everywhere (one-layer case).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from dt_circuits.analysis.interventions import (
    MLP,
    ActivationStore,
    Component,
    ComponentLike,
    FwdHooks,
    Head,
    Inputs,
    check_pos,
    collect_activations,
    component_index,
    resolve,
    resolve_all,
    run,
)
from dt_circuits.core.errors import ConfigError, InvalidStateError
from dt_circuits.dt.model import STATE_POS, DecisionTransformer
from dt_circuits.env.scenarios import GridState, StateFamily, StateRenderer

Metric = Callable[[torch.Tensor], torch.Tensor]  # logits (B, A) -> (B,)
Receiver = Literal["unembed"] | MLP


@dataclass(frozen=True)
class PatchResult:
    """Metric values per example on the clean, corrupted and patched runs, for one component or path."""

    name: str
    clean: np.ndarray
    corrupt: np.ndarray
    patched: np.ndarray

    @property
    def normalized(self) -> float:
        """(mean patched - mean corrupt) / (mean clean - mean corrupt): the fraction of the effect restored.

        Taken on the means because per-example ratios explode where clean and corrupt barely differ; NaN if the
        means are equal (there is no effect to restore).
        """
        denom = float(self.clean.mean() - self.corrupt.mean())
        return float("nan") if denom == 0.0 else float(self.patched.mean() - self.corrupt.mean()) / denom

    @property
    def per_example_normalized(self) -> np.ndarray:
        """Per-example ratio (NaN where clean == corrupt), to look for cancellation hidden by the mean."""
        denom = self.clean - self.corrupt
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(denom != 0, (self.patched - self.corrupt) / denom, np.nan)


def _metric_np(metric: Metric, logits: torch.Tensor) -> np.ndarray:
    return metric(logits).detach().to(torch.float64).cpu().numpy()


def _check_pair(clean: Inputs, corrupt: Inputs) -> None:
    if len(clean) != len(corrupt):
        raise ConfigError(f"clean ({len(clean)}) and corrupt ({len(corrupt)}) runs must have the same batch size")


def patch_hooks(
    model: DecisionTransformer,
    components: ComponentLike | Iterable[ComponentLike],
    source: ActivationStore,
    *,
    pos: int | None = None,
) -> FwdHooks:
    """fwd_hooks writing ``source``'s activations (a run of another batch of the same size) into the components.

    ``source`` comes from :func:`dt_circuits.analysis.interventions.collect_activations`; ``pos`` restricts the patch to
    one token position.
    """
    hooks: FwdHooks = []
    for comp in resolve_all(model, components):
        pos = check_pos(model, comp, pos)
        name = comp.hook_name
        if name not in source.acts:
            raise ConfigError(f"patch source has no activations for hook {name!r}")
        donor = source.acts[name]

        def hook(
            act: torch.Tensor, hook: Any = None, comp: Component = comp, donor: torch.Tensor = donor, pos: Any = pos
        ) -> Any:
            if act.shape != donor.shape:
                raise ConfigError(
                    f"patch source for {comp} has shape {tuple(donor.shape)}, the run has {tuple(act.shape)}"
                )
            out = act.clone()
            idx = component_index(comp, act.ndim, pos)
            out[idx] = donor.to(act.device, act.dtype)[idx]
            return out

        hooks.append((name, hook))
    return hooks


def activation_patching(
    model: DecisionTransformer,
    clean: Inputs,
    corrupt: Inputs,
    components: ComponentLike | Iterable[ComponentLike],
    metric: Metric,
    *,
    pos: int | None = None,
) -> dict[str, PatchResult]:
    """Patch each component's clean activation into the corrupted run, one component at a time."""
    _check_pair(clean, corrupt)
    comps = resolve_all(model, components)
    source = collect_activations(model, clean, comps)
    clean_m = _metric_np(metric, run(model, clean))
    corrupt_m = _metric_np(metric, run(model, corrupt))
    out: dict[str, PatchResult] = {}
    for comp in comps:
        patched = run(model, corrupt, patch_hooks(model, comp, source, pos=pos))
        out[str(comp)] = PatchResult(str(comp), clean_m, corrupt_m, _metric_np(metric, patched))
    return out


# -- path patching ------------------------------------------------------------------------------------------


def _sender_output(model: DecisionTransformer, inputs: Inputs, sender: Head | MLP, pos: int) -> torch.Tensor:
    """What the sender writes into the residual stream at ``pos`` (B, d_model)."""
    is_head = isinstance(sender, Head)
    name = f"blocks.{sender.layer}.attn.hook_result" if is_head else f"blocks.{sender.layer}.hook_mlp_out"
    with torch.no_grad():
        _, cache = model.run_with_cache(*inputs.args, names_filter=[name])
    return cache[name][:, pos, sender.head] if is_head else cache[name][:, pos]


def path_patch_hooks(
    model: DecisionTransformer,
    clean: Inputs,
    corrupt: Inputs,
    sender: ComponentLike,
    receiver: Receiver | str,
    *,
    pos: int = STATE_POS,
) -> FwdHooks:
    """fwd_hooks for the corrupted run that let the sender's clean output at ``pos`` reach only ``receiver``.

    The sender's change (clean - corrupt output at ``pos``) is added to the receiver's input and nowhere else:
    ``"unembed"`` adds it to the final residual (the direct path); ``MLP(l)`` adds it to ``blocks.l.hook_resid_mid``
    and removes it again at ``blocks.l.hook_resid_post``, so only the MLP's computation sees it.
    """
    _check_pair(clean, corrupt)
    snd = resolve(model, sender)
    if not isinstance(snd, Head | MLP):
        raise ConfigError(f"path-patching sender must be a head or an MLP, got {snd}")
    pos = check_pos(model, snd, pos)
    rcv: Receiver
    if isinstance(receiver, str) and receiver.strip().lower() in ("unembed", "logits", "w_u"):
        rcv = "unembed"
    else:
        parsed = resolve(model, receiver)
        if not isinstance(parsed, MLP):
            raise ConfigError(f"path-patching receiver must be 'unembed' or an MLP, got {parsed}")
        if parsed.layer < snd.layer or (isinstance(snd, MLP) and parsed.layer == snd.layer):
            raise ConfigError(f"receiver {parsed} does not read {snd}'s output (it is not downstream)")
        rcv = parsed
    delta = _sender_output(model, clean, snd, pos) - _sender_output(model, corrupt, snd, pos)

    def add(sign: float) -> Callable[..., torch.Tensor]:
        def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
            if act.shape[0] != delta.shape[0]:
                raise ConfigError(f"path patch prepared for {delta.shape[0]} states, run has {act.shape[0]}")
            out = act.clone()
            out[:, pos] += sign * delta.to(act.device, act.dtype)
            return out

        return hook

    if rcv == "unembed":
        return [(f"blocks.{model.cfg.n_layers - 1}.hook_resid_post", add(1.0))]
    return [(f"blocks.{rcv.layer}.hook_resid_mid", add(1.0)), (f"blocks.{rcv.layer}.hook_resid_post", add(-1.0))]


def path_patching(
    model: DecisionTransformer,
    clean: Inputs,
    corrupt: Inputs,
    sender: ComponentLike,
    receiver: Receiver | str,
    metric: Metric,
    *,
    pos: int = STATE_POS,
) -> PatchResult:
    """Metric on the corrupted run with the sender's clean output delivered only to ``receiver``."""
    hooks = path_patch_hooks(model, clean, corrupt, sender, receiver, pos=pos)
    name = f"{resolve(model, sender)} -> {receiver if isinstance(receiver, str) else str(receiver)}"
    return PatchResult(
        name,
        _metric_np(metric, run(model, clean)),
        _metric_np(metric, run(model, corrupt)),
        _metric_np(metric, run(model, corrupt, hooks)),
    )


# -- corruptions ------------------------------------------------------------------------------------------


def remove_front_obstacle(state: GridState) -> GridState:
    """The same state without the ball directly in front (InvalidStateError if there is none)."""
    if tuple(state.front) not in {tuple(o) for o in state.obstacles}:
        raise InvalidStateError(f"no obstacle in front of the agent at {tuple(state.agent_pos)}")
    return GridState(state.agent_pos, state.agent_dir, tuple(o for o in state.obstacles if tuple(o) != state.front))


def edit_family(
    family: StateFamily,
    edit: Callable[[GridState], GridState],
    *,
    name: str | None = None,
    renderer: StateRenderer | None = None,
) -> StateFamily:
    """Apply a state edit to every state and re-render through the real env (corrupted obs are real obs)."""
    states = tuple(edit(s) for s in family.states)
    renderer = renderer or StateRenderer()
    return StateFamily(
        name=name or f"{family.name}-edited",
        description=f"{family.description}; edited by {getattr(edit, '__name__', 'edit')}",
        states=states,
        obs=renderer.render_many(states),
    )
