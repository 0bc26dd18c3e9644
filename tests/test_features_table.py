"""The localisation table end to end on a hand-set DT, its text forms, and the README block generated from JSON."""

from __future__ import annotations

import json

import pytest

from dt_circuits.core.errors import ConfigError
from dt_circuits.core.paths import REPO_ROOT
from dt_circuits.dt.handset import ball_avoider
from dt_circuits.features.readme_table import (
    BEGIN,
    END,
    FEATURES_DIR,
    generated_readme,
    markdown,
    terminal_table,
)
from dt_circuits.features.table import INPUT, INPUT_FRONT, localisation_table

#: the tests reading ``table`` run on one worker, so it is computed once per test run (~10 s)
ON_THE_TABLE_WORKER = pytest.mark.xdist_group("features-table")


@pytest.fixture(scope="module")
def table() -> dict:
    model = ball_avoider("head1", decoys=True)
    rows = localisation_table(
        model, n_random=40, layouts=1, variables=("ball_in_front", "rtg_sign"), sites=("L0H0", "L0H1")
    )
    return {"checkpoint": "handset-head1", "sha256": "0" * 64, "cpu": "test", **rows}


@ON_THE_TABLE_WORKER
def test_the_table_localises_the_ball_in_the_head_that_carries_it(table):
    probes = {(p["variable"], p["site"]): p for p in table["probes"]}
    assert table["sites"] == [INPUT, INPUT_FRONT, "L0H0", "L0H1"]
    assert probes[("ball_in_front", "L0H1")]["accuracy"] == 1.0
    assert probes[("ball_in_front", "L0H0")]["accuracy"] == probes[("ball_in_front", "L0H0")]["majority"]
    assert probes[("ball_in_front", INPUT_FRONT)]["accuracy"] == 1.0  # one-hot: one input bit
    # the hand-set model carries the RTG on the RTG token only: in the input (982 columns for ~300 rows here, so
    # well short of 1), not at the state token
    rtg_input, rtg_head = probes[("rtg_sign", INPUT)], probes[("rtg_sign", "L0H1")]
    assert rtg_input["accuracy"] > rtg_input["majority"] + 0.3
    assert rtg_head["accuracy"] < rtg_head["majority"] + 0.1
    iia = {r["site"]: r for r in table["iia"] if r["variable"] == "ball_in_front"}
    assert iia["L0H1"]["das"] == 1.0 and iia["L0H0"]["das"] == 0.0
    # the RTG's sign is interchanged too, but this model's action ignores the RTG: no held-out pair changes it
    rtg = [r for r in table["iia"] if r["variable"] == "rtg_sign"]
    assert [r["site"] for r in rtg] == ["L0H0", "L0H1"] and all(r["n_test_pairs"] == 0 for r in rtg), rtg
    assert table["interchange"]["rtg_sign"]["n_pairs"] > 0 and table["interchange"]["ball_in_front"]["n_pairs"] > 0
    # the SAE of each site: on L0H1 a latent fires exactly for the ball (chosen on one half of the poses, F1 on
    # the other) and its decoder direction localises it as well as DAS; head 0 (a constant decoy) has none
    saes = {r["site"]: r for r in table["sae"]}
    assert saes["L0H1"]["f1"]["ball_in_front=yes"]["f1"] == 1.0 and iia["L0H1"]["sae"] == 1.0
    assert saes["L0H0"]["f1"]["ball_in_front=yes"]["f1"] < 0.5 and iia["L0H0"]["sae"] == 0.0
    assert saes["L0H1"]["fvu"] < 0.01 and abs(saes["L0H1"]["delta_loss"]) < 0.01


@ON_THE_TABLE_WORKER
def test_text_forms_and_the_readme_block(table, tmp_path):
    text = terminal_table(table)
    assert "L0H1" in text and "1.00 / 1.00 / 1.00 / 1.00" in text
    # a column per interchanged variable; the caption names both kinds of pairs and the RTG's n = 0
    assert "IIA ball_in_front: DAS / probe / neuron / SAE" in text and "IIA rtg_sign: DAS" in text
    assert "n/a / n/a / n/a / n/a" in text and "RTG-sign pairs (RTG 0.9 against −1) (n = 0 test pairs" in text
    (tmp_path / "a.json").write_text(json.dumps(table))
    text = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    new = generated_readme(text, tmp_path)
    assert new.startswith("intro\n") and new.endswith("outro\n") and markdown([table]) in new
    assert generated_readme(new, tmp_path) == new
    with pytest.raises(ConfigError, match="exactly one features block"):
        generated_readme("no markers", tmp_path)
    with pytest.raises(ConfigError, match="no features tables"):
        generated_readme(text, tmp_path / "empty")


