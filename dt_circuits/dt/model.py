"""A compact one-timestep Decision Transformer with TransformerLens hook points.

Architecture (the post's): RTG token = rtg * W_rtg + W_time[t]; state token = encode(obs) @ W_state + W_time[t];
learned positional embedding W_pos; ``n_layers`` blocks of causal multi-head attention and a ReLU MLP with no
LayerNorm anywhere; action logits = resid_post[state position] @ W_U + b_U.

Every intermediate goes through a named ``HookPoint`` so ablations, patching and caching address components by
the same names TransformerLens uses (``blocks.0.attn.hook_z`` ...). The model always takes raw index
observations (B, 7, 7, 3) and applies its own encoding, so callers never care how a checkpoint was trained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformer_lens import ActivationCache, HookedRootModule
from transformer_lens.hook_points import HookPoint

from dt_circuits.core.errors import ConfigError, InvalidInputError
from dt_circuits.env.spec import CHANNEL_MAX, N_COLORS, N_OBJECTS, ONE_HOT_DEPTH

ObsEncoding = Literal["index", "one_hot"]
_CHANNEL_MAX_T = torch.tensor(CHANNEL_MAX)
#: Unsigned dtypes torch cannot compare on CPU; widened to int64 (values >= 2**63 wrap negative: out of range).
_WIDE_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)
RTG_POS, STATE_POS = 0, 1


@dataclass(frozen=True)
class DTConfig:
    """Shape of a Decision Transformer; stored verbatim in every checkpoint manifest."""

    n_layers: int = 1
    n_heads: int = 2
    d_model: int = 128
    d_head: int = 64
    d_mlp: int = 256
    n_ctx: int = 2
    max_timestep: int = 1000
    obs_encoding: ObsEncoding = "index"
    n_actions: int = 3

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "n_actions"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model config {name} must be a positive integer, got {value!r}")
        if self.n_ctx != 2:
            raise ConfigError(
                f"model config n_ctx {self.n_ctx!r} is not supported: only one timestep of context (n_ctx 2)"
            )
        if not isinstance(self.max_timestep, int) or isinstance(self.max_timestep, bool) or self.max_timestep < 0:
            raise ConfigError(f"model config max_timestep must be >= 0, got {self.max_timestep!r}")
        if self.obs_encoding not in ("index", "one_hot"):
            raise ConfigError(
                f"model config obs_encoding {self.obs_encoding!r} is unknown; expected 'index' or 'one_hot'"
            )

    @property
    def n_obs_inputs(self) -> int:
        """Inputs to the state embedding: 3 index channels or 20 one-hot bits, each over the 7x7 view."""
        return (3 if self.obs_encoding == "index" else ONE_HOT_DEPTH) * 49

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every entry of the model's state_dict, without building it.

        Loaders check a file against this before allocating anything, so a config that claims a huge model
        (max_timestep 1e12) costs nothing to refuse. ``tests/test_hostile_inputs.py`` pins it to the real model.
        """
        d, h, e, m, a = self.d_model, self.n_heads, self.d_head, self.d_mlp, self.n_actions
        shapes: dict[str, tuple[int, ...]] = {
            "W_rtg": (d,),
            "W_state": (self.n_obs_inputs, d),
            "W_time": (self.max_timestep + 1, d),
            "W_pos": (self.n_ctx, d),
            "W_U": (d, a),
            "b_U": (a,),
        }
        block = {"attn.W_Q": (h, d, e), "attn.W_K": (h, d, e), "attn.W_V": (h, d, e), "attn.W_O": (h, e, d),
                 "attn.b_Q": (h, e), "attn.b_K": (h, e), "attn.b_V": (h, e), "attn.b_O": (d,),
                 "mlp.W_in": (d, m), "mlp.b_in": (m,), "mlp.W_out": (m, d), "mlp.b_out": (d,)}  # fmt: skip
        for layer in range(self.n_layers):
            shapes.update({f"blocks.{layer}.{k}": v for k, v in block.items()})
        return shapes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DTConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown model config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)


