"""Ablating the goal head makes the agent enter the goal from the top at RTG −1 (post Fig. 8).

Same bar as the obstacle claim: ablation must raise P(forward into the goal) by ≥ 0.25 (CI lower bound); the
obstacle head, ablated on the same states, must not.

Baseline (no behaviour, no mechanism): unablated, on the same states, the agent avoids the goal from the top:
P(forward) ≤ 0.1. Primary recipe: dataset mean at RTG −1; every other recipe is reported.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, OnFamily

#: 1000 episodes: at RTG -1 the agent rarely reaches the goal's neighbourhood before a collision
ON = OnFamily("goal-from-top", rtg=-1.0, episodes=1000)

CLAIM = Claim(
    kind="head",
    id="goal-avoidance-head-top",
    statement="Mean-ablating the goal head makes the agent step into the goal from the top at RTG -1",
    source="post Fig. 8 (P(forward) ~0 -> 0.48 when head 0 is ablated)",
    checks=(
        Check("baseline: P(forward) into the goal, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check("ablate goal head: ΔP(forward)", Ablation(ON, "goal_head"), at_least=0.25, per_example="increase"),
        Check("control: ablate obstacle head: ΔP(forward)", Ablation(ON, "obstacle_head"), at_most=0.25, control=True),
    ),
)
