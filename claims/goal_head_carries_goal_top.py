"""The goal head carries "the goal is in front" into goal avoidance from the top at RTG −1 (post: "Head 0 is
responsible for goal avoidance at -1 or 0 RTG (from the top)"; Fig. 8), asked by counterfactual patching.

`goal-avoidance-head-top` keeps the post's own method (mean ablation). Here each state's goal head output is
patched from the same state with the goal removed (the front cell emptied: Dynamic Obstacles never moves the
goal, so the env cannot render a state without it). Bars as `obstacle-head-carries-ball`: baseline first (the
agent avoids the goal, P(forward) ≤ 0.1; removing the goal raises P(forward) by ≥ 0.1), then the goal head
carries ≥ 0.5 of the goal's effect on P(forward), its patch alone raises P(forward) by ≥ 0.05, and the obstacle
head carries at most a quarter.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, FrontObstacleRemoved, Mediation, OnFamily

#: 1000 episodes, as `goal-avoidance-head-top`: at RTG -1 the agent rarely reaches the goal's neighbourhood
ON = OnFamily("goal-from-top", rtg=-1.0, episodes=1000)

CLAIM = Claim(
    kind="head",
    id="goal-head-carries-goal-top",
    statement="The goal head carries most of the goal's effect on P(forward) from the top at RTG -1 (counterfactual)",
    source="post Fig. 8 and 'Head 0 is responsible for goal avoidance at -1 or 0 RTG (from the top)'",
    checks=(
        Check("baseline: P(forward) into the goal, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check(
            "baseline: P(forward) with the goal minus without it",
            FrontObstacleRemoved(ON, metric="p_forward"),
            at_most=-0.1,
            kind="baseline",
        ),
        Check("share of the goal's effect the goal head carries", Mediation(ON, "goal_head"), at_least=0.5),
        Check(
            "patch goal head from the goal-removed state: ΔP(forward)",
            Ablation(ON, "goal_head", method="counterfactual"),
            at_least=0.05,
            per_example="increase",
        ),
        Check("control: share the obstacle head carries", Mediation(ON, "obstacle_head"), at_most=0.25, control=True),
    ),
)
