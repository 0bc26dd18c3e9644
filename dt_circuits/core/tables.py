"""Plain-text tables for terminals and CI logs: columns padded to their widest cell."""

from __future__ import annotations

from collections.abc import Sequence


def aligned_lines(rows: Sequence[Sequence[object]], gap: str = "  ") -> list[str]:
    """Each row as one line, every column padded to its widest cell; trailing spaces stripped."""
    if not rows:
        return []
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [gap.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def aligned(rows: Sequence[Sequence[object]], gap: str = "  ") -> str:
    """:func:`aligned_lines` joined by newlines."""
    return "\n".join(aligned_lines(rows, gap))
