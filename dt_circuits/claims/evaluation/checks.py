"""Evaluating one check on a subject: its measure on each sample, the interval at the run's family-wise level,
and whether the whole interval clears the bound.

Every state-based check is measured on two samples (:mod:`~dt_circuits.claims.evaluation.samples`): the
generated family and the states the checkpoint's own rollouts visit, and needs both. Intervals are
cluster-bootstrap intervals (:func:`dt_circuits.analysis.stats.cluster_bootstrap`) at the suite's family-wise level
(:mod:`~dt_circuits.claims.evaluation.comparisons`). Ablation checks are measured under every recipe
(:mod:`~dt_circuits.claims.evaluation.recipes`); the verdict is the primary recipe's.
"""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from dt_circuits.analysis.stats import cluster_bootstraps, cluster_ratio_bootstrap, cluster_ratio_bootstraps
from dt_circuits.claims.evaluation import recipes as recipe_lib
from dt_circuits.claims.evaluation import samples as sample_lib
from dt_circuits.claims.evaluation.comparisons import Comparisons, default_comparisons
from dt_circuits.claims.evaluation.measurement import Measurement, StateMeasure
from dt_circuits.claims.evaluation.results import UNDEFINED, CheckResult, _num
from dt_circuits.claims.evaluation.subject import Subject

if TYPE_CHECKING:
    from dt_circuits.claims.language.claim import Check

N_BOOTSTRAP = 20_000


def _interval(
    check: Check,
    values: np.ndarray,
    clusters: np.ndarray,
    comparisons: Comparisons,
    seed: int,
    denominator: np.ndarray | None = None,
) -> dict[str, Any]:
    """Effect, interval at the run's family-wise level, whether it clears the bound, and the bootstrap p-value:
    of the mean of ``values`` ((variants, n)), or of mean(values[0]) / mean(``denominator``) when given."""
    return _intervals(check, {"": values}, clusters, comparisons, seed, denominator)[""]


def _intervals(
    check: Check,
    by_recipe: dict[str, np.ndarray],
    clusters: np.ndarray,
    comparisons: Comparisons,
    seed: int,
    denominator: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`_interval` of each recipe's values, one bootstrap for all (the recipes share the rows, clusters and
    seed, so they share the resample counts: the same numbers as one by one, drawn once)."""
    nan = float("nan")
    empty = {"effect": nan, "ci_low": nan, "ci_high": nan, "holds": False, "p_value": 1.0}
    names = [r for r, v in by_recipe.items() if v.shape[-1] > 0]
    if denominator is not None:
        boots = cluster_ratio_bootstraps(
            [by_recipe[r][0] for r in names], denominator, clusters, n_resamples=N_BOOTSTRAP, seed=seed
        ) if names else []  # fmt: skip
    else:
        boots = cluster_bootstraps([by_recipe[r] for r in names], clusters, n_resamples=N_BOOTSTRAP, seed=seed)
    out: dict[str, dict[str, Any]] = {r: dict(empty) for r in by_recipe}
    for r, boot in zip(names, boots, strict=True):
        if denominator is not None and (math.isnan(boot.effect) or np.isnan(boot.draws).any()):
            why = UNDEFINED + "the denominator is 0 " + ("here" if math.isnan(boot.effect) else "in some resamples")
            out[r] = {"effect": boot.effect, "ci_low": nan, "ci_high": nan, "holds": False, "p_value": 1.0,
                      "reason": why}  # fmt: skip
            continue
        lo, hi = boot.interval(comparisons.confidence)
        out[r] = {
            "effect": boot.effect,
            "ci_low": lo,
            "ci_high": hi,
            "holds": check.clears(lo, hi),
            "p_value": boot.p_value(check.at_least, check.at_most),
        }
    return out


def evaluate_check(
    claim_id: str, check: Check, subject: Subject, comparisons: Comparisons | None = None
) -> list[CheckResult]:
    """One result per sample the check is tested on (generated and on-policy; rollouts; or the exact weights)."""
    comparisons = comparisons or subject.comparisons or default_comparisons()
    results = _results(claim_id, check, subject, comparisons)
    unused = check.requires_path.unused(subject) if check.requires_path is not None else ""
    if unused:  # the reading describes a path that carries no signal on the claim's states
        for r in results:
            r.holds, r.reason, r.describe = False, "path-unused", f"{r.describe}; {unused}"
    return results


def _replicate_interval(check: Check, m: Measurement, comparisons: Comparisons) -> dict[str, Any]:
    """Interval and p-value of a statistic from its own bootstrap replicates (ratios, slopes, coefficients).

    Undefined in some resample (a ratio whose denominator is 0 there): no interval (NaN, not ±inf), and the
    check fails with reason "undefined: <why>", the measure's own words when it gives them."""
    draws = np.asarray(m.draws, dtype=float)
    estimate = math.nan if m.estimate is None else float(m.estimate)
    if np.isnan(draws).any() or math.isnan(estimate):
        why = m.undefined or (
            "no number on this sample"
            if math.isnan(estimate)
            else f"no number in {int(np.isnan(draws).sum())} of {len(draws)} bootstrap resamples"
        )
        nan, reason = math.nan, UNDEFINED + why
        return {"effect": estimate, "ci_low": nan, "ci_high": nan, "holds": False, "p_value": 1.0, "reason": reason}
    tail = (1 - comparisons.confidence) / 2
    lo, hi = (float(q) for q in np.quantile(draws, [tail, 1 - tail]))
    p = max(
        float(np.mean(draws < check.at_least)) if check.at_least is not None else 0.0,
        float(np.mean(draws > check.at_most)) if check.at_most is not None else 0.0,
    )
    return {"effect": float(m.estimate), "ci_low": lo, "ci_high": hi, "holds": check.clears(lo, hi), "p_value": p}


