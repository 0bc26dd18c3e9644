"""The published DTI checkpoints this project knows: where they come from and their sha256.

They are not ours and are never shipped. A file that carries one of their names (the upstream name or the
one used here) but not their bytes is refused by its hash, with one line saying which file was expected, so a
truncated download or a different re-training can never be reported as "the published checkpoint".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dt_circuits.core.errors import CheckpointError
from dt_circuits.core.io import sha256_file

UPSTREAM_REPO = "github.com/jbloomAus/DecisionTransformerInterpretability"


@dataclass(frozen=True)
class PublishedCheckpoint:
    """One published checkpoint: its path in the upstream repository, our file name for it, its sha256."""

    upstream_path: str
    local_name: str
    sha256: str
    about: str

    @property
    def upstream_name(self) -> str:
        return Path(self.upstream_path).name


PUBLISHED: tuple[PublishedCheckpoint, ...] = (
    PublishedCheckpoint(
        upstream_path="models/MiniGrid-Dynamic-Obstacles-8x8-v0/ReproduceOriginalPostShort.pt",
        local_name="dti-dynamic-obstacles-reproduce-original-post-short.pt",
        sha256="c3dd49c08aa4d6ed83f8f6a96e4e57c1d0ce8e6c82ed464b4083ef7574d2b82f",
        about="a re-training of the post's Dynamic Obstacles model (1 layer, 2 heads)",
    ),
    PublishedCheckpoint(
        upstream_path="models/MiniGrid-MemoryS7FixedStart-v0/MemoryGatedMLP.pt",
        local_name="dti-memory-s7-fixed-start-gated-mlp.pt",
        sha256="0cff2a1214e385ecaef4714a4fd65b9d1729c3588070d72103e169728f2ea2d4",
        about="MemoryDT-GatedMLP (2 layers, 4 heads, gated MLP) on MiniGrid Memory",
    ),
)


def published_by_name(path: Path) -> PublishedCheckpoint | None:
    """The published checkpoint whose upstream or local file name ``path`` carries, if any."""
    return next((c for c in PUBLISHED if path.name in (c.local_name, c.upstream_name)), None)


def verify_published(path: str | Path) -> PublishedCheckpoint | None:
    """Refuse a file named like a published checkpoint whose bytes are not that checkpoint's."""
    p = Path(path)
    known = published_by_name(p)
    if known is None:
        return None
    actual = sha256_file(p)
    if actual != known.sha256:
        raise CheckpointError(
            f"{p} is named like the published DTI checkpoint {known.upstream_path} but its sha256 is {actual}, "
            f"not {known.sha256}: re-download it from {UPSTREAM_REPO}"
        )
    return known
