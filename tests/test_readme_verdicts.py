"""The README's verdict tables are generated from the recorded expectations (`dt-circuits readme`), never copied."""

from __future__ import annotations

from dt_circuits.claims.output.verdict_table import (
    BEGIN,
    END,
    TABLE1_BEGIN,
    TABLE1_END,
    default_checkpoints,
    generated_readme,
    verdict_tables,
)
from dt_circuits.core.paths import REPO_ROOT


def test_readme_verdict_tables_equal_the_generated_ones():
    text = (REPO_ROOT / "README.md").read_text()
    assert BEGIN in text and END in text and TABLE1_BEGIN in text and TABLE1_END in text
    assert generated_readme(text) == text, (
        "README verdict tables or Table 1 differ from the recorded JSON: run `dt-circuits readme`"
    )


def test_every_failing_check_is_listed():
    block = verdict_tables(default_checkpoints())
    from dt_circuits.claims.output.verdict_table import recorded

    for label, path in default_checkpoints().items():
        for cid, entry in recorded(path).items():
            for name in entry.get("failing_checks") or []:
                assert f"`{cid}` — {name}:" in block, (label, cid, name)
