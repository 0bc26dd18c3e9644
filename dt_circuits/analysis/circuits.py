"""QK and OV circuits per head as ``transformer_lens.FactoredMatrix``, and the post's Fig. 16/17 views.

The post's mechanism for obstacle avoidance is read off two circuits of head 1:

- QK (Fig. 16): how much each observation input of the *state* token (the query) raises the score for
  attending to the *RTG* token (the key). Attending to the RTG moves its forward-ish push into the state.
- OV (Fig. 17): what each observation input writes along an action (or preference) direction when the head
  attends to the state token.

``FactoredMatrix`` keeps the low-rank factors (d_head in the middle), so the (inputs x inputs) products are
never materialised unless asked for (``.AB``). The views add what the bare weight products leave out --
the time embedding, positional embedding and biases -- as explicit bias terms at a chosen timestep, so that
``view.score(obs)`` reproduces the model's actual attention score exactly (layer 0, where the embeddings feed
the head directly). All views are shaped (channels, 7, 7) [channel, x, y] for index (3 channels) and one-hot
(20 bits) encodings alike; DTI's OV view crashed on 3-channel observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.analysis.attribution import DirectionLike, direction_name, direction_vector
from dt_circuits.analysis.embeddings import as_grid
from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import RTG_POS, STATE_POS, DecisionTransformer
from dt_circuits.dt.tl import FactoredMatrix


def _w(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64)


def _check(model: DecisionTransformer, layer: int, head: int, *, direct: bool = False) -> None:
    model.check_head(layer, head)
    if direct and layer != 0:
        raise ConfigError(
            f"the observation-level view of L{layer}H{head} needs the embeddings to feed the head directly (layer 0)"
        )


def qk_circuit(model: DecisionTransformer, layer: int, head: int) -> FactoredMatrix:
    """``W_Q[h] @ W_K[h].T`` (d_model x d_model): residual query x residual key -> score (times sqrt(d_head))."""
    _check(model, layer, head)
    attn = model.blocks[layer].attn
    return FactoredMatrix(_w(attn.W_Q[head]), _w(attn.W_K[head]).T)


def ov_circuit(model: DecisionTransformer, layer: int, head: int) -> FactoredMatrix:
    """``W_V[h] @ W_O[h]`` (d_model x d_model): residual at the source -> what the head writes."""
    _check(model, layer, head)
    attn = model.blocks[layer].attn
    return FactoredMatrix(_w(attn.W_V[head]), _w(attn.W_O[head]))


def obs_rtg_qk(model: DecisionTransformer, layer: int, head: int) -> FactoredMatrix:
    """Full QK from observation inputs (query via W_state) to the RTG token (key via W_rtg), per unit RTG.

    Shape (n_obs_inputs, 1), scaled by 1/sqrt(d_head): entry i is the score to the RTG token added by one
    unit of input i at rtg 1 (Fig. 16), ignoring time, position and biases (see :func:`qk_view` for those).
    """
    _check(model, layer, head)
    attn = model.blocks[layer].attn
    scale = 1.0 / math.sqrt(model.cfg.d_head)
    query = _w(model.W_state) @ _w(attn.W_Q[head]) * scale
    return FactoredMatrix(query, _w(attn.W_K[head]).T @ _w(model.W_rtg)[:, None])


def obs_ov(model: DecisionTransformer, layer: int, head: int) -> FactoredMatrix:
    """Full OV from observation inputs to action logits: ``W_state W_V[h] W_O[h] W_U``, (n_obs_inputs, n_actions).

    Entry (i, a) is the logit-a change per unit of input i when the head attends fully to the state token.
    """
    _check(model, layer, head)
    attn = model.blocks[layer].attn
    return FactoredMatrix(_w(model.W_state) @ _w(attn.W_V[head]), _w(attn.W_O[head]) @ _w(model.W_U))


def _token_bases(model: DecisionTransformer, timestep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The non-observation, non-RTG parts of the two tokens: W_time[t] + W_pos[pos] (RTG, state)."""
    if not 0 <= int(timestep) <= model.cfg.max_timestep:
        raise ConfigError(f"timestep {timestep} outside the time embedding's range 0..{model.cfg.max_timestep}")
    t = _w(model.W_time[int(timestep)])
    return t + _w(model.W_pos[RTG_POS]), t + _w(model.W_pos[STATE_POS])


