"""The MemoryDT article's measurements: the instruction feature (a PCA of embeddings), decoy objects added to
the first frame, and direct interventions along the feature, all read as the left − right logit difference in
the modal state ("walked forward 4 times, choosing left/right").

Edits act on the state embedding of the first real frame ("S5": with 4 padding frames it is the 5th state of the
9-state window), through ``hook_state_embed``. The state embedding is linear in the one-hot input, so adding an
object's embedding row there is exactly the article's "only the object embedding is added" edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import DecisionTransformer
from dt_circuits.dt.window import pad_window, stack_windows
from dt_circuits.env.memory import INSTRUCTION_CELLS, INSTRUCTION_VIEW_CELL, LEFT, RIGHT, MemoryScenario, complement
from dt_circuits.env.spec import OBJECT


def object_embedding(model: DecisionTransformer, cell: tuple[int, int], item: str) -> torch.Tensor:
    """The state-embedding row of one object bit at one view cell (float64, (d_model,)); one-hot models only."""
    if model.cfg.obs_encoding != "one_hot":
        raise ConfigError("object embeddings need a one-hot model (one input per object and cell)")
    x, y = cell
    return model.W_state[OBJECT[item] * 49 + x * 7 + y].detach().to(torch.float64)


def instruction_embeddings(model: DecisionTransformer) -> torch.Tensor:
    """Keys then balls at the article's instruction cells (4,2), (4,3), (0,5), (2,6): (8, d_model)."""
    return torch.stack([object_embedding(model, c, item) for item in ("key", "ball") for c in INSTRUCTION_CELLS])


@dataclass(frozen=True)
class InstructionPCA:
    """Centred PCA of the instruction embeddings: explained-variance ratios, unit components, per-vector scores."""

    explained: np.ndarray
    components: torch.Tensor  # (k, d_model)
    scores: np.ndarray  # (8, k): keys first

    @property
    def key_minus_ball_direction(self) -> torch.Tensor:
        """PC0 signed so keys project higher than balls (the sign of a PC is arbitrary)."""
        pc = self.components[0]
        return pc if self.scores[:4, 0].mean() >= self.scores[4:, 0].mean() else -pc

    def separation(self) -> float:
        """Gap between the classes along PC0 (keys up), over PC0's standard deviation: > 0 iff it separates."""
        s = self.scores[:, 0] * (1 if self.scores[:4, 0].mean() >= self.scores[4:, 0].mean() else -1)
        return float((s[:4].min() - s[4:].max()) / s.std())


def instruction_pca(model: DecisionTransformer) -> InstructionPCA:
    x = instruction_embeddings(model)
    centred = x - x.mean(0)
    _, sv, vh = torch.linalg.svd(centred, full_matrices=False)
    explained = (sv**2 / (sv**2).sum()).numpy()
    return InstructionPCA(explained, vh, (centred @ vh.T).numpy())


def first_frame_index(model: DecisionTransformer, scenario: MemoryScenario) -> int:
    """Window index of the first real frame after DTI's left padding (4 for the modal state in 9 timesteps)."""
    return model.cfg.n_timesteps - len(scenario.obs)


def modal_inputs(model: DecisionTransformer, scenarios: Sequence[MemoryScenario], rtg: float) -> tuple:
    """Padded windows (obs, rtg, timesteps, actions) of the scenarios at a constant RTG."""
    windows = [
        pad_window(s.obs, s.actions, np.full(len(s.obs), rtg), s.timesteps, n_timesteps=model.cfg.n_timesteps,
                   pad_action=model.cfg.n_actions, initial_rtg=rtg)
        for s in scenarios
    ]  # fmt: skip
    return stack_windows(windows)


@torch.no_grad()
def logit_diff(
    model: DecisionTransformer,
    scenarios: Sequence[MemoryScenario],
    rtg: float,
    first_frame_delta: torch.Tensor | None = None,
) -> np.ndarray:
    """Left − right logit per scenario, optionally adding ``first_frame_delta`` (n, d_model) to the first real
    frame's state embedding."""
    inputs = modal_inputs(model, scenarios, rtg)
    hooks = []
    if first_frame_delta is not None:
        idx = [first_frame_index(model, s) for s in scenarios]
        delta = first_frame_delta.to(torch.float32)

        def add(act: torch.Tensor, hook: object = None) -> torch.Tensor:
            act = act.clone()
            act[torch.arange(len(idx)), torch.tensor(idx)] += delta
            return act

        hooks = [("hook_state_embed", add)]
    with model.hooks(fwd_hooks=hooks):
        logits = model(*inputs)
    return (logits[:, LEFT] - logits[:, RIGHT]).double().numpy()


def flip_delta(model: DecisionTransformer, scenario: MemoryScenario) -> torch.Tensor:
    """The positive control "S5 with the instruction flipped": the instruction object at (2,6) swapped."""
    instr = scenario.instruction
    return object_embedding(model, INSTRUCTION_VIEW_CELL, complement(instr)) - object_embedding(
        model, INSTRUCTION_VIEW_CELL, instr
    )  # type: ignore[arg-type]


def decoy_delta(model: DecisionTransformer, scenario: MemoryScenario, cells: Sequence[tuple[int, int]], item: str):
    """Object embeddings of ``item`` added at ``cells`` (the article's decoys when item is the complement)."""
    return sum((object_embedding(model, c, item) for c in cells), torch.zeros(model.cfg.d_model, dtype=torch.float64))


def state_embedding(model: DecisionTransformer, scenario: MemoryScenario) -> torch.Tensor:
    """The first real frame's state embedding (float64): what the article projects onto the feature."""
    enc = model.encode_obs(torch.as_tensor(scenario.obs[:1])).to(torch.float64)
    return (enc @ model.W_state.detach().to(torch.float64))[0]


def restored_fraction(ld_test: np.ndarray, ld_negative: np.ndarray, ld_positive: np.ndarray) -> np.ndarray:
    """(LD(test) − LD(negative control)) / (LD(positive control) − LD(negative control)), the article's metric."""
    return (ld_test - ld_negative) / (ld_positive - ld_negative)
