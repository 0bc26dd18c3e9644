"""Action / preference directions, readout metrics, and direct logit attribution at the state position.

The post's evidence is mostly "component X pushes along forward - right". Logits are only defined up to a
constant, so a *preference direction* u (e.g. e_forward - e_right) in logit space is the meaningful readout;
its residual-stream direction is ``W_U @ u`` and the bias ``b_U . u`` is a term of its own.

With no LayerNorm the final residual at the state position is an exact sum of what each component wrote:

    resid_post[state] = state_embed + time_embed + pos_embed[state]
                        + sum_layers( sum_heads head_result[state] + b_O + mlp_post @ W_out + b_out )

so ``logits . u`` splits exactly into those terms plus ``b_U . u``. The RTG embedding is not in the state
token's residual at all: it reaches the logits only through attention, so its term ("rtg_embed") is reported
as exactly zero, and each head's term is further split by *source position* (what the head moved from the RTG
token vs. from the state token) -- the split the post's QK argument is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.analysis.interventions import FwdHooks, Inputs, hooked
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import RTG_POS, STATE_POS, DecisionTransformer
from dt_circuits.env.spec import ACTION_NAMES, Action

ActionLike = int | str | Action
DirectionLike = ActionLike | tuple[ActionLike, ActionLike] | torch.Tensor | Sequence[float]
Metric = Callable[[torch.Tensor], torch.Tensor]
SOURCE_NAMES = {RTG_POS: "rtg", STATE_POS: "state"}


# -- directions ---------------------------------------------------------------------------------------------


def action_index(action: ActionLike, n_actions: int = len(Action)) -> int:
    """0..n_actions-1 from an int, an Action, or a name ("forward", "Right")."""
    if isinstance(action, str):
        name = action.strip().lower()
        if name not in ACTION_NAMES:
            raise ConfigError(f"unknown action {action!r}; expected one of {', '.join(ACTION_NAMES)}")
        idx = ACTION_NAMES.index(name)
    elif isinstance(action, int | np.integer):
        idx = int(action)
    else:
        raise ConfigError(f"an action must be a name or an index, got {type(action).__name__}")
    if not 0 <= idx < n_actions:
        raise ConfigError(f"unknown action {action!r}: the model has actions 0..{n_actions - 1}")
    return idx


_DIFF_RE = re.compile(r"^\s*([a-z]+)\s*(?:-|\u2212|/|minus)\s*([a-z]+)\s*$", re.IGNORECASE)


def direction_vector(direction: DirectionLike, n_actions: int = len(Action)) -> torch.Tensor:
    """The logit-space vector u (float64, (n_actions,)) for an action, a preference direction, or explicit weights.

    "forward" -> e_forward; "forward-right" (also "forward - right", "forward/right" as in the post,
    ("forward", "right")) -> e_forward - e_right; a length-n_actions sequence/tensor is taken as is.
    """
    if isinstance(direction, torch.Tensor | np.ndarray | list):
        u = torch.as_tensor(direction, dtype=torch.float64).flatten()
        if u.numel() != n_actions:
            raise ConfigError(f"a direction vector needs {n_actions} entries, got {u.numel()}")
        return u
    if isinstance(direction, tuple):
        if len(direction) == n_actions and all(isinstance(x, float) for x in direction):
            return torch.tensor(direction, dtype=torch.float64)
        if len(direction) != 2:
            raise ConfigError(f"a preference direction is a pair (a, b), got {direction!r}")
        a, b = (action_index(x, n_actions) for x in direction)
    elif isinstance(direction, str) and (m := _DIFF_RE.match(direction)):
        a, b = action_index(m.group(1), n_actions), action_index(m.group(2), n_actions)
    else:
        u = torch.zeros(n_actions, dtype=torch.float64)
        u[action_index(direction, n_actions)] = 1.0
        return u
    if a == b:
        raise ConfigError(f"preference direction {direction!r} compares an action with itself")
    u = torch.zeros(n_actions, dtype=torch.float64)
    u[a], u[b] = 1.0, -1.0
    return u


def direction_name(direction: DirectionLike) -> str:
    """A label such as "forward", "forward-right" or "[0.5, 0.5, -1.0]" for plots and reports."""
    n = len(direction) if isinstance(direction, list | torch.Tensor | np.ndarray) else len(Action)
    u = direction_vector(direction, n)
    nz = [(i, float(v)) for i, v in enumerate(u) if v != 0]
    if len(u) == len(ACTION_NAMES):
        if len(nz) == 1 and nz[0][1] == 1.0:
            return ACTION_NAMES[nz[0][0]]
        if len(nz) == 2 and sorted(v for _, v in nz) == [-1.0, 1.0]:
            pos = next(i for i, v in nz if v > 0)
            neg = next(i for i, v in nz if v < 0)
            return f"{ACTION_NAMES[pos]}-{ACTION_NAMES[neg]}"
    return "[" + ", ".join(f"{float(v):g}" for v in u) + "]"


def residual_direction(model: DecisionTransformer, direction: DirectionLike) -> torch.Tensor:
    """``W_U @ u`` (float64, (d_model,)): the residual direction whose dot product is the logit difference."""
    u = direction_vector(direction, model.cfg.n_actions)
    return model.W_U.detach().to(torch.float64) @ u


def logit_diff_metric(direction: DirectionLike) -> Metric:
    """Metric ``logits @ u`` per example (e.g. forward - right logit difference)."""

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits.to(torch.float64) @ direction_vector(direction, logits.shape[-1]).to(logits.device)

    return metric


def prob_metric(action: ActionLike) -> Metric:
    """Metric ``P(action)`` per example (softmax over the model's actions)."""

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.to(torch.float64), dim=-1)[:, action_index(action, logits.shape[-1])]

    return metric


