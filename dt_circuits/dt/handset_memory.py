"""Hand-set "known truth" window models for the Memory task: the instruction is read along a known direction of
the state-embedding space, which either is or is not the instruction embeddings' first principal component.

The MemoryDT article finds its instruction feature as PC0 of the key/ball embedding rows at the instruction cells
(4,2), (4,3), (0,5), (2,6). PCA finds where those rows *vary most*; whether the model *reads* the instruction
there is a causal question (DAS's). These two twins behave identically and differ only in that:

- ``read="pc0"``: every key embedding writes ``+B`` along ``KEY_BALL`` and every ball ``-B`` (so the rows at the
  instruction cells vary most along it: PC0), plus a small per-cell offset along ``CELL`` shared by key and
  ball; the model reads ``KEY_BALL``.
- ``read="elsewhere"``: keys write ``+A`` along ``READ`` and balls ``-A``, and the instruction cells add a
  *larger* per-cell offset ``±B`` along ``CELL`` shared by key and ball. PC0 of the rows is then ``CELL`` (a
  cell direction that says nothing about key or ball), while the model reads ``READ``.

In both, one attention head attends uniformly over the window (zero queries and keys) and copies the read
direction, scaled so that each visible key adds +1 and each ball −1, into ``OUT``; the unembedding turns ``OUT``
into left (more keys) versus right (more balls). So the action depends on the keys and balls in view, the
instruction among them, identically in the twins. A 1-layer, 1-head window model with no LayerNorm, marked as a
Memory model (``checkpoint_info``), so the Memory claims apply to it and every tool of the package runs unchanged.
"""

from __future__ import annotations

from typing import Literal

import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.checkpoint import CheckpointInfo
from dt_circuits.dt.config import DTConfig
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.env.memory import EVAL_MAX_STEPS, INSTRUCTION_CELLS, LEFT, RIGHT
from dt_circuits.env.spec import MEMORY_ENV_ID, OBJECT, EnvSpec

Read = Literal["pc0", "elsewhere"]
READS: tuple[str, ...] = ("pc0", "elsewhere")

#: residual directions (basis dimensions)
KEY_BALL = 0  # key (+) versus ball (−): PC0 in the "pc0" twin, and what it reads
CELL = 1  # a per-cell offset shared by key and ball at the instruction cells: PC0 in the "elsewhere" twin
READ = 2  # key versus ball in the "elsewhere" twin, and what it reads there
OUT = 3  # the head's output: keys minus balls in view, read by the unembedding
#: the large and the small magnitudes (their ratio sets which direction PC0 is)
B, A = 4.0, 1.0
#: left − right logit per visible key (minus per ball), with the head averaging over a full 26-token window
GAIN = 26 * 2.0

SHAPE = dict(n_layers=1, n_heads=1, d_model=8, d_head=1, d_mlp=1, n_ctx=26, max_timestep=1000, n_actions=7)


def instruction_reader(read: Read) -> DecisionTransformer:
    """The twin of the module doc that reads key-versus-ball along PC0 (``"pc0"``) or elsewhere."""
    if read not in READS:
        raise ConfigError(f"unknown read {read!r}; expected one of {', '.join(READS)}")
    model = DecisionTransformer(DTConfig(**SHAPE, obs_encoding="one_hot"))
    attn = model.blocks[0].attn
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        for x in range(7):
            for y in range(7):
                offset = ((-1) ** INSTRUCTION_CELLS.index((x, y))) if (x, y) in INSTRUCTION_CELLS else 0.0
                for item, sign in (("key", 1.0), ("ball", -1.0)):
                    row = model.W_state[OBJECT[item] * 49 + x * 7 + y]
                    if read == "pc0":
                        row[KEY_BALL], row[CELL] = sign * B, A * offset
                    else:
                        row[READ], row[CELL] = sign * A, B * offset
        attn.W_V[0, KEY_BALL if read == "pc0" else READ, 0] = 1.0 / (B if read == "pc0" else A)
        attn.W_O[0, 0, OUT] = 1.0
        model.W_U[OUT, LEFT], model.W_U[OUT, RIGHT] = GAIN / 2, -GAIN / 2
    for p in model.parameters():
        p.requires_grad_(False)
    name = f"handset-instruction-reader-{read}"
    env = EnvSpec.for_env(MEMORY_ENV_ID, max_steps=EVAL_MAX_STEPS)
    model.checkpoint_info = CheckpointInfo(f"<{name}>", "handset", env, {"name": name})  # type: ignore[assignment]
    return model.eval()
