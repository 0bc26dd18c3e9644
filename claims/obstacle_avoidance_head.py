"""Ablating the obstacle head makes the agent walk into an obstacle at positive RTG (post Fig. 9).

Threshold: ablation must raise P(forward) with a ball directly in front by at least 0.25 (CI lower bound): an
agent that steps forward into a ball with a quarter of its probability mass is no longer avoiding obstacles.
Control: ablating the goal head on the same states must not (CI upper bound below the same 0.25).
Baseline (no behaviour, no mechanism): unablated, on the same states, the agent avoids the ball: P(forward) ≤ 0.1.
Primary recipe: dataset mean at RTG 0.9 (the post's localisation method); every other recipe is reported.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, OnFamily

ON = OnFamily("obstacle-in-front", rtg=0.9)

CLAIM = Claim(
    kind="head",
    id="obstacle-avoidance-head",
    statement="Mean-ablating the obstacle head makes the agent walk into an obstacle in front at RTG 0.9",
    source="post Fig. 9 (P(forward) ~0 -> 0.9 when head 1 is ablated)",
    checks=(
        Check("baseline: P(forward) into a ball, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check(
            "ablate obstacle head: ΔP(forward)",
            Ablation(ON, "obstacle_head", method="mean"),
            at_least=0.25,
            per_example="increase",
        ),
        Check("control: ablate goal head: ΔP(forward)", Ablation(ON, "goal_head"), at_most=0.25, control=True),
    ),
)
