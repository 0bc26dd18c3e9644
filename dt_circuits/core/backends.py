"""Who steps the environment in rollouts: the names, kept torch- and minigrid-free so that ``--help``, the CLI
and the pytest plugin can offer ``--env-backend`` without importing either."""

from __future__ import annotations

from typing import Any

from dt_circuits.core.errors import ConfigError

#: EnvPool's C++ port of Dynamic Obstacles (the default since it was proven equal to Minigrid in the project's own
#: tests: tests/test_envpool_equivalence.py, docs/envpool.md; the recorded numbers are its) or Farama Minigrid
#: (the reference implementation; same distribution, other episodes for the same seed). Memory checkpoints are
#: always stepped by Minigrid: EnvPool has no port of DTI's MemoryS7FixedStart.
ENV_BACKENDS = ("envpool", "minigrid")
DEFAULT_ENV_BACKEND = "envpool"
ENV_BACKEND_HELP = (
    "who steps Dynamic Obstacles in rollouts: envpool (default; the recorded numbers) or minigrid (the reference "
    "implementation: equal in distribution, other episodes for the same seed, ~3-20x slower)"
)


def add_env_backend_argument(parser: Any, *, default: str | None = DEFAULT_ENV_BACKEND, help_suffix: str = "") -> None:
    """``--env-backend`` on a command's parser (one spelling for calibrate, evaluate and claims)."""
    parser.add_argument("--env-backend", choices=ENV_BACKENDS, default=default, help=ENV_BACKEND_HELP + help_suffix)


def check_env_backend(env_backend: str) -> str:
    """``env_backend`` itself if it is one of :data:`ENV_BACKENDS`, else a one-line ConfigError."""
    if env_backend not in ENV_BACKENDS:
        raise ConfigError(f"--env-backend must be one of {', '.join(ENV_BACKENDS)}, got {env_backend!r}")
    return env_backend
