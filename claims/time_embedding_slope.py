"""The time embedding drifts towards forward over an episode (post Fig. 11: "The dot product with the
forward/right direction of the time embeddings is not linear as the time embedding is learned. The slight
positive slope might be meaningful, but this is unclear").

The least-squares slope of W_time[t] · W_U(forward − right) over t = 0..255 (the env's default 4·8² step limit
for 8×8, covering every timestep the training data uses) is positive: whole bootstrap CI (over timesteps) > 0,
in logits per 100 steps. Falsified on a random initialisation (no trend).
"""

from dt_circuits.claim import Check, Claim, TimeSlope

CLAIM = Claim(
    kind="embedding",
    id="time-embedding-slope",
    statement="The time embedding's projection on forward - right has a positive slope over t = 0..255",
    source="post Fig. 11 (slight positive slope)",
    checks=(Check("slope of W_time[t] . forward-right", TimeSlope("forward-right", 255), at_least=0.0),),
)
