"""A compact Decision Transformer with TransformerLens hook points: the post's one-timestep model and DTI's
multi-timestep ones (MemoryDT) from one config.

Architecture: per timestep an RTG token (rtg * W_rtg + W_time[t]), a state token (encode(obs) @ W_state + W_time[t])
and, except after the last state, an action token (W_action[a] + W_time[t]), in DTI's order R, s, a, R, s, ...;
learned positional embedding W_pos from position 0; ``n_layers`` blocks of causal multi-head attention and a ReLU
or gated MLP, pre-LayerNorm when ``normalization`` is "LN" (then ``ln_final`` too); action logits =
resid[last state token] @ W_U + b_U. With ``n_ctx`` 2 (one timestep) and no LayerNorm this is exactly the post's
model, with the same parameter names, so its checkpoints load unchanged.

Every intermediate goes through a named ``HookPoint`` so ablations, patching and caching address components by
the same names TransformerLens uses (``blocks.0.attn.hook_z`` ...). The model always takes raw index
observations (B, 7, 7, 3) and applies its own encoding, so callers never care how a checkpoint was trained.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.config import (
    RTG_POS,
    STATE_POS,
    DTConfig,
)
from dt_circuits.dt.inputs import as_model_inputs, as_window_inputs
from dt_circuits.dt.layers import MLP, Attention, Block, GatedMLP, LayerNorm, widened
from dt_circuits.dt.tl import ActivationCache, HookedRootModule, HookPoint
from dt_circuits.env.spec import N_COLORS, N_OBJECTS, ONE_HOT_DEPTH

__all__ = ["MLP", "Attention", "DTConfig", "DecisionTransformer", "GatedMLP", "LayerNorm", "RTG_POS", "STATE_POS",
           "as_model_inputs", "as_window_inputs", "weights_digest"]  # fmt: skip


#: the smallest batch whose forward trims positions no logit reads (``_blocks``). A matrix product's row does not
#: depend on the other rows from a few rows on (measured on the AMD EPYC: from 4 rows at one thread, 18 at two), but
#: a very small product takes another kernel whose bits differ. The pool's rollouts step at most 250 episodes at a
#: time, so they never trim; the claims' state families (~1,000-4,000 rows) do.
TRIM_MIN_ROWS = 256


class DecisionTransformer(HookedRootModule):
    """A Decision Transformer: ``model(obs, rtg, timestep) -> (B, n_actions)`` action logits.

    One-timestep models (n_ctx 2) take obs (B, 7, 7, 3), rtg (B,), timestep (B,). Models with a longer context
    take a window: obs (B, T, 7, 7, 3), rtg and timestep (B, T), ``actions`` (B, T - 1), and predict the action
    after the last state (DTI's ``action_preds[:, -1]``). A frame followed by the padding action (index
    ``n_actions``) is a padding frame (``dt_circuits.dt.window``).
    """

    def __init__(self, cfg: DTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.W_rtg = nn.Parameter(torch.empty(d))
        self.W_state = nn.Parameter(torch.empty(cfg.n_obs_inputs, d))
        self.W_time = nn.Parameter(torch.empty(cfg.max_timestep + 1, d))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, d))
        if cfg.n_timesteps > 1:
            self.W_action = nn.Parameter(torch.empty(cfg.n_actions + 1, d))
            self.hook_action_embed = HookPoint()  # [batch, timestep, d_model]
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        if cfg.normalization == "LN":
            self.ln_final = LayerNorm(d)
        self.W_U = nn.Parameter(torch.empty(d, cfg.n_actions))
        self.b_U = nn.Parameter(torch.zeros(cfg.n_actions))
        self.hook_rtg_embed = HookPoint()  # [batch, d_model] ([batch, timestep, d_model] for a window)
        self.hook_state_embed = HookPoint()
        self.hook_time_embed = HookPoint()
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.register_buffer("_one_hot_offsets", torch.tensor([0, N_OBJECTS, N_OBJECTS + N_COLORS]), False)
        self.init_weights(seed=0)
        self.setup()

    # -- construction -------------------------------------------------------------------------------------
    def init_weights(self, seed: int) -> None:
        """Seeded small-normal init (DTI's scales); used for training and for random-init controls."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in sorted(self.named_parameters()):
                if name.split(".")[-1].startswith("b_") or name.endswith((".ln1.b", ".ln2.b", "ln_final.b")):
                    p.zero_()
                elif name.endswith((".ln1.w", ".ln2.w", "ln_final.w")):
                    p.fill_(1.0)
                elif name == "W_rtg":
                    p.normal_(0.0, 1.0 / self.cfg.d_model, generator=gen)
                else:
                    p.normal_(0.0, 0.02, generator=gen)

    # -- encoding -------------------------------------------------------------------------------------------
    def encode_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, 7, 7, 3) index obs -> (B, n_obs_inputs) float, flattened as (channel, x, y) like DTI."""
        if self.cfg.obs_encoding == "index":
            x = obs.to(torch.float32)
        else:
            idx = obs.to(torch.long) + self._one_hot_offsets
            x = torch.zeros(*obs.shape[:-1], ONE_HOT_DEPTH, dtype=torch.float32, device=obs.device)
            x.scatter_(-1, idx, 1.0)
        return x.permute(0, 3, 1, 2).reshape(obs.shape[0], self.cfg.n_obs_inputs)  # explicit: batch 0 works too

    # -- forward --------------------------------------------------------------------------------------------
    def forward(self, obs: Any, rtg: Any, timestep: Any, actions: Any = None) -> torch.Tensor:
        if self.cfg.n_timesteps > 1:
            return self._forward_window(obs, rtg, timestep, actions)
        if actions is not None:
            raise ConfigError("a one-timestep model takes no actions")
        obs_t, rtg_t, ts = as_model_inputs(obs, rtg, timestep, max_timestep=self.cfg.max_timestep)
        obs_t, rtg_t, ts = (
            obs_t.to(self.W_U.device),
            rtg_t.to(self.W_U.device),
            ts.to(self.W_U.device),
        )
        batch = obs_t.shape[0]
        rtg_embed = self.hook_rtg_embed(rtg_t[:, None] * self.W_rtg)
        state_embed = self.hook_state_embed(self.encode_obs(obs_t) @ self.W_state)
        time_embed = self.hook_time_embed(self.W_time[ts])
        pos_embed = self.hook_pos_embed(self.W_pos[None].expand(batch, -1, -1))
        rtg_embed, state_embed, time_embed, pos_embed = widened(rtg_embed, state_embed, time_embed, pos_embed)
        resid = torch.stack([rtg_embed + time_embed, state_embed + time_embed], dim=1) + pos_embed
        return self._unembed(self._blocks(resid)[:, -1])  # the state token: last of R, s

    def _forward_window(self, obs: Any, rtg: Any, timestep: Any, actions: Any) -> torch.Tensor:
        """DTI's ``get_token_embeddings``: R_t, s_t, a_t interleaved (time embedding on all three), the last
        action absent, positions from 0; the logits are read at the last (state) token."""
        cfg = self.cfg
        obs_t, rtg_t, ts, act = (
            x.to(self.W_U.device)
            for x in as_window_inputs(
                obs, rtg, timestep, actions, max_timestep=cfg.max_timestep, n_timesteps=cfg.n_timesteps,
                n_actions=cfg.n_actions,
            )
        )  # fmt: skip
        b, t = obs_t.shape[:2]
        time_embed = self.hook_time_embed(self.W_time[ts])  # [batch, T, d]
        rtg_embed = self.hook_rtg_embed(rtg_t[..., None] * self.W_rtg)
        # a frame followed by the padding action is padding: DTI pads with all-zero (one-hot) frames, whose
        # state embedding is 0 (no bias), so its state token is the time embedding alone
        padding = torch.zeros(b, t, dtype=torch.bool, device=act.device)
        padding[:, : t - 1] = act == cfg.n_actions
        encoded = self.encode_obs(obs_t.reshape(b * t, 7, 7, 3)).view(b, t, -1).masked_fill(padding[..., None], 0.0)
        state_embed = self.hook_state_embed(encoded @ self.W_state)
        action_embed = self.hook_action_embed(self.W_action[act])  # [batch, T-1, d]
        time_embed, rtg_embed, state_embed, action_embed = widened(time_embed, rtg_embed, state_embed, action_embed)
        b = time_embed.shape[0]
        tokens = torch.zeros(b, 3 * t, cfg.d_model, dtype=time_embed.dtype, device=time_embed.device)
        tokens[:, 0::3] = rtg_embed + time_embed
        tokens[:, 1::3] = state_embed + time_embed
        tokens[:, 2::3][:, : t - 1] = action_embed + time_embed[:, : t - 1]
        n = 3 * t - 1
        tokens, pos_embed = widened(tokens[:, :n], self.hook_pos_embed(self.W_pos[None, :n].expand(b, -1, -1)))
        resid = tokens + pos_embed
        return self._unembed(self._blocks(resid)[:, -1])

    def _blocks(self, resid: torch.Tensor) -> torch.Tensor:
        """The blocks and the final LayerNorm. The callers read the last position only, so without gradients the
        last block computes the other positions only as far as a hook can see them (``Block.trim_stage``); with
        gradients (training, attributions) every position is computed, as the recorded weights were trained."""
        last = len(self.blocks) - 1
        trim = None
        if not torch.is_grad_enabled() and resid.shape[0] >= TRIM_MIN_ROWS:
            trim = self.blocks[last].trim_stage([self.ln_final] if self.cfg.normalization == "LN" else [])
        for i, block in enumerate(self.blocks):
            resid = block(resid, trim if i == last else None)
        return self.ln_final(resid) if self.cfg.normalization == "LN" else resid

    def _unembed(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W_U + self.b_U

    def run_with_cache(self, *model_args: Any, **kwargs: Any) -> tuple[torch.Tensor, ActivationCache]:
        """As TransformerLens: logits plus an ActivationCache of every hook (or those named in names_filter)."""
        out, cache_dict = super().run_with_cache(*model_args, **kwargs)
        return out, ActivationCache(cache_dict, self)

    # -- introspection ---------------------------------------------------------------------------------------
    @property
    def hook_names(self) -> list[str]:
        return list(self.hook_dict)

    def check_head(self, layer: int, head: int) -> None:
        """Raise ConfigError naming an unknown layer/head (claims address heads by number)."""
        if not 0 <= int(layer) < self.cfg.n_layers:
            raise ConfigError(f"unknown layer {layer}: the model has layers 0..{self.cfg.n_layers - 1}")
        if not 0 <= int(head) < self.cfg.n_heads:
            raise ConfigError(f"unknown head {head}: the model has heads 0..{self.cfg.n_heads - 1}")

    def action_probs(self, obs: Any, rtg: Any, timestep: Any, actions: Any = None) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self(obs, rtg, timestep, actions), dim=-1)


def weights_digest(model: DecisionTransformer) -> str:
    """sha256 over the weight bytes in name order: equal digests mean bit-identical models (what a cache of a
    model's fitted directions or a population record is keyed by)."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()
