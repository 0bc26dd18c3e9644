"""The MLP carries "the goal is in front" into goal avoidance from the left at RTG −1 (post: the MLP "appears
responsible for goal avoidance at RTG = -1 (from the left)"; Fig. 10), asked by counterfactual patching.

`goal-avoidance-mlp-left` keeps the post's own method (mean ablation). Here each state's MLP output is patched from
the same state with the goal removed (the front cell emptied: the env never moves the goal). Bars as
`obstacle-head-carries-ball`: baseline first (the agent avoids the goal, P(forward) ≤ 0.1; removing the goal
raises P(forward) by ≥ 0.1), then the MLP carries ≥ 0.5 of the goal's effect on P(forward), its patch alone
raises P(forward) by ≥ 0.05, and the goal head (which the post says does not inhibit forward into the goal from
the left) carries at most a quarter.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, FrontObstacleRemoved, Mediation, OnFamily

#: 8000 episodes, as `goal-avoidance-mlp-left`: at RTG -1 the agent rarely reaches the goal from the left
ON = OnFamily("goal-from-left", rtg=-1.0, episodes=8000)

CLAIM = Claim(
    kind="mlp",
    id="goal-mlp-carries-goal-left",
    statement="The MLP carries most of the goal's effect on P(forward) from the left at RTG -1 (counterfactual)",
    source="post Fig. 10 and 'The MLP ... appears responsible for goal avoidance at RTG = -1 (from the left)'",
    checks=(
        Check("baseline: P(forward) into the goal, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check(
            "baseline: P(forward) with the goal minus without it",
            FrontObstacleRemoved(ON, metric="p_forward"),
            at_most=-0.1,
            kind="baseline",
        ),
        Check("share of the goal's effect the MLP carries", Mediation(ON, "goal_mlp"), at_least=0.5),
        Check(
            "patch the MLP from the goal-removed state: ΔP(forward)",
            Ablation(ON, "goal_mlp", method="counterfactual"),
            at_least=0.05,
            per_example="increase",
        ),
        Check("control: share the goal head carries", Mediation(ON, "goal_head"), at_most=0.25, control=True),
    ),
)
