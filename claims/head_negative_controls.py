"""What the heads do *not* do (post: "Head 0 is responsible for goal avoidance at -1 or 0 RTG (from the top) but
doesn't encourage the agent to enter the goal at positive RTG. Head 1 is responsible for obstacle avoidance at 0
or positive RTG but doesn't encourage the agent to walk into obstacles at -1 RTG").

"Doesn't encourage X" made testable with the post's own method: where the agent does X on the unablated model
(baseline: P(forward) ≥ 0.5 into the goal from the top at RTG 0.9, Table 1's "seeks" bar; P(forward) > 0.1 into
a ball at RTG −1, the negation of Table 1's "avoids" bar), mean-ablating the head must not lower P(forward) by
more than 0.1 (whole CI of ΔP(forward) ≥ −0.1). Able to fail: a head that pushed into the goal or the ball would
lower P(forward) when ablated.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, OnFamily

GOAL = OnFamily("goal-from-top", rtg=0.9)
BALL = OnFamily("obstacle-in-front", rtg=-1.0)
MARGIN = -0.1

CLAIM = Claim(
    kind="head",
    id="head-negative-controls",
    statement="The goal head does not push into the goal at RTG 0.9, the obstacle head not into a ball at RTG -1: "
    "ablating either lowers P(forward) there by at most 0.1",
    source="post 'Circuit Results Summary' (head 0 / head 1 ... but doesn't encourage ...)",
    checks=(
        Check(
            "baseline: seeks the goal from the top at RTG 0.9: P(forward)",
            Behaviour(GOAL),
            at_least=0.5,
            kind="baseline",
        ),
        Check("ablate goal head at RTG 0.9: ΔP(forward into the goal)", Ablation(GOAL, "goal_head"), at_least=MARGIN),
        Check(
            "baseline: a ball in front is not avoided at RTG −1: P(forward)",
            Behaviour(BALL),
            at_least=0.1,
            kind="baseline",
        ),
        Check(
            "ablate obstacle head at RTG −1: ΔP(forward into the ball)",
            Ablation(BALL, "obstacle_head"),
            at_least=MARGIN,
        ),
    ),
)