def test_unknown_variables_and_sites_are_one_line():
    model = ball_avoider("head0")
    with pytest.raises(ConfigError, match="unknown variable"):
        localisation_table(model, variables=("nope",))
    with pytest.raises(ConfigError):
        localisation_table(model, sites=("L0H7",))
    with pytest.raises(ConfigError, match="no interchange pairs for 'goal_side'"):
        localisation_table(model, interchanged=("goal_side",))


def test_an_unknown_interchange_variable_fails_before_the_checkpoint_is_read(tmp_path, capsys):
    """`dt-circuits features --interchange`: a variable without pairs is one line naming the valid ones, before any
    model is loaded (here the checkpoint does not even exist)."""
    from dt_circuits.cli import main

    code = main(["features", "--checkpoint", str(tmp_path / "missing"), "--interchange", "rtg_sign", "goal_side"])
    err = capsys.readouterr().err
    assert code != 0 and "no interchange pairs for 'goal_side'; variables with pairs: ball_in_front, rtg_sign" in err, (
        err
    )
    assert len(err.strip().splitlines()) == 1


def test_the_readme_features_table_is_generated_from_the_committed_json():
    readme = (REPO_ROOT / "README.md").read_text()
    assert generated_readme(readme, REPO_ROOT / FEATURES_DIR) == readme, "run: dt-circuits features --readme"


@pytest.mark.parametrize("name", ["raw-index", "dti-memory"])
def test_the_features_report_draws_a_committed_table(name, tmp_path, capsys):
    """`dt-circuits features --from JSON --report DIR`: the table and its two figures from the JSON alone (no model):
    a probe heatmap with a cell per variable and site, IIA bars for the interchange sites, and the on-policy probes'
    heatmap and rows where the table has them; a bad file is one line."""
    from PIL import Image

    from dt_circuits.cli import main
    from dt_circuits.core.paths import REPO_ROOT

    out = tmp_path / "report"
    assert (
        main(["features", "--from", str(REPO_ROOT / "docs" / "features" / f"{name}.json"), "--report", str(out)]) == 0
    )
    page = (out / "index.html").read_text()
    assert "probes.png" in page and "iia.png" in page and "<table>" in page
    # one IIA column per interchanged variable (MemoryDT: the instruction alone)
    named = ("IIA ball_in_front: DAS / probe / neuron", "IIA rtg_sign: DAS") if name == "raw-index" else ("IIA DAS",)
    assert all(column in page for column in named), named
    on_policy = name == "raw-index"  # the Dynamic Obstacles tables carry probes on the agent's own states
    assert ("On the agent's own states" in page) == on_policy == ("probes-on-policy.png" in page)
    if on_policy:  # its own heatmap and rows: a cell per readable variable at every site
        section = page.split("On the agent's own states", 1)[1]
        table = json.loads((REPO_ROOT / "docs" / "features" / f"{name}.json").read_text())
        assert section.count("<tr>") == 1 + len(table["sites"]) and "ball_in_front" in section
    for png in ("probes.png", "iia.png") + (("probes-on-policy.png",) if on_policy else ()):
        with Image.open(out / png) as im:
            assert im.size[0] > 200 and im.size[1] > 100
    assert "report:" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"checkpoint": "x"}')
    assert main(["features", "--from", str(bad), "--report", str(tmp_path / "r2")]) == 2
    assert "not a features table" in capsys.readouterr().err


def test_the_table_reports_progress_off_a_terminal(capsys):
    """`dt-circuits features` works for minutes: off a terminal (CI logs) it prints summary lines, not silence."""
    localisation_table(ball_avoider("head1"), n_random=20, sites=("L0H1",), variables=("ball_in_front",),
                       with_sae=False, progress=True)  # fmt: skip
    err = capsys.readouterr().err
    assert "features: " in err and "done" in err.splitlines()[-1]


