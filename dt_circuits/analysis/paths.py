"""Path patching from the input tokens, a head's effect split by path, and which paths carry signal at all.

:mod:`dt_circuits.analysis.patching` patches a *component's* output along a path. Here the sender can also be an
input token (the RTG token or the state token) whose change reaches the logits through one head only: the head
reads the token's keys and values (and, for the state token, its query) from the source run; every other
reader sees the base run. Conventions, shared by every function below:

- ``base``: the run that is measured (e.g. a ball in front at RTG 0.9); ``source``: the same states with one
  thing changed through the real env (another RTG, the ball removed);
- the effect of a path is ``metric(base with the source's value delivered along the path) - metric(base)``,
  per state (no normalisation: per-state ratios explode where there is no effect to restore).

Receivers: ``"all"`` (everything downstream of the head), ``"unembed"`` (the direct path: the head's change is
added to the final residual only) and ``"mlp"`` (added at ``hook_resid_mid`` and removed again at
``hook_resid_post``, so only the MLP computes on it). Without LayerNorm, in one layer, direct + MLP = all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch

from dt_circuits.analysis.interventions import FwdHooks, Head, Inputs, resolve, run
from dt_circuits.analysis.patching import path_patch_hooks
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import RTG_POS, STATE_POS, DecisionTransformer

Metric = Callable[[torch.Tensor], torch.Tensor]
Token = Literal["rtg", "state"]
PathReceiver = Literal["all", "unembed", "mlp"]
TOKEN_POS: dict[str, int] = {"rtg": RTG_POS, "state": STATE_POS}
#: what a head reads from each token: the RTG token only as a key/value source for the state query; the state
#: token also as the query (the state position is where the logits are read)
TOKEN_READS: dict[str, tuple[str, ...]] = {"rtg": ("k", "v"), "state": ("q", "k", "v")}


def as_head(model: DecisionTransformer, spec: Any) -> Head:
    comp = resolve(model, spec)
    if not isinstance(comp, Head):
        raise ConfigError(f"{spec!r} is {comp}, not an attention head")
    return comp


def _check_pair(base: Inputs, source: Inputs) -> None:
    if len(base) != len(source):
        raise ConfigError(f"base ({len(base)}) and source ({len(source)}) runs must have the same batch size")


def _cache(model: DecisionTransformer, inputs: Inputs, names: list[str], hooks: FwdHooks | None = None) -> dict:
    with torch.no_grad(), model.hooks(fwd_hooks=hooks or []):
        _, cache = model.run_with_cache(*inputs.args, names_filter=names)
    return {n: cache[n] for n in names}


def token_head_hooks(model: DecisionTransformer, base: Inputs, source: Inputs, token: Token, head: Any) -> FwdHooks:
    """fwd_hooks for the base run in which ``head`` (and only it) reads ``token`` from the source run."""
    _check_pair(base, source)
    if token not in TOKEN_POS:
        raise ConfigError(f"unknown token {token!r}; expected 'rtg' or 'state'")
    h = as_head(model, head)
    pos = TOKEN_POS[token]
    names = [f"blocks.{h.layer}.attn.hook_{r}" for r in TOKEN_READS[token]]
    donor = _cache(model, source, names)

    def hook(act: torch.Tensor, hook: Any) -> torch.Tensor:
        out = act.clone()
        out[:, pos, h.head] = donor[hook.name][:, pos, h.head].to(act.dtype)
        return out

    return [(n, hook) for n in names]


def _deliver(model: DecisionTransformer, delta: torch.Tensor, receiver: PathReceiver, layer: int) -> FwdHooks:
    """Hooks adding ``delta`` (B, d_model) at the state position so that only ``receiver`` reads it."""

    def add(sign: float) -> Callable[..., torch.Tensor]:
        def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
            out = act.clone()
            out[:, STATE_POS] += sign * delta.to(act.dtype)
            return out

        return hook

    if receiver == "unembed":
        return [(f"blocks.{model.cfg.n_layers - 1}.hook_resid_post", add(1.0))]
    if receiver == "mlp":
        return [(f"blocks.{layer}.hook_resid_mid", add(1.0)), (f"blocks.{layer}.hook_resid_post", add(-1.0))]
    if receiver == "all":
        return [(f"blocks.{layer}.hook_resid_mid", add(1.0))]
    raise ConfigError(f"unknown receiver {receiver!r}; expected 'all', 'unembed' or 'mlp'")


def _metric_np(metric: Metric, logits: torch.Tensor) -> np.ndarray:
    return metric(logits).detach().to(torch.float64).numpy()


def token_path_effect(
    model: DecisionTransformer,
    base: Inputs,
    source: Inputs,
    token: Token,
    head: Any,
    metric: Metric,
    receiver: PathReceiver = "all",
) -> np.ndarray:
    """Per-state effect of ``token`` switching from base to source, through ``head`` only, on to ``receiver``.

    ``receiver="all"`` lets the head's changed output reach everything downstream; ``"unembed"`` / ``"mlp"`` take
    the head's change at the state position and deliver it to that reader only.
    """
    h = as_head(model, head)
    hooks = token_head_hooks(model, base, source, token, h)
    before = _metric_np(metric, run(model, base))
    if receiver == "all":
        return _metric_np(metric, run(model, base, hooks)) - before
    name = f"blocks.{h.layer}.attn.hook_result"
    delta = (_cache(model, base, [name], hooks)[name] - _cache(model, base, [name])[name])[:, STATE_POS, h.head]
    return _metric_np(metric, run(model, base, _deliver(model, delta, receiver, h.layer))) - before


def head_path_effects(
    model: DecisionTransformer, base: Inputs, source: Inputs, head: Any, metric: Metric
) -> dict[str, np.ndarray]:
    """Per-state effect of the head's output switching from base to source: ``total``, ``direct``, ``mlp``.

    ``total`` delivers the head's changed state-position output to everything downstream; ``direct`` to the
    unembed only; ``mlp`` to the MLP only (path patching, :func:`dt_circuits.analysis.patching.path_patching`).
    """
    h = as_head(model, head)
    before = _metric_np(metric, run(model, base))
    out = {}
    for key, receiver in (("direct", "unembed"), ("mlp", f"L{h.layer} MLP")):
        hooks = path_patch_hooks(model, source, base, h, receiver)
        out[key] = _metric_np(metric, run(model, base, hooks)) - before
    name = f"blocks.{h.layer}.attn.hook_result"
    delta = (_cache(model, source, [name])[name] - _cache(model, base, [name])[name])[:, STATE_POS, h.head]
    out["total"] = _metric_np(metric, run(model, base, _deliver(model, delta, "all", h.layer))) - before
    return out


def attention(model: DecisionTransformer, inputs: Inputs, head: Any, token: Token) -> np.ndarray:
    """Per-state attention the head pays from the state token (query) to ``token`` (key)."""
    h = as_head(model, head)
    name = f"blocks.{h.layer}.attn.hook_pattern"
    return _cache(model, inputs, [name])[name][:, h.head, STATE_POS, TOKEN_POS[token]].double().numpy()


def attention_knockout_hooks(model: DecisionTransformer, head: Any, token: Token) -> FwdHooks:
    """fwd_hooks that stop ``head``'s state query attending to ``token``: its weight moves to the other token."""
    h = as_head(model, head)
    other = TOKEN_POS["state" if token == "rtg" else "rtg"]

    def hook(pattern: torch.Tensor, hook: Any = None) -> torch.Tensor:
        out = pattern.clone()
        out[:, h.head, STATE_POS, other] = 1.0
        out[:, h.head, STATE_POS, TOKEN_POS[token]] = 0.0
        return out

    return [(f"blocks.{h.layer}.attn.hook_pattern", hook)]


def rtg_value_push(model: DecisionTransformer, inputs: Inputs, head: Any, direction: torch.Tensor) -> np.ndarray:
    """Per state, what ``head`` writes along the residual ``direction`` per unit of attention to the RTG token
    (value at the RTG position through ``W_O``): the "<- rtg" attribution term at attention 1."""
    h = as_head(model, head)
    name = f"blocks.{h.layer}.attn.hook_v"
    v = _cache(model, inputs, [name])[name][:, RTG_POS, h.head].double()
    w_o = model.blocks[h.layer].attn.W_O[h.head].detach().double()
    return (v @ w_o @ direction.double()).numpy()
