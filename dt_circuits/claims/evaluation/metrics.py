"""Per-example metrics: what a check's numbers are made of (an action probability, a logit difference, an
attention weight, the state embedding's push), on any inputs and under any hooks."""

from __future__ import annotations

import numpy as np
import torch

from dt_circuits.analysis.attribution import logit_diff_metric, prob_metric, residual_direction
from dt_circuits.analysis.interventions import Inputs, run
from dt_circuits.claims.evaluation import samples as sample_lib
from dt_circuits.claims.evaluation.subject import Subject


def metric_values(subject: Subject, inputs: Inputs, metric: str, fwd_hooks: list | None = None) -> np.ndarray:
    """Per-example metric on ``inputs``.

    ``p_<action>`` an action probability; ``forward-right`` (any preference direction) a logit difference;
    ``attn_to_rtg:<role>`` the head's attention from the state token to the RTG token;
    ``state_embed:<direction>`` the state embedding's direct push along a preference direction.
    """
    model = subject.model
    if metric.startswith("attn_to_rtg"):
        head = subject.component(metric.split(":", 1)[1] if ":" in metric else "obstacle_head")
        name = f"blocks.{head.layer}.attn.hook_pattern"
        with torch.no_grad(), model.hooks(fwd_hooks=fwd_hooks or []):
            _, cache = model.run_with_cache(*inputs.args, names_filter=[name])
        return cache[name][:, head.head, 1, 0].double().numpy()  # state query -> RTG key
    if metric.startswith("state_embed:"):  # the state embedding's direct push along a direction
        with torch.no_grad(), model.hooks(fwd_hooks=fwd_hooks or []):
            _, cache = model.run_with_cache(*inputs.args, names_filter=["hook_state_embed"])
        direction = residual_direction(model, metric.split(":", 1)[1])
        return (cache["hook_state_embed"].double() @ direction).numpy()
    logits = run(model, inputs, fwd_hooks)
    fn = prob_metric(metric[2:]) if metric.startswith("p_") else logit_diff_metric(metric)
    return fn(logits).numpy()


def clean_metric(subject: Subject, sample: sample_lib.Sample, metric: str) -> np.ndarray:
    """The unablated metric on a sample (cached: baseline and every recipe of every check share it)."""
    key = ("clean", id(sample), metric)
    if key not in subject._cache:
        subject._cache[key] = (sample, metric_values(subject, sample.inputs, metric))
    return subject._cache[key][1]


def paired_metric(subject: Subject, sample: sample_lib.Sample, paired: Inputs, metric: str) -> np.ndarray:
    """The unablated metric on a sample's paired counterfactual states (cached like :func:`clean_metric`)."""
    key = ("paired", id(sample), metric)
    if key not in subject._cache:
        subject._cache[key] = (sample, metric_values(subject, paired, metric))
    return subject._cache[key][1]
