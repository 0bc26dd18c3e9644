"""The post's Table 1: which things the agent avoids at each RTG, on generated states and in rollouts.

On generated states "avoids X" means P(forward) with X directly in front ≤ 0.1 (whole CI) and "seeks the goal"
means P(forward) ≥ 0.5 with the goal in front; "does not avoid" (obstacles at RTG −1) is the negation of
the avoid bar, P(forward) > 0.1. In rollouts (200 sampled episodes): at RTG 0.9 at least 70 % reach
the goal; at RTG -1 at most 5 % do; at RTG 0 at least 50 % time out (avoid walls, obstacles and goal).
"""

from dt_circuits.claim import Behaviour, Check, Claim, OnFamily, Rollouts

AVOID = 0.1


def avoids(thing: str, family: str, rtg: float) -> Check:
    return Check(f"avoids {thing} at RTG {rtg:g}: P(forward)", Behaviour(OnFamily(family, rtg)), at_most=AVOID)


CLAIM = Claim(
    kind="behaviour",
    id="rtg-behaviours",
    statement="Walls are always avoided; obstacles at RTG 0 and 0.9 (not at -1); the goal at RTG -1 and 0, "
    "sought at 0.9",
    source="post Table 1",
    checks=(
        *(avoids("walls", "wall-in-front", rtg) for rtg in (-1.0, 0.0, 0.9)),
        *(avoids("obstacles", "obstacle-in-front", rtg) for rtg in (0.0, 0.9)),
        Check(  # Table 1's "no": the negation of the avoid bar
            "does not avoid obstacles at RTG -1: P(forward)",
            Behaviour(OnFamily("obstacle-in-front", -1.0)),
            at_least=AVOID,
        ),
        *(
            avoids(f"the goal from the {side}", f"goal-from-{side}", rtg)
            for rtg in (-1.0, 0.0)
            for side in ("top", "left")
        ),
        *(
            Check(
                f"seeks the goal from the {side} at RTG 0.9: P(forward)",
                Behaviour(OnFamily(f"goal-from-{side}", 0.9)),
                at_least=0.5,
            )
            for side in ("top", "left")
        ),
        Check("rollouts RTG 0.9: goal rate", Rollouts(0.9, "goal"), at_least=0.7),
        Check("rollouts RTG -1: goal rate", Rollouts(-1.0, "goal"), at_most=0.05),
        Check("rollouts RTG 0: timeout rate", Rollouts(0.0, "timeout"), at_least=0.5),
    ),
)
