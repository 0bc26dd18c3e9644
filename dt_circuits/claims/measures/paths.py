"""Claim measures for mechanisms: path patching, mediation through the MLP, and which paths carry signal.

Every measure here follows :mod:`dt_circuits.analysis.paths`: a *base* run (the claim's states at its RTG) and a
*source* run made through the real env (another RTG, or the ball in front removed); the value per state is
``metric(base with the source's value delivered along one path) - metric(base)``. Ratios (the MLP's share of a
head's effect) and slopes are statistics of the whole sample, so they carry their own paired bootstrap CI
(``Measurement.estimate`` and ``draws``) instead of a CI of a per-state mean.

:class:`PathUse` is a *requirement*, not a measure: a weight-level reading (an OV circuit read at the state
token, a QK score) describes a path, and it only counts where that path carries signal on the claim's states.
A check with ``requires_path=PathUse(...)`` fails with reason ``path-unused`` when the head pays that token less
than ``min_attention`` on average, whatever the reading says.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from dt_circuits.analysis import paths
from dt_circuits.analysis.attribution import logit_diff_metric, prob_metric, residual_direction
from dt_circuits.analysis.interventions import Inputs, run
from dt_circuits.analysis.patching import remove_front_obstacle
from dt_circuits.claims.evaluation.measurement import Measurement, OwnSample
from dt_circuits.claims.evaluation.subject import Subject, mean_walk
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.core.errors import ConfigError

#: replicates per statistic: the run's family-wise level puts each interval's tails far out (~0.03 % each)
N_BOOTSTRAP = 20_000
Edit = Literal["remove-front-obstacle"]


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


def paired_bootstrap(
    stat: Callable[[np.ndarray], float],
    columns: np.ndarray,
    seed: int,
    n_resamples: int = N_BOOTSTRAP,
    *,
    stats: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """(estimate, replicates) of ``stat`` over rows of ``columns`` (n, k), resampling rows with replacement.

    The check takes its interval from the replicates at the run's family-wise level; a replicate where ``stat``
    is undefined (NaN) leaves the check without an interval (reason "undefined: ..."). ``stats``, when given,
    computes the statistic of a stack of resamples ((m, n, k) -> (m,)) at once: the same resamples, drawn one
    by one from the seed as without it, and ``stat`` of each.
    """
    rng = np.random.default_rng(seed)
    n = len(columns)
    est = float(stat(columns))
    if stats is None:
        return est, np.array([stat(columns[rng.integers(n, size=n)]) for _ in range(n_resamples)], dtype=float)
    # a chunk of resamples in one call: the same numbers as one call per resample (numpy draws bounded integers
    # below 2**32 from the bit generator's own 32-bit stream, however the calls split it; tests/test_stats.py)
    chunk = max(1, 4_000_000 // max(1, columns[0].size * n))
    draws = np.concatenate([stats(columns[rng.integers(n, size=(min(chunk, n_resamples - i), n))])
                            for i in range(0, n_resamples, chunk)])  # fmt: skip
    return est, draws.astype(float)


def ratio_of_means(cols: np.ndarray) -> float:
    den = float(cols[:, 1].mean())
    return float("nan") if den == 0.0 else float(cols[:, 0].mean()) / den


def ratio_bootstrap(num: np.ndarray, den: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    """:func:`paired_bootstrap` of mean(num) / mean(den), vectorised (same resampling scheme)."""
    rng = np.random.default_rng(seed)
    n = len(num)
    est = ratio_of_means(np.stack([num, den], axis=1))
    draws = np.empty(N_BOOTSTRAP)
    for start in range(0, N_BOOTSTRAP, 250):
        k = min(250, N_BOOTSTRAP - start)
        idx = rng.integers(n, size=(k, n))
        d = den[idx].mean(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            draws[start : start + k] = np.where(d != 0, num[idx].mean(1) / d, np.nan)
    return est, draws


def _metric(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    return prob_metric(name[2:]) if name.startswith("p_") else logit_diff_metric(name)


@dataclass(frozen=True)
class Contrast:
    """How the source run differs from the base run: another RTG, or the ball in front removed."""

    rtg: float | None = None
    edit: Edit | None = None

    def __post_init__(self) -> None:
        if (self.rtg is None) == (self.edit is None):
            raise ConfigError("a contrast changes exactly one thing: give rtg= or edit=")

    def source(self, subject: Subject, on: OnFamily) -> tuple[Inputs, Inputs, str]:
        fam, base = on.inputs(subject)
        if self.rtg is not None:
            return base, base.with_rtg(self.rtg), f"RTG {on.rtg:g} -> {self.rtg:g}"
        cleared = subject.renderer.render_many([remove_front_obstacle(s) for s in fam.states])
        return base, Inputs.make(cleared, base.rtg, base.timestep), "ball in front -> removed"


@dataclass(frozen=True)
class ContrastEffect(OwnSample):
    """Baseline for a path claim: per-state Δmetric when the contrast applies to the whole model (every path)."""

    on: OnFamily
    contrast: Contrast
    metric: str = "forward-right"
    magnitude: bool = False

    def measure(self, subject: Subject) -> Measurement:
        base, source, what = self.contrast.source(subject, self.on)
        fn = _metric(self.metric)
        vals = fn(run(subject.model, source)).double().numpy() - fn(run(subject.model, base)).double().numpy()
        return Measurement(
            np.abs(vals) if self.magnitude else vals,
            f"{'|Δ|' if self.magnitude else 'Δ'}{self.metric}",
            f"whole model, {what}, {self.metric} on {self.on.family} ({len(base)})",
        )


@dataclass(frozen=True)
class TokenPath(OwnSample):
    """Switch an input token (``rtg`` / ``state``) from base to source *through one head only*; per-state Δmetric.

    ``receiver``: ``all`` (the head's change reaches everything downstream), ``unembed`` (direct path only) or
    ``mlp`` (through the MLP only). ``magnitude`` reports |Δ| per state (a relay claim says "moves", not which way).
    """

    on: OnFamily
    token: paths.Token
    head: str
    contrast: Contrast
    receiver: paths.PathReceiver = "all"
    metric: str = "forward-right"
    magnitude: bool = False

    def measure(self, subject: Subject) -> Measurement:
        base, source, what = self.contrast.source(subject, self.on)
        head = subject.component(self.head)
        vals = paths.token_path_effect(
            subject.model, base, source, self.token, head, _metric(self.metric), self.receiver
        )
        label = subject.component_label(self.head)
        return Measurement(
            np.abs(vals) if self.magnitude else vals,
            f"{'|Δ|' if self.magnitude else 'Δ'}{self.metric}",
            f"{self.token} token {what} through {label} only (receiver: {self.receiver}), {self.metric} on "
            f"{self.on.family} ({len(base)})",
        )


@dataclass(frozen=True)
class HeadPath(OwnSample):
    """A head's output switched from base to source, delivered along one path: ``total`` / ``direct`` / ``mlp``."""

    on: OnFamily
    head: str
    contrast: Contrast
    path: Literal["total", "direct", "mlp"] = "total"
    metric: str = "forward-right"

    def measure(self, subject: Subject) -> Measurement:
        base, source, what = self.contrast.source(subject, self.on)
        eff = paths.head_path_effects(subject.model, base, source, subject.component(self.head), _metric(self.metric))
        return Measurement(
            eff[self.path],
            f"Δ{self.metric}",
            f"{subject.component_label(self.head)} output {what}, {self.path} path, {self.metric} on "
            f"{self.on.family} ({len(base)})",
        )


@dataclass(frozen=True)
class PathShare(OwnSample):
    """Ratio of means of two of a head's path effects (e.g. ``mlp`` / ``total``: the MLP's share), paired bootstrap.

    ``on=None`` takes the first ``walk_states`` states of the subject's random walk (its own timesteps) at
    ``rtg``: a broad state distribution instead of a scenario.
    """

    on: OnFamily | None
    head: str
    contrast: Contrast
    numerator: Literal["total", "direct", "mlp"] = "mlp"
    denominator: Literal["total", "direct", "mlp"] = "total"
    metric: str = "forward-right"
    rtg: float = 0.9
    walk_states: int = 2048

    def _runs(self, subject: Subject) -> tuple[Inputs, Inputs, str, str]:
        if self.on is not None:
            base, source, what = self.contrast.source(subject, self.on)
            return base, source, what, self.on.family
        if self.contrast.rtg is None:
            raise ConfigError("a PathShare over walk states needs an RTG contrast")
        walk = mean_walk(subject.generation_seed)
        n = self.walk_states
        ts = np.minimum(walk.timesteps[:n], subject.model.cfg.max_timestep)
        base = Inputs.make(walk.obs[:n], self.rtg, ts)
        return base, base.with_rtg(self.contrast.rtg), f"RTG {self.rtg:g} -> {self.contrast.rtg:g}", "random walk"

    def measure(self, subject: Subject) -> Measurement:
        base, source, what, where = self._runs(subject)
        eff = paths.head_path_effects(subject.model, base, source, subject.component(self.head), _metric(self.metric))
        cols = np.stack([eff[self.numerator], eff[self.denominator]], axis=1)
        label = subject.component_label(self.head)
        est, draws = ratio_bootstrap(
            cols[:, 0], cols[:, 1], _seed(f"{label}/{where}/{self.numerator}/{self.denominator}")
        )
        zero, undefined = f"mean {self.denominator} effect of {label} is 0", ""
        if np.isnan(est):
            undefined = zero
        elif np.isnan(draws).any():
            undefined = f"{zero} in {int(np.isnan(draws).sum())} of {len(draws)} bootstrap resamples"
        return Measurement(
            eff[self.numerator],
            "ratio",
            f"mean {self.numerator} / mean {self.denominator} effect of {label} output, {what}, {self.metric} on "
            f"{where} ({len(base)}): {cols[:, 0].mean():+.3f} / {cols[:, 1].mean():+.3f}",
            estimate=est,
            draws=draws,
            undefined=undefined,
        )


@dataclass(frozen=True)
class AttentionKnockout(OwnSample):
    """Δmetric when the head's state query stops attending to ``token`` (its weight moved to the other token)."""

    on: OnFamily
    head: str
    token: paths.Token = "rtg"
    metric: str = "forward-right"

    def measure(self, subject: Subject) -> Measurement:
        _, inputs = self.on.inputs(subject)
        model, fn = subject.model, _metric(self.metric)
        hooks = paths.attention_knockout_hooks(model, subject.component(self.head), self.token)
        vals = fn(run(model, inputs, hooks)).double().numpy() - fn(run(model, inputs)).double().numpy()
        return Measurement(
            vals,
            f"Δ{self.metric}",
            f"{self.metric} with {subject.component_label(self.head)}'s attention to the {self.token} token set to 0, "
            f"{self.on.family} ({len(inputs)}) at RTG {self.on.rtg:g}",
        )


@dataclass(frozen=True)
class RTGValuePush(OwnSample):
    """Per state, what the head moves from the RTG token along a direction at full attention (the "<- rtg" term)."""

    on: OnFamily
    head: str
    direction: str = "forward-right"

    def measure(self, subject: Subject) -> Measurement:
        _, inputs = self.on.inputs(subject)
        r = residual_direction(subject.model, self.direction)
        vals = paths.rtg_value_push(subject.model, inputs, subject.component(self.head), r)
        return Measurement(
            vals,
            "logit",
            f"{subject.component_label(self.head)}'s value from the RTG token along {self.direction} (attention 1), "
            f"{self.on.family} ({len(inputs)}) at RTG {self.on.rtg:g}",
        )


@dataclass(frozen=True)
class FamilyContrast(OwnSample):
    """Difference of a per-state metric's means between two families (unpaired), two-sample bootstrap CI."""

    on: OnFamily
    versus: OnFamily
    metric: str

    def measure(self, subject: Subject) -> Measurement:
        from dt_circuits.claims.evaluation.metrics import metric_values

        _, a_in = self.on.inputs(subject)
        _, b_in = self.versus.inputs(subject)
        a, b = metric_values(subject, a_in, self.metric), metric_values(subject, b_in, self.metric)
        rng = np.random.default_rng(_seed(f"{self.on}/{self.versus}/{self.metric}"))
        draws = np.empty(N_BOOTSTRAP)
        for start in range(0, N_BOOTSTRAP, 250):  # vectorised in chunks: bounded memory
            k = min(250, N_BOOTSTRAP - start)
            draws[start : start + k] = a[rng.integers(len(a), size=(k, len(a)))].mean(1) - b[
                rng.integers(len(b), size=(k, len(b)))
            ].mean(1)
        return Measurement(
            a - b.mean(),
            f"Δ{self.metric}",
            f"mean {self.metric} on {self.on.family} ({len(a)}) minus on {self.versus.family} ({len(b)}) at RTG "
            f"{self.on.rtg:g}",
            estimate=float(a.mean() - b.mean()),
            draws=draws,
        )


@dataclass(frozen=True)
class InjectionFlip(OwnSample):
    """The smallest coefficient k at which adding k x (activation with the ball in front - without) at the head's
    output, to the states without the ball, brings mean P(forward) below 0.5; bootstrap over states.

    Only states whose clean P(forward) (ball removed) is >= 0.5 take part (there must be a forward to flip). A
    curve that never crosses within the scan reports ``coeffs[-1] + step`` ("not within the scan").
    """

    on: OnFamily
    head: str
    coeffs: tuple[float, ...] = tuple(np.round(np.arange(0.0, 3.0001, 0.125), 3))

    def measure(self, subject: Subject) -> Measurement:
        from dt_circuits.analysis.scans import injection_scan

        ball, cleared, _ = Contrast(edit="remove-front-obstacle").source(subject, self.on)
        model = subject.model
        p_clean = torch.softmax(run(model, cleared).double(), -1)[:, 2].numpy()
        keep = np.flatnonzero(p_clean >= 0.5)
        grid = np.asarray(self.coeffs, dtype=float)
        censored = float(grid[-1] + (grid[-1] - grid[-2]))
        label = subject.component_label(self.head)
        if len(keep) == 0:
            return Measurement(np.array([censored]), "coefficient", f"no state with P(forward) >= 0.5 ({label})")
        idx = torch.as_tensor(keep)
        scan = injection_scan(model, cleared[idx], ball[idx], subject.component(self.head), grid)
        p_fwd = scan.probs[:, :, 2].T  # (states, coeffs)

        def first_flip(rows: np.ndarray) -> float:
            below = np.flatnonzero(rows.mean(axis=0) < 0.5)
            return float(grid[below[0]]) if len(below) else censored

        def first_flips(resamples: np.ndarray) -> np.ndarray:  # (m, states, coeffs) -> (m,): first_flip of each
            below = resamples.mean(axis=1) < 0.5
            return np.where(below.any(axis=1), grid[below.argmax(axis=1)], censored)

        est, draws = paired_bootstrap(
            first_flip, p_fwd, _seed(f"injection/{label}/{self.on.family}"), stats=first_flips
        )
        per_state = np.array([first_flip(row[None]) for row in p_fwd])
        return Measurement(
            per_state,
            "coefficient",
            f"k where mean P(forward) < 0.5 adding k x (ball - no ball) at {label} on {len(keep)} of {len(p_clean)} "
            f"{self.on.family} states without the ball (P(forward) >= 0.5) at RTG {self.on.rtg:g}; "
            f"scan {grid[0]:g}..{grid[-1]:g} ({censored:g} = no flip)",
            estimate=est,
            draws=draws,
        )


@dataclass(frozen=True)
class PathUse:
    """Requirement: ``head``'s state query pays ``token`` at least ``min_attention`` on average on every family.

    A reading of the head's OV at the state token (or of a QK score that can only matter through attention)
    describes a path; with ~0 attention on it the path carries no signal and the reading explains nothing.
    """

    head: str
    token: paths.Token
    on: tuple[OnFamily, ...]
    min_attention: float = 0.05

    def usage(self, subject: Subject) -> list[tuple[str, float]]:
        out = []
        for on in self.on:
            _, inputs = on.inputs(subject)
            att = paths.attention(subject.model, inputs, subject.component(self.head), self.token)
            out.append((f"{on.family} @ RTG {on.rtg:g}", float(att.mean())))
        return out

    def unused(self, subject: Subject) -> str:
        """ "" when the path is used on every family, else a one-line reason naming where it is not."""
        low = [(where, a) for where, a in self.usage(subject) if a < self.min_attention]
        if not low:
            return ""
        where = ", ".join(f"{w}: {a:.4f}" for w, a in low)
        return (
            f"path unused: {subject.component_label(self.head)} attends to the {self.token} token "
            f"< {self.min_attention:g} on average ({where})"
        )


__all__ = [
    "AttentionKnockout",
    "Contrast",
    "ContrastEffect",
    "FamilyContrast",
    "HeadPath",
    "InjectionFlip",
    "PathShare",
    "PathUse",
    "RTGValuePush",
    "TokenPath",
    "paired_bootstrap",
    "ratio_of_means",
]
