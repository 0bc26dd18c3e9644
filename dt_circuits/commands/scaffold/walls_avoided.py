"""The agent does not walk into a wall in front at RTG 0.9 (post Table 1: walls are always avoided).

A behaviour claim: P(forward) with a wall directly in front, over every valid agent pose with seeded obstacle
layouts, must stay at or below 0.1 for the whole 95 % CI. A model that walks into walls fails it (a random
initialisation does: that is how this claim is shown able to fail).
"""

from dt_circuits.claim import Behaviour, Check, Claim, OnFamily

CLAIM = Claim(
    id="walls-avoided-high-rtg",
    kind="behaviour",
    statement="With a wall in front at RTG 0.9 the agent does not step forward",
    source="post Table 1",
    checks=(
        Check(
            "wall in front at RTG 0.9: P(forward)",
            Behaviour(OnFamily("wall-in-front", rtg=0.9)),
            at_most=0.1,
        ),
    ),
)
