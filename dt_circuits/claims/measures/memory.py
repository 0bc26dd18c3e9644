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
from dt_circuits.features.das import Pairs


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


def _das_fits(subject: Subject) -> tuple[Pairs, list[tuple[torch.Tensor, Pairs]]]:
    """:func:`dt_circuits.features.embed_das.instruction_directions` of the subject (float64 directions), the
    same for every check of a run (cached on the subject, and on disk)."""
    if "memory-das" not in subject._cache:
        from dt_circuits.features.embed_das import instruction_directions

        pairs, fits = instruction_directions(subject.model)
        subject._cache["memory-das"] = (pairs, [(q.double(), test) for q, test in fits])
    return subject._cache["memory-das"]


@dataclass(frozen=True)
class InstructionDAS(OwnSample):
    """MemoryDT's instruction found by DAS in the state-embedding space, one direction shared by every frame,
    learned on windows of seeded exploratory episodes paired with the same step of the same episode with the
    instruction swapped (pairs whose windows differ), fitted on half the episodes and read on the other half.

    ``value``: ``"changed"`` (baseline: the share of held-out pairs whose greedy action changes with the
    instruction; the behaviour the direction is asked to explain), ``"iia"`` (the first split's held-out IIA over
    the pairs whose actions differ; both bootstrapped over episodes), ``"cosine"`` (|cos| between each split's
    direction and the article's PC0, one draw per split: the interval spans the fits, the variance the choice of
    training episodes gives)."""

    value: Literal["changed", "iia", "cosine"]

    def measure(self, subject: Subject) -> Measurement:
        from dt_circuits.claims.measures.features import _pooled_by_pose
        from dt_circuits.features.das import actions
        from dt_circuits.features.embed_das import STEPS, TRAIN_PAIRS, swap_correct

        model = subject.model
        _, fits = _das_fits(subject)
        fitted = f"fitted ({STEPS} steps, {TRAIN_PAIRS} pairs) on half of the episodes"
        if self.value == "cosine":
            pc0 = instruction_pca(model).key_minus_ball_direction
            cos = np.array([abs(float(q @ pc0)) for q, _ in fits])
            return Measurement(
                cos, "|cos|", f"|cos| between PC0 and the DAS instruction direction of hook_state_embed {fitted}, "
                f"one per seeded episode split ({len(fits)} fits)", estimate=float(cos.mean()), draws=cos,
                sample="generated", cluster_unit="fits",
            )  # fmt: skip
        q, test = fits[0]
        if self.value == "changed":
            changed = (actions(model, test.base) != actions(model, test.source)).numpy()
            describe = f"instruction swapped: greedy action changed, {len(test)} held-out pairs whose windows differ"
            return _pooled_by_pose(changed, test.clusters, "changed", describe, "memory-das/changed", "episodes")
        correct, rows = swap_correct(model, test, q)
        describe = (
            f"IIA of the DAS instruction direction of hook_state_embed (every frame) {fitted}: {len(correct)} "
            f"held-out pairs whose actions differ, of {len(test)}"
        )
        return _pooled_by_pose(correct, test.clusters[rows], "IIA", describe, "memory-das/iia", "episodes")


@dataclass(frozen=True)
class FeatureIntervention(OwnSample):
    """Each adversary's edit replaced by a move along one direction by the adversary's projection on it.

    ``direction="instruction"``: along PC0; value = |LD(direct) − LD(adversary)| / |LD(flipped) − LD(original)|,
    0 when the feature alone explains the adversary. ``direction="das"``: the same along the direction DAS finds
    for the instruction in the state-embedding space (:class:`InstructionDAS`, the first split's fit).
    ``direction="orthogonal"``: along a seeded random unit direction orthogonal to PC0, by the projection on PC0;
    value = the restored share, ~0 when only the feature direction matters.
    """

    rtgs: tuple[float, ...] = (0.892, 0.0)
    direction: Literal["instruction", "das", "orthogonal"] = "instruction"
    seed: int = 0

    def measure(self, subject: Subject) -> Measurement:
        model, sc = subject.model, _modal()
        u = instruction_pca(model).key_minus_ball_direction
        if self.direction == "das":
            u = _das_fits(subject)[1][0][0]
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
                if self.direction != "orthogonal":
                    values.append(np.abs(moved - logit_diff(model, sc, rtg, adv)) / np.abs(pos - neg))
                else:
                    values.append(restored_fraction(moved, neg, pos))
        what = {"instruction": "PC0", "das": "the DAS instruction direction",
                "orthogonal": "a random direction orthogonal to PC0"}[self.direction]  # fmt: skip
        unit = "restored LD share" if self.direction == "orthogonal" else "|LD error| / flip effect"
        onto = what if self.direction == "das" else "PC0"
        return Measurement(
            np.concatenate(values),
            unit,
            f"adversaries' projections on {onto} applied along {what}, 4 adversaries x 4 layouts x RTG "
            + "/".join(f"{r:g}" for r in self.rtgs),
        )