class Attention(nn.Module):
    """Causal multi-head attention in TransformerLens' parametrisation (W_Q [head, d_model, d_head] ...)."""

    def __init__(self, cfg: DTConfig) -> None:
        super().__init__()
        h, d, dh = cfg.n_heads, cfg.d_model, cfg.d_head
        self.cfg = cfg
        self.W_Q = nn.Parameter(torch.empty(h, d, dh))
        self.W_K = nn.Parameter(torch.empty(h, d, dh))
        self.W_V = nn.Parameter(torch.empty(h, d, dh))
        self.W_O = nn.Parameter(torch.empty(h, dh, d))
        self.b_Q = nn.Parameter(torch.zeros(h, dh))
        self.b_K = nn.Parameter(torch.zeros(h, dh))
        self.b_V = nn.Parameter(torch.zeros(h, dh))
        self.b_O = nn.Parameter(torch.zeros(d))
        self.hook_q = HookPoint()  # [batch, pos, head, d_head]
        self.hook_k = HookPoint()
        self.hook_v = HookPoint()
        self.hook_attn_scores = HookPoint()  # [batch, head, query_pos, key_pos], masked
        self.hook_pattern = HookPoint()
        self.hook_z = HookPoint()  # [batch, pos, head, d_head]
        self.hook_result = HookPoint()  # [batch, pos, head, d_model]: each head's write
        self.register_buffer("mask", torch.tril(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool)), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one GEMM per projection (heads side by side), bmm over heads for W_O: low overhead at every batch size
        b, n, d = x.shape
        h, e = self.cfg.n_heads, self.cfg.d_head
        flat = x.reshape(b * n, d)
        q = self.hook_q((flat @ self.W_Q.transpose(0, 1).reshape(d, h * e)).view(b, n, h, e) + self.b_Q)
        k = self.hook_k((flat @ self.W_K.transpose(0, 1).reshape(d, h * e)).view(b, n, h, e) + self.b_K)
        v = self.hook_v((flat @ self.W_V.transpose(0, 1).reshape(d, h * e)).view(b, n, h, e) + self.b_V)
        scores = (q.transpose(1, 2) @ k.permute(0, 2, 3, 1)) / math.sqrt(e)  # [batch, head, query, key]
        scores = self.hook_attn_scores(scores.masked_fill(~self.mask[:n, :n], float("-inf")))
        pattern = self.hook_pattern(torch.softmax(scores, dim=-1))
        z = self.hook_z((pattern @ v.transpose(1, 2)).transpose(1, 2))  # [batch, pos, head, d_head]
        per_head = z.permute(2, 0, 1, 3).reshape(h, b * n, e) @ self.W_O  # [head, batch*pos, d_model]
        result = self.hook_result(per_head.view(h, b, n, d).permute(1, 2, 0, 3))  # [batch, pos, head, d_model]
        return result.sum(dim=2) + self.b_O


class MLP(nn.Module):
    """ReLU MLP, TransformerLens parametrisation (W_in [d_model, d_mlp])."""

    def __init__(self, cfg: DTConfig) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hook_pre(x @ self.W_in + self.b_in)
        return self.hook_post(F.relu(pre)) @ self.W_out + self.b_out


class Block(nn.Module):
    """Attention then MLP, each added to the residual stream; no LayerNorm."""

    def __init__(self, cfg: DTConfig) -> None:
        super().__init__()
        self.attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid: torch.Tensor) -> torch.Tensor:
        resid = self.hook_resid_pre(resid)
        resid = self.hook_resid_mid(resid + self.hook_attn_out(self.attn(resid)))
        return self.hook_resid_post(resid + self.hook_mlp_out(self.mlp(resid)))


def _whole(x: float) -> str:
    return f"{x:.0f}" if abs(x) < 1e15 else f"{x:.3g}"


