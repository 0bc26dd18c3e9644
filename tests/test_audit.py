"""The auditing game in miniature (issue 28): IIT plants "ball in front" where asked, the default recipe is
untouched, the confusion arithmetic and its Clopper–Pearson intervals, and `dt-circuits audit` end to end."""

from __future__ import annotations

import json

import pytest
import torch

from dt_circuits.audit.confusion import Cell, clopper_pearson, confusion
from dt_circuits.audit.game import Row, recipe_verdicts
from dt_circuits.audit.table import BEGIN, END, GAME_JSON, generated_readme, load_game
from dt_circuits.audit.truth import planted_truth, truth_label
from dt_circuits.cli import main
from dt_circuits.core.errors import ConfigError
from dt_circuits.core.machine import machine_kind
from dt_circuits.core.paths import REPO_ROOT
from dt_circuits.env.spec import EnvSpec
from dt_circuits.training.config import IIT_FIELDS, TrainConfig, config_flags
from dt_circuits.training.train import train, weights_digest
from dt_circuits.trajectories.dataset import TrajectoryDataset, collect_scripted
from dt_circuits.trajectories.mix import DEFAULT_MIX

pytestmark = pytest.mark.xdist_group("audit")

SPEC = EnvSpec(max_steps=40)
TINY = dict(d_model=32, d_head=16, d_mlp=64, steps=40, log_every=10, eval_episodes=4, threads=1)
#: the TINY run's weights and loss curve at the commit before IIT existed (249fa92), on the machine kind below:
#: the default recipe must stay byte-identical with the IIT knobs added
BEFORE_IIT = {
    "digest": "2443b1a78f6efc95cf451f33151affdafb666a582e49963fa850ede12afd4d5a",
    "loss": [1.09767, 1.08161, 1.0641, 1.04193],
    "machine": {
        "cpu": "Intel(R) Xeon(R) Processor (cpu family 6, model 207, stepping 2)",
        "kernels": {"aten": "AVX512"},
    },
}


@pytest.fixture(scope="module")
def data() -> TrajectoryDataset:
    return collect_scripted(DEFAULT_MIX, n_episodes=30, seed=0, env=SPEC, progress=False)


def test_the_default_recipe_is_unchanged_by_the_iit_knobs(data):
    cfg = TrainConfig(**TINY)
    assert not set(IIT_FIELDS) & set(cfg.to_dict())  # manifests without IIT read as before
    assert not any(flag.startswith(("--iit", "--siit")) for flag in config_flags(cfg))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    result = train(cfg, data, progress=False)
    assert "iit" not in result.curve
    if machine_kind() != BEFORE_IIT["machine"]:
        pytest.skip(f"weight bytes were recorded on {BEFORE_IIT['machine']['cpu']}; this is {machine_kind()}")
    assert weights_digest(result.model) == BEFORE_IIT["digest"]
    assert result.curve["loss"] == BEFORE_IIT["loss"]


def test_iit_config_is_checked_and_recorded():
    with pytest.raises(ConfigError, match="iit_component"):
        TrainConfig(iit_component="L0H7")
    cfg = TrainConfig(iit_component="mlp", iit_rtgs=(0.9,))
    assert cfg.to_dict()["iit_component"] == "mlp" and TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert "--iit-component" in config_flags(cfg)


@pytest.mark.parametrize("component", ["L0H1", "mlp", "L0H1-direct"])
def test_iit_plants_ball_in_front_where_asked(data, component):
    """A tiny model, 150 steps: the planted component's held-out IIA is far above the others' (a direct path:
    the head's direct-path IIA, and the whole MLP and the other head stay out)."""
    torch.manual_seed(0)
    cfg = TrainConfig(**{**TINY, "steps": 150, "lr": 3e-3, "warmup_steps": 20, "iit_component": component,
                         "iit_layouts": 2, "iit_rtgs": (0.9,), "iit_batch": 32, "eval_every": 0})  # fmt: skip
    model = train(cfg, data, progress=False).model
    truth = planted_truth(model)
    iia = {c: v["iia"] for c, v in truth["components"].items()}
    head = component.removesuffix("-direct")
    if component != head:
        iia[component] = truth["direct_paths"][head]["iia"]
    others = [v for c, v in iia.items() if c not in (component, head)]
    assert iia[component] >= 0.8 and max(others) <= 0.2, iia


