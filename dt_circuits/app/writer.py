""" "Save as claim": a claim file from what the page shows (family, RTG, intervention, metric) with the effect seen
and a bound the user sets, written atomically into the claims folder.

The file is ordinary claim code (``from dt_circuits.claim import ...``, ``CLAIM = Claim(...)``) with a docstring
saying where it came from, so it runs under ``pytest`` and ``dt-circuits claims`` like any shipped claim. The same
objects are built here before anything is written, so a bad name fails as one line and never as a broken file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import write_text_atomic

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,60}$")


@dataclass(frozen=True)
class ClaimDraft:
    """What the claim says: ``metric`` changes by at least (``at_least``) or at most the bound when ``component``
    is intervened on with ``recipe``, over ``family`` at ``rtg``."""

    claim_id: str
    family: str
    rtg: float
    component: str
    recipe: str
    metric: str
    bound: float
    at_least: bool
    observed: float
    checkpoint: str
    url: str

    @property
    def filename(self) -> str:
        return self.claim_id.replace("-", "_") + ".py"

    @property
    def kind(self) -> str:
        from dt_circuits.analysis.interventions import MLP, parse_component

        return "mlp" if isinstance(parse_component(self.component), MLP) else "head"


def _check_name(draft: ClaimDraft) -> str:
    return f"{draft.recipe} on {draft.component}: Δ{draft.metric}"


def validate(draft: ClaimDraft) -> None:
    """Build the claim this draft would write (ConfigError, one line, on any name the claim language refuses)."""
    if not _ID.match(draft.claim_id):
        raise ConfigError(f"claim id {draft.claim_id!r}: use 2-61 lowercase letters, digits and '-'")
    from dt_circuits.claim import Ablation, Check, Claim, OnFamily

    measure = Ablation(OnFamily(draft.family, rtg=draft.rtg), draft.component, metric=draft.metric, method=draft.recipe)
    bound = {"at_least": draft.bound} if draft.at_least else {"at_most": draft.bound}
    check = Check(_check_name(draft), measure, **bound)
    Claim(id=draft.claim_id, statement="-", source="-", kind=draft.kind, checks=(check,))


def source(draft: ClaimDraft) -> str:
    """The claim file's text."""
    side = "at_least" if draft.at_least else "at_most"
    words = "at least" if draft.at_least else "at most"
    per_example = (
        ', per_example="increase"'
        if draft.at_least and draft.bound > 0
        else (', per_example="decrease"' if not draft.at_least and draft.bound < 0 else "")
    )
    statement = (
        f"{draft.recipe} on {draft.component} changes {draft.metric} by {words} {draft.bound:g} on "
        f"{draft.family} at RTG {draft.rtg:g}"
    )
    return f'''"""{statement}.

Saved from the dt-circuits app on {date.today().isoformat()} (checkpoint {draft.checkpoint}).
Observed on the state shown: {draft.metric} changed by {draft.observed:+.4f} under the {draft.recipe} recipe on
{draft.component}; the bound ({words} {draft.bound:g}) was set by the user. Reopen the view: {draft.url}
"""

from dt_circuits.claim import Ablation, Check, Claim, OnFamily

ON = OnFamily({draft.family!r}, rtg={draft.rtg!r})

CLAIM = Claim(
    kind={draft.kind!r},
    id={draft.claim_id!r},
    statement={statement!r},
    source="dt-circuits app",
    checks=(
        Check(
            {_check_name(draft)!r},
            Ablation(ON, {draft.component!r}, metric={draft.metric!r}, method={draft.recipe!r}),
            {side}={draft.bound!r}{per_example},
        ),
    ),
)
'''


def write_claim(claims_dir: Path, draft: ClaimDraft) -> Path:
    """Validate the draft and write it as ``<claims_dir>/<id>.py`` (never over an existing file)."""
    validate(draft)
    target = Path(claims_dir) / draft.filename
    if target.exists():
        raise ConfigError(f"{target} already exists; pick another claim id")
    Path(claims_dir).mkdir(parents=True, exist_ok=True)
    return write_text_atomic(target, source(draft))
