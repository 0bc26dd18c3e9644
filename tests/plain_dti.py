"""An independent plain-torch forward pass of a DTI checkpoint, written from the reference README only.

No TransformerLens, no dt_circuits.dt.model: explicit einsums over the raw DTI state dict. The core model must
match it to 1e-5, which is what lets us say our DT reproduces a model nobody here trained.
"""

from __future__ import annotations

import numpy as np
import torch


def plain_dti_logits(sd: dict[str, torch.Tensor], obs: np.ndarray, rtg: np.ndarray, t: np.ndarray) -> torch.Tensor:
    obs_t = torch.as_tensor(obs, dtype=torch.float32)  # [b, x, y, c]
    flat = torch.einsum("bxyc->bcxy", obs_t).reshape(obs_t.shape[0], -1)  # (c, x, y) order, like einops
    state = flat @ sd["state_embedding.weight"].T
    rtg_tok = torch.as_tensor(rtg, dtype=torch.float32)[:, None] @ sd["reward_embedding.0.weight"].T
    time = sd["time_embedding.weight"][torch.as_tensor(t, dtype=torch.long)]
    x = torch.stack([rtg_tok + time, state + time], dim=1) + sd["transformer.pos_embed.W_pos"][None]
    n_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.blocks.")})
    for layer in range(n_layers):
        p = f"transformer.blocks.{layer}."
        q = torch.einsum("bpd,hde->bhpe", x, sd[p + "attn.W_Q"]) + sd[p + "attn.b_Q"][None, :, None]
        k = torch.einsum("bpd,hde->bhpe", x, sd[p + "attn.W_K"]) + sd[p + "attn.b_K"][None, :, None]
        v = torch.einsum("bpd,hde->bhpe", x, sd[p + "attn.W_V"]) + sd[p + "attn.b_V"][None, :, None]
        scores = torch.einsum("bhqe,bhke->bhqk", q, k) / np.sqrt(q.shape[-1])
        causal = torch.tensor([[True, False], [True, True]])
        scores = torch.where(causal, scores, torch.tensor(-1e30))
        attn = torch.softmax(scores, dim=-1)
        z = torch.einsum("bhqk,bhke->bhqe", attn, v)
        x = x + torch.einsum("bhqe,hed->bqd", z, sd[p + "attn.W_O"]) + sd[p + "attn.b_O"]
        hidden = torch.relu(x @ sd[p + "mlp.W_in"] + sd[p + "mlp.b_in"])
        x = x + hidden @ sd[p + "mlp.W_out"] + sd[p + "mlp.b_out"]
    return x[:, 1] @ sd["action_predictor.weight"].T + sd["action_predictor.bias"]
