"""Ball-in-front is computed by the model, not read off its input: a linear probe reads it from the residual stream
after the attention heads but not from the front cell's own encoding (issue 27's worked example; the post's key
claim 3, "the encoding shapes the algorithm", asked of representations).

The hand-checked fact behind it: in the raw-index encoding a ball's (object, colour) = (6, 2) lies inside the
triangle of empty (1, 0), wall (2, 5) and goal (8, 1), so no linear read-out of the front cell separates "ball"
from the rest; in one-hot it is one input bit, so there the claim is expected to fail on its second check (that is
the encoding deciding). Measured on the probe set (every pose with a ball, a wall, the goal or nothing in front,
plus random states; pose-grouped folds), before this claim was written: the front cell alone gave 0.986 on
raw-index (the goal, the triangle's third corner, is in front of few poses) — so the fact may not survive its own
test; the claim is recorded as it measures.

Bars (none tuned on a model): "decodable" is held-out probe accuracy ≥ 0.9 (whole interval), the bar of issue
27's feature claims; "not decodable" is ≤ 0.9 (whole interval), the same line from the other side. Control
(falsifiability): the same probe trained and scored on labels shuffled across states, at the same site, stays
below the same bar — or the accuracy is the probe's capacity, not the variable.
"""

from dt_circuits.claim import Check, Claim, Probe, ProbeStates

STATES = ProbeStates()
AFTER_HEADS = "blocks.0.hook_resid_mid"

CLAIM = Claim(
    kind="embedding",
    id="ball-in-front-computed",
    statement="Ball-in-front is linearly decodable after the heads (≥ 0.9) but not from the front cell's encoding "
    "(≤ 0.9)",
    source="issue 27 (worked example); post key claim 3, encoding shapes the algorithm",
    checks=(
        Check("probe accuracy for ball-in-front after the heads", Probe(STATES, AFTER_HEADS, "ball_in_front"),
              at_least=0.9),
        Check("probe accuracy for ball-in-front from the front cell's encoding",
              Probe(STATES, "input (front cell)", "ball_in_front"), at_most=0.9),
        Check("control: shuffled-label probe after the heads",
              Probe(STATES, AFTER_HEADS, "ball_in_front", reading="shuffled"), at_most=0.9, control=True),
    ),
)  # fmt: skip
