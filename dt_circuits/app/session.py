"""The page's state in ``st.session_state``: the widgets' keys and the grid state, read as one :class:`View` and set
from one (a URL, a history step, a counterexample), plus the play history the scrubber walks.

Widget values are set only here and only before their widgets exist (in callbacks, or at the first run), which is
what Streamlit allows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from dt_circuits.app.view import View, from_query, to_query
from dt_circuits.core.errors import DTCircuitsError

#: widget key -> View field
WIDGETS = {
    "ckpt": "checkpoint",
    "rtg": "rtg",
    "t": "timestep",
    "ablate": "ablate",
    "recipe": "recipe",
    "direction": "direction",
}
#: View fields kept outside widgets
GRID_FIELDS = ("agent", "obstacles", "edits", "seed", "actions")
NONE_LABEL = "none"


def start(default_checkpoint: str) -> None:
    """On a session's first run: the view the URL names (an error line kept for the page when it is malformed)."""
    if "_started" in st.session_state:
        return
    st.session_state["_started"] = True
    try:
        view = from_query(dict(st.query_params.to_dict()))
    except DTCircuitsError as exc:
        st.session_state["_url_error"] = f"invalid URL: {exc}"
        view = View()
    if not view.checkpoint:
        view = replace(view, checkpoint=default_checkpoint)
    put(view)
    st.session_state["history"] = [current()]
    st.session_state["outcomes"] = [""]


def put(view: View) -> None:
    """Make ``view`` the one shown (call before widgets are built: at start or in a callback)."""
    for key, name in WIDGETS.items():
        value = getattr(view, name)
        st.session_state[key] = NONE_LABEL if key == "ablate" and not value else value
    st.session_state["grid"] = {name: getattr(view, name) for name in GRID_FIELDS}


def current() -> View:
    """The view the widgets and the grid state show now."""
    values: dict[str, Any] = {name: st.session_state.get(key) for key, name in WIDGETS.items()}
    values["ablate"] = "" if values["ablate"] in (None, NONE_LABEL) else values["ablate"]
    values["rtg"] = float(values["rtg"])
    values["timestep"] = int(values["timestep"])
    return View(**values, **st.session_state["grid"])


def set_grid(**fields: Any) -> None:
    st.session_state["grid"] = {**st.session_state["grid"], **fields}


def push_history(view: View, outcome: str = "") -> None:
    """Append a played step and move the scrubber to it."""
    st.session_state["history"].append(view)
    st.session_state["outcomes"].append(outcome)
    st.session_state["hist"] = len(st.session_state["history"]) - 1


def reset_history() -> None:
    st.session_state["history"] = [current()]
    st.session_state["outcomes"] = [""]
    st.session_state["hist"] = 0


def outcome() -> str:
    """How the episode on screen ended ("" while it runs)."""
    i = st.session_state.get("hist", len(st.session_state["outcomes"]) - 1)
    return st.session_state["outcomes"][min(i, len(st.session_state["outcomes"]) - 1)]


def sync_url(view: View) -> None:
    """Write the view into the URL's query parameters (only when they changed, to spare the browser history)."""
    query = to_query(view)
    if dict(st.query_params.to_dict()) != query:
        st.query_params.from_dict(query)


def open_state(agent: tuple[int, int, int], obstacles, rtg: float | None = None, t: int | None = None) -> None:  # noqa: ANN001
    """Show a grid state (from a family or a counterexample) as a new history (call from a callback)."""
    set_grid(agent=tuple(int(v) for v in agent), obstacles=tuple(tuple(int(v) for v in o) for o in obstacles), edits=())
    if rtg is not None:
        st.session_state["rtg"] = max(-1.0, min(1.0, float(rtg)))
    if t is not None:
        st.session_state["t"] = int(t)
    reset_history()
