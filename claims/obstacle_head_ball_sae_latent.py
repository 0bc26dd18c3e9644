"""A sparse-autoencoder latent of the obstacle head's output is "a ball is in front", and the agent needs it: the
SAE question of issue 27 ("an SAE latent tracks ball-in-front (F1 ≥ 0.9) and ablating it raises P(forward into
the ball)"), asked of the post's head.

The SAE (`features/sae.py`, the features table's shape: 2 × d latents, 4 active, 1500 steps) is trained on a seeded
random walk, the ball-in-front pairs of half the poses and the checkpoint's own states at RTG 0.9 (a seeded 4,096 of
those its 200 rollouts visit: generated and on-policy, as issue 27 asks); its latent is the one whose firing predicts
the ball best on the training pairs (F1); both readings are taken on the other half's poses.

Bars (none tuned on a model): F1 ≥ 0.9, the issue's; setting the latent's direction to its ball-removed mean
raises P(forward) into the ball by ≥ 0.25, the bar of `obstacle-avoidance-head` (a quarter of the probability
mass walking into the ball is no longer avoiding it). Baseline first: the agent avoids the ball (P(forward) ≤ 0.1).
Control: the goal head's best latent stays below the same F1 bar, or the latent is not the obstacle head's. The
features table measured the SAE's ball latent at L0H1 before this claim was written: held-out F1 0.66 / 0.69 / 0.49
(raw-index / one-hot / DTI reference) — it is expected to fail, and is recorded as it measures.
"""

from dt_circuits.claim import Behaviour, Check, Claim, OnFamily, Subspace

ON = OnFamily("obstacle-in-front", rtg=0.9)

CLAIM = Claim(
    kind="head",
    id="obstacle-head-ball-sae-latent",
    statement="An SAE latent of the obstacle head's output tracks ball-in-front (F1 ≥ 0.9), and setting it to its "
    "ball-removed mean raises P(forward) into the ball by ≥ 0.25 at RTG 0.9",
    source="issue 27 (SAE claim); post: 'Head 1 is responsible for obstacle avoidance'",
    checks=(
        Check("baseline: P(forward) into a ball, unablated", Behaviour(ON), at_most=0.1, kind="baseline"),
        Check("F1 of the obstacle head's SAE ball latent",
              Subspace(ON, "obstacle_head", "ball_in_front", method="sae", reading="f1"), at_least=0.9),
        Check("obstacle head's SAE ball latent at its ball-removed mean: ΔP(forward)",
              Subspace(ON, "obstacle_head", "ball_in_front", method="sae", reading="ablation"), at_least=0.25),
        Check("control: F1 of the goal head's SAE ball latent",
              Subspace(ON, "goal_head", "ball_in_front", method="sae", reading="f1"), at_most=0.9, control=True),
    ),
)  # fmt: skip
