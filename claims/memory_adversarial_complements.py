"""MemoryDT's instruction adversaries: complement objects ("decoys") added to the first frame flip the turn, and
(the article's transfer claim) they do so on MemoryDT-GatedMLP.

Article: "we take the modal scenario where the model has walked forward 4 times and is choosing between left /
right"; edits to S5 include "S5 with the complement instruction added at (0,5) and (2,4) [(4,2) in Fig. 17]. Even
though this frame was not present in the training data, we expect it to override the detection of original
instruction", measured as the restored logit difference "using the original frame as our negative control or
“clean” input and Instruction Flipped as our “corrupt”/positive control". For MemoryDT "most results are around
0.80-0.90"; for GatedMLP (Fig. 20, "RTG = 0.892"): "The effect of adding two keys or two balls to flip the
instruction was closer to the effect of flipping the original instruction and in some cases exceeded it."

Bounds: both complements restore ≥ 0.8 of the flip at RTG 0.892 (Fig. 20) and at RTG 0 (Fig. 17's other RTG).
Control: adding the *same* object as the instruction at those cells must not flip the turn (≤ 0.25): the effect
is the complement's, not any extra object's. S5 = the first real frame after DTI's 4 padding frames (inferred).
"""

from dt_circuits.claim import Check, Claim, DecoyRestoration

CLAIM = Claim(
    id="memory-adversarial-complements",
    kind="embedding",
    env="memory",
    statement="Complement objects at (0,5) and (4,2) in the first frame restore ≥ 0.8 of the instruction flip's "
    "left − right logit difference (the article's adversaries transfer to MemoryDT-GatedMLP)",
    source="MemoryDT article, Fig. 17 and Fig. 20 ('Do the Instruction Feature Adversaries Transfer?')",
    checks=(
        Check("complements (0,5)+(4,2), RTG 0.892", DecoyRestoration(0.892), at_least=0.8),
        Check("complements (0,5)+(4,2), RTG 0", DecoyRestoration(0.0), at_least=0.8),
        Check(
            "same object as the instruction at (0,5)+(4,2), RTG 0.892",
            DecoyRestoration(0.892, item="same"),
            at_most=0.25,
            control=True,
        ),
    ),
)
