"""Measures for the MemoryDT article's claims: the instruction feature's PCA, decoy restoration, and direct
interventions along the feature, each per modal-state layout (and RTG) so its bootstrap CI spans the scenarios.

Every number is the subject model's own: the instruction component is recomputed from its embeddings, so a control
model (random init) gets its own, meaningless, component and the claims can fail on it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from dt_circuits.analysis.memory import (
    decoy_delta,
    flip_delta,
    instruction_pca,
    logit_diff,
    restored_fraction,
)
from dt_circuits.claims.evaluation.measurement import Measurement, OwnSample
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.env.memory import COMPLEMENT_CELLS, MemoryScenario, complement, modal_scenarios


@functools.cache
def _modal() -> tuple[MemoryScenario, ...]:
    return tuple(modal_scenarios())


def _controls(subject: Subject, rtg: float) -> tuple[np.ndarray, np.ndarray]:
    """LD of the original first frame (negative control) and of the instruction flipped (positive control)."""
    key = ("memory-controls", float(rtg))
    if key not in subject._cache:
        model, sc = subject.model, _modal()
        neg = logit_diff(model, sc, rtg)
        pos = logit_diff(model, sc, rtg, torch.stack([flip_delta(model, s) for s in sc]))
        subject._cache[key] = (neg, pos)
    return subject._cache[key]


@dataclass(frozen=True)
class InstructionFeature(OwnSample):
    """A reading of the centred PCA of keys/balls at (4,2), (4,3), (0,5), (2,6): exact, one number."""

    value: Literal["explained-2", "separation"]

    def measure(self, subject: Subject) -> Measurement:
        pca = instruction_pca(subject.model)
        if self.value == "explained-2":
            v, what = float(pca.explained[:2].sum()), "variance explained by PC0 + PC1"
        else:
            v, what = pca.separation(), "gap between keys and balls along PC0 / its SD (> 0: separated)"
        return Measurement(np.array([v]), self.value, f"{what}, instruction embeddings (8 vectors)")


@dataclass(frozen=True)
class DecoyRestoration(OwnSample):
    """Restored share of the left − right logit difference when ``item`` objects are added to the first frame at
    ``cells``, per modal layout at ``rtg``: (LD(test) − LD(original)) / (LD(instruction flipped) − LD(original))."""

    rtg: float
    cells: tuple[tuple[int, int], ...] = COMPLEMENT_CELLS
    item: Literal["complement", "same"] = "complement"

    def measure(self, subject: Subject) -> Measurement:
        model, sc = subject.model, _modal()
        neg, pos = _controls(subject, self.rtg)
        deltas = torch.stack(
            [decoy_delta(model, s, self.cells, complement(s.instruction) if self.item == "complement"
                         else s.instruction) for s in sc]
        )  # fmt: skip
        values = restored_fraction(logit_diff(model, sc, self.rtg, deltas), neg, pos)
        where = " and ".join(map(str, self.cells))
        return Measurement(
            values,
            "restored LD share",
            f"{self.item} object(s) at {where} in the first frame, modal state, 4 layouts, RTG {self.rtg:g}",
        )


#: The adversaries of Fig. 17/20 whose feature projection the direct intervention reproduces.
ADVERSARIES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("complement (0,5)", ((0, 5),)),
    ("complement (4,2)", ((4, 2),)),
    ("complement (0,5), (4,2)", COMPLEMENT_CELLS),
    ("instruction flipped", ()),
)


@dataclass(frozen=True)
class FeatureIntervention(OwnSample):
    """Each adversary's edit replaced by a move along one direction by the adversary's projection on PC0.

    ``direction="instruction"``: along PC0; value = |LD(direct) − LD(adversary)| / |LD(flipped) − LD(original)|,
    0 when the feature alone explains the adversary. ``direction="orthogonal"``: along a seeded random unit
    direction orthogonal to PC0; value = the restored share, ~0 when only the feature direction matters.
    """

    rtgs: tuple[float, ...] = (0.892, 0.0)
    direction: Literal["instruction", "orthogonal"] = "instruction"
    seed: int = 0

    def measure(self, subject: Subject) -> Measurement:
        model, sc = subject.model, _modal()
        u = instruction_pca(model).key_minus_ball_direction
        v = u
        if self.direction == "orthogonal":
            g = torch.Generator().manual_seed(self.seed)
            r = torch.randn(model.cfg.d_model, generator=g, dtype=torch.float64)
            r = r - (r @ u) * u
            v = r / r.norm()
        values = []
        for rtg in self.rtgs:
            neg, pos = _controls(subject, rtg)
            for _, cells in ADVERSARIES:
                if cells:
                    adv = torch.stack([decoy_delta(model, s, cells, complement(s.instruction)) for s in sc])
                else:
                    adv = torch.stack([flip_delta(model, s) for s in sc])
                moved = logit_diff(model, sc, rtg, (adv @ u)[:, None] * v)
                if self.direction == "instruction":
                    values.append(np.abs(moved - logit_diff(model, sc, rtg, adv)) / np.abs(pos - neg))
                else:
                    values.append(restored_fraction(moved, neg, pos))
        what = "PC0" if self.direction == "instruction" else "a random direction orthogonal to PC0"
        unit = "|LD error| / flip effect" if self.direction == "instruction" else "restored LD share"
        return Measurement(
            np.concatenate(values),
            unit,
            f"adversaries' PC0 projections applied along {what}, 4 adversaries x 4 layouts x RTG "
            + "/".join(f"{r:g}" for r in self.rtgs),
        )
