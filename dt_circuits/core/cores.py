"""How many cores this process may fill with worker processes (rollout pools, a suite's claims, population seeds).

Every core by default. ``DT_CIRCUITS_WORKERS`` caps it: the test suite sets 1 in each pytest-xdist worker, which
already has a core of its own, so a suite or rollout inside a test runs in that process instead of forking
workers that would compete with the other xdist worker and rebuild its caches. Torch-free.
"""

from __future__ import annotations

import os

from dt_circuits.core.errors import ConfigError

WORKERS_ENV = "DT_CIRCUITS_WORKERS"


def cores() -> int:
    """``DT_CIRCUITS_WORKERS`` when set (an integer >= 1), else the machine's core count."""
    value = os.environ.get(WORKERS_ENV, "").strip()
    if not value:
        return os.cpu_count() or 1
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{WORKERS_ENV} must be an integer >= 1, got {value!r}")
    return n
