"""Who steps the environment in rollouts: the names, kept torch- and minigrid-free so that ``--help``, the CLI
and the pytest plugin can offer ``--env-backend`` without importing either."""

from __future__ import annotations

from dt_circuits.core.errors import ConfigError

#: Farama Minigrid (the default: every recorded number was measured with it) or EnvPool's C++ port (opt-in,
#: faster; equal in distribution per tests/test_envpool_equivalence.py, see docs/envpool.md).
ENV_BACKENDS = ("minigrid", "envpool")
DEFAULT_ENV_BACKEND = "minigrid"
ENV_BACKEND_HELP = (
    "who steps the env in rollouts: minigrid (default; the recorded numbers) or envpool (faster, equal in "
    'distribution, other episodes for the same seed; needs pip install "dt-circuits[envpool]")'
)


def check_env_backend(env_backend: str) -> str:
    """``env_backend`` itself if it is one of :data:`ENV_BACKENDS`, else a one-line ConfigError."""
    if env_backend not in ENV_BACKENDS:
        raise ConfigError(f"--env-backend must be one of {', '.join(ENV_BACKENDS)}, got {env_backend!r}")
    return env_backend
