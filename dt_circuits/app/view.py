"""What the page shows, as a value: checkpoint, state, view edits, RTG, timestep and intervention, and its URL form.

The URL is the app's state (issue 26): a view can be shared and reopened, so everything the numbers depend on is
here and round-trips through :func:`to_query` / :func:`from_query`. Plain data, no torch: a bad parameter is one
:class:`InvalidInputError` line the page shows, never a traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from dt_circuits.core.errors import InvalidInputError

#: what a view cell can be set to
CELL_KINDS = ("ball", "goal", "wall", "empty")
#: what "intervention" means in the page: no intervention, or a claims recipe on one component
NO_INTERVENTION = ""

Cell = tuple[int, int]
Edit = tuple[int, int, str]


@dataclass(frozen=True)
class View:
    """One screen of the app. ``agent`` / ``obstacles`` are the Dynamic Obstacles grid state (None: the env's reset
    state for ``seed``); ``actions`` the Memory episode so far (replayed from ``seed``); ``edits`` view cells
    overwritten after rendering (x, y, kind), so states the env never emits can be asked about too."""

    checkpoint: str = ""
    agent: tuple[int, int, int] | None = None
    obstacles: tuple[Cell, ...] = ()
    edits: tuple[Edit, ...] = ()
    rtg: float = 0.9
    timestep: int = 0
    ablate: str = NO_INTERVENTION
    recipe: str = "mean"
    direction: str = "forward"
    seed: int = 0
    actions: tuple[int, ...] = field(default=())

    def with_edit(self, x: int, y: int, kind: str) -> View:
        """This view with view cell (x, y) set to ``kind`` (replacing any earlier edit of that cell)."""
        _check_edit((x, y, kind))
        kept = tuple(e for e in self.edits if (e[0], e[1]) != (x, y))
        return replace(self, edits=(*kept, (int(x), int(y), kind)))


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise InvalidInputError(f"{what} must be integers separated by commas, got {text!r}") from None


def _check_edit(edit: Edit) -> None:
    x, y, kind = edit
    if not (0 <= x < 7 and 0 <= y < 7):
        raise InvalidInputError(f"view cell ({x}, {y}) is outside the 7x7 view")
    if kind not in CELL_KINDS:
        raise InvalidInputError(f"unknown cell kind {kind!r}; expected one of {', '.join(CELL_KINDS)}")


def to_query(view: View) -> dict[str, str]:
    """The view as URL query parameters (only what differs from the defaults, besides the checkpoint)."""
    q: dict[str, str] = {"ckpt": view.checkpoint}
    if view.agent is not None:
        q["state"] = ";".join([",".join(map(str, view.agent)), *(f"{x},{y}" for x, y in view.obstacles)])
    if view.edits:
        q["edits"] = ";".join(f"{x},{y},{k}" for x, y, k in view.edits)
    defaults = View()
    for key, value, default in (
        ("rtg", f"{view.rtg:g}", f"{defaults.rtg:g}"),
        ("t", str(view.timestep), str(defaults.timestep)),
        ("ablate", view.ablate, defaults.ablate),
        ("recipe", view.recipe, defaults.recipe),
        ("dir", view.direction, defaults.direction),
        ("seed", str(view.seed), str(defaults.seed)),
        ("actions", ",".join(map(str, view.actions)), ""),
    ):
        if value != default:
            q[key] = value
    return q


def from_query(params: dict[str, str]) -> View:
    """The view a URL names; InvalidInputError (one line) for any malformed parameter."""
    view = View(checkpoint=params.get("ckpt", ""))
    if params.get("state"):
        parts = params["state"].split(";")
        agent = _ints(parts[0], "state (agent x,y,direction)")
        if len(agent) != 3:
            raise InvalidInputError(f"state must start with the agent as x,y,direction, got {parts[0]!r}")
        obstacles = []
        for part in parts[1:]:
            cell = _ints(part, "each obstacle in state")
            if len(cell) != 2:
                raise InvalidInputError(f"each obstacle in state is x,y, got {part!r}")
            obstacles.append((cell[0], cell[1]))
        view = replace(view, agent=(agent[0], agent[1], agent[2]), obstacles=tuple(obstacles))
    if params.get("edits"):
        edits = []
        for part in params["edits"].split(";"):
            bits = part.split(",")
            if len(bits) != 3:
                raise InvalidInputError(f"each edit is x,y,kind, got {part!r}")
            x, y = _ints(",".join(bits[:2]), "edit cell")
            edit = (x, y, bits[2])
            _check_edit(edit)
            edits.append(edit)
        view = replace(view, edits=tuple(edits))
    if "rtg" in params:
        try:
            rtg = float(params["rtg"])
        except ValueError:
            raise InvalidInputError(f"rtg must be a number, got {params['rtg']!r}") from None
        if not math.isfinite(rtg):
            raise InvalidInputError(f"rtg must be finite, got {params['rtg']!r}")
        view = replace(view, rtg=rtg)
    for key, name in (("t", "timestep"), ("seed", "seed")):
        if key in params:
            (value,) = _ints(params[key], key) if "," not in params[key] else (None,)
            if value is None or value < 0:
                raise InvalidInputError(f"{key} must be a non-negative integer, got {params[key]!r}")
            view = replace(view, **{name: value})
    if params.get("actions"):
        view = replace(view, actions=tuple(_ints(params["actions"], "actions")))
    for key, name in (("ablate", "ablate"), ("recipe", "recipe"), ("dir", "direction")):
        if key in params:
            view = replace(view, **{name: params[key]})
    return view