@dataclass(frozen=True)
class QKView:
    """Attention score state -> RTG token as ``sum_i enc_i * weights_i + bias`` (weights: (channels, 7, 7)).

    With ``biases=True`` the key is the whole RTG token at (rtg, timestep) and ``bias`` the query's time,
    position and b_Q part, so :meth:`score` equals the model's pre-softmax score (hook_attn_scores[:, h, 1, 0]).
    With ``biases=False`` the weights are Fig. 16 exactly (``obs_rtg_qk`` x rtg) and bias is 0.
    """

    layer: int
    head: int
    rtg: float
    timestep: int | None
    weights: torch.Tensor
    bias: float

    def score(self, model: DecisionTransformer, obs: torch.Tensor | np.ndarray) -> torch.Tensor:
        return _per_input_sum(model, obs, self.weights, self.bias)


def _per_input_sum(
    model: DecisionTransformer, obs: torch.Tensor | np.ndarray, weights: torch.Tensor, bias: float
) -> torch.Tensor:
    """``sum_i enc(obs)_i * weights_i + bias`` for a batch of observations (float64)."""
    enc = model.encode_obs(torch.as_tensor(np.asarray(obs))).to(torch.float64)
    return enc @ weights.flatten() + bias


def qk_view(
    model: DecisionTransformer, layer: int, head: int, *, rtg: float = 1.0, timestep: int = 0, biases: bool = True
) -> QKView:
    """Fig. 16 for one head: per observation input, its push on the state token's score for the RTG token."""
    _check(model, layer, head, direct=True)
    attn = model.blocks[layer].attn
    scale = 1.0 / math.sqrt(model.cfg.d_head)
    if not biases:
        w = obs_rtg_qk(model, layer, head).AB[:, 0] * float(rtg)
        return QKView(layer, head, float(rtg), None, as_grid(model, w), 0.0)
    rtg_base, state_base = _token_bases(model, timestep)
    key = (float(rtg) * _w(model.W_rtg) + rtg_base) @ _w(attn.W_K[head]) + _w(attn.b_K[head])
    w = (_w(model.W_state) @ _w(attn.W_Q[head])) @ key * scale
    q0 = state_base @ _w(attn.W_Q[head]) + _w(attn.b_Q[head])
    return QKView(layer, head, float(rtg), int(timestep), as_grid(model, w), float(q0 @ key) * scale)


@dataclass(frozen=True)
class OVView:
    """What the head writes along a direction from the state token: ``sum_i enc_i * weights_i + bias``.

    Multiply by the attention paid to the state token to get the head's "<- state" attribution term. With
    ``biases=False`` the weights are Fig. 17 (``obs_ov @ u``) and bias is 0; with biases the time, position and
    b_V parts of the value at ``timestep`` are the bias.
    """

    layer: int
    head: int
    direction: str
    timestep: int | None
    weights: torch.Tensor
    bias: float

    def value(self, model: DecisionTransformer, obs: torch.Tensor | np.ndarray) -> torch.Tensor:
        return _per_input_sum(model, obs, self.weights, self.bias)


def ov_view(
    model: DecisionTransformer,
    layer: int,
    head: int,
    direction: DirectionLike = "forward",
    *,
    timestep: int = 0,
    biases: bool = True,
) -> OVView:
    """Fig. 17 for one head: per observation input, the push along ``direction`` when attending to the state."""
    _check(model, layer, head, direct=True)
    u = direction_vector(direction, model.cfg.n_actions)
    w = as_grid(model, obs_ov(model, layer, head) @ u)
    name = direction_name(u.tolist())
    if not biases:
        return OVView(layer, head, name, None, w, 0.0)
    attn = model.blocks[layer].attn
    _, state_base = _token_bases(model, timestep)
    out_dir = _w(attn.W_O[head]) @ (_w(model.W_U) @ u)
    bias = (state_base @ _w(attn.W_V[head]) + _w(attn.b_V[head])) @ out_dir
    return OVView(layer, head, name, int(timestep), w, float(bias))


def rtg_ov(
    model: DecisionTransformer, layer: int, head: int, direction: DirectionLike = "forward", *, timestep: int = 0
) -> tuple[float, float]:
    """OV from the RTG token: (push per unit RTG, bias at ``timestep``) along ``direction``.

    Times the attention to the RTG token this is the head's "<- rtg" attribution term.
    """
    _check(model, layer, head, direct=True)
    attn = model.blocks[layer].attn
    u = direction_vector(direction, model.cfg.n_actions)
    out_dir = _w(attn.W_O[head]) @ (_w(model.W_U) @ u)
    rtg_base, _ = _token_bases(model, timestep)
    per_rtg = _w(model.W_rtg) @ _w(attn.W_V[head]) @ out_dir
    bias = (rtg_base @ _w(attn.W_V[head]) + _w(attn.b_V[head])) @ out_dir
    return float(per_rtg), float(bias)
