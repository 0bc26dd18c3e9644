"""The shape of a Decision Transformer: what a checkpoint manifest stores, and what the layers are built from.

Apart from the model so the layers (:mod:`.layers`) and the model (:mod:`.model`) both read it and neither imports
the other's module to do so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from dt_circuits.core.errors import ConfigError
from dt_circuits.env.spec import ONE_HOT_DEPTH

ObsEncoding = Literal["index", "one_hot"]
Normalization = Literal["none", "LN"]
MlpType = Literal["relu", "gated"]
#: Token positions of the one-timestep model.
RTG_POS, STATE_POS = 0, 1
#: Offsets of the three token types inside one timestep (R, s, a).
TOKEN_OFFSET = {"rtg": 0, "state": 1, "action": 2}
#: Config fields left out of a manifest at their default, so one-timestep manifests stay as they were.
_OMITTED_AT_DEFAULT = {"normalization": "none", "mlp_type": "relu"}


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
    #: "LN": pre-LayerNorm blocks and ln_final (TransformerLens' "LN"); "none": the post's model
    normalization: Normalization = "none"
    #: "gated": TransformerLens 1.2.2's GatedMLP (MemoryDT-GatedMLP); "relu": a plain ReLU MLP
    mlp_type: MlpType = "relu"

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "n_actions", "n_ctx"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model config {name} must be a positive integer, got {value!r}")
        if (self.n_ctx + 1) % 3:
            raise ConfigError(
                f"model config n_ctx {self.n_ctx!r} is not 3T - 1 tokens (R, s, a per timestep, no last action)"
            )
        if self.normalization not in ("none", "LN"):
            raise ConfigError(f"model config normalization {self.normalization!r} is unknown; expected 'none' or 'LN'")
        if self.mlp_type not in ("relu", "gated"):
            raise ConfigError(f"model config mlp_type {self.mlp_type!r} is unknown; expected 'relu' or 'gated'")
        if not isinstance(self.max_timestep, int) or isinstance(self.max_timestep, bool) or self.max_timestep < 0:
            raise ConfigError(f"model config max_timestep must be >= 0, got {self.max_timestep!r}")
        if self.obs_encoding not in ("index", "one_hot"):
            raise ConfigError(
                f"model config obs_encoding {self.obs_encoding!r} is unknown; expected 'index' or 'one_hot'"
            )

    @property
    def n_timesteps(self) -> int:
        """Timesteps in a full context window: n_ctx = 3T - 1 (1 for the post's model, 9 for MemoryDT)."""
        return (self.n_ctx + 1) // 3

    def token_position(self, timestep: int, kind: str) -> int:
        """Position of the ``kind`` token ("rtg", "state", "action") of window timestep ``timestep`` in a full
        window; negative timesteps count from the end (-1: the last, whose state token carries the logits)."""
        t = timestep + self.n_timesteps if timestep < 0 else timestep
        if (
            kind not in TOKEN_OFFSET
            or not 0 <= t < self.n_timesteps
            or (kind == "action" and t == self.n_timesteps - 1)
        ):
            raise ConfigError(f"no {kind} token at timestep {timestep} in a {self.n_timesteps}-timestep window")
        return 3 * t + TOKEN_OFFSET[kind]

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
        if self.mlp_type == "gated":
            block["mlp.W_gate"] = (d, m)
        if self.normalization == "LN":
            block.update({"ln1.w": (d,), "ln1.b": (d,), "ln2.w": (d,), "ln2.b": (d,)})
            shapes.update({"ln_final.w": (d,), "ln_final.b": (d,)})
        if self.n_timesteps > 1:
            shapes["W_action"] = (a + 1, d)  # the last row embeds the padding action
        for layer in range(self.n_layers):
            shapes.update({f"blocks.{layer}.{k}": v for k, v in block.items()})
        return shapes

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if _OMITTED_AT_DEFAULT.get(k, object()) != v}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DTConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown model config field(s): {', '.join(sorted(unknown))}")
        return cls(**data)