def as_model_inputs(
    obs: Any, rtg: Any, timestep: Any, *, max_timestep: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate and convert user inputs; raise InvalidInputError naming the bad argument."""
    try:
        obs_t = obs if isinstance(obs, torch.Tensor) else torch.as_tensor(np.asarray(obs))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidInputError(f"obs must be an integer array of shape (B, 7, 7, 3): {exc}") from None
    if obs_t.ndim != 4 or tuple(obs_t.shape[1:]) != (7, 7, 3):
        raise InvalidInputError(f"obs must have shape (B, 7, 7, 3) [x, y, channel], got {tuple(obs_t.shape)}")
    if obs_t.dtype.is_floating_point or obs_t.dtype == torch.bool or obs_t.is_complex():
        raise InvalidInputError(f"obs must hold integer Minigrid indices (uint8), got dtype {obs_t.dtype}")
    if obs_t.dtype in _WIDE_UNSIGNED:
        obs_t = obs_t.to(torch.int64)
    batch = obs_t.shape[0]
    if batch and bool(((obs_t < 0) | (obs_t > _CHANNEL_MAX_T.to(obs_t.device))).any()):
        raise InvalidInputError(
            "obs has values outside Minigrid's ranges "
            f"(object 0..{CHANNEL_MAX[0]}, colour 0..{CHANNEL_MAX[1]}, state 0..{CHANNEL_MAX[2]})"
        )
    if rtg is None or (rtg.is_complex() if isinstance(rtg, torch.Tensor) else np.iscomplexobj(rtg)):
        raise InvalidInputError(f"rtg must be a real number or an array of real numbers, got {type(rtg).__name__}")
    try:
        with np.errstate(over="ignore"):  # 1e300 becomes inf in float32 and is refused just below, by name
            rtg_t = (
                rtg.to(torch.float32)
                if isinstance(rtg, torch.Tensor)
                else torch.as_tensor(np.asarray(rtg, dtype=np.float32))
            )
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInputError(f"rtg must be a number or an array of numbers: {exc}") from None
    if rtg_t.ndim == 0 or rtg_t.numel() == 1:
        rtg_t = rtg_t.reshape(1).expand(batch)
    if tuple(rtg_t.shape) != (batch,):
        raise InvalidInputError(f"rtg must have shape ({batch},) or be a scalar, got {tuple(rtg_t.shape)}")
    if not torch.isfinite(rtg_t).all():
        raise InvalidInputError("rtg must be finite (got NaN or inf)")
    try:  # through numpy so a Python float stays float64 (1000.00001 must not round to a valid 1000.0)
        ts = timestep if isinstance(timestep, torch.Tensor) else torch.as_tensor(np.asarray(timestep))
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise InvalidInputError(f"timestep must be an integer or an array of integers: {exc}") from None
    if ts.is_complex():
        raise InvalidInputError("timestep must hold whole numbers, got complex values")
    if ts.dtype.is_floating_point and (not torch.isfinite(ts).all() or not torch.equal(ts, ts.round())):
        raise InvalidInputError("timestep must hold whole numbers")
    if ts.ndim == 0 or ts.numel() == 1:
        ts = ts.reshape(1).expand(batch)
    if tuple(ts.shape) != (batch,):
        raise InvalidInputError(f"timestep must have shape ({batch},) or be a scalar, got {tuple(ts.shape)}")
    if batch:
        # range-checked before the cast to int64, so 1e20 or 2**64 - 1 is reported as itself, not wrapped around
        wide = ts.to(torch.float64)
        lo, hi = float(wide.min()), float(wide.max())
        if lo < 0 or hi > max_timestep:
            raise InvalidInputError(
                f"timestep must be in 0..{max_timestep} (the time embedding's range), got {_whole(lo)}..{_whole(hi)}"
            )
    return obs_t, rtg_t, ts.to(torch.long)


class DecisionTransformer(HookedRootModule):
    """One-timestep Decision Transformer: ``model(obs, rtg, timestep) -> (B, n_actions)`` action logits."""

    def __init__(self, cfg: DTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.W_rtg = nn.Parameter(torch.empty(d))
        self.W_state = nn.Parameter(torch.empty(cfg.n_obs_inputs, d))
        self.W_time = nn.Parameter(torch.empty(cfg.max_timestep + 1, d))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, d))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.W_U = nn.Parameter(torch.empty(d, cfg.n_actions))
        self.b_U = nn.Parameter(torch.zeros(cfg.n_actions))
        self.hook_rtg_embed = HookPoint()  # [batch, d_model]
        self.hook_state_embed = HookPoint()  # [batch, d_model]
        self.hook_time_embed = HookPoint()  # [batch, d_model]
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
                if name.split(".")[-1].startswith("b_"):
                    p.zero_()
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
    def forward(self, obs: Any, rtg: Any, timestep: Any) -> torch.Tensor:
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
        resid = torch.stack([rtg_embed + time_embed, state_embed + time_embed], dim=1) + pos_embed
        for block in self.blocks:
            resid = block(resid)
        return resid[:, STATE_POS] @ self.W_U + self.b_U

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

    def action_probs(self, obs: Any, rtg: Any, timestep: Any) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(self(obs, rtg, timestep), dim=-1)