def _results(claim_id: str, check: Check, subject: Subject, comparisons: Comparisons) -> list[CheckResult]:
    seed = zlib.crc32(f"{claim_id}/{check.name}".encode())
    measure = check.measure
    common = dict(bound=check.bound_text(), control=check.control, kind=check.kind)
    if not isinstance(measure, StateMeasure):  # one sample: an exact reading, per-example values, or replicates
        return [_measurement_result(check, measure.measure(subject), comparisons, seed, common)]
    results = []
    ratio_of = getattr(measure, "denominator", None)  # a share: mean(values) / mean(denominator), paired by row
    for sample in measure.on.samples(subject):
        by_recipe = measure.values(subject, sample)
        den = ratio_of(subject, sample) if ratio_of is not None else None
        per = _intervals(check, by_recipe, sample.clusters, comparisons, seed, den)
        main = per[measure.primary]
        primary_values = by_recipe[measure.primary][0]
        if den is not None:  # each example's own share, where it has one
            with np.errstate(divide="ignore", invalid="ignore"):
                primary_values = np.where(den != 0, primary_values / np.where(den != 0, den, 1.0), np.nan)
        insufficient = not sample.sufficient
        judged = primary_values[~np.isnan(primary_values)] if den is not None else primary_values
        frac = float(np.mean([check.example_holds(x) for x in judged])) if len(judged) else math.nan
        describe = measure.text(subject, sample)
        if insufficient:
            describe += f" — too few {sample.cluster_unit} to support a verdict (< {sample_lib.MIN_CLUSTERS})"
        recipes = {
            r: {k: _num(s[k]) for k in ("effect", "ci_low", "ci_high")} | {"holds": s["holds"] and not insufficient}
            for r, s in per.items()
        } if set(per) != {""} else {}  # fmt: skip
        for r in recipes:
            recipes[r]["describe"] = recipe_lib.DESCRIBE[r]
            if r == "mean-rtg-mix":
                recipes[r]["mixture"] = list(recipe_lib.RTG_MIX)
        object_effect = None if subject.verdict_only else getattr(measure, "object_effect", None)
        effects = object_effect(subject, sample) if object_effect is not None and len(sample) else None
        if "counterfactual" in recipes and effects is not None:
            share = _mediation(by_recipe["counterfactual"][0], effects, sample, comparisons, seed)
            recipes["counterfactual"]["mediation"] = share
        reading = getattr(measure, "replacement_reading", None)
        if effects is not None and reading is not None:  # does each recipe's replacement read as the object?
            mean_effect = -float(np.mean(effects))  # the object's effect: with it minus without it
            for r in recipes:
                at = reading(subject, sample, r)
                recipes[r]["reads_as_object"] = _num(at)
                recipes[r]["uninformative"] = recipe_lib.uninformative(check, recipes[r]["holds"], at, mean_effect)
        results.append(
            CheckResult(
                check.name if sample.kind == "generated" else f"{check.name} [on-policy]",
                bool(main["holds"] and not insufficient),
                main["effect"],
                main["ci_low"],
                main["ci_high"],
                len(sample),
                frac,
                unit=measure.unit,
                describe=describe,
                sample=sample.kind,
                n_clusters=sample.n_clusters,
                cluster_unit=sample.cluster_unit,
                p_value=main["p_value"],
                alpha=comparisons.check_alpha,
                insufficient=insufficient,
                primary_recipe=measure.primary if recipes else None,
                recipes=recipes,
                values=np.asarray(primary_values, dtype=float),
                reason=main.get("reason", ""),
                **common,
            )
        )
    return results


