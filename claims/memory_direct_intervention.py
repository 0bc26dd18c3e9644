"""Direct intervention on MemoryDT's instruction feature reproduces its adversaries.

Article: "We show that we can directly intervene on the instruction feature to induce the same effects as the
adversaries or flipping the instruction." ... "They show a very similar functional mapping from the instruction
feature sign/magnitude to the logit difference suggesting the instruction feature entirely explains our
adversarial results." (Fig. 18: adversaries' projection on "Instruction PC0" vs left − right logit difference;
Fig. 19: the same for direct interventions.)

Test: for each adversary (complement at (0,5), at (4,2), at both, instruction flipped), layout and RTG (0.892, 0),
move the first frame's embedding along PC0 by the adversary's own PC0 projection instead of applying it. The
logit difference must match the adversary's to within 0.25 of the flip effect on average. Control: the same move
along a random direction orthogonal to PC0 restores between −0.25 and 0.25 of the flip (the feature, not the
size of the edit, matters).
"""

from dt_circuits.claim import Check, Claim, FeatureIntervention

CLAIM = Claim(
    id="memory-direct-intervention",
    kind="embedding",
    env="memory",
    statement="Moving the first frame's embedding along the instruction PC0 by each adversary's projection "
    "reproduces the adversary's left − right logit difference to within 0.25 of the flip effect",
    source="MemoryDT article, Fig. 18 and Fig. 19 ('Direct Interventions on the Instruction Feature')",
    checks=(
        Check("|LD(PC0 move) − LD(adversary)| / flip effect", FeatureIntervention(), at_most=0.25),
        Check(
            "same move along a random direction orthogonal to PC0: restored share",
            FeatureIntervention(direction="orthogonal"),
            at_least=-0.25,
            at_most=0.25,
            control=True,
        ),
    ),
)
