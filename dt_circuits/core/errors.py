"""Error types that carry one clear line for the user.

Every failure a user can cause (bad checkpoint, wrong shape, unknown head, invalid state) raises one of these,
so the CLI can print ``str(error)`` alone and exit non-zero instead of a deep traceback.
"""


class DTCircuitsError(Exception):
    """Base class: the message is the whole story, printed as one line by the CLI.

    Messages often quote a parser's own error (numpy, json, safetensors), which may span lines; ``str`` folds
    them into one line so the CLI's "one line on stderr" promise holds whatever was quoted.
    """

    def __str__(self) -> str:
        return " ".join(part.strip() for part in super().__str__().splitlines() if part.strip())


class CheckpointError(DTCircuitsError):
    """A checkpoint file or directory cannot be read as a model (missing, corrupt, unsafe, wrong shape)."""


class ConfigError(DTCircuitsError, ValueError):
    """A model, environment or training config has a missing or unsupported value."""


class InvalidInputError(DTCircuitsError, ValueError):
    """Model inputs (observations, RTG, timestep) have the wrong shape, dtype or range."""


class InvalidStateError(DTCircuitsError, ValueError):
    """A requested grid state cannot exist in the environment (agent on a wall, moved goal, ...)."""
