"""Control models that show a claim can fail: the same network with two heads swapped, and a random init.

Swapping heads permutes the head axis of every attention weight: the copy computes exactly the same function,
but a claim that binds a role to head 1 now points at what used to be head 0. A head-specific claim that still
"holds" on it was never about that head. A random initialisation of the same shape is the control for
behavioural claims: a claim that holds on it measures nothing learned.
"""

from __future__ import annotations

import copy

import torch

from dt_circuits.dt.model import DecisionTransformer

HEAD_AXIS_PARAMS = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V")


def swap_heads(model: DecisionTransformer, a: int = 0, b: int = 1, *, layer: int = 0) -> DecisionTransformer:
    """A functionally identical copy with heads ``a`` and ``b`` of ``layer`` exchanged (roles untouched)."""
    model.check_head(layer, a)
    model.check_head(layer, b)
    twin = copy.deepcopy(model)
    attn = twin.blocks[layer].attn
    order = list(range(model.cfg.n_heads))
    order[a], order[b] = order[b], order[a]
    with torch.no_grad():
        for name in HEAD_AXIS_PARAMS:
            param = getattr(attn, name)
            param.copy_(param[order])
    twin.checkpoint_info = copy.copy(getattr(model, "checkpoint_info", None))
    if twin.checkpoint_info is not None:
        twin.checkpoint_info.manifest = {
            **twin.checkpoint_info.manifest,
            "name": f"{twin.checkpoint_info.name}-heads-{a}-{b}-swapped",
            "expectations": {},
        }
    return twin.eval()


def random_like(model: DecisionTransformer, seed: int = 0) -> DecisionTransformer:
    """A same-shape model with fresh seeded weights (the env spec is kept, expectations are not)."""
    twin = DecisionTransformer(model.cfg)
    twin.init_weights(seed)
    info = copy.copy(getattr(model, "checkpoint_info", None))
    if info is not None:
        info.manifest = {"name": f"{info.name}-random-init-{seed}", "expectations": {}}
    twin.checkpoint_info = info
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin.eval()
