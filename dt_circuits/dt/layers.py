"""Transformer layers in TransformerLens' parametrisation and hook names, shared by every DT this package builds.

``Attention``, ``MLP`` (ReLU), ``GatedMLP`` and ``LayerNorm`` hold weights with the shapes and names TL uses
(``W_Q`` [head, d_model, d_head], ``W_in`` [d_model, d_mlp], ``ln1.w``), and route every intermediate through a
named ``HookPoint`` (``attn.hook_z``, ``mlp.hook_pre_linear``, ``ln1.hook_normalized``), so a DTI checkpoint loads
by renaming keys and analysis code addresses activations exactly as in TransformerLens.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from dt_circuits.dt.tl import HookPoint

if TYPE_CHECKING:
    from dt_circuits.dt.config import DTConfig

#: the stages a forward can trim from (``Block.trim_stage``), earliest first: the attention's output projection,
#: the second LayerNorm and the MLP, the MLP's output projection
Trim = Literal["W_O", "MLP", "W_out"]

#: TransformerLens' LayerNorm epsilon (DTI's configs leave it at the default).
LN_EPS = 1e-5


def widened(*xs: torch.Tensor) -> list[torch.Tensor]:
    """The tensors at one batch size, the largest: a hook may return k block-wise copies of its batch (copy j in
    rows j·B .. (j+1)·B - 1; k variants of an intervention, ``analysis.interventions.variants_hook``), and every
    tensor it meets downstream is tiled the same way. What lies upstream of the hook is then computed once, not k
    times, with the same numbers as a forward on k tiled copies of the inputs. Tensors already at one batch size
    come back unchanged (training never widens)."""
    b = max(x.shape[0] for x in xs)
    if all(x.shape[0] == b for x in xs):
        return list(xs)
    for x in xs:
        if x.shape[0] == 0 or b % x.shape[0]:
            raise ValueError(f"a hook returned a batch of {b} rows where {x.shape[0]} meet it: not a multiple")
    return [x if x.shape[0] == b else x.repeat(b // x.shape[0], *([1] * (x.ndim - 1))) for x in xs]


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

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``last_only``: project only the last position's z through W_O (``hook_result`` and the output are
        [batch, 1, ...]); the caller passes it when no hook can see the other positions (``Block.trim_stage``)."""
        # one GEMM per projection (heads side by side), bmm over heads for W_O: low overhead at every batch size
        b, n, d = x.shape
        h, e = self.cfg.n_heads, self.cfg.d_head
        flat = x.reshape(b * n, d)
        q = self.hook_q((flat @ self.W_Q.transpose(0, 1).reshape(d, h * e)).view(b, n, h, e) + self.b_Q)
        k = self.hook_k((flat @ self.W_K.transpose(0, 1).reshape(d, h * e)).view(b, n, h, e) + self.b_K)
        v = self.hook_v((flat @ self.W_V.transpose(0, 1).reshape(d, h * e)).view(b, n, h, e) + self.b_V)
        q, k, v = widened(q, k, v)
        scores = (q.transpose(1, 2) @ k.permute(0, 2, 3, 1)) / math.sqrt(e)  # [batch, head, query, key]
        scores = self.hook_attn_scores(scores.masked_fill(~self.mask[:n, :n], float("-inf")))
        pattern, v = widened(self.hook_pattern(torch.softmax(scores, dim=-1)), v)
        z = self.hook_z((pattern @ v.transpose(1, 2)).transpose(1, 2))  # [batch, pos, head, d_head]
        if last_only:
            z, n = z[:, -1:], 1
        b = z.shape[0]
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

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``last_only``: only the last position through W_out (the output is [batch, 1, d_model])."""
        pre = self.hook_pre(x @ self.W_in + self.b_in)
        return _last(self.hook_post(F.relu(pre)), last_only) @ self.W_out + self.b_out


class GatedMLP(nn.Module):
    """TransformerLens 1.2.2's GatedMLP: ``post = relu(x @ W_gate) * (x @ W_in) + b_in`` (no gate bias; the
    bias is added after the product, as in the TL version DTI pins), then ``post @ W_out + b_out``."""

    def __init__(self, cfg: DTConfig) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.W_gate = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_pre = HookPoint()  # the gate's pre-activation, as TL names it
        self.hook_pre_linear = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """``last_only``: only the last position through W_out (the output is [batch, 1, d_model])."""
        gate, linear = widened(self.hook_pre(x @ self.W_gate), self.hook_pre_linear(x @ self.W_in))
        return _last(self.hook_post(F.relu(gate) * linear + self.b_in), last_only) @ self.W_out + self.b_out


class LayerNorm(nn.Module):
    """TransformerLens' LayerNorm: centre, divide by sqrt(mean(x²) + eps) (``hook_scale``), then ``·w + b``."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(d_model))
        self.b = nn.Parameter(torch.zeros(d_model))
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        x, scale = widened(x, self.hook_scale((x.pow(2).mean(-1, keepdim=True) + LN_EPS).sqrt()))
        return self.hook_normalized(x / scale * self.w + self.b)


