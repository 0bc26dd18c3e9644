"""The RTG embedding projects positively on forward − right (post: dot product ~1.13).

A raw dot product's size depends on the weight scale, so the bar is the cosine between W_rtg and the
forward − right unembedding direction: ≥ 0.2. A random direction in d_model = 128 has cosine std ~0.09, so 0.2
is over two standard deviations from chance.
"""

import torch

from dt_circuits.analysis.embeddings import rtg_embedding_projection
from dt_circuits.claim import Check, Claim, Weights, forward_right_unembed


def cosine(subject) -> float:
    w = subject.model.W_rtg.detach().to(torch.float64)
    return float(torch.nn.functional.cosine_similarity(w, forward_right_unembed(subject), dim=0))


CLAIM = Claim(
    kind="embedding",
    id="rtg-embedding-forward",
    statement="The RTG embedding points along forward - right in the residual stream",
    source="post 'Analysing the RTG and Time Tokens' (dot product ~1.13, right-left ~-0.16)",
    checks=(
        Check(
            "cosine(W_rtg, forward-right)",
            Weights(cosine, "cosine of W_rtg with W_U(forward - right)", "cos"),
            at_least=0.2,
        ),
        Check(
            "projection of W_rtg on forward-right",
            Weights(lambda s: rtg_embedding_projection(s.model, "forward-right"), "W_rtg . W_U(fwd - right)"),
            at_least=0.0,
        ),
    ),
)
