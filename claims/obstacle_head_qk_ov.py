"""The obstacle head's QK circuit stops attending to RTG when something is in front; its OV circuit lowers
forward for high object ids in front (post Fig. 16/17).

QK: with a ball in front, the head's attention from the state token to the RTG token is at least 0.05 lower than
in the same state with that ball removed (paired, every pose, RTG 0.9). OV: read at the front cell, a ball or the
goal there instead of empty space pushes forward − right down by at least 0.1 logits through the head's OV, on a
path the head uses: it attends to the state token ≥ 0.05 on average with a ball / the goal in front at RTG 0.9
(else the check fails with reason "path-unused", issue 13). Baseline: the behaviour this mechanism explains, on
the same states: unablated, P(forward) into the ball ≤ 0.1.
"""

from dt_circuits.claim import Behaviour, Check, Claim, FrontObstacleRemoved, OnFamily, PathUse, Weights, front_cell_ov

#: issue 13: the OV readings are of the state-token path; they count only where the head attends to it
BALL = PathUse("obstacle_head", "state", (OnFamily("obstacle-in-front", rtg=0.9),))
GOAL = PathUse("obstacle_head", "state", (OnFamily("goal-from-top", rtg=0.9),))
ON = OnFamily("obstacle-in-front", rtg=0.9)

CLAIM = Claim(
    kind="head",
    id="obstacle-head-qk-ov",
    statement="The obstacle head attends away from RTG when a ball is in front (QK) and its OV circuit maps "
    "a ball or the goal in front to less forward",
    source="post Fig. 16 (QK) and Fig. 17 (OV)",
    checks=(
        Check("baseline: P(forward) into a ball, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check(
            "QK: Δ attention to RTG, ball in front vs removed",
            FrontObstacleRemoved(ON, metric="attn_to_rtg:obstacle_head"),
            at_most=-0.05,
            per_example="decrease",
        ),
        Check(
            "OV: ball in front, forward-right",
            Weights(lambda s: front_cell_ov(s, "obstacle_head", "obstacle"), "OV push of a ball in front vs empty"),
            at_most=-0.1,
            requires_path=BALL,
        ),
        Check(
            "OV: goal in front, forward-right",
            Weights(lambda s: front_cell_ov(s, "obstacle_head", "goal"), "OV push of the goal in front vs empty"),
            at_most=-0.1,
            requires_path=GOAL,
        ),
    ),
)
