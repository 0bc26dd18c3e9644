"""Our hypothesis for the post's key claim 3: the raw-index encoding couples goal and obstacle in the obstacle head.

With index observations an obstacle (object id 6) looks like 3/4 of a goal (8) to any linear reader of the
object channel, so the head that learns to avoid balls also pushes against stepping onto the goal — the post's
"agents avoided the goal square" behaviour. With one-hot observations ball and goal are separate inputs, and no
such coupling is forced.

Stated before the checkpoints were trained: the obstacle head's OV circuit pushes forward − right down for a ball
in front (≤ -0.1: it is an obstacle avoider), and its push for the goal in front, divided by its push for a ball,
is ≥ 0.5 (same sign, at least half as strong). Expected to hold on the raw-index checkpoint and fail on the
one-hot one. Both readings are of the state-token path, so they count only where the head attends to the
state token (≥ 0.05 on average with a ball in front, and with the goal in front, at RTG 0.9); otherwise the
check fails with reason "path-unused" (issue 13). (The first check was added when the head-swap test showed
the ratio alone is not head-specific: on
the DTI reference both heads have a ratio ≥ 0.5, because both push *up* for ball and goal alike.)
"""

from dt_circuits.claim import Check, Claim, OnFamily, PathUse, Undefined, Weights, front_cell_ov

#: issue 13: an OV reading at the state token only counts where the head attends to the state token
BALL_STATES = OnFamily("obstacle-in-front", rtg=0.9)
GOAL_STATES = OnFamily("goal-from-top", rtg=0.9)


def goal_to_ball_ratio(subject) -> float:
    ball = front_cell_ov(subject, "obstacle_head", "obstacle")
    goal = front_cell_ov(subject, "obstacle_head", "goal")
    if ball == 0:
        raise Undefined("the obstacle head's OV push for a ball in front is 0")
    return goal / ball


CLAIM = Claim(
    kind="head",
    id="encoding-shapes-algorithm",
    statement="The obstacle head treats the goal as an obstacle: OV push of goal-in-front / ball-in-front >= 0.5",
    source="post key claim 3 and Table 3 (an obstacle looks like 3/4 of a goal); hypothesis stated here",
    checks=(
        Check(
            "OV: ball in front, forward-right",
            Weights(lambda s: front_cell_ov(s, "obstacle_head", "obstacle"), "OV push of a ball in front vs empty"),
            at_most=-0.1,
            requires_path=PathUse("obstacle_head", "state", (BALL_STATES,)),
        ),
        Check(
            "OV goal/ball ratio (obstacle head, forward-right)",
            Weights(goal_to_ball_ratio, "ratio of OV pushes, goal vs ball in front", "ratio"),
            at_least=0.5,
            requires_path=PathUse("obstacle_head", "state", (BALL_STATES, GOAL_STATES)),
        ),
    ),
)
