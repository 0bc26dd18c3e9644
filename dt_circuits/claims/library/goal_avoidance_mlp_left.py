"""Ablating the MLP makes the agent enter the goal from the left at RTG −1 (post Fig. 10).

The post also says head 0 does *not* inhibit forward into the goal from the left; that is the control.
"""

from dt_circuits.claim import Ablation, Check, Claim, OnFamily

ON = OnFamily("goal-from-left", rtg=-1.0)

CLAIM = Claim(
    kind="mlp",
    id="goal-avoidance-mlp-left",
    statement="Mean-ablating the MLP makes the agent step into the goal from the left at RTG -1",
    source="post Fig. 10 (P(forward) ~0 -> 0.88 when the MLP is ablated)",
    checks=(
        Check("ablate MLP: ΔP(forward)", Ablation(ON, "goal_mlp"), at_least=0.25, per_example="increase"),
        Check("control: ablate goal head: ΔP(forward)", Ablation(ON, "goal_head"), at_most=0.25, control=True),
    ),
)
