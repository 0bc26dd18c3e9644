"""The page: sidebar (checkpoint, RTG, timestep, intervention), Play (the real env, the model's action
probabilities, the history scrubber), Edit (view cells, family states) and the tabs of :mod:`.panels`.

Any DTCircuitsError (a checkpoint that does not load, a state that cannot exist, a bad URL) is one ``st.error``
line in the page; the page never shows a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from dt_circuits.app import compute, episode, images, panels, session
from dt_circuits.app.view import CELL_KINDS, View
from dt_circuits.core.errors import DTCircuitsError

#: symbols of the view editor's cells, by Minigrid object id (unseen 0, empty 1, wall 2, ball 6, goal 8, key 5)
SYMBOLS = {0: "?", 1: "·", 2: "W", 5: "K", 6: "B", 8: "G"}


@dataclass(frozen=True)
class AppConfig:
    """What ``dt-circuits app`` was started with."""

    checkpoints: tuple[str, ...]
    claims_dir: Path
    cache_dir: Path


@st.cache_resource(show_spinner="loading the checkpoint")
def _load(path: str) -> compute.Loaded:
    return compute.load(path)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def render(config: AppConfig) -> None:
    st.set_page_config(page_title="dt-circuits app", layout="wide")
    session.start(config.checkpoints[0] if config.checkpoints else "")
    if "_url_error" in st.session_state:
        st.error(st.session_state.pop("_url_error"))
    st.title("dt-circuits")
    loaded = _sidebar(config)
    if loaded is None:
        return
    view = session.current()
    if not loaded.memory and view.agent is None:
        start = episode.initial_state(loaded.spec, view.seed)
        session.set_grid(agent=(*start.agent_pos, start.agent_dir), obstacles=start.obstacles)
        session.reset_history()
        view = session.current()
    session.sync_url(view)
    try:
        if loaded.memory:
            _memory_page(loaded, view, config)
        else:
            _grid_page(loaded, view, config)
    except DTCircuitsError as exc:
        st.error(first_line(exc))


# -- sidebar ----------------------------------------------------------------------------------------------------


def _sidebar(config: AppConfig) -> compute.Loaded | None:
    side = st.sidebar
    options = list(dict.fromkeys([*config.checkpoints, st.session_state["ckpt"]]))
    side.selectbox("Checkpoint", options, key="ckpt", on_change=_checkpoint_changed)
    try:
        loaded = _load(st.session_state["ckpt"])
    except DTCircuitsError as exc:
        st.error(f"cannot load checkpoint: {first_line(exc)}")
        return None
    side.caption(f"{loaded.family} · roles {loaded.subject.roles or 'none'}")
    side.slider("RTG", -1.0, 1.0, step=0.01, key="rtg")
    if loaded.memory:
        side.caption("timestep: the episode's step count")
    else:
        side.number_input("Timestep", 0, loaded.model.cfg.max_timestep, step=1, key="t")
    comps = [session.NONE_LABEL, *compute.component_names(loaded.model)]
    if st.session_state["ablate"] not in comps:
        st.error(f"unknown component {st.session_state['ablate']!r}; showing no intervention")
        st.session_state["ablate"] = session.NONE_LABEL
    roles = {v: k for k, v in loaded.subject.roles.items()}
    side.radio(
        "Intervene on",
        comps,
        key="ablate",
        horizontal=True,
        format_func=lambda c: f"{c} ({roles[c]})" if c in roles else c,
    )
    if not loaded.memory:
        recipes = list(compute.recipe_lib.RECIPES)
        if st.session_state["recipe"] not in recipes:
            st.error(f"unknown recipe {st.session_state['recipe']!r}; using mean")
            st.session_state["recipe"] = "mean"
        side.radio("Recipe (as the claims ablate)", recipes, key="recipe")
        directions = [*loaded.actions, *(f"{a}-{b}" for a in loaded.actions for b in loaded.actions if a != b)]
        if st.session_state["direction"] not in directions:
            st.session_state["direction"] = "forward"
        side.selectbox("Direction (DLA, OV)", directions, key="direction")
    side.radio("Model plays", ["sampled", "argmax"], key="sample", horizontal=True)
    return loaded


def _checkpoint_changed() -> None:
    session.set_grid(agent=None, obstacles=(), edits=(), actions=())
    st.session_state["ablate"] = session.NONE_LABEL
    st.session_state["t"] = 0


# -- Dynamic Obstacles -----------------------------------------------------------------------------------------------


def _grid_page(loaded: compute.Loaded, view: View, config: AppConfig) -> None:
    state = compute.grid_state(view)
    obs = compute.observation(loaded, view)
    inp = compute.inputs(loaded, view)
    hooks = compute.intervention_hooks(loaded, view, inp)
    clean = compute.probabilities(loaded.model, inp)
    probs = compute.probabilities(loaded.model, inp, hooks) if hooks else clean

    st.header("Play")
    left, mid, right = st.columns([1, 1, 1.2])
    left.image(images.view_image(obs), caption="agent's view (as the model sees it)", width=230)
    loaded.renderer.place(state)
    mid.image(
        images.grid_image(loaded.renderer.env),
        caption=f"grid: agent {state.agent_pos} facing {state.agent_dir}, balls {list(state.obstacles)}",
        width=230,
    )
    with right:
        what = f"under {view.recipe} on {view.ablate}" if hooks else "unablated"
        st.caption(f"action probabilities at RTG {view.rtg:g}, t = {view.timestep} ({what})")
        cols = st.columns(len(loaded.actions))
        for col, name, p, p0 in zip(cols, loaded.actions, probs, clean, strict=True):
            col.metric(f"P({name})", f"{p:.4f}", delta=f"{p - p0:+.4f}" if hooks else None, delta_color="off")
        if view.edits:
            st.caption("view edits: " + ", ".join(f"({x}, {y}) {k}" for x, y, k in view.edits))
        _play_controls(loaded, ended=bool(session.outcome()))
    _history()
    _editor(obs)
    _state_pickers(loaded)
    panels.inspect_grid(loaded, view, inp, hooks, config)


def _play_controls(loaded: compute.Loaded, ended: bool) -> None:
    if ended:
        st.info(f"episode over: {session.outcome()}; reset to play again")
    # three rows of at most three controls, so that no label is cut short in the narrow right-hand column
    cols = st.columns(3)
    for col, (name, action) in zip(cols, (("◀ left", 0), ("▶ right", 1), ("▲ forward", 2)), strict=True):
        col.button(name, key=f"step_{action}", on_click=_step, args=(action,), disabled=ended, width="stretch")
    cols = st.columns(2)
    cols[0].button(
        "Model step", key="step_model", on_click=_step, args=(None,), disabled=ended, type="primary", width="stretch"
    )
    cols[1].button("Roll out 10 steps", key="rollout", on_click=_rollout, args=(10,), disabled=ended, width="stretch")
    cols = st.columns(2)
    if "reset_seed" not in st.session_state:  # the box starts at the episode's own seed (the URL's)
        st.session_state["reset_seed"] = session.current().seed
    cols[0].number_input("Seed", 0, 2**31 - 1, key="reset_seed", label_visibility="collapsed")
    cols[1].button("Reset env (seed)", key="reset", on_click=_reset, width="stretch")
    st.caption("keys: ← left, → right, ↑ forward, m model step")
    _arrow_keys()


#: key -> the play button it presses (the buttons' keys above); nothing while the focus is in a text box
ARROW_KEYS = {"ArrowLeft": "step_0", "ArrowRight": "step_1", "ArrowUp": "step_2", "m": "step_model"}
_KEYS_SCRIPT = """<script>
// one listener on the page, owned by the newest frame: a rerun can replace this frame, and a listener whose frame
// is gone never fires, so each frame replaces the previous one's
const doc = window.parent.document;
const keys = __KEYS__;
if (doc.dtCircuitsKeys) doc.removeEventListener("keydown", doc.dtCircuitsKeys);
doc.dtCircuitsKeys = (e) => {
  const t = e.target, tag = (t && t.tagName) || "";
  const typing = tag === "INPUT" || tag === "TEXTAREA" || (t && t.isContentEditable);
  if (e.altKey || e.ctrlKey || e.metaKey || typing) return;
  const key = keys[e.key];
  const button = key && doc.querySelector(".st-key-" + key + " button");
  if (button && !button.disabled) { e.preventDefault(); button.click(); }
};
doc.addEventListener("keydown", doc.dtCircuitsKeys);
</script>"""


def _arrow_keys() -> None:
    """The arrow keys play, as DTI's app does: a zero-height component listens on the page (same-origin frame) and
    clicks the play button a key names, so a key press is exactly that button's step."""
    import json

    from streamlit.components.v1 import html

    html(_KEYS_SCRIPT.replace("__KEYS__", json.dumps(ARROW_KEYS)), height=0)