def _row(truth: str, verdict: str, component: str = "L0H1", reason: str = "holds", **kw) -> Row:
    base = dict(model="m", arm="A", seed=0, claim="c", kind="ablation", component=component, truth=truth, iia=0.0,
                verdict=verdict, reason=reason, failing=(), insufficient=(), by_recipe={})  # fmt: skip
    return Row(**{**base, **kw})


def test_confusion_counts_and_clopper_pearson_on_hand_made_verdicts():
    rows = [
        _row("carries", "holds"),
        _row("carries", "holds"),
        _row("carries", "fails", reason="baseline-absent", failing=("b",)),
        _row(
            "carries", "fails", reason="effect-too-small", failing=("e [on-policy]",), insufficient=("e [on-policy]",)
        ),
        _row("absent", "fails", component="L0H0"),
        _row("absent", "holds", component="L0H0"),
        _row("absent", "fails", component="L0H0"),
        _row("partial", "holds", component="L0H0"),
        _row("absent", "fails", component="mlp"),
    ]
    cells = {(c.target, c.recipe): c for c in confusion(rows)}
    head = cells[("head", "primary")]
    assert (head.tp, head.fn, head.tn, head.fp, head.excluded) == (2, 2, 2, 1, 1)
    assert head.sensitivity == 0.5 and head.specificity == pytest.approx(2 / 3)
    assert head.miss_reasons == {"baseline-absent": 1, "sample-size": 1}
    mlp = cells[("mlp", "primary")]
    assert (mlp.tp, mlp.fn, mlp.tn, mlp.fp) == (0, 0, 1, 0) and mlp.sensitivity is None
    # exact intervals: 0/5 -> [0, 1 - 0.025^(1/5)], 5/5 -> [0.025^(1/5), 1], 2/4 by the beta quantiles
    assert clopper_pearson(0, 5) == pytest.approx((0.0, 1 - 0.025 ** (1 / 5)))
    assert clopper_pearson(5, 5) == pytest.approx((0.025 ** (1 / 5), 1.0))
    assert clopper_pearson(2, 4) == pytest.approx((0.067585, 0.932415), abs=1e-5)
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(ConfigError):
        clopper_pearson(3, 2)
    out = Cell(**{**head.__dict__}).to_json()
    assert out["sensitivity_ci"] == [round(x, 4) for x in clopper_pearson(2, 4)]


def test_a_recipe_verdict_judges_each_check_by_that_recipe():
    class C:
        def __init__(self, holds, recipes):
            self.holds, self.recipes = holds, recipes

    checks = [
        C(True, {}),
        C(True, {"mean": {"holds": True}, "zero": {"holds": False}}),
        C(False, {"zero": {"holds": True}}),
    ]
    assert recipe_verdicts(checks) == {"mean": "fails", "zero": "fails"}
    checks[2] = C(True, {"zero": {"holds": True}})
    assert recipe_verdicts(checks) == {"mean": "holds", "zero": "fails"}


def test_truth_labels_use_the_bars_fixed_in_advance():
    assert [truth_label(x) for x in (0.95, 0.9, 0.5, 1 / 3, 0.0, float("nan"))] == [
        "carries", "carries", "partial", "absent", "absent", "partial"]  # fmt: skip


