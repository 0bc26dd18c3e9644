"""Not attending to RTG inhibits forward (post, obstacle circuit: "Not attending to RTG also inhibits forward
motion since RTG projects into forward/right from the residual stream").

On every pose with empty space in front at RTG 0.9 (where the post's head 1 attends to RTG):

- the path must be used: the obstacle head's state query pays the RTG token ≥ 0.05 on average
  (``requires_path``), else the knockout below changes nothing the model does;
- knockout: setting the obstacle head's attention to the RTG token to 0 (its weight moved to the state token)
  lowers forward − right by ≥ 0.5 logits (whole CI; each state predicted to decrease);
- the reason given: what the head moves from the RTG token at RTG 0.9 pushes along forward − right (value
  through W_O at attention 1, whole CI ≥ 0).
"""

from dt_circuits.claim import AttentionKnockout, Check, Claim, OnFamily, PathUse, RTGValuePush

ON = OnFamily("empty-in-front", rtg=0.9)

CLAIM = Claim(
    kind="head",
    id="rtg-attention-inhibits-forward",
    statement="At RTG 0.9 with empty space in front, removing the obstacle head's attention to RTG lowers "
    "forward - right by >= 0.5, because what it reads from RTG pushes forward - right",
    source="post 'Circuit Results Summary' and obstacle circuit (not attending to RTG inhibits forward)",
    checks=(
        Check(
            "knock out obstacle head's attention to RTG: Δ forward-right",
            AttentionKnockout(ON, "obstacle_head", "rtg"),
            at_most=-0.5,
            per_example="decrease",
            requires_path=PathUse("obstacle_head", "rtg", (ON,)),
        ),
        Check(
            "obstacle head's value from the RTG token along forward-right",
            RTGValuePush(ON, "obstacle_head"),
            at_least=0.0,
            requires_path=PathUse("obstacle_head", "rtg", (ON,)),
        ),
    ),
)