def _mediation(
    patched: np.ndarray, total: np.ndarray, sample: sample_lib.Sample, comparisons: Comparisons, seed: int
) -> dict[str, Any]:
    """The share of the object's whole effect on the metric that patching the component carries: mean patched
    effect / mean effect of removing the object, with a cluster-bootstrap interval at the run's family-wise level
    (NaN, with the reason, where the object has no effect to share)."""
    boot = cluster_ratio_bootstrap(patched, total, sample.clusters, n_resamples=N_BOOTSTRAP, seed=seed ^ 0x5EED)
    out: dict[str, Any] = {"object_effect": _num(float(np.mean(total)))}
    if math.isnan(boot.effect) or np.isnan(boot.draws).any():
        return out | {"share": None, "ci_low": None, "ci_high": None, "undefined": "the object's effect is 0"}
    lo, hi = boot.interval(comparisons.confidence)
    return out | {"share": boot.effect, "ci_low": lo, "ci_high": hi}


def _measurement_result(
    check: Check, m: Measurement, comparisons: Comparisons, seed: int, common: dict[str, Any]
) -> CheckResult:
    """A check on one sample: an exact reading (its interval is the point; no test), or per-example values with
    their clusters, or a statistic with its own bootstrap replicates."""
    if m.exact:
        v = float(m.values[0])
        return CheckResult(
            check.name, check.clears(v, v), v, v, v, 1, float(check.example_holds(v)), unit=m.unit,
            describe=m.describe, sample=m.sample, n_clusters=1, cluster_unit=m.cluster_unit, values=m.values,
            reason=UNDEFINED + m.undefined if m.undefined else "", **common,
        )  # fmt: skip
    if m.draws is not None:
        stats, cluster_unit = _replicate_interval(check, m, comparisons), "bootstrap replicates"
    else:
        stats, cluster_unit = _interval(check, m.values, np.arange(len(m.values)), comparisons, seed), m.cluster_unit
    frac = float(np.mean([check.example_holds(x) for x in m.values])) if len(m.values) else math.nan
    return CheckResult(
        check.name, bool(stats["holds"]), stats["effect"], stats["ci_low"], stats["ci_high"], len(m.values), frac,
        unit=m.unit, describe=m.describe, sample=m.sample, n_clusters=len(m.values), cluster_unit=cluster_unit,
        p_value=stats["p_value"], alpha=comparisons.check_alpha, values=np.asarray(m.values, dtype=float),
        reason=stats.get("reason", ""), **common,
    )  # fmt: skip