def test_audit_command_end_to_end_on_a_hand_set_model(tmp_path, capsys):
    """Plant nothing by training: a hand-set DT whose ball route is head 1 by construction, saved as a planted
    model with its checked truth; the command plays the claims blind on it and writes the table's JSON."""
    from dt_circuits.audit.plant import TRUTH_KEY
    from dt_circuits.dt.checkpoint import save_checkpoint
    from dt_circuits.dt.handset import ball_avoider
    from dt_circuits.evaluation.calibration import update_manifest

    model = ball_avoider("head1", "one_hot")
    out = save_checkpoint(
        model, tmp_path / "models" / "A-s0", env=EnvSpec(), name="A-s0", training={"recipe": "hand-set"}
    )
    truth = planted_truth(model)
    assert truth["carriers"] == ["L0H1"]
    update_manifest(out, **{TRUTH_KEY: {**truth, "arm": "A", "seed": 0, "planted": "L0H1", "steps": 0}})
    only = ["--only", "obstacle-head-carries-ball"]  # one claim keeps the test short; the game runs both
    assert (
        main(["audit", "--models", str(tmp_path / "models"), "--json", str(tmp_path / "game.json"), "--quiet", *only])
        == 0
    )
    game = json.loads((tmp_path / "game.json").read_text())
    verdicts = {(r["claim"], r["component"]): r["verdict"] for r in game["rows"]}
    assert verdicts[("obstacle-head-carries-ball", "L0H1")] == "holds"
    assert verdicts[("obstacle-head-carries-ball", "L0H0")] == "fails"
    assert verdicts[("obstacle-head-carries-ball", "mlp")] == "fails"
    assert "sensitivity" in capsys.readouterr().out
    assert main(["audit", "--from-json", str(tmp_path / "game.json")]) == 0
    assert main(["audit", "--models", str(tmp_path)]) != 0
    assert "no planted models" in capsys.readouterr().err


