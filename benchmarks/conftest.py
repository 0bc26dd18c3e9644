"""Benchmarks: pytest-benchmark timings plus ratios measured in the same run, collected for one summary.

Run with ``pytest benchmarks/ --benchmark-json=benchmarks/results.json`` (not part of the default test run).
Each benchmark stores its figure in ``benchmark.extra_info`` so the JSON carries the ratios, and the terminal
summary prints them side by side.
"""

from __future__ import annotations

import pytest

_FIGURES: list[tuple[str, str]] = []


@pytest.fixture
def figure():
    """Record a named figure (printed at the end and kept in the benchmark JSON via extra_info)."""

    def record(benchmark, name: str, value: float, fmt: str = "{:.3g}") -> None:
        benchmark.extra_info[name] = value
        _FIGURES.append((name, fmt.format(value)))

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _FIGURES:
        terminalreporter.section("performance figures")
        for name, value in _FIGURES:
            terminalreporter.write_line(f"{name:<48} {value}")
