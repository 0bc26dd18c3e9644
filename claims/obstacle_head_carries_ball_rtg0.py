"""The obstacle head carries "a ball is in front" into the avoidance, at RTG 0 (post: "Head 1 is responsible for
obstacle avoidance at 0 or positive RTG"; Fig. 9), asked by counterfactual patching.

The RTG-0 half of the post's sentence (RTG 0.9 is `obstacle-head-carries-ball`, whose bars this keeps);
`obstacle-avoidance-head-rtg0` keeps the post's own method (mean ablation) as it was. What the post's sentence says is
that head 1 carries the information that makes the agent avoid the ball; the standard way to ask that is an
interchange intervention: run each state and patch the head's output from the same state with the ball removed.

Bars (none tuned on a model): baseline first — the agent avoids the ball (P(forward) ≤ 0.1, Table 1's bar) and
the ball is what stops it (removing it raises P(forward) by ≥ 0.1: the avoidance is worth explaining only if the
ball moves it). "Carries" means carries most of it: the share of the ball's effect on P(forward) that patching
the head reproduces is ≥ 0.5 (whole interval); the patch alone raises P(forward) by ≥ 0.05, half of the least
ball effect the baseline accepts (reported under every recipe). Control: the goal head carries at most a quarter.
"""

from dt_circuits.claim import Ablation, Behaviour, Check, Claim, FrontObstacleRemoved, Mediation, OnFamily

ON = OnFamily("obstacle-in-front", rtg=0.0)

CLAIM = Claim(
    kind="head",
    id="obstacle-head-carries-ball-rtg0",
    statement="The obstacle head carries most of the ball's effect on P(forward) at RTG 0 (counterfactual patch)",
    source="post: 'Head 1 is responsible for obstacle avoidance at 0 or positive RTG'",
    checks=(
        Check("baseline: P(forward) into a ball, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check(
            "baseline: P(forward) with the ball minus without it",
            FrontObstacleRemoved(ON, metric="p_forward"),
            at_most=-0.1,
            kind="baseline",
        ),
        Check("share of the ball's effect the obstacle head carries", Mediation(ON, "obstacle_head"), at_least=0.5),
        Check(
            "patch obstacle head from the ball-removed state: ΔP(forward)",
            Ablation(ON, "obstacle_head", method="counterfactual"),
            at_least=0.05,
            per_example="increase",
        ),
        Check("control: share the goal head carries", Mediation(ON, "goal_head"), at_most=0.25, control=True),
    ),
)
