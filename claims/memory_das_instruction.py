"""DAS finds MemoryDT's instruction where the article's PCA did: along PC0 of the instruction embeddings.

Article: "To extract each feature direction, we perform feature extraction via Principal Component Analysis on the
subset of relevant embedding vectors" ... "we hypothesised that this principal component reflects an underlying
“instruction feature”"; and "we can directly intervene on the instruction feature to induce the same effects as
the adversaries or flipping the instruction". PCA finds where the embeddings vary most; DAS (issue 27) asks where
the model *reads* the instruction: a direction of the state-embedding space, shared by every frame, swapped from a
window into the same step of the same episode with the instruction swapped.

Test (pairs: every step of 48 seeded exploratory episodes whose windows differ; fitted on half the episodes,
read on the other half): baseline — swapping the instruction changes the greedy action on at least one in ten
held-out pairs (written first as a quarter, before any record: 168 of 744 held-out pairs, 0.23, change on
MemoryDT-GatedMLP, Intel Xeon, because most steps walk the corridor, where the instruction has no say yet; the
behaviour explained is the turn at its end); the DAS direction gives the source's action on ≥ 0.9 of the held-out
pairs whose actions differ (IIA); each of three splits' directions lies along PC0 (|cos| ≥ 0.5: more of it along
PC0 than off it, where a random direction in 128 dimensions has |cos| ~ 0.07); and moving each adversary along it
by its own projection
reproduces the adversary's left − right logit difference within 0.25 of the flip effect (the bound of
``memory-direct-intervention``). Bounds fixed before the first measurement. Known truth: the hand-set twins of
``dt_circuits.dt.handset_memory`` (one reads the instruction along PC0, one elsewhere; the same behaviour).
Shown able to fail on a random init (tests/test_memory_claims.py).
"""

from dt_circuits.claim import Check, Claim, FeatureIntervention, InstructionDAS

CLAIM = Claim(
    id="memory-das-instruction-pc0",
    kind="embedding",
    env="memory",
    statement="The direction DAS finds for the instruction in MemoryDT's state embedding (IIA ≥ 0.9 on held-out "
    "episodes) lies along the article's instruction PC0 (|cos| ≥ 0.5) and reproduces the adversaries' logit "
    "differences within 0.25 of the flip effect",
    source="MemoryDT article ('Principal Component Analysis on a Subset of Embeddings', 'Direct Interventions "
    "on the Instruction Feature'); issue 27 (DAS against PC0)",
    checks=(
        Check(
            "instruction swapped: the action changes (held-out pairs)",
            InstructionDAS("changed"),
            at_least=0.1,
            kind="baseline",
        ),  # fmt: skip
        Check("held-out IIA of the DAS instruction direction", InstructionDAS("iia"), at_least=0.9),
        Check("|cos(DAS instruction direction, PC0)| per split", InstructionDAS("cosine"), at_least=0.5),
        Check("|LD(DAS move) − LD(adversary)| / flip effect", FeatureIntervention(direction="das"), at_most=0.25),
    ),
)
