"""Generated blocks of the README: a table between two marker comments, rewritten from JSON, never typed.

Every block (``readme``'s verdicts, counterfactual and Table 1; ``features --readme``; ``audit --readme``;
``population-table --write``) is rewritten by :func:`replace_block`, and the ``--readme [--check]`` commands answer
through :func:`write_or_check`, so every block behaves the same.
"""

from __future__ import annotations

from pathlib import Path

from dt_circuits.core.errors import ConfigError
from dt_circuits.core.io import write_text_atomic


def replace_block(text: str, block: str, begin: str, end: str, what: str) -> str:
    """``text`` with the lines between the one ``begin`` marker and the one ``end`` marker replaced by ``block``."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ConfigError(f"the README needs exactly one {what} block ({begin} ... {end}, in that order)")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def write_or_check(path: Path, new: str, what: str, *, check: bool) -> int:
    """Write ``new`` over ``path`` (atomically, only if it changed), or with ``check`` only say whether it is
    current: the exit code of a ``--readme [--check]`` command."""
    current = path.read_text() == new
    if check:
        print(f"README {what} table is up to date" if current else f"{path} is out of date")
        return 0 if current else 1
    if not current:
        write_text_atomic(path, new)
    print(f"wrote the {what} table into {path}")
    return 0
