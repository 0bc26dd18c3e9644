"""Inspect tabs for the state shown: attention, DLA, every ablation recipe per component, path patching of the
RTG, QK/OV per head (Dynamic Obstacles); per-timestep tokens and zero ablations (MemoryDT); then the claims tabs.
Numbers come from :mod:`.compute`; this module only lays them out."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dt_circuits.analysis.figures import attribution_bars, channel_heatmaps
from dt_circuits.analysis.interventions import Inputs
from dt_circuits.app import claims_panel, compute
from dt_circuits.app.view import View

#: the inspect sections of a Dynamic Obstacles checkpoint; only the one chosen is computed
SECTIONS = ("Attention", "DLA", "Recipes", "Path patching (RTG)", "QK / OV", "Claims", "Save as claim")


def inspect_grid(loaded: compute.Loaded, view: View, inp: Inputs, hooks: list, config) -> None:  # noqa: ANN001
    st.header("Inspect")
    section = st.segmented_control("Section", SECTIONS, default="DLA", required=True, key="section")
    if section == "Attention":
        _attention(loaded, inp, hooks)
    elif section == "DLA":
        _dla(loaded, view, inp, hooks)
    elif section == "Recipes":
        _recipes(loaded, inp)
    elif section == "Path patching (RTG)":
        _path_patching(loaded, inp)
    elif section == "QK / OV":
        _qk_ov(loaded, view, inp)
    elif section == "Claims":
        claims_panel.render_claims(view, config)
    else:
        claims_panel.render_save(loaded, view, inp, config)


def _attention(loaded: compute.Loaded, inp: Inputs, hooks: list) -> None:
    st.caption("Attention from the state token (the logits are read there) to each token, per head.")
    for layer, pattern in compute.attention(loaded.model, inp.args, hooks).items():
        rows = {f"L{layer}H{h}": {"→ RTG": pattern[h, 1, 0], "→ state": pattern[h, 1, 1]} for h in range(len(pattern))}
        st.dataframe(pd.DataFrame(rows).T, key=f"attn_{layer}")


def _dla(loaded: compute.Loaded, view: View, inp: Inputs, hooks: list) -> None:
    st.caption(
        f"Direct logit attribution along {view.direction} (analysis.attribution.attribute): each "
        "component's direct push on the logit difference, summing exactly to it."
    )
    clean = dict(compute.dla(loaded, inp, view.direction))
    table = pd.DataFrame({"clean": clean})
    if hooks:
        table["intervened"] = pd.Series(dict(compute.dla(loaded, inp, view.direction, hooks)))
    # shown to 4 decimals like the probabilities (an ablated head's own row is 0 up to float noise such as 4e-16);
    # the table's values stay the library's full floats
    fmt = st.column_config.NumberColumn(format="%.4f")
    st.dataframe(table, key="dla_table", column_config=dict.fromkeys(table.columns, fmt))
    st.pyplot(
        attribution_bars(
            clean, compare=dict(table["intervened"].dropna()) if hooks else None, title=f"DLA ({view.direction})"
        ),
        clear_figure=False,
    )


def metric_options(loaded: compute.Loaded) -> list[str]:
    acts = loaded.actions
    return [*(f"p_{a}" for a in acts), *(f"{a}-{b}" for a in acts for b in acts if a != b)]


def _recipes(loaded: compute.Loaded, inp: Inputs) -> None:
    options = metric_options(loaded)
    st.selectbox("Metric", options, index=options.index("p_forward"), key="metric")
    metric = st.session_state["metric"]
    st.caption(
        f"Change of {metric} on this state when each component is ablated by each recipe the claims use "
        "(claims.evaluation.recipes; means at this RTG; counterfactual: the front object removed)."
    )
    effects = compute.recipe_effects(loaded, inp, metric)
    st.dataframe(pd.DataFrame(effects).T, key="recipes_table")


def _path_patching(loaded: compute.Loaded, inp: Inputs) -> None:
    cols = st.columns(2)
    cols[0].number_input("Corrupt RTG", -1.0, 1.0, step=0.1, key="corrupt_rtg")
    cols[1].selectbox("P(action)", loaded.actions, index=2, key="pp_action")
    rows = compute.rtg_path_patching(loaded, inp, float(st.session_state["corrupt_rtg"]), st.session_state["pp_action"])
    st.caption(
        "The state at the corrupt RTG, with each sender's clean output (at the shown RTG) delivered only to "
        "the receiver (analysis.patching.path_patching); restored = (patched − corrupt) / (clean − corrupt)."
    )
    st.dataframe(pd.DataFrame(rows), key="pp_table")


def _qk_ov(loaded: compute.Loaded, view: View, inp: Inputs) -> None:
    st.caption(
        "Per view cell: its part of the state token's attention score for the RTG token (QK) and of what "
        f"the head writes along {view.direction} when it attends to the state (OV), on this observation "
        "(analysis.circuits.qk_view / ov_view with biases)."
    )
    for hc in compute.head_circuits(loaded, inp, view.direction):
        st.subheader(hc.name)
        cols = st.columns(2)
        cols[0].pyplot(
            channel_heatmaps(
                hc.qk_cells[None],
                channel_names=["QK"],
                title=(f"score {hc.qk_score:+.3f} (model {hc.model_score:+.3f})"),
            )
        )
        per_rtg, bias = hc.rtg_push
        cols[1].pyplot(
            channel_heatmaps(
                hc.ov_cells[None],
                channel_names=["OV"],
                title=(f"from state {hc.ov_value:+.3f}; from RTG {per_rtg:+.3f}·rtg {bias:+.3f}"),
            )
        )


# -- MemoryDT -----------------------------------------------------------------------------------------------------


def inspect_memory(loaded: compute.Loaded, view: View, window: tuple, hooks: list, config) -> None:  # noqa: ANN001
    st.header("Inspect")
    section = st.segmented_control(
        "Section", ("Tokens", "Zero ablations", "Claims"), default="Tokens", required=True, key="mem_section"
    )
    labels = compute.token_labels(loaded.model)
    if section == "Tokens":
        st.caption(
            "Attention from the last state token (where the logits are read) to every token of the window: "
            "R = RTG, s = state, a = action, by window timestep (left-padded as DTI pads)."
        )
        for layer, pattern in compute.attention(loaded.model, window, hooks).items():
            rows = {f"L{layer}H{h}": dict(zip(labels, pattern[h, -1], strict=True)) for h in range(len(pattern))}
            st.dataframe(pd.DataFrame(rows).T, key=f"mem_attn_{layer}")
    elif section == "Zero ablations":
        st.selectbox("P(action)", loaded.actions, key="mem_action")
        action = loaded.actions.index(st.session_state["mem_action"])
        st.dataframe(pd.Series(compute.window_zero_ablations(loaded.model, window, action), name="ΔP"), key="mem_abl")
    else:
        claims_panel.render_claims(view, config)