# -- direct logit attribution ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """Per-example terms (name -> (B,) float64) that add up to ``logit_diff``, the model's ``logits @ u``.

    Head terms are split by source position: ``"L0H1 <- rtg"`` and ``"L0H1 <- state"``. When the attribution was
    taken under fwd_hooks, ``"L0H1 <- intervention"`` holds the change a hook made to that head's output after
    its attention (e.g. an ablated hook_z) and ``"intervention"`` any other change to the state residual (e.g. an
    injected vector), so the terms still sum exactly and say where the intervention acted.
    """

    direction: str
    terms: dict[str, torch.Tensor]
    logit_diff: torch.Tensor
    logits: torch.Tensor  # (B, n_actions), the run the terms decompose

    @property
    def total(self) -> torch.Tensor:
        return torch.stack(list(self.terms.values())).sum(dim=0)

    def grouped(self) -> dict[str, torch.Tensor]:
        """Terms with each head's sources merged ("L0H1"), as in the post's bar charts."""
        out: dict[str, torch.Tensor] = {}
        for name, value in self.terms.items():
            key = name.split(" <- ")[0]
            out[key] = out[key] + value if key in out else value.clone()
        return out

    def mean(self, grouped: bool = False) -> dict[str, float]:
        """Mean of every term over the batch (a table row per term)."""
        terms = self.grouped() if grouped else self.terms
        return {k: float(v.mean()) for k, v in terms.items()}


def attribute(
    model: DecisionTransformer,
    inputs: Inputs,
    direction: DirectionLike = "forward-right",
    *,
    fwd_hooks: FwdHooks | None = None,
) -> Attribution:
    """Split the state-position readout ``logits @ u`` into every component's direct contribution.

    Terms come from separate hooks (embeddings, each head's pattern and values, MLP output) rather than from
    the logits, so their sum matching ``logit_diff`` is a real check of the decomposition.
    """
    cfg = model.cfg
    u = direction_vector(direction, cfg.n_actions)
    r = residual_direction(model, u)
    with torch.no_grad(), hooked(model, fwd_hooks or []):
        logits, cache = model.run_with_cache(*inputs.args)

    def proj(x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float64) @ r

    batch = len(inputs)
    terms: dict[str, torch.Tensor] = {
        "rtg_embed": torch.zeros(batch, dtype=torch.float64),  # not in the state token; see module docstring
        "state_embed": proj(cache["hook_state_embed"]),
        "time_embed": proj(cache["hook_time_embed"]),
        "pos_embed": proj(cache["hook_pos_embed"][:, STATE_POS]),
    }
    intervened = bool(fwd_hooks)
    for layer, block in enumerate(model.blocks):
        attn = block.attn
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][:, :, STATE_POS]  # (B, head, key_pos)
        v = cache[f"blocks.{layer}.attn.hook_v"]  # (B, key_pos, head, d_head)
        result = cache[f"blocks.{layer}.attn.hook_result"][:, STATE_POS]  # (B, head, d_model)
        w_o = attn.W_O.detach().to(torch.float64)
        for h in range(cfg.n_heads):
            # what head h moved from each source position into the state token, read along r
            per_source = torch.einsum(
                "bk,bke,ed->bkd", pattern[:, h].to(torch.float64), v[:, :, h].to(torch.float64), w_o[h]
            )
            for k in range(per_source.shape[1]):
                terms[f"L{layer}H{h} <- {SOURCE_NAMES.get(k, str(k))}"] = per_source[:, k] @ r
            if intervened:
                terms[f"L{layer}H{h} <- intervention"] = proj(result[:, h]) - (per_source.sum(dim=1) @ r)
        terms[f"L{layer} b_O"] = torch.full((batch,), float(proj(attn.b_O.detach())), dtype=torch.float64)
        mlp_out = cache[f"blocks.{layer}.hook_mlp_out"][:, STATE_POS]
        b_out = block.mlp.b_out.detach()
        terms[f"L{layer} MLP"] = proj(mlp_out) - proj(b_out)
        terms[f"L{layer} b_out"] = torch.full((batch,), float(proj(b_out)), dtype=torch.float64)
    b_u = float(model.b_U.detach().to(torch.float64) @ u)
    terms["b_U"] = torch.full((batch,), b_u, dtype=torch.float64)
    logit_diff = logits.detach().to(torch.float64) @ u
    if intervened:
        resid = cache[f"blocks.{cfg.n_layers - 1}.hook_resid_post"][:, STATE_POS]
        explained = torch.stack(list(terms.values())).sum(dim=0)
        terms["intervention"] = (proj(resid) + b_u) - explained
    return Attribution(direction_name(u.tolist()), terms, logit_diff, logits.detach())


def attribution_table(attr: Attribution, grouped: bool = False) -> list[tuple[str, float]]:
    """(term, mean value) rows, largest magnitude first: the text version of the bar chart."""
    rows = list(attr.mean(grouped).items())
    return sorted(rows, key=lambda kv: -abs(kv[1]))
