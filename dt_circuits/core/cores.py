"""How many cores this process may fill with worker processes (rollout pools, a suite's claims, population seeds).

Every core by default (``os.cpu_count()``, which in a container may count the host's cores); ``DT_CIRCUITS_WORKERS``
caps it. The test suite does not set it: capping each pytest-xdist worker at 1 was measured on the AMD EPYC (fresh
clone of `0538c32`) at 10 min 13 s against 9 min 45 s without: the README gate's claims lost their second core at
the end of the run (101 -> 123 s) more than the determinism and audit tests gained (-12 s, -6 s). Torch-free.
"""

from __future__ import annotations

import os

from dt_circuits.core.errors import ConfigError

WORKERS_ENV = "DT_CIRCUITS_WORKERS"


def env_count(name: str) -> int | None:
    """The integer >= 1 in environment variable ``name``, None when it is unset or empty; anything else is a
    one-line error naming the variable (``DT_CIRCUITS_WORKERS`` here, ``DT_CIRCUITS_THREADS`` in core/threads.py)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return n


def cores() -> int:
    """``DT_CIRCUITS_WORKERS`` when set, else the machine's core count."""
    return env_count(WORKERS_ENV) or os.cpu_count() or 1
