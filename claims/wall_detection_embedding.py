"""The state embedding alone pushes against forward when a wall is in front, via the front cell (Table 3).

Two checks. (1) Over every pose with a wall in front, the state embedding's direct push on forward − right is
negative (whole CI ≤ 0). (2) The mechanism: the post's Table 3 arithmetic at the front cell — putting a wall
there instead of empty space lowers forward − right by at least 0.5 logits (post: 0.27 -> -3.17).
Baseline: the behaviour explained, on the same states: with a wall in front at RTG 0.9, P(forward) ≤ 0.1.
"""

from dt_circuits.analysis.embeddings import cell_table
from dt_circuits.claim import Behaviour, Check, Claim, OnFamily, Weights


def wall_minus_empty(subject) -> float:
    table = cell_table(subject.model, "forward-right")
    return table["wall"] - table["empty"]


CLAIM = Claim(
    kind="embedding",
    id="wall-detection-embedding",
    statement="With a wall in front the state embedding alone pushes against forward (forward - right < 0), "
    "through the front cell's object/colour weights",
    source="post Table 3 and Fig. 14",
    checks=(
        Check(
            "baseline: P(forward) into a wall",
            Behaviour(OnFamily("wall-in-front", rtg=0.9)),
            at_most=0.1,
            kind="baseline",
        ),
        Check(
            "state embedding direct push, wall in front",
            Behaviour(OnFamily("wall-in-front", rtg=0.9), metric="state_embed:forward-right"),
            at_most=0.0,
        ),
        Check(
            "front cell: wall - empty on forward-right (Table 3)",
            Weights(wall_minus_empty, "Table 3 arithmetic at the front cell: wall minus empty, forward-right"),
            at_most=-0.5,
        ),
    ),
)
