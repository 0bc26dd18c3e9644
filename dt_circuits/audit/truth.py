"""The independent truth check of a planted model: which component carries "ball in front", by interchange.

Independent of the claims and of the training loss: the features package's interchange (``features.das.iia``)
swaps a component's whole state-token output (an identity basis) between held-out pairs — the ball-in-front
layouts of seeds 0 and 1 (``features.data.ball_pairs``), which IIT never trains on (its layouts start at seed
1000) — and counts how often the model then takes the source's action, over the pairs whose actions differ.
A component with no effect scores 0. The bars are fixed before any model was trained: a component *carries* the
variable at IIA >= 0.9 (the issue's bar), is *absent* at IIA <= 1/3 (a uniformly random action out of three would
match the source that often), and is *partial* in between (such a model-component is not scored).

The truth of a **path** (for the game's path claim): a head's *direct* path, its state-token write swapped from
the source only where the unembedding reads it (the base logits plus the change in the head's ``hook_result``
times ``W_U``; the MLP still sees the base), scored by the same IIA and the same bars. Exact in a one-layer model
without LayerNorm, where the logits are linear in each head's write along that path.
"""

from __future__ import annotations

from typing import Any

import torch

from dt_circuits.core.errors import ConfigError
from dt_circuits.dt.model import STATE_POS, DecisionTransformer
from dt_circuits.features.das import Pairs, iia
from dt_circuits.features.data import ball_pairs
from dt_circuits.features.sites import Site, activations

#: the components the game scores, with the site the features package reads each at
SITES: dict[str, Site] = {
    "L0H0": Site("blocks.0.attn.hook_z", 0),
    "L0H1": Site("blocks.0.attn.hook_z", 1),
    "mlp": Site("blocks.0.mlp.hook_post"),
}
CARRIES_AT_LEAST = 0.9
ABSENT_AT_MOST = 1 / 3
#: the RTG the truth (and the claims it is compared with) is read at
RTG = 0.9
FORWARD = 2


def truth_label(value: float) -> str:
    """carries / absent / partial for one component's IIA (NaN: no pair changes the action -> partial)."""
    if value != value:
        return "partial"
    if value >= CARRIES_AT_LEAST:
        return "carries"
    return "absent" if value <= ABSENT_AT_MOST else "partial"


#: the heads whose direct path the path claim is scored against
PATH_HEADS = {"L0H0": 0, "L0H1": 1}


def direct_path_iia(model: DecisionTransformer, pairs: Pairs, head: int) -> tuple[float, int]:
    """(IIA of ``head``'s direct path on ``pairs``, the pairs whose actions differ); NaN when none differ."""
    if model.cfg.n_layers != 1 or model.cfg.normalization != "none":
        raise ConfigError("a direct-path truth needs a one-layer model without LayerNorm (logits linear in a write)")
    hook = "blocks.0.attn.hook_result"
    with torch.no_grad():
        base_logits, base = model.run_with_cache(*pairs.base.args, names_filter=[hook])
        source_logits, source = model.run_with_cache(*pairs.source.args, names_filter=[hook])
        change = source[hook][:, STATE_POS, head] - base[hook][:, STATE_POS, head]
        patched = (base_logits + change @ model.W_U).argmax(-1)
    base_a, source_a = base_logits.argmax(-1), source_logits.argmax(-1)  # each run's own greedy action
    differ = base_a != source_a
    n = int(differ.sum())
    if n == 0:
        return float("nan"), 0
    return float((patched[differ] == source_a[differ]).float().mean()), n


def planted_truth(model: DecisionTransformer, *, seed: int = 0, layouts: int = 2) -> dict[str, Any]:
    """IIA per component on held-out ball-in-front pairs, each component's label, and the behaviour the
    claims' baselines need (P(forward) with the ball in front and without it, at RTG 0.9)."""
    pairs = ball_pairs(seed=seed, layouts=layouts, rtg=RTG, max_timestep=model.cfg.max_timestep)
    out: dict[str, Any] = {
        "pairs": len(pairs),
        "rtg": RTG,
        "layout_seeds": [seed * layouts + j for j in range(layouts)],
    }
    components: dict[str, Any] = {}
    for name, site in SITES.items():
        d = activations(model, pairs.base[:1], site).shape[1]
        value, n = iia(model, pairs, site, torch.eye(d))
        components[name] = {"iia": round(value, 4), "changed_pairs": n, "label": truth_label(value)}
    out["components"] = components
    direct = {}
    for name, head in PATH_HEADS.items():
        value, n = direct_path_iia(model, pairs, head)
        direct[name] = {"iia": round(value, 4), "changed_pairs": n, "label": truth_label(value)}
    out["direct_paths"] = direct
    with torch.no_grad():
        p = torch.softmax(model(*pairs.base.args), -1)[:, FORWARD]
    with_ball = torch.as_tensor(pairs.base_values == 1)
    out["p_forward_ball"] = round(float(p[with_ball].mean()), 4)
    out["p_forward_clear"] = round(float(p[~with_ball].mean()), 4)
    out["carriers"] = [c for c, v in components.items() if v["label"] == "carries"]
    return out
