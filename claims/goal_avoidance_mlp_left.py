"""Ablating the MLP makes the agent enter the goal from the left at RTG −1 (post Fig. 10).

The post also says head 0 does *not* inhibit forward into the goal from the left; that is the control.

Baseline (no behaviour, no mechanism): unablated, on the same states, the agent avoids the goal from the left:
P(forward) ≤ 0.1. Primary recipe: dataset mean at RTG −1; every other recipe is reported.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, OnFamily

#: 8000 episodes: at RTG -1 the agent rarely reaches the goal's neighbourhood before a collision (1000 gave one-hot
#: 9-13 on-policy episodes and a verdict that flipped in 2 of 20 generation seeds; RTG -1 episodes are ~11 steps)
ON = OnFamily("goal-from-left", rtg=-1.0, episodes=8000)

CLAIM = Claim(
    kind="mlp",
    id="goal-avoidance-mlp-left",
    statement="Mean-ablating the MLP makes the agent step into the goal from the left at RTG -1",
    source="post Fig. 10 (P(forward) ~0 -> 0.88 when the MLP is ablated)",
    checks=(
        Check("baseline: P(forward) into the goal, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check("ablate MLP: ΔP(forward)", Ablation(ON, "goal_mlp"), at_least=0.25, per_example="increase"),
        Check("control: ablate goal head: ΔP(forward)", Ablation(ON, "goal_head"), at_most=0.25, control=True),
    ),
)
