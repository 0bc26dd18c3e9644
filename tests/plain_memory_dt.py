"""An independent plain-torch forward pass of DTI's MemoryDT-GatedMLP checkpoint, written from the checkpoint
format (shared/reference/README.md) and DTI's ``trajectory_transformer.py`` / TransformerLens 1.2.2 semantics.

No TransformerLens, no dt_circuits: explicit einsums over the raw DTI state dict and one-hot frames as DTI feeds
them (padding frames all zero). The hooked model must match it to 1e-5.

Tokens for T timesteps: R_0, s_0, a_0, ..., R_{T-1}, s_{T-1} (3T - 1; the last action is absent), each plus the
time embedding of its timestep, plus W_pos[:3T - 1]. Pre-LN blocks, gated MLP, ln_final, logits at the last token.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LN_EPS = 1e-5


def layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + LN_EPS).sqrt() * w + b


def attention(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    q = torch.einsum("bpd,hde->bphe", x, sd[p + "W_Q"]) + sd[p + "b_Q"]
    k = torch.einsum("bpd,hde->bphe", x, sd[p + "W_K"]) + sd[p + "b_K"]
    v = torch.einsum("bpd,hde->bphe", x, sd[p + "W_V"]) + sd[p + "b_V"]
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(q.shape[-1])
    n = x.shape[1]
    scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    z = torch.einsum("bhqk,bkhe->bqhe", scores.softmax(-1), v)
    return torch.einsum("bqhe,hed->bqd", z, sd[p + "W_O"]) + sd[p + "b_O"]


def gated_mlp(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    post = F.relu(x @ sd[p + "W_gate"]) * (x @ sd[p + "W_in"]) + sd[p + "b_in"]
    return post @ sd[p + "W_out"] + sd[p + "b_out"]


@torch.no_grad()
def plain_memory_logits(
    sd: dict, one_hot_obs: torch.Tensor, actions: torch.Tensor, rtg: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """one_hot_obs [B, T, 7(x), 7(y), 20], actions [B, T-1], rtg / timesteps [B, T] -> logits [B, 7]."""
    b, t = one_hot_obs.shape[:2]
    flat = one_hot_obs.float().permute(0, 1, 4, 2, 3).reshape(b, t, -1)  # (c, x, y), einops "h w c -> (c h w)"
    time = sd["time_embedding.weight"][timesteps.long()]
    state = flat @ sd["state_embedding.weight"].T + time
    ret = rtg.float()[..., None] * sd["reward_embedding.0.weight"][:, 0] + time
    act = sd["action_embedding.0.weight"][actions.long()] + time[:, : t - 1]
    tokens = torch.zeros(b, 3 * t, state.shape[-1])
    tokens[:, 0::3], tokens[:, 1::3] = ret, state
    tokens[:, 2::3][:, : t - 1] = act
    x = tokens[:, : 3 * t - 1] + sd["transformer.pos_embed.W_pos"][: 3 * t - 1]
    n_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.blocks.")})
    for layer in range(n_layers):
        p = f"transformer.blocks.{layer}."
        x = x + attention(layer_norm(x, sd[p + "ln1.w"], sd[p + "ln1.b"]), sd, p + "attn.")
        x = x + gated_mlp(layer_norm(x, sd[p + "ln2.w"], sd[p + "ln2.b"]), sd, p + "mlp.")
    x = layer_norm(x, sd["transformer.ln_final.w"], sd["transformer.ln_final.b"])
    return x[:, -1] @ sd["action_predictor.weight"].T + sd["action_predictor.bias"]
