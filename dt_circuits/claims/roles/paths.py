"""What each head does, by path patching: does it relay RTG, does it read the state token, or both?

The post binds roles by ablation (:mod:`dt_circuits.claims.roles.scan`). A dataset-mean ablation taken at the
evaluation RTG cannot see a head that only relays RTG (its output barely varies across states at one RTG), so a
checkpoint whose heads only relay RTG falls back to the post's binding with no word on why. This scan says what
each head *does* in each role scenario:

- relay: Δ forward − right when the RTG token is switched (the scenario's RTG to the other end, 0.9 ↔ −1)
  through this head only (:func:`dt_circuits.analysis.paths.token_path_effect`);
- state read: Δ forward − right when the ball in front is removed, through this head's read of the state token
  only (obstacle scenario; goals cannot be removed from the env);
- the attention the head's state query pays to the state token.

A head "relays RTG only" when its relay moves the logit by ≥ ``RELAY`` somewhere, its state read by less than
that everywhere and it pays the state token < ``UNUSED`` attention on average in every scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dt_circuits.analysis import paths
from dt_circuits.analysis.attribution import logit_diff_metric
from dt_circuits.analysis.interventions import component_names
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.claims.measures.paths import Contrast
from dt_circuits.claims.roles.scan import ROLE_SCENARIOS

RELAY = 0.5  # logits of forward − right: the bar of `rtg-relay-heads`
UNUSED = 0.05  # mean attention: the bar of `PathUse`


@dataclass(frozen=True)
class HeadPaths:
    head: str
    relay: dict[str, float]  # scenario -> mean Δ forward-right, RTG switched through this head only
    state_read: dict[str, float]  # scenario -> mean Δ forward-right, ball removed through this head's state read
    attention_to_state: dict[str, float] = field(default_factory=dict)

    @property
    def finding(self) -> str:
        relays = any(abs(v) >= RELAY for v in self.relay.values())
        reads = any(abs(v) >= RELAY for v in self.state_read.values())
        unused = all(a < UNUSED for a in self.attention_to_state.values())
        if relays and unused and not reads:
            return "relays RTG only"
        if relays and reads:
            return "relays RTG and reads the state"
        if reads:
            return "reads the state"
        return "relays RTG" if relays else "no path found"

    def line(self) -> str:
        relay = ", ".join(f"{k} {v:+.3f}" for k, v in self.relay.items())
        read = ", ".join(f"{k} {v:+.3f}" for k, v in self.state_read.items())
        att = ", ".join(f"{k} {v:.3f}" for k, v in self.attention_to_state.items())
        return (
            f"{self.head}: {self.finding}: Δ logit(forward-right), RTG token switched through {self.head} only: "
            f"{relay}; ball removed through its state read: {read}; attention to the state token: {att}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "relay_delta_logit": self.relay,
            "state_read_delta_logit": self.state_read,
            "attention_to_state": self.attention_to_state,
        }


def scan_head_paths(subject: Subject) -> list[HeadPaths]:
    """Path-patching findings for every head of the subject, in each role scenario (post Figs. 8-10)."""
    metric = logit_diff_metric("forward-right")
    model = subject.model
    out = []
    for head in [c for c in component_names(model) if "mlp" not in c]:
        relay, read, att = {}, {}, {}
        for family, rtg, _ in ROLE_SCENARIOS.values():
            on = OnFamily(family, rtg)
            other = 0.9 if rtg < 0 else -1.0
            base, source, _ = Contrast(rtg=other).source(subject, on)
            key = f"{family} @ {rtg:g}->{other:g}"
            relay[key] = float(np.mean(paths.token_path_effect(model, base, source, "rtg", head, metric)))
            att[f"{family} @ {rtg:g}"] = float(paths.attention(model, base, head, "state").mean())
            if family == "obstacle-in-front":
                base, source, _ = Contrast(edit="remove-front-obstacle").source(subject, on)
                eff = paths.token_path_effect(model, base, source, "state", head, metric)
                read[f"{family} @ {rtg:g}"] = float(np.mean(eff))
        out.append(HeadPaths(head, relay, read, att))
    return out
