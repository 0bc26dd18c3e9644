"""Where a feature is looked for: one hook, one token position, optionally one head (``Site``).

Probes and interchange interventions both need "the activation vector at this place" as an (N, d) matrix and a
hook that writes into exactly that slice, so both are defined here once, on TransformerLens hook names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dt_circuits.analysis.interventions import Head, HookSite, Inputs, check_hook_name, parse_component, pos_axis
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import STATE_POS, DecisionTransformer


@dataclass(frozen=True)
class Site:
    """The activation at ``hook`` and token ``pos`` (the state token by default), of head ``head`` for hook_z."""

    hook: str
    head: int | None = None
    pos: int = STATE_POS

    def __str__(self) -> str:
        if self.head is not None:
            return f"L{self.hook.split('.')[1]}H{self.head}"
        return self.hook

    def check(self, model: DecisionTransformer) -> None:
        """ConfigError unless the hook exists, a head is given exactly for per-head hooks, and pos is a token."""
        check_hook_name(model, self.hook)
        per_head = self.hook.endswith(("attn.hook_z", "attn.hook_result", "attn.hook_v", "attn.hook_q", "attn.hook_k"))
        if per_head != (self.head is not None):
            raise ConfigError(f"site {self.hook!r} {'needs' if per_head else 'takes no'} a head")
        if self.head is not None and not 0 <= self.head < model.cfg.n_heads:
            raise ConfigError(f"head {self.head} does not exist: the model has heads 0..{model.cfg.n_heads - 1}")
        if pos_axis(self.hook) is not None and not 0 <= self.pos < model.cfg.n_ctx:
            raise ConfigError(f"pos {self.pos} is not a token position (0..{model.cfg.n_ctx - 1})")

    def index(self, ndim: int) -> tuple[Any, ...]:
        """Index selecting this site's vectors from the hook's activation (batch axis kept)."""
        if pos_axis(self.hook) is None:
            return (slice(None),)
        idx: list[Any] = [slice(None), self.pos]
        if self.head is not None:
            idx.append(self.head)
        return tuple(idx)


def parse_site(model: DecisionTransformer, spec: str | Site) -> Site:
    """A site from "L0H1" (that head's ``hook_z``) or a hook name (``blocks.0.hook_resid_mid``), checked."""
    if isinstance(spec, Site):
        site = spec
    else:
        comp = parse_component(spec, model)
        if isinstance(comp, Head):
            site = Site(comp.hook_name, comp.head)
        elif isinstance(comp, HookSite):
            site = Site(comp.name)
        else:
            site = Site(comp.hook_name)
    site.check(model)
    return site


def activations(model: DecisionTransformer, inputs: Inputs, site: Site, *, batch_size: int = 4096) -> torch.Tensor:
    """(N, d) float activations at ``site`` for ``inputs``, without autograd."""
    site.check(model)
    if len(inputs) == 0:
        raise ConfigError("cannot collect activations over an empty set of inputs")
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            _, cache = model.run_with_cache(*inputs[start : start + batch_size].args, names_filter=[site.hook])
            act = cache[site.hook]
            out.append(act[site.index(act.ndim)].reshape(act.shape[0], -1).float())
    return torch.cat(out)


def write_hook(site: Site, value: Callable[[torch.Tensor], torch.Tensor]) -> tuple[str, Callable[..., torch.Tensor]]:
    """A forward hook replacing the site's (B, d) slice ``h`` by ``value(h)`` (differentiable: no in-place write
    into a tensor autograd needs)."""

    def hook(act: torch.Tensor, hook: Any = None) -> torch.Tensor:
        out = act.clone()
        idx = site.index(act.ndim)
        out[idx] = value(act[idx])
        return out

    return site.hook, hook
