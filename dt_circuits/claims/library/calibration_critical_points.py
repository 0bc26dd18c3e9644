"""At RTG −1, 0 and 0.9 the mean outcome is unbiased (post Fig. 5).

"Unbiased" made testable: the bootstrap 95 % CI of the mean episode reward (200 sampled episodes, seeded) lies
within ±0.25 of the RTG asked for.
"""

from dt_circuits.claim import Check, Claim, Rollouts

TOLERANCE = 0.25

CLAIM = Claim(
    kind="behaviour",
    id="calibration-critical-points",
    statement="Mean reward is within 0.25 of the RTG at RTG -1, 0 and 0.9",
    source="post Fig. 5 (critical points -1, 0 and ~1 are unbiased)",
    checks=tuple(
        Check(f"mean reward at RTG {rtg:g}", Rollouts(rtg, "reward"), at_least=rtg - TOLERANCE, at_most=rtg + TOLERANCE)
        for rtg in (-1.0, 0.0, 0.9)
    ),
)