def test_the_readme_block_is_generated_from_the_recorded_json():
    path = REPO_ROOT / GAME_JSON
    if not path.is_file():
        pytest.skip("no recorded game yet")
    text = (REPO_ROOT / "README.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert generated_readme(text, load_game(path)) == text


def test_each_arm_is_recorded_as_a_population_that_the_population_table_reads():
    """Deliverable 2: docs/populations/audit-<arm>.json are what `dt-circuits audit --populations` makes of the
    recorded game and the models' manifests (weights hash, IIT recipe, planted truth per seed), in the schema
    `dt-circuits population-table` reads; k/K counts the verdicts, the truth rides along."""
    from dt_circuits.audit.population import arm_populations, population_path
    from dt_circuits.commands.population_table import load_columns

    game = load_game(REPO_ROOT / GAME_JSON)
    populations = arm_populations(game, REPO_ROOT / "checkpoints" / "audit")
    assert set(populations) == {"A", "B", "C", "D", "E"} and all(p["K"] >= 5 for p in populations.values())
    for arm, population in populations.items():
        recorded = json.loads((REPO_ROOT / population_path(arm)).read_text())
        assert recorded == json.loads(json.dumps(population)), arm
        for claim in recorded["claims"]:
            assert claim["k"] == claim["verdicts"].count("holds") and claim["K"] == len(recorded["per_seed"])
        for seed in recorded["per_seed"]:
            assert len(seed["weights_sha256"]) == 64 and seed["planted_truth"]["arm"] == arm
    assert populations["A"]["overrides"]["iit_component"] == "L0H1"
    assert populations["E"]["overrides"]["iit_component"] == "L0H1-direct"
    assert populations["D"]["overrides"]["iit_component"] in ("", None)
    columns = load_columns([f"arm {a}={population_path(a)}" for a in populations])
    assert len(columns) == 5


# -- the path claim and its truth -------------------------------------------------------------------------------------


def test_the_direct_path_truth_tells_a_head_that_writes_the_logits_from_one_that_feeds_the_mlp():
    """Known truth for the path kind: on the hand-set "head1" DT the ball reaches the logits along L0H1's direct
    path; on its twin "head1-mlp" (same behaviour) L0H1 carries the ball as a whole component but its direct path
    does not (the MLP turns it into the avoidance)."""
    from dt_circuits.dt.handset import ball_avoider

    direct, chain = planted_truth(ball_avoider("head1")), planted_truth(ball_avoider("head1-mlp"))
    assert direct["p_forward_ball"] == chain["p_forward_ball"] and direct["carriers"] == ["L0H1"]
    assert {h: v["label"] for h, v in direct["direct_paths"].items()} == {"L0H0": "absent", "L0H1": "carries"}
    assert chain["carriers"] == ["L0H1", "mlp"]
    assert {h: v["label"] for h, v in chain["direct_paths"].items()} == {"L0H0": "absent", "L0H1": "absent"}


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The hand-set head-1 DT saved as a planted model (truth recorded beside the weights, as the game reads it)."""
    from dt_circuits.audit.plant import TRUTH_KEY
    from dt_circuits.dt.checkpoint import save_checkpoint
    from dt_circuits.dt.handset import ball_avoider
    from dt_circuits.evaluation.calibration import update_manifest

    root = tmp_path_factory.mktemp("twins")
    out = {}
    for name, route in (("A-s0", "head1"),):
        model = ball_avoider(route)
        d = save_checkpoint(model, root / name, env=EnvSpec(), name=name, training={"recipe": "hand-set"})
        seed = int(name[-1])
        update_manifest(d, **{TRUTH_KEY: {**planted_truth(model), "arm": "A", "seed": seed, "planted": "L0H1",
                                          "steps": 0}})  # fmt: skip
        out[route] = d
    return out


def test_record_truth_adds_what_is_new_and_refuses_a_truth_that_does_not_reproduce(twins, tmp_path):
    import shutil

    from dt_circuits.audit.plant import TRUTH_KEY, record_truth
    from dt_circuits.core.errors import CheckpointError
    from dt_circuits.dt.checkpoint import read_manifest
    from dt_circuits.evaluation.calibration import update_manifest

    d = tmp_path / "A-s0"
    shutil.copytree(twins["head1"], d)
    old = read_manifest(d)[TRUTH_KEY]
    update_manifest(d, **{TRUTH_KEY: {k: v for k, v in old.items() if k != "direct_paths"} | {"in_env": {"x": 1}}})
    truth = record_truth(d)
    assert truth["direct_paths"] == old["direct_paths"] and truth["in_env"] == {"x": 1} and truth["arm"] == "A"
    tampered = {**truth, "components": {**truth["components"], "mlp": {"iia": 0.5, "changed_pairs": 1,
                                                                        "label": "partial"}}}  # fmt: skip
    update_manifest(d, **{TRUTH_KEY: tampered})
    with pytest.raises(CheckpointError, match="does not reproduce"):
        record_truth(d)
    assert read_manifest(d)[TRUTH_KEY] == tampered


def test_planting_through_the_executor_gives_the_bytes_of_planting_alone(data, tmp_path):
    """Deliverable 2's runs on the executor: two planted models trained side by side in spawned workers are the
    bytes (and the truth) of the same models trained one after the other in this process."""
    from dt_circuits.audit.plant import PlantTask, plant_task
    from dt_circuits.core.executor import ExecutorSpec, run_tasks
    from dt_circuits.core.io import sha256_file

    data_file = data.save(tmp_path / "tiny.npz")
    knobs = {k: v for k, v in TINY.items() if k != "steps"} | {"iit_layouts": 2, "iit_batch": 8, "iit_rtgs": [0.9]}
    runs = {}
    for workers in (1, 2):
        tasks = [PlantTask(arm, 0, 20, str(data_file), str(tmp_path / f"w{workers}" / f"{arm}-s0"), knobs)
                 for arm in ("A", "D")]  # fmt: skip
        truths = run_tasks(plant_task, tasks, ExecutorSpec(workers=workers))
        digests = [sha256_file(f"{t.out_dir}/model.safetensors") for t in tasks]
        kept = [{k: v for k, v in t.items() if k != "train_wall_seconds"} for t in truths]
        runs[workers] = (digests, json.dumps(kept, sort_keys=True))  # text: a NaN IIA (no pair moves) equals itself
    assert runs[1] == runs[2]
    assert len(set(runs[1][0])) == 2  # an IIT arm and the plain recipe: two different models


#: hand-set models saved as planted models: (name, route, polarity); one carrier per claim kind and the twins
#: that compute the same behaviour elsewhere (tests/test_handset.py pins each route with raw hooks)
HANDSET_GAME = (
    ("A-s0", "head1", "ball"),  # head 1 carries, along its direct path
    ("A-s2", "head1-mlp", "ball"),  # head 1 carries as a component, not along its direct path
    ("B-s0", "mlp", "ball"),  # the MLP carries
    ("C-s0", "head0", "ball"),  # head 0 carries
    ("D-s0", "direct", "ball"),  # nothing but the embedding
)


def test_every_game_claim_kind_is_right_on_hand_built_truths(tmp_path):
    """Deliverable 5: the game played blind on hand-set models whose circuits are known by construction, one per
    route, each kind of claim (head ablation, MLP ablation, counterfactual patch, direct path) with twins that give
    the same behaviour elsewhere. Every scored verdict must agree with the independently computed truth, and no
    recipe certifies an absent component. (The "clear" twin, whose zero recipe is uninformative, is played claim
    by claim in tests/test_recipe_reading.py.)"""
    from dt_circuits.audit.game import play_model
    from dt_circuits.audit.plant import TRUTH_KEY
    from dt_circuits.dt.checkpoint import save_checkpoint
    from dt_circuits.dt.handset import ball_avoider
    from dt_circuits.evaluation.calibration import update_manifest

    rows = []
    for name, route, polarity in HANDSET_GAME:
        model = ball_avoider(route, polarity=polarity)  # type: ignore[arg-type]
        d = save_checkpoint(model, tmp_path / name, env=EnvSpec(), name=name, training={"recipe": "hand-set"})
        truth = planted_truth(model)
        meta = {"arm": name[0], "seed": int(name[-1]), "planted": route, "steps": 0}
        update_manifest(d, **{TRUTH_KEY: {**truth, **meta}})
        rows += play_model(d)
    assert {r.kind for r in rows} == {"ablation", "counterfactual", "path"}
    assert {(r.kind, r.component) for r in rows if r.truth == "carries"} >= {
        ("ablation", "L0H1"),
        ("ablation", "L0H0"),
        ("ablation", "mlp"),
        ("path", "L0H1"),
        ("path", "L0H0"),
    }
    wrong = [
        (r.model, r.claim, r.component, r.truth, r.verdict, r.reason)
        for r in rows
        if r.truth in ("carries", "absent") and r.verdict != ("holds" if r.truth == "carries" else "fails")
    ]
    assert not wrong, wrong  # fmt: skip
    by = {(r.model, r.claim, r.component): r for r in rows}
    path, whole = "obstacle-head-ball-direct-path", "obstacle-head-carries-ball"
    assert (by[("A-s0", path, "L0H1")].truth, by[("A-s0", path, "L0H1")].verdict) == ("carries", "holds")
    # the chain twin: head 1 carries the ball as a whole component, but not along its direct path
    assert (by[("A-s2", path, "L0H1")].truth, by[("A-s2", path, "L0H1")].verdict) == ("absent", "fails")
    assert by[("A-s2", whole, "L0H1")].verdict == "holds" and ("B-s0", path, "mlp") not in by
    cells = {(c.claim, c.target, c.recipe): c for c in confusion(rows)}
    assert all(c.fp == 0 for c in cells.values())
