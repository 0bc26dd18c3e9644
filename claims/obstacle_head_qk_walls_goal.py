"""The obstacle head's QK circuit suppresses attention to RTG for walls and the goal in front, not only balls
(post Fig. 16: "RTG attention is inhibited by anything that isn't an empty square in front of the agent").

Weights (Fig. 16 read at the front cell, RTG 0.9, timestep 0): a wall or the goal there instead of empty space
lowers the state -> RTG attention score by ≥ 0.5 (score units, pre-softmax). A QK reading only counts where it
moves attention, so each is paired with the states: the head's mean attention to RTG with a wall in front (every
pose) / the goal in front (from the top) is ≥ 0.05 lower than with empty space in front (every pose), RTG 0.9,
two-sample bootstrap. Balls are `obstacle-head-qk-ov`.
"""

import torch

from dt_circuits.analysis.circuits import qk_view
from dt_circuits.claim import Check, Claim, FamilyContrast, OnFamily, Weights, front_cell_input_delta

EMPTY = OnFamily("empty-in-front", rtg=0.9)


def qk_front(subject, value: str) -> float:
    head = subject.component("obstacle_head")
    view = qk_view(subject.model, head.layer, head.head, rtg=0.9, timestep=0)
    return float(front_cell_input_delta(subject, value) @ view.weights.flatten().to(torch.float64))


CLAIM = Claim(
    kind="head",
    id="obstacle-head-qk-walls-goal",
    statement="A wall or the goal in front lowers the obstacle head's state->RTG score by >= 0.5 and its attention "
    "to RTG by >= 0.05 (vs empty in front), RTG 0.9",
    source="post Fig. 16 (anything that isn't an empty square in front inhibits attention to RTG)",
    checks=(
        *(
            Check(
                f"QK score: {value} in front - empty (obstacle head)",
                Weights(lambda s, v=value: qk_front(s, v), f"state->RTG score, {value} vs empty in front", "score"),
                at_most=-0.5,
            )
            for value in ("wall", "goal")
        ),
        Check(
            "attention to RTG: wall in front - empty in front",
            FamilyContrast(OnFamily("wall-in-front", rtg=0.9), EMPTY, "attn_to_rtg:obstacle_head"),
            at_most=-0.05,
        ),
        Check(
            "attention to RTG: goal in front (top) - empty in front",
            FamilyContrast(OnFamily("goal-from-top", rtg=0.9), EMPTY, "attn_to_rtg:obstacle_head"),
            at_most=-0.05,
        ),
    ),
)
