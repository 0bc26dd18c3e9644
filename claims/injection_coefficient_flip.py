"""Injecting the obstacle head's ball signal flips forward (post: the obstacle circuit — head 1's QK/OV turn a
ball in front into "less forward" — and DTI's activation-vector injection; the post text we have does not state
a coefficient, so the range is ours).

Activation-vector injection through the real env: Δ = the obstacle head's output (``hook_z`` slice) with a ball in
front minus the same state with the ball removed. Added as k × Δ to the states *without* the ball at RTG 0.9
(those where the agent goes forward, P(forward) ≥ 0.5), the mean P(forward) drops below 0.5 at a coefficient
k* ≤ 1.5 (scan 0..3 in steps of 0.125; whole bootstrap CI over states): the head's own ball signal, at most one
and a half times as strong as it naturally is, is enough to stop the agent. No crossing within the scan reports
3.125 and fails.
"""

from dt_circuits.claim import Check, Claim, InjectionFlip, OnFamily

CLAIM = Claim(
    kind="head",
    id="injection-coefficient-flip",
    statement="Adding k x (obstacle head output with a ball in front - without) to ball-free states at RTG 0.9 "
    "brings mean P(forward) below 0.5 at k <= 1.5",
    source="post obstacle circuit (Figs. 16/17) and DTI's injection scans; range stated here",
    checks=(
        Check(
            "injection coefficient flipping P(forward) below 0.5",
            InjectionFlip(OnFamily("obstacle-in-front", rtg=0.9), "obstacle_head"),
            at_least=0.0,
            at_most=1.5,
        ),
    ),
)
