"""Ablating the obstacle head makes the agent walk into an obstacle at RTG 0 too (post: "Head 1 is responsible for
obstacle avoidance at 0 or positive RTG").

The RTG-0 half of the post's statement; RTG 0.9 is `obstacle-avoidance-head`, whose bar this keeps: baseline
first (the unablated model avoids: P(forward) ≤ 0.1 with a ball in front, Table 1's bar), then mean-ablating the
obstacle head raises P(forward into the ball) by ≥ 0.25, and the goal head, ablated on the same states, does not.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, OnFamily

ON = OnFamily("obstacle-in-front", rtg=0.0)

CLAIM = Claim(
    kind="head",
    id="obstacle-avoidance-head-rtg0",
    statement="At RTG 0 the agent avoids a ball in front, and mean-ablating the obstacle head makes it walk in",
    source="post 'Circuit Results Summary' (head 1: obstacle avoidance at 0 or positive RTG)",
    checks=(
        Check("baseline: avoids a ball in front at RTG 0: P(forward)", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check(
            "ablate obstacle head: ΔP(forward)", Ablation(ON, "obstacle_head"), at_least=0.25, per_example="increase"
        ),
        Check("control: ablate goal head: ΔP(forward)", Ablation(ON, "goal_head"), at_most=0.25, control=True),
    ),
)
