"""Numbers read off the weights (embedding arithmetic, QK/OV circuits), and the weight probes claims share."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dt_circuits.analysis.attribution import residual_direction
from dt_circuits.claims.evaluation.measurement import Measurement
from dt_circuits.claims.evaluation.results import Undefined
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.core.errors import ConfigError


@dataclass(frozen=True)
class Weights:
    """A number read off the weights (embedding arithmetic, QK/OV circuits): exact, so its CI is the point."""

    fn: Callable[[Subject], float]
    describe: str
    unit: str = "logit"

    def sample_names(self) -> list[str]:
        return []

    def measure(self, subject: Subject) -> Measurement:
        try:
            value, undefined = float(self.fn(subject)), ""
        except Undefined as why:
            value, undefined = math.nan, str(why)
        return Measurement(
            np.array([value]), self.unit, self.describe, undefined=undefined, exact=True, sample="weights",
            cluster_unit="exact reading",
        )  # fmt: skip


def forward_right_unembed(subject: Subject) -> torch.Tensor:
    """Residual direction of the post's forward − right preference (float64)."""
    return residual_direction(subject.model, "forward-right")


def front_cell_input_delta(subject: Subject, value: str) -> torch.Tensor:
    """Encoded-input change (float64, (n_obs_inputs,)) from an empty front cell to one holding ``value``.

    Built through the model's own encoder, so it is right for index and one-hot checkpoints alike.
    """
    from dt_circuits.analysis.embeddings import CELL_VALUES
    from dt_circuits.env.spec import FRONT_VIEW_CELL

    base = np.zeros((2, 7, 7, 3), dtype=np.uint8)
    base[..., 0] = CELL_VALUES["empty"][0]
    base[1, FRONT_VIEW_CELL[0], FRONT_VIEW_CELL[1]] = CELL_VALUES[value]
    enc = subject.model.encode_obs(torch.as_tensor(base)).to(torch.float64)
    return enc[1] - enc[0]


def front_cell_ov(subject: Subject, role: str, value: str, direction: str = "forward-right") -> float:
    """Through one head's OV circuit (attending fully to the state token): the push along ``direction`` of
    ``value`` in the front cell instead of an empty cell (Fig. 17 read at the front cell)."""
    from dt_circuits.analysis.attribution import direction_vector
    from dt_circuits.analysis.circuits import obs_ov

    head = subject.component(role)
    if not hasattr(head, "head"):
        raise ConfigError(f"role {role!r} is bound to {head}, not to an attention head")
    ov = obs_ov(subject.model, head.layer, head.head).AB.to(torch.float64)
    u = direction_vector(direction, subject.model.cfg.n_actions)
    return float(front_cell_input_delta(subject, value) @ ov @ u)
