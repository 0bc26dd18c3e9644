"""Ablating the goal head makes the agent enter the goal from the top at RTG 0 too (post: "Head 0 is responsible
for goal avoidance at -1 or 0 RTG (from the top)").

The RTG-0 half of the post's statement; the RTG −1 half is `goal-avoidance-head-top`, whose bar this keeps:
baseline first (the unablated model avoids: P(forward) ≤ 0.1 on the same states, Table 1's bar), then
mean-ablating the goal head raises P(forward into the goal) by ≥ 0.25, and the obstacle head, ablated on the
same states, does not.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, OnFamily

ON = OnFamily("goal-from-top", rtg=0.0)

CLAIM = Claim(
    kind="head",
    id="goal-avoidance-head-rtg0",
    statement="At RTG 0 the agent avoids the goal from the top, and mean-ablating the goal head makes it step in",
    source="post 'Circuit Results Summary' (head 0: goal avoidance at -1 or 0 RTG, from the top)",
    checks=(
        Check(
            "baseline: avoids the goal from the top at RTG 0: P(forward)", Behaviour(ON), at_most=0.1, kind="baseline"
        ),
        Check("ablate goal head: ΔP(forward)", Ablation(ON, "goal_head"), at_least=0.25, per_example="increase"),
        Check("control: ablate obstacle head: ΔP(forward)", Ablation(ON, "obstacle_head"), at_most=0.25, control=True),
    ),
)