def _step(action: int | None) -> None:
    """One real env step from the view shown: the user's action, or the model's (sampled or argmax)."""
    view = session.current()
    loaded = _load(view.checkpoint)
    if loaded.memory:
        return _memory_step(loaded, view, action)
    inp = compute.inputs(loaded, view)
    if action is None:
        logits = compute.run(loaded.model, inp, compute.intervention_hooks(loaded, view, inp))
        action = episode.model_action(logits, view.seed, view.timestep, st.session_state["sample"] == "sampled")
    result = episode.step(loaded.renderer, compute.grid_state(view), view.timestep, action, view.seed)
    st.session_state["t"] = view.timestep + 1
    st.session_state["rtg"] = max(-1.0, min(1.0, round(view.rtg - result.reward, 4)))
    session.set_grid(
        agent=(*result.state.agent_pos, result.state.agent_dir), obstacles=result.state.obstacles, edits=()
    )
    session.push_history(session.current(), result.outcome)


def _memory_step(loaded: compute.Loaded, view: View, action: int | None) -> None:
    if action is None:
        ep = episode.memory_episode(view.seed, view.actions, view.rtg)
        window = compute.memory_window(loaded.model, ep.frames, ep.actions, ep.rtgs)
        logits = compute.window_logits(loaded.model, window, compute.window_hooks(loaded, view))
        action = episode.model_action(logits, view.seed, len(view.actions), st.session_state["sample"] == "sampled")
    session.set_grid(actions=(*view.actions, action))
    ep = episode.memory_episode(view.seed, (*view.actions, action), view.rtg)
    session.push_history(session.current(), ep.outcome)


