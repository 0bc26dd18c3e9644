"""The agent follows walls clockwise (post: "There are also broader biases that I haven't fully understood, such
as the tendency to manoeuvre the grid clockwise"; "Wall following in the clockwise directions appears to be
contributed to by both heads and the MLP").

In the real env, 100 sampled episodes at RTG 0 (the regime that wanders until the time limit), first 100 steps
each, seeded. Clockwise wall following (screen coordinates) means turning right at a wall: per episode, the share
of turns taken with a wall in front that are right turns; the mean over episodes is ≥ 0.6 (whole CI; chance is
0.5). Second check, the grid-level signature: the circulation of the agent's moves about the grid centre
(normalised to [−1, 1], > 0 clockwise) is positive (whole CI ≥ 0). Falsified on a random initialisation.
"""

from dt_circuits.claim import Check, Claim, WallFollowing

CLAIM = Claim(
    kind="behaviour",
    id="wall-following-clockwise",
    statement="At RTG 0 the agent turns right at walls (share >= 0.6) and circulates clockwise (> 0)",
    source="post 'Circuit Results Summary' and 'Attention and Head Ablation' (clockwise wall following)",
    checks=(
        Check("right turns at a wall in front: share", WallFollowing("right-share"), at_least=0.6),
        Check("circulation about the centre (> 0 clockwise)", WallFollowing("circulation"), at_least=0.0),
    ),
)
