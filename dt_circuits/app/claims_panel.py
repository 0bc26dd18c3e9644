"""The Claims and "Save as claim" tabs: verdicts of the claims folder for the checkpoint shown (the JSON the CLI
writes, each check with its interval, counterexamples that open in the inspector), and a claim file written from
what is on screen, run through the CLI so its verdict shows beside it."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from dt_circuits.app import claims, compute, session, writer
from dt_circuits.app.view import View, to_query
from dt_circuits.core.errors import DTCircuitsError


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def import_errors(config) -> list[str]:  # noqa: ANN001 - page.AppConfig
    """One line per claim file in the folder that does not import (or defines no CLAIM)."""
    from dt_circuits.claims.evaluation.claim_files import claim_files, import_claim_file

    if not config.claims_dir.is_dir():
        return [f"claims folder {config.claims_dir} does not exist"]
    errors = []
    for path in claim_files(config.claims_dir):
        try:
            import_claim_file(path)
        except DTCircuitsError as exc:
            errors.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - a user's file can raise anything; the page shows one line
            errors.append(f"claim file {path.name} does not import: {_first_line(exc)}")
    return errors


def render_claims(view: View, config) -> None:  # noqa: ANN001 - page.AppConfig
    st.caption(
        f"Claims in {config.claims_dir} on {view.checkpoint}, from `dt-circuits claims --json` "
        "(each interval family-wise, as the CLI reports it)."
    )
    errors = import_errors(config)
    for line in errors:
        st.error(line)
    out = claims.json_path(config.cache_dir, view.checkpoint, config.claims_dir)
    cols = st.columns([1, 2])
    search = cols[1].checkbox("search for counterexamples (slower)", value=True, key="claims_search")
    if cols[0].button("Run claims", key="run_claims", disabled=bool(errors)):
        with st.spinner("dt-circuits claims --json ..."):
            run = claims.run_claims(view.checkpoint, config.claims_dir, out, search=search)
        if run.error:
            st.error(run.error)
    if not out.exists():
        st.info("No verdicts yet for this checkpoint and claims folder: press Run claims.")
        return
    try:
        data = claims.load(out)
    except DTCircuitsError as exc:
        st.error(str(exc))
        return
    show_verdicts(data, key="all")


def show_verdicts(data: dict, key: str) -> None:
    """Each claim's verdict, its checks with intervals, and its counterexamples as buttons."""
    ok = sum(c["matches_expectation"] for c in data["claims"])
    st.write(f"**{ok}/{len(data['claims'])}** verdicts match their records on `{data.get('name', '')}`")
    for claim in data["claims"]:
        flag = "" if claim["matches_expectation"] else f" — differs from the record ({claim['expected']})"
        with st.expander(f"{claim['id']}: {claim['verdict']} ({claim['reason']}){flag}"):
            st.write(claim["statement"])
            st.dataframe(pd.DataFrame(claims.check_rows(claim)), key=f"checks_{key}_{claim['id']}")
            for i, cx in enumerate(claims.counterexamples(claim)):
                pose = (*cx["agent_pos"], cx["agent_dir"])
                st.button(
                    f"Open counterexample to '{cx['check']}': agent {tuple(cx['agent_pos'])} facing "
                    f"{cx['agent_dir']}, RTG {cx['rtg']:.3f}, t = {cx['timestep']}",
                    key=f"cx_{key}_{claim['id']}_{i}",
                    on_click=session.open_state,
                    args=(pose, cx["obstacles"], cx["rtg"], cx["timestep"]),
                )


def default_family(loaded: compute.Loaded, view: View, inp) -> str:  # noqa: ANN001 - Inputs
    """The state family the state shown belongs to (by what is in front of the agent)."""
    kind = compute.front_object(inp.obs[0].numpy())
    if kind == "goal" and view.agent is not None:
        pose = view.agent
        return {(5, 6, 0): "goal-from-left", (6, 5, 1): "goal-from-top"}.get(tuple(pose), "goal-from-top")
    return {"ball": "obstacle-in-front", "wall": "wall-in-front", None: "empty-in-front"}[kind]


def render_save(loaded: compute.Loaded, view: View, inp, config) -> None:  # noqa: ANN001
    from dt_circuits.claims.evaluation.names import FAMILIES

    if not view.ablate:
        st.info("Choose a component to intervene on (sidebar): a claim states what intervening on it does.")
        return
    metric = st.session_state.get("metric", "p_forward")
    hooks = compute.intervention_hooks(loaded, view, inp)
    observed = compute.metric_value(loaded, inp, metric, hooks) - compute.metric_value(loaded, inp, metric)
    st.write(
        f"Observed on this state: Δ{metric} = **{observed:+.4f}** under {view.recipe} on {view.ablate} at "
        f"RTG {view.rtg:g}. The claim asks it of a whole family (generated and on-policy states)."
    )
    family = default_family(loaded, view, inp)
    cols = st.columns(2)
    slug = re.sub(r"[^a-z0-9-]+", "-", f"app-{view.ablate}-{view.recipe}-{family}".lower()).strip("-")
    claim_id = cols[0].text_input("Claim id", value=slug, key="claim_id")
    family = cols[1].selectbox("Family", FAMILIES, index=FAMILIES.index(family), key="claim_family")
    cols = st.columns(2)
    side = cols[0].radio(
        "Bound", ["at least", "at most"], index=0 if observed >= 0 else 1, horizontal=True, key="claim_side"
    )
    bound = cols[1].number_input(
        "Bound value", value=round(observed / 2, 3), step=0.01, format="%.3f", key="claim_bound"
    )
    run_now = st.checkbox("run it now (dt-circuits claims --only ID)", value=True, key="claim_run")
    if st.button("Save as claim", key="save_claim", type="primary"):
        url = "?" + "&".join(f"{k}={v}" for k, v in to_query(view).items())
        draft = writer.ClaimDraft(
            claim_id,
            family,
            view.rtg,
            view.ablate,
            view.recipe,
            metric,
            float(bound),
            side == "at least",
            observed,
            view.checkpoint,
            url,
        )
        try:
            path = writer.write_claim(config.claims_dir, draft)
        except DTCircuitsError as exc:
            st.error(str(exc))
            return
        st.session_state["saved"] = (str(path), None, "")
        if run_now:
            with st.spinner(f"wrote {path}; running it (dt-circuits claims --only {claim_id}) ..."):
                out = claims.json_path(config.cache_dir, view.checkpoint, config.claims_dir, only=claim_id)
                run = claims.run_claims(view.checkpoint, config.claims_dir, out, only=claim_id, search=False)
            st.session_state["saved"] = (str(path), run.data, run.error)
    if "saved" in st.session_state:
        path, data, error = st.session_state["saved"]
        st.success(f"saved {path}")
        if error:
            st.error(error)
        elif data:
            claim = data["claims"][0]
            st.markdown(f"Verdict of `{claim['id']}`: **{claim['verdict']}** ({claim['reason']})")
            show_verdicts(data, key="saved")
