"""The claim language: everything a claim file imports, from one place.

``from dt_circuits.claim import Ablation, Check, Claim, OnFamily``. The names are defined in
:mod:`dt_circuits.claims` (``language``: Claim and Check; ``measures``: what a check measures; ``evaluation``:
what a measure returns and what evaluating gives); this module is the stable name users' claim files use.
"""

from dt_circuits.claims.evaluation.checks import evaluate_check
from dt_circuits.claims.evaluation.measurement import Measure, Measurement, OwnSample, PerStateMeasure, StateMeasure
from dt_circuits.claims.evaluation.metrics import metric_values
from dt_circuits.claims.evaluation.results import CheckResult, Undefined, Verdict
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.claims.language.claim import Check, Claim
from dt_circuits.claims.measures.behaviour import TimeSlope, WallFollowing
from dt_circuits.claims.measures.family import OnFamily
from dt_circuits.claims.measures.features import Probe, ProbeStates, Subspace
from dt_circuits.claims.measures.memory import (
    DecoyRestoration,
    FeatureIntervention,
    InstructionDAS,
    InstructionFeature,
)
from dt_circuits.claims.measures.paths import (
    AttentionKnockout,
    Contrast,
    ContrastEffect,
    FamilyContrast,
    HeadPath,
    InjectionFlip,
    PathShare,
    PathUse,
    RTGValuePush,
    TokenPath,
)
from dt_circuits.claims.measures.rollouts import Rollouts
from dt_circuits.claims.measures.states import Ablation, Behaviour, FrontObstacleRemoved, Mediation
from dt_circuits.claims.measures.weights import Weights, forward_right_unembed, front_cell_input_delta, front_cell_ov
from dt_circuits.env.scenarios import StateRenderer

__all__ = [
    # a claim and its checks
    "Check",
    "Claim",
    # what a check measures
    "Ablation",
    "AttentionKnockout",
    "Behaviour",
    "Contrast",
    "ContrastEffect",
    "DecoyRestoration",
    "FamilyContrast",
    "FeatureIntervention",
    "InstructionDAS",
    "FrontObstacleRemoved",
    "HeadPath",
    "InjectionFlip",
    "InstructionFeature",
    "Mediation",
    "OnFamily",
    "PathShare",
    "PathUse",
    "Probe",
    "ProbeStates",
    "RTGValuePush",
    "Rollouts",
    "Subspace",
    "TimeSlope",
    "TokenPath",
    "WallFollowing",
    "Weights",
    # weight probes claims share
    "forward_right_unembed",
    "front_cell_input_delta",
    "front_cell_ov",
    # writing a measure of one's own, and what evaluating gives
    "CheckResult",
    "Measure",
    "Measurement",
    "OwnSample",
    "PerStateMeasure",
    "StateMeasure",
    "StateRenderer",
    "Subject",
    "Undefined",
    "Verdict",
    "evaluate_check",
    "metric_values",
]
