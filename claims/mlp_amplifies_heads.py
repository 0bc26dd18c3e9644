"""The MLP amplifies both heads' contributions (post, summary: "The MLP amplified head 1 and head 0
contributions"; Fig. 7's asterisks; obstacle circuit: "the MLP tends to accentuate the output of either attention
head, helping them project strongly enough").

General, not one scenario: on 2048 states of a seeded random walk in the real env (their own timesteps), each
head's output is switched from RTG 0.9 to RTG −1 (the heads are where RTG enters). Per head, the amplification
gain is mean effect through the MLP (head -> MLP -> logits) / mean direct effect (head -> logits), along
forward − right, paired bootstrap over states. "Amplifies" = the MLP adds at least half of the head's direct
push again, in the same direction: gain ≥ 0.5. A gain below 0 means the MLP opposes the head. Falsified on a
random initialisation.
"""

from dt_circuits.claim import Check, Claim, Contrast, PathShare

GAIN = 0.5

CLAIM = Claim(
    kind="path",
    id="mlp-amplifies-heads",
    statement="Through the MLP each head's RTG-dependent output is pushed further the same way: (head -> MLP) / "
    "(head -> logits) >= 0.5 on random-walk states, RTG 0.9 vs -1",
    source="post Fig. 7 and 'Circuit Results Summary' (the MLP amplified head 1 and head 0 contributions)",
    checks=tuple(
        Check(
            f"{head}: MLP gain (mlp / direct), random walk, RTG 0.9 -> -1",
            PathShare(None, head, Contrast(rtg=-1.0), "mlp", "direct", rtg=0.9),
            at_least=GAIN,
        )
        for head in ("L0H0", "L0H1")
    ),
)
