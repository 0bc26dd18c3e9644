"""What claim files import: ``from dt_circuits.claim import Ablation, Check, Claim, OnFamily``.

A stable name for users' claim files; the framework itself lives in :mod:`dt_circuits.claims.claim`.
"""

from dt_circuits.claims.claim import *  # noqa: F403
from dt_circuits.claims.claim import __all__  # noqa: F401
