"""Each head's effect acts partly through the MLP (post Figs. 8 and 9: ablating head 0 "both directly reduces
the projections against the forward/right direction and leads the MLP to contribute less to this negative
direction"; ablating head 1 "directly reduces the projection against the forward/right direction and leads the
MLP to contribute less to the opposing direction").

Mediation by path patching, with the contrast Table 1 ties each behaviour to (made through the real env): the
obstacle head, ball in front, RTG 0.9 (avoided) with its output taken from RTG −1 (not avoided); the goal head,
goal in front from the top, RTG −1 (avoided) with its output taken from RTG 0.9 (sought). Per head:

- baseline: the unpatched model avoids on those states (P(forward) ≤ 0.1, Table 1's bar);
- the head's total effect (its output switched, reaching everything downstream) raises forward − right by
  ≥ 0.5 logits (the head carries part of the behaviour change);
- the MLP's share: mean indirect effect (head -> MLP -> logits) / mean total effect ≥ 0.25 ("partly through
  the MLP"), paired bootstrap over states.
"""

from dt_circuits.claim import Behaviour, Check, Claim, Contrast, HeadPath, OnFamily, PathShare

AVOID, TOTAL, SHARE = 0.1, 0.5, 0.25
CASES = (
    ("obstacle_head", OnFamily("obstacle-in-front", rtg=0.9), Contrast(rtg=-1.0)),
    ("goal_head", OnFamily("goal-from-top", rtg=-1.0), Contrast(rtg=0.9)),
)


def _checks(role: str, on: OnFamily, contrast: Contrast) -> tuple[Check, ...]:
    return (
        Check(
            f"baseline: avoids, {on.family} at RTG {on.rtg:g}: P(forward)",
            Behaviour(on),
            at_most=AVOID,
            kind="baseline",
        ),
        Check(
            f"{role} output from RTG {contrast.rtg:g}: total Δ forward-right",
            HeadPath(on, role, contrast, "total"),
            at_least=TOTAL,
            per_example="increase",
        ),
        Check(
            f"{role}: MLP share of its effect (mlp / total)",
            PathShare(on, role, contrast, "mlp", "total"),
            at_least=SHARE,
        ),
    )


CLAIM = Claim(
    kind="head",
    id="head-effects-through-mlp",
    statement="Each head's effect on its behaviour (obstacle head: ball in front, RTG 0.9 vs -1; goal head: goal "
    "from the top, RTG -1 vs 0.9) is >= 0.5 logits and at least a quarter of it goes through the MLP",
    source="post Figs. 8 and 9 (ablation text: direct reduction plus less MLP contribution)",
    checks=tuple(c for case in CASES for c in _checks(*case)),
)
