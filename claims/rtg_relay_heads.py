"""Each attention head relays RTG to the state token (post: "Information from the RTG token can be moved to the
state embedding (used to predict the action) at the attention heads and not before").

Path patching, not ablation: on the same states, the RTG token is switched from −1 to 0.9 *for one head only*
(that head reads the RTG token's keys and values from the RTG-0.9 run; the other head and everything else see
RTG −1). A head relays RTG if this moves forward − right by at least 0.5 logits per state on average (|Δ|: the
claim is that RTG reaches the logits through the head, not which way). Measured where Table 1 says RTG changes
the behaviour: a ball in front, and the goal in front from the top. Baseline first: switching the RTG for the
whole model moves forward − right there by at least as much. A dataset-mean ablation taken at the evaluation
RTG cannot see such a head (issue 13). Falsified on a random initialisation (tests/test_claims_falsifiable.py).
"""

from dt_circuits.claim import Check, Claim, Contrast, ContrastEffect, OnFamily, TokenPath

RELAY = 0.5
SCENARIOS = (OnFamily("obstacle-in-front", rtg=-1.0), OnFamily("goal-from-top", rtg=-1.0))
TO_HIGH = Contrast(rtg=0.9)

CLAIM = Claim(
    kind="path",
    id="rtg-relay-heads",
    statement="Each head alone relays RTG: switching the RTG token -1 -> 0.9 through that head only moves "
    "forward - right by >= 0.5 logits (mean |Δ|), with a ball or the goal in front",
    source="post 'Decision Transformer Architecture' (RTG reaches the state token only at the heads); issue 13",
    checks=(
        *(
            Check(
                f"baseline: whole model, RTG −1 -> 0.9: |Δ forward-right|, {on.family}",
                ContrastEffect(on, TO_HIGH, magnitude=True),
                at_least=RELAY,
                kind="baseline",
            )
            for on in SCENARIOS
        ),
        *(
            Check(
                f"RTG token through {head} only: |Δ forward-right|, {on.family}",
                TokenPath(on, "rtg", head, TO_HIGH, magnitude=True),
                at_least=RELAY,
            )
            for head in ("L0H0", "L0H1")
            for on in SCENARIOS
        ),
    ),
)
