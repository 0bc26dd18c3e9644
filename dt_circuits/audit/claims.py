"""The game's own claim: a path claim the planted truth decides (issue 28's third claim kind).

No shipped path claim is about the ball (docs/audit.md, "Why no path claim"): they are about how RTG reaches the
logits, which no arm constrains. What the arms do constrain is the path of the ball: SIIT keeps the MLP's whole
output irrelevant to it in the head arms, so a planted head's ball signal must reach the logits along the head's
direct path; in the MLP arm and arm D no head carries it at all. The truth of the path is checked independently
(:func:`dt_circuits.audit.truth.direct_path_iia`); this claim asks it with the suite's own path patching.

Bars: the baselines of ``obstacle-head-carries-ball`` (the agent avoids the ball, P(forward) ≤ 0.1, and the ball
is what stops it, ≥ 0.1 of P(forward)); the obstacle head's output taken from the same state with the ball
removed and delivered to the logits alone raises **P(forward)** by ≥ 0.5 (most of a flip from avoiding to going
forward); control: the goal head's direct path stays below the same bar.

The first game used a logit bar instead, forward − right ≥ 0.5 logits (borrowed from
``head-effects-through-mlp``): it certified two unplanted direct paths (arm D seeds 2 and 3, direct-path IIA 0.07
and 0.22) whose write moves the logits but rarely the action the truth is about. The bar is now on the action's
probability, with the same number read as "half a flip" (issue 28, deliverable 4; CHANGELOG).
"""

from __future__ import annotations

from dt_circuits.claims.language.claim import Check, Claim
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.claims.measures.paths import Contrast, HeadPath
from dt_circuits.claims.measures.states import Behaviour, FrontObstacleRemoved

ON = OnFamily("obstacle-in-front", rtg=0.9)
BALL_REMOVED = Contrast(edit="remove-front-obstacle")
#: the rise in P(forward) the direct path must give: most of a flip from avoiding the ball to walking forward
DIRECT = 0.5

PATH_CLAIM = Claim(
    kind="path",
    id="obstacle-head-ball-direct-path",
    statement="The obstacle head's ball signal reaches the logits along its direct path at RTG 0.9 (ΔP(forward) ≥ 0.5)",
    source="issue 28: the path the head arms' SIIT leaves the ball (docs/audit.md)",
    checks=(
        Check("baseline: P(forward) into a ball, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check(
            "baseline: P(forward) with the ball minus without it",
            FrontObstacleRemoved(ON, metric="p_forward"),
            at_most=-0.1,
            kind="baseline",
        ),
        Check(
            "obstacle head output from the ball-removed state, direct path: ΔP(forward)",
            HeadPath(ON, "obstacle_head", BALL_REMOVED, "direct", metric="p_forward"),
            at_least=DIRECT,
            per_example="increase",
        ),
        Check(
            "control: goal head output from the ball-removed state, direct path: ΔP(forward)",
            HeadPath(ON, "goal_head", BALL_REMOVED, "direct", metric="p_forward"),
            at_most=DIRECT,
            control=True,
        ),
    ),
)