class Block(nn.Module):
    """Attention then MLP, each added to the residual stream; pre-LN (``ln1``, ``ln2``) when the config has it."""

    def __init__(self, cfg: DTConfig) -> None:
        super().__init__()
        if cfg.normalization == "LN":
            self.ln1: nn.Module = LayerNorm(cfg.d_model)
            self.ln2: nn.Module = LayerNorm(cfg.d_model)
        else:  # no modules at all: the post's checkpoints keep exactly their state_dict keys
            self.ln1 = self.ln2 = nn.Identity()
        self.attn = Attention(cfg)
        self.mlp = GatedMLP(cfg) if cfg.mlp_type == "gated" else MLP(cfg)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid: torch.Tensor, trim: Trim | None = None) -> torch.Tensor:
        """``trim`` (from :meth:`trim_stage`): from there on only the last position is computed, and the block
        returns [batch, 1, d_model]."""
        resid = self.hook_resid_pre(resid)
        resid, attn_out = widened(resid, self.hook_attn_out(self.attn(self.ln1(resid), last_only=trim == "W_O")))
        if trim == "W_O":
            resid = resid[:, -1:]
        resid = self.hook_resid_mid(resid + attn_out)
        if trim == "MLP":
            resid = resid[:, -1:].contiguous()
        resid, mlp_out = widened(resid, self.hook_mlp_out(self.mlp(self.ln2(resid), last_only=trim == "W_out")))
        if trim == "W_out":
            resid = resid[:, -1:]
        return self.hook_resid_post(resid + mlp_out)

    def trim_stage(self, downstream: list[nn.Module]) -> Trim | None:
        """The earliest stage of this block from which only the last position needs computing, when only the
        last position of its output is read (the last block of a forward that returns logits) and no hook can
        see the others: every hook point from there on (and in ``downstream``, the modules after the block, e.g.
        ``ln_final``) has no hook. None: some hook reads the residual stream after the MLP, or a torch hook sits on
        a module itself. Rows of a matrix product do not depend on the other rows, so what the last position gets
        is the same bits either way (tests/test_model.py)."""
        if _module_hooks(self, downstream):
            return None
        after_z = [self.attn.hook_result, self.hook_attn_out, self.hook_resid_mid]
        mlp_in = [m for m in (*self.ln2.modules(), *self.mlp.modules()) if isinstance(m, HookPoint)]
        after_mlp = [self.hook_mlp_out, self.hook_resid_post]
        after_mlp += [m for d in downstream for m in d.modules() if isinstance(m, HookPoint)]
        if _hooked(after_mlp):
            return None
        if _hooked(mlp_in):
            return "W_out"
        return "MLP" if _hooked(after_z) else "W_O"


def _hooked(points: list[nn.Module]) -> bool:
    return any(p._forward_hooks or p._forward_pre_hooks for p in points)


def _module_hooks(block: nn.Module, downstream: list[nn.Module]) -> bool:
    """Whether a torch hook sits on a module of ``block`` or ``downstream`` other than a hook point (the block, its
    attention, its MLP: what pyvene-style tools hook), or on every module: such a hook sees a module's whole
    output, so nothing is trimmed under it."""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    return _hooked([m for root in (block, *downstream) for m in root.modules() if not isinstance(m, HookPoint)])


def _last(x: torch.Tensor, last_only: bool) -> torch.Tensor:
    """The last position of ``x`` [batch, pos, ...] as a contiguous [batch, 1, ...] (the matrix product then sees
    the layout it has in the whole computation), or ``x``."""
    return x[:, -1:].contiguous() if last_only else x
