"""Table 3's goal and obstacle rows: the state embedding is a weak goal seeker and ambivalent to balls (post:
"The results suggest embedding functions as a strong wall avoider and a weak goal square seeker"; "linear
combinations of channel/colour encodings used to make the state encoding promote wall avoidance, goal entrance
but be ambivalent to obstacles/balls"; post numbers: goal 1.42 and ball 0.136 vs empty 0.27).

Read at the front cell along forward − right (Table 3's arithmetic, through the model's own encoder): goal minus
empty ≥ 0.25 (seeks the goal), |ball minus empty| ≤ 0.5 (ambivalent; the wall row is `wall-detection-embedding`).
On the states: the state embedding's direct push with the goal in front from the top is ≥ 0.25 above its mean
with empty space in front (every pose). Falsified on a random initialisation.
"""

from dt_circuits.analysis.embeddings import cell_table
from dt_circuits.claim import Check, Claim, FamilyContrast, OnFamily, Weights


def minus_empty(subject, value: str) -> float:
    table = cell_table(subject.model, "forward-right")
    return table[value] - table["empty"]


CLAIM = Claim(
    kind="embedding",
    id="embedding-table3-rows",
    statement="The state embedding seeks the goal in front (goal - empty >= 0.25 on forward - right) and is "
    "ambivalent to a ball (|ball - empty| <= 0.5)",
    source="post Table 3 (goal and obstacle rows) and Discussion",
    checks=(
        Check(
            "front cell: goal - empty on forward-right (Table 3)",
            Weights(lambda s: minus_empty(s, "goal"), "Table 3 at the front cell: goal minus empty"),
            at_least=0.25,
        ),
        Check(
            "front cell: ball - empty on forward-right (Table 3)",
            Weights(lambda s: minus_empty(s, "obstacle"), "Table 3 at the front cell: ball minus empty"),
            at_least=-0.5,
            at_most=0.5,
        ),
        Check(
            "state embedding push: goal in front (top) - empty in front",
            FamilyContrast(
                OnFamily("goal-from-top", rtg=0.9), OnFamily("empty-in-front", rtg=0.9), "state_embed:forward-right"
            ),
            at_least=0.25,
        ),
    ),
)