@ON_THE_TABLE_WORKER
def test_on_policy_rows_read_the_ball_where_head1_carries_it_and_agree_with_the_claims_probe(table):
    """The table's probes on the agent's own states (the claims' on-policy sample): at L0H1 ball-in-front is read
    perfectly on the head-1 model and at the majority class on its MLP twin; each cell is the number a
    ``Probe(ProbeStates(sample="on-policy"), ...)`` claim measures; a variable the view cannot tell is left out;
    the text forms show the rows."""
    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.claims.measures.features import Probe as ProbeMeasure
    from dt_circuits.claims.measures.features import ProbeStates
    from dt_circuits.features.sites import parse_site
    from dt_circuits.features.table import on_policy_rows

    got = {}
    for route in ("head1", "mlp"):
        model = ball_avoider(route, decoys=True)
        subject = Subject.from_model(model)
        states = ProbeStates(sample="on-policy")
        rows = on_policy_rows(model, states.states(subject), [parse_site(model, "L0H1")],
                              ("ball_in_front", "ball_within_2"), 0)["on_policy"]  # fmt: skip
        got[route] = {(p["variable"], p["site"]): p for p in rows["probes"]}
        assert rows["variables"] == ["ball_in_front"] and rows["n_episodes"] >= 100
        claim_probe = ProbeMeasure(states, "L0H1", "ball_in_front").measure(subject)
        assert got[route][("ball_in_front", "L0H1")]["accuracy"] == pytest.approx(claim_probe.estimate)
    head1, mlp = got["head1"][("ball_in_front", "L0H1")], got["mlp"][("ball_in_front", "L0H1")]
    assert head1["accuracy"] == 1.0 and mlp["accuracy"] == pytest.approx(mlp["majority"])
    with_rows = {**table, "on_policy": {**rows, "states": "the test's rollouts"}}
    with_rows["sites"] = [INPUT, INPUT_FRONT, "L0H1"]
    assert "on the agent's own states" in terminal_table(with_rows)
    assert "On the agent's own states" in markdown([with_rows]) and "| `L0H1` | " in markdown([with_rows])


def test_the_table_saes_train_on_the_agents_own_states_too_and_are_read_on_held_out_episodes():
    """With on-policy states (the claims' on-policy sample of the hand-set head-1 model), each site's SAE trains on
    a sample of half the episodes' states beside the generated ones (other weights than without them) and is read
    on the other half: at L0H1 the ball latent chosen on generated states fires exactly where a ball is in front
    on the agent's own held-out states too; the text forms show the column."""
    import torch

    from dt_circuits.claims.evaluation.subject import Subject
    from dt_circuits.claims.measures.features import ProbeStates
    from dt_circuits.features.data import probe_set
    from dt_circuits.features.sae import ON_POLICY_SAE_STATES
    from dt_circuits.features.sites import parse_site
    from dt_circuits.features.table import on_policy_rows, probe_features, site_saes

    model = ball_avoider("head1", decoys=True)
    on = ProbeStates(sample="on-policy").states(Subject.from_model(model))
    data = probe_set(seed=0, n_random=40, max_timestep=model.cfg.max_timestep)
    sites = [parse_site(model, "L0H1")]
    xs, on_xs = probe_features(model, data.inputs, sites), probe_features(model, on.inputs, sites)
    variables = ("ball_in_front", "ball_within_2")
    plain, _ = site_saes(model, data, sites, variables, 0, xs)
    saes, (row,) = site_saes(model, data, sites, variables, 0, xs, on_policy=(on, on_xs))
    assert not torch.equal(saes["L0H1"].W_dec, plain["L0H1"].W_dec)  # the on-policy states were trained on
    got = row["on_policy"]
    assert 0 < got["n_train"] <= ON_POLICY_SAE_STATES and got["n_test"] > 0
    assert got["n_train"] + got["n_test"] <= len(on.inputs)
    assert got["f1"]["ball_in_front=yes"] == 1.0 and got["fvu"] < 0.05
    assert not any(name.startswith("ball_within_2") for name in got["f1"])  # the view cannot tell it
    table = {"checkpoint": "handset-head1", "sha256": "0" * 64, "cpu": "test", "variables": {}, "seed": 0,
             "sites": [INPUT, INPUT_FRONT, "L0H1"], "probes": [], "iia": [], "sae": [row], "seconds": {},
             **on_policy_rows(model, on, sites, variables, 0, xs=on_xs)}  # fmt: skip
    text = terminal_table({**table, "n_states": 0, "n_poses": 0, "n_pairs": 0, "pair_rtg": 0.9})
    assert "ball latent F1 (held out)" in text and "read on the other half's" in text


def test_das_with_two_dimensions_is_run_and_named():
    """`--k 2`: DAS learns a 2-dimensional subspace at each interchange site; on the hand-set head-1 DT the ball is
    still swapped perfectly there, each IIA row says k, and the tables' header names it (k = 1 unnamed)."""
    model = ball_avoider("head1", decoys=True)
    rows = localisation_table(model, n_random=20, layouts=1, k=2, variables=("ball_in_front",), sites=("L0H1",),
                              with_sae=False, interchanged=("ball_in_front",))  # fmt: skip
    (iia,) = rows["iia"]
    assert iia["k"] == 2 and iia["das"] == 1.0
    table = {"checkpoint": "handset-head1", "sha256": "0" * 64, "cpu": "test", **rows}
    assert "IIA DAS (k = 2) / probe / neuron" in terminal_table(table)
    assert "IIA DAS (k = 2)" in markdown([table]) and "IIA DAS / probe" in markdown([{**table, "iia": []}])