def _rollout(n: int) -> None:
    for _ in range(n):
        if session.outcome():
            break
        _step(None)


def _reset() -> None:
    seed = int(st.session_state.get("reset_seed", 0))
    session.set_grid(agent=None, obstacles=(), edits=(), actions=(), seed=seed)
    st.session_state["t"] = 0


def _history() -> None:
    history = st.session_state["history"]
    if len(history) < 2:
        return
    st.slider("History (scrub through the steps played)", 0, len(history) - 1, key="hist", on_change=_scrub)


def _scrub() -> None:
    session.put(st.session_state["history"][st.session_state["hist"]])


# -- edit -----------------------------------------------------------------------------------------------------------


def _editor(obs) -> None:  # noqa: ANN001 - a (7, 7, 3) observation
    st.header("Edit")
    st.caption(
        "Pick what to put, then click a view cell (x across, y down; the agent A at (3, 6) looks up). "
        "Everything below updates."
    )
    top = st.columns([2, 1, 1])
    top[0].radio("Put", CELL_KINDS, key="brush", horizontal=True)
    top[1].button("Ball in front", key="ball_front", on_click=_put, args=(3, 5, "ball"))
    top[2].button("Clear edits", key="clear_edits", on_click=lambda: session.set_grid(edits=()))
    for y in range(7):
        cols = st.columns(7)
        for x in range(7):
            label = "A" if (x, y) == (3, 6) else SYMBOLS.get(int(obs[x, y, 0]), str(int(obs[x, y, 0])))
            cols[x].button(
                label,
                key=f"cell_{x}_{y}",
                on_click=_put,
                args=(x, y, None),
                disabled=(x, y) == (3, 6),
                help=f"view cell ({x}, {y})",
            )


def _put(x: int, y: int, kind: str | None) -> None:
    view = session.current().with_edit(x, y, kind or st.session_state.get("brush", "ball"))
    session.set_grid(edits=view.edits)


def _state_pickers(loaded: compute.Loaded) -> None:
    from dt_circuits.claims.evaluation.names import FAMILIES

    with st.expander("Pick a state from a family"):
        cols = st.columns([2, 1, 1])
        cols[0].selectbox("Family", FAMILIES, key="pick_family")
        cols[1].number_input("Index", 0, 10_000, key="pick_index")
        cols[2].button("Open", key="pick_open", on_click=_open_family_state)


def _open_family_state() -> None:
    from dt_circuits.env import scenarios

    name, i = st.session_state["pick_family"], int(st.session_state["pick_index"])
    fam = (
        scenarios.goal_in_front(name.removeprefix("goal-from-"), n=64)
        if name.startswith("goal-from-")
        else scenarios.in_front(name.removesuffix("-in-front"))
    )
    state = fam.states[i % len(fam)]
    session.open_state((*state.agent_pos, state.agent_dir), state.obstacles)


# -- Memory -----------------------------------------------------------------------------------------------------------


def _memory_page(loaded: compute.Loaded, view: View, config: AppConfig) -> None:
    ep = episode.memory_episode(view.seed, view.actions, view.rtg)
    frames = ep.frames.copy()
    frames[-1] = images.apply_edits(frames[-1], view.edits)
    window = compute.memory_window(loaded.model, frames, ep.actions, ep.rtgs)
    hooks = compute.window_hooks(loaded, view)
    clean = compute.window_probabilities(loaded.model, window)
    probs = compute.window_probabilities(loaded.model, window, hooks) if hooks else clean
    st.header("Play (Memory)")
    left, mid, right = st.columns([1, 1, 1.4])
    left.image(images.view_image(frames[-1]), caption="agent's view (last frame)", width=230)
    mid.image(images.grid_image(ep.env), caption=f"grid after {len(ep.actions)} actions", width=230)
    with right:
        what = f"zero-ablating {view.ablate}" if hooks else "unablated"
        st.caption(f"action probabilities, initial RTG {view.rtg:g}, t = {len(frames) - 1} ({what})")
        for row in range(0, len(loaded.actions), 4):
            cols = st.columns(4)
            for col, i in zip(cols, range(row, min(row + 4, len(loaded.actions))), strict=False):
                col.metric(
                    f"P({loaded.actions[i]})",
                    f"{probs[i]:.4f}",
                    delta=f"{probs[i] - clean[i]:+.4f}" if hooks else None,
                    delta_color="off",
                )
        _play_controls(loaded, ended=bool(ep.outcome))
    _history()
    _editor(frames[-1])
    panels.inspect_memory(loaded, view, window, hooks, config)
