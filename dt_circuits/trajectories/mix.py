"""Scripted-policy mixes: which policy plays an episode, how often, with how much ε-noise.

Kept apart from the data format so the ``collect`` command can show the default mix without loading the env.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MixEntry:
    """One scripted policy in a mix: chosen for an episode with probability ``weight / sum(weights)``."""

    policy: str
    weight: float
    epsilon: float = 0.0

    def to_text(self) -> str:
        return f"{self.policy}:{self.weight:g}:eps={self.epsilon:g}"


#: The mix the committed checkpoints are trained on (see docs/training.md for the evidence behind it).
DEFAULT_MIX: tuple[MixEntry, ...] = (
    MixEntry("seeker", 0.45, 0.1),
    MixEntry("delayed", 0.15, 0.02),
    MixEntry("survivor", 0.15, 0.01),
    MixEntry("crasher", 0.15, 0.1),
    MixEntry("wall-crasher", 0.1, 0.1),
)


def parse_mix(items: Sequence[str]) -> tuple[MixEntry, ...]:
    """Parse ``NAME:WEIGHT[:eps=E]`` items (e.g. ``seeker:0.3:eps=0.1``) into a mix, naming any bad item."""
    from dt_circuits.core.errors import ConfigError
    from dt_circuits.trajectories.policies import POLICIES

    out = []
    for item in items:
        parts = item.split(":")
        if len(parts) not in (2, 3) or parts[0] not in POLICIES:
            raise ConfigError(
                f"bad mix item {item!r}: expected NAME:WEIGHT[:eps=E] with NAME one of {', '.join(POLICIES)}"
            )
        try:
            weight = float(parts[1])
            eps = float(parts[2].removeprefix("eps=")) if len(parts) == 3 else 0.0
        except ValueError:
            raise ConfigError(f"bad mix item {item!r}: weight and eps must be numbers") from None
        if weight <= 0 or not 0 <= eps <= 1:
            raise ConfigError(f"bad mix item {item!r}: weight must be > 0 and eps in [0, 1]")
        out.append(MixEntry(parts[0], weight, eps))
    if not out:
        raise ConfigError("the mix is empty")
    return tuple(out)
