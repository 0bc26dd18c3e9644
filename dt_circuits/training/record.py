"""What a checkpoint's weights must carry once they change: the calibration curve (post Fig. 5) and Table 1.

Both describe the weights, so every path that writes new weights into one of our checkpoints (``calibrate
--record``, ``gate --record``) measures them again here instead of keeping numbers of weights that are gone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dt_circuits.dt.model import DecisionTransformer
    from dt_circuits.evaluation.calibration import Calibration


def write_calibration(directory: str | os.PathLike[str], cal: Calibration, *, name: str) -> None:
    """calibration.json/.png into ``directory``, the summary (and Table 1 when the RTGs include -1, 0 and 0.9)
    into its manifest."""
    from dt_circuits.analysis.figures import calibration_figure, save_png
    from dt_circuits.core.io import write_json_atomic
    from dt_circuits.evaluation.calibration import table1, update_manifest
    from dt_circuits.evaluation.rtgs import TABLE1_RTGS

    directory = Path(directory)
    title = f"{name}: RTG calibration ({cal.results[0].n} episodes per RTG, max_steps {cal.env.max_steps})"
    write_json_atomic(directory / "calibration.json", cal.to_json())
    save_png(calibration_figure(cal, title=title), directory / "calibration.png", dpi=110)
    entries = {"calibration": cal.summary()}
    wanted = [r for r in cal.results if round(r.rtg, 6) in TABLE1_RTGS]
    if len(wanted) == len(TABLE1_RTGS):
        entries["evaluation"] = table1(wanted)
    update_manifest(directory, **entries)


def record_calibration(
    model: DecisionTransformer,
    directory: str | os.PathLike[str],
    *,
    name: str,
    workers: int | None = None,
    progress: bool = True,
    env_backend: str | None = None,
) -> Calibration:
    """Measure the calibration at ``calibrate``'s defaults (post Fig. 5: every RTG of ``DEFAULT_RTGS``, 500
    episodes, seed 0, the default backend unless ``env_backend``) and record it."""
    from dt_circuits.evaluation.calibration import calibrate

    backend = {"env_backend": env_backend} if env_backend else {}
    cal = calibrate(model, workers=workers, progress=progress, source=str(directory), **backend)
    write_calibration(directory, cal, name=name)
    return cal
