"""Ablating the goal head makes the agent enter the goal from the top at RTG −1 (post Fig. 8).

Same bar as the obstacle claim: ablation must raise P(forward into the goal) by ≥ 0.25 (CI lower bound); the
obstacle head, ablated on the same states, must not.
"""

from dt_circuits.claim import Ablation, Check, Claim, OnFamily

ON = OnFamily("goal-from-top", rtg=-1.0)

CLAIM = Claim(
    kind="head",
    id="goal-avoidance-head-top",
    statement="Mean-ablating the goal head makes the agent step into the goal from the top at RTG -1",
    source="post Fig. 8 (P(forward) ~0 -> 0.48 when head 0 is ablated)",
    checks=(
        Check("ablate goal head: ΔP(forward)", Ablation(ON, "goal_head"), at_least=0.25, per_example="increase"),
        Check("control: ablate obstacle head: ΔP(forward)", Ablation(ON, "obstacle_head"), at_most=0.25, control=True),
    ),
)
