"""The RTG embedding is ambivalent between right and left (post: "The dot product of the right/left direction
with the RTG embedding is ~ -0.16. This can be interpreted as the RTG embedding encouraging forward movement and
probably being fairly ambivalent with [respect] to right/left"; forward/right was ~1.13).

Scale-free: |W_rtg · W_U(right − left)| is at most a quarter of W_rtg · W_U(forward − right), which must be
positive (post: 0.16 / 1.13 = 0.14). A ratio on a negative forward − right projection is undefined and fails.
Falsified on a random initialisation (both projections are noise of one size).
"""

from dt_circuits.analysis.embeddings import rtg_embedding_projection
from dt_circuits.claim import Check, Claim, Undefined, Weights


def right_left_ratio(subject) -> float:
    fr = rtg_embedding_projection(subject.model, "forward-right")
    rl = rtg_embedding_projection(subject.model, "right-left")
    if fr <= 0:
        raise Undefined(f"W_rtg . forward-right is {'0' if fr == 0 else f'{fr:+.4f}, not positive'}")
    return abs(rl) / fr


CLAIM = Claim(
    kind="embedding",
    id="rtg-embedding-right-left",
    statement="W_rtg's right - left projection is at most a quarter of its (positive) forward - right projection",
    source="post 'Analysing the RTG and Time Tokens' (right/left ~ -0.16 vs forward/right ~1.13)",
    checks=(
        Check(
            "|W_rtg . right-left| / W_rtg . forward-right",
            Weights(right_left_ratio, "|right - left| over forward - right projection of W_rtg", "ratio"),
            at_most=0.25,
        ),
    ),
)
