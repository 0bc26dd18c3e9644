"""Populations of seeds (`dt-circuits gate --seeds K`): k/K per claim with a Clopper–Pearson interval, population
verdicts recorded in the manifest and gated, one executor for local processes and Ray, and the README's
population table generated from JSON.

The end-to-end tests train a tiny checkpoint (d_model 32, 40 steps) and run only weight-level claims, so a
population of two seeds takes seconds.
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest

from dt_circuits.claims.records.population import (
    MANIFEST_KEY,
    clopper_pearson,
    format_population,
    population_table,
    population_verdict,
    run_population,
)
from dt_circuits.core.errors import CheckpointError, ConfigError
from dt_circuits.core.executor import ExecutorSpec, ray_available, run_stages, run_tasks
from dt_circuits.core.io import write_json_atomic
from dt_circuits.core.paths import REPO_ROOT
from dt_circuits.dt.checkpoint import read_manifest
from dt_circuits.env.spec import EnvSpec
from tests.executor_tasks import plus_one, square
from tests.helpers import tiny_checkpoint as make_tiny_checkpoint

WEIGHT_CLAIMS = ["rtg-embedding-forward", "encoding-shapes-algorithm"]
TINY_OVERRIDES = {"steps": 30}
SERIAL = ExecutorSpec(workers=1)  # in this process: a spawned worker costs a torch import, not worth it for 1 s tasks


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny trained checkpoint whose manifest points at a tiny data file (absolute path)."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("population"), EnvSpec(max_steps=40))


def _fresh(tiny_checkpoint, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))


def test_population_verdict_thresholds():
    assert [population_verdict(k, 5) for k in range(6)] == [
        "fails", "fails", "seed-dependent", "seed-dependent", "holds", "holds"
    ]  # fmt: skip
    assert [population_verdict(k, 3) for k in range(4)] == ["fails", "seed-dependent", "seed-dependent", "holds"]
    with pytest.raises(ConfigError):
        population_verdict(4, 3)


def test_clopper_pearson_matches_the_closed_form_at_the_extremes():
    lo, hi = clopper_pearson(3, 3)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 3), abs=1e-9)
    lo, hi = clopper_pearson(0, 5)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 5), abs=1e-9)
    lo, hi = clopper_pearson(1, 2)
    assert lo == pytest.approx(0.0125791, abs=1e-6) and hi == pytest.approx(0.9874209, abs=1e-6)


def _note(seen: list, workers: int, i: int, result: int, seconds: float) -> None:
    seen.append((workers, i))


def test_executor_returns_results_in_task_order_for_any_worker_count():
    done = []
    assert run_tasks(square, [3, 1, 2], ExecutorSpec(workers=1), on_done=lambda i, r, s: done.append(i)) == [9, 1, 4]
    assert done == [0, 1, 2]
    assert run_tasks(square, [3, 1, 2], ExecutorSpec(workers=2)) == [9, 1, 4]
    finished: list[tuple[int, int]] = []
    for workers in (1, 2):  # two stages: the second gets the first's result, in task order
        spec = ExecutorSpec(workers=workers)
        on_done = partial(_note, finished, workers)
        assert run_stages(square, plus_one, [3, 1, 2], spec, on_done=on_done) == [10, 2, 5]
    assert sorted(finished) == [(w, i) for w in (1, 2) for i in range(3)]
    with pytest.raises(ConfigError, match="executor"):
        ExecutorSpec(kind="slurm")
    with pytest.raises(ConfigError, match="address"):
        ExecutorSpec(address="10.0.0.1:6379")


def test_population_records_gates_and_fails_when_a_verdict_moves(tiny_checkpoint, tmp_path):
    ckpt = _fresh(tiny_checkpoint, tmp_path)
    with pytest.raises(CheckpointError, match="no recorded population expectations"):
        run_population(ckpt, 2, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL)
    recorded = run_population(
        ckpt, 2, overrides=TINY_OVERRIDES, record=True, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL
    )
    entry = read_manifest(ckpt)[MANIFEST_KEY]
    assert entry["overrides"] == TINY_OVERRIDES and entry["seeds"] == [0, 1]
    assert set(entry["claims"]) == set(WEIGHT_CLAIMS)
    assert len(set(recorded.to_dict()["weights_sha256"])) == 2  # two seeds, two models

    again = run_population(
        ckpt, 2, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL
    )  # the recorded overrides are reused
    assert again.passed and again.to_dict()["weights_sha256"] == recorded.to_dict()["weights_sha256"]
    out = again.to_dict()
    assert len(out["retrain_seconds"]) == 2 and all(s > 0 for s in out["retrain_seconds"])
    for c in out["claims"]:
        assert {"k", "K", "ci_low", "ci_high", "population_verdict"} <= set(c)
        assert c["K"] == 2 and 0 <= c["ci_low"] <= c["k"] / 2 <= c["ci_high"] <= 1
        assert c["population_verdict"] == entry["claims"][c["id"]]["expected"]

    # tamper with one recorded population verdict: the gate must fail and name it
    manifest = read_manifest(ckpt)
    claim = WEIGHT_CLAIMS[0]
    was = manifest[MANIFEST_KEY]["claims"][claim]["expected"]
    manifest[MANIFEST_KEY]["claims"][claim]["expected"] = "seed-dependent" if was != "seed-dependent" else "holds"
    write_json_atomic(ckpt / "manifest.json", manifest)
    moved = run_population(ckpt, 2, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL)
    assert not moved.passed
    text = format_population(moved)
    assert f"MOVED {claim}" in text and "population gate FAILED" in text

    with pytest.raises(ConfigError, match="--threads 1"):
        run_population(ckpt, 2, only=WEIGHT_CLAIMS, progress=False, executor=ExecutorSpec(workers=1, threads=2))
    with pytest.raises(ConfigError, match="recorded with overrides"):
        run_population(ckpt, 2, overrides={"steps": 31}, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL)
    with pytest.raises(ConfigError, match="seed"):
        run_population(ckpt, 2, overrides={"seed": 3}, record=True, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL)


def test_a_population_with_per_seed_effects_judges_numbers_not_verdicts(tiny_checkpoint, tmp_path):
    """A record of K >= 3 seeds keeps every check's effect per seed; a population gate then judges each seed's
    checks against the recorded bands, so a verdict that differs but whose numbers are the recipe's is not
    MOVED, while a recorded number far from what the seeds now give is, with the numbers."""
    ckpt = _fresh(tiny_checkpoint, tmp_path)
    run_population(ckpt, 3, overrides=TINY_OVERRIDES, record=True, only=WEIGHT_CLAIMS, progress=False,
                   executor=SERIAL)  # fmt: skip
    entry = read_manifest(ckpt)[MANIFEST_KEY]
    assert len(entry["weights_sha256"]) == 3 and len(entry["machines"]) == 3
    for cid in WEIGHT_CLAIMS:
        checks = entry["claims"][cid]["checks"]
        assert checks and all(len(v) == 3 for v in checks.values())
    again = run_population(ckpt, 3, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL)
    assert again.passed and all(c.judged_by == "recipe" and not c.outside for c in again.claims)

    # the recorded verdicts alone no longer decide: flip one, the numbers still agree, the gate passes
    manifest = read_manifest(ckpt)
    claim = WEIGHT_CLAIMS[0]
    manifest[MANIFEST_KEY]["claims"][claim]["expected"] = "holds"
    write_json_atomic(ckpt / "manifest.json", manifest)
    assert run_population(ckpt, 3, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL).passed

    # a recipe whose recorded effects sit far from what the seeds give: MOVED, naming the check and its band
    check = next(iter(manifest[MANIFEST_KEY]["claims"][claim]["checks"]))
    values = manifest[MANIFEST_KEY]["claims"][claim]["checks"][check]
    spread = max(values) - min(values) + 1.0
    manifest[MANIFEST_KEY]["claims"][claim]["checks"][check] = [v + 100 * spread for v in values]
    write_json_atomic(ckpt / "manifest.json", manifest)
    moved = run_population(ckpt, 3, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL)
    assert not moved.passed
    text = format_population(moved)
    assert f"MOVED {claim}: 3 check value(s) outside what the recipe does" in text, text
    assert f"seed 0: {check}:" in text and "outside the recipe's band" in text, text
    row = next(c for c in moved.to_dict()["claims"] if c["id"] == claim)
    assert row["judged_by"] == "recipe" and len(row["outside"]) == 3 and row["outside"][0]["band"]["K"] == 3


def test_parallel_local_workers_give_the_same_weights_and_verdicts(tiny_checkpoint, tmp_path):
    ckpt = _fresh(tiny_checkpoint, tmp_path)
    one = run_population(ckpt, 2, overrides=TINY_OVERRIDES, record=True, only=WEIGHT_CLAIMS, progress=False,
                         executor=ExecutorSpec(workers=1))  # fmt: skip
    two = run_population(ckpt, 2, only=WEIGHT_CLAIMS, progress=False, executor=ExecutorSpec(workers=2))
    assert two.to_dict()["weights_sha256"] == one.to_dict()["weights_sha256"]
    assert [c.verdicts for c in two.claims] == [c.verdicts for c in one.claims]
    assert [c.effects for c in two.claims] == [c.effects for c in one.claims]


def test_a_small_population_runs_through_a_local_ray_instance(tiny_checkpoint, tmp_path):
    if not ray_available():
        pytest.skip('ray is not installed (pip install "dt-circuits[ray]"); the Ray executor is untested here')
    import ray

    ckpt = _fresh(tiny_checkpoint, tmp_path)
    local = run_population(
        ckpt, 2, overrides=TINY_OVERRIDES, record=True, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.cluster_resources().get("CPU") == 2
        remote = run_population(ckpt, 2, only=WEIGHT_CLAIMS, progress=False, executor=ExecutorSpec(kind="ray"))
    finally:
        ray.shutdown()
    assert remote.passed
    assert remote.executor.startswith("ray")
    assert remote.to_dict()["weights_sha256"] == local.to_dict()["weights_sha256"]
    assert [c.verdicts for c in remote.claims] == [c.verdicts for c in local.claims]


def test_gate_cli_population_errors_are_one_line(tiny_checkpoint, tmp_path, capsys):
    from dt_circuits.cli import main

    ckpt = _fresh(tiny_checkpoint, tmp_path)
    for extra, needle in (
        (["--seeds", "0"], "--seeds must be an integer >= 1"),
        (["--seeds", "2"], "no recorded population expectations"),
        (["--executor", "ray"], "apply to populations"),
        (["--seeds", "2", "--workers", "1", "--record", "--override", "bogus=1"], "bogus"),
    ):
        assert main(["gate", "--checkpoint", str(ckpt), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("what", ["a .pt file", "a folder without manifest.json"])
def test_gate_cli_on_a_path_that_is_not_our_checkpoint_says_why_in_one_line(tmp_path, capsys, what):
    """Only our checkpoint directories record the training data and config a retrain needs; a DTI .pt file used
    to fail with "x.pt/manifest.json is missing", which did not say so. The single gate, --seeds K and
    --rejudge all say it."""
    from dt_circuits.cli import main

    path = tmp_path / ("x.pt" if what == "a .pt file" else "plain")
    if path.suffix:
        path.write_bytes(b"not ours")
    else:
        path.mkdir()
    earlier = tmp_path / "population.json"
    earlier.write_text("{}")
    for extra in ([], ["--seeds", "2"], ["--rejudge", str(earlier)]):
        assert main(["gate", "--checkpoint", str(path), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert f"{path} is not a dt-circuits checkpoint directory" in err, err
        assert "record their training data and config in manifest.json, can be retrained and gated" in err, err


def test_gate_cli_population_json_has_the_fields(tiny_checkpoint, tmp_path, capsys):
    from dt_circuits.cli import main

    ckpt = _fresh(tiny_checkpoint, tmp_path)
    base = ["gate", "--checkpoint", str(ckpt), "--quiet", "--seeds", "2", "--workers", "1", "--only", *WEIGHT_CLAIMS]
    assert main([*base, "--record", "--override", "steps=30"]) == 0
    capsys.readouterr()
    out = tmp_path / "pop.json"
    assert main([*base, "--json", str(out), "--keep", str(tmp_path / "kept")]) == 0
    assert "population gate PASSED" in capsys.readouterr().out
    data = json.loads(out.read_text())
    kept = sorted(p.name for p in (tmp_path / "kept").iterdir())
    assert kept == ["seed-0", "seed-1"] and (tmp_path / "kept" / "seed-1" / "model.safetensors").exists()
    assert data["K"] == 2 and len(data["retrain_seconds"]) == 2 and data["passed"] is True
    assert {c["id"] for c in data["claims"]} == set(WEIGHT_CLAIMS)
    for c in data["claims"]:
        assert c["K"] == 2 and c["population_verdict"] in ("holds", "fails", "seed-dependent")
        assert 0 <= c["ci_low"] <= c["ci_high"] <= 1 and 0 <= c["k"] <= 2


# -- the README table -------------------------------------------------------------------------------------------------
POPULATION_JSON = {
    "raw-index": REPO_ROOT / "docs" / "populations" / "raw-index.json",
    "one-hot": REPO_ROOT / "docs" / "populations" / "one-hot.json",
    "raw-index, previous 40k-step recipe": REPO_ROOT / "docs" / "populations" / "raw-index-long-recipe.json",
}


def _readme_block() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    m = re.search(r"<!-- population-table:start -->\n(.*?)\n<!-- population-table:end -->", text, re.S)
    assert m, "README.md has no population-table block"
    return m.group(1)


def test_readme_population_table_is_generated_from_the_json_files():
    results = {}
    for title, path in POPULATION_JSON.items():
        data = json.loads(path.read_text())
        results[f"{title} (K={data['K']})"] = data
    assert _readme_block() == population_table(results), (
        "README population table is out of date: run `dt-circuits population-table --write README.md`"
    )


def test_readme_cross_kind_table_is_generated_from_the_json_files():
    from dt_circuits.commands.population_table import DEFAULT_CROSS, cross_table

    text = (REPO_ROOT / "README.md").read_text()
    m = re.search(r"<!-- cross-kind-table:start -->\n(.*?)\n<!-- cross-kind-table:end -->", text, re.S)
    assert m, "README.md has no cross-kind-table block"
    assert m.group(1) == cross_table(DEFAULT_CROSS), (
        "README cross-kind table is out of date: run `dt-circuits population-table --write README.md`"
    )


def test_population_table_shows_k_over_n_and_the_interval():
    data = {"claims": [{"id": "c", "k": 2, "K": 3, "ci_low": 0.0943, "ci_high": 0.9916,
                        "population_verdict": "seed-dependent"}]}  # fmt: skip
    table = population_table({"x (K=3)": data})
    assert table.splitlines()[2] == "| `c` | 2/3 seed-dependent [0.09, 0.99] |"


def test_flakecheck_seeds_run_through_the_executor_with_the_same_report(tiny_checkpoint):
    from dt_circuits.claims.records.flakecheck import flakecheck
    from dt_circuits.claims.suite.discovery import select_claims

    claims = select_claims(["rtg-embedding-forward"])
    serial = flakecheck(checkpoint=str(tiny_checkpoint), runs=2, claims=claims, executor=SERIAL).to_dict()
    parallel = flakecheck(
        checkpoint=str(tiny_checkpoint), runs=2, claims=claims, executor=ExecutorSpec(workers=2)
    ).to_dict()
    serial.pop("seconds"), parallel.pop("seconds")
    assert parallel == serial and serial["runs"] == 2


def test_population_table_command_rewrites_only_the_marked_block(tmp_path, capsys):
    from dt_circuits.cli import main

    seeds = [{"claims": {"c": {"checks": {"x": {"effect": v, "kind": "effect"}}}}} for v in (0.1, 0.3, 0.2)]
    data = {"K": 3, "per_seed": seeds, "claims": [{"id": "c", "k": 3, "K": 3, "ci_low": 0.2924, "ci_high": 1.0,
                                                   "population_verdict": "holds"}]}  # fmt: skip
    write_json_atomic(tmp_path / "a.json", data)
    other = {**data, "claims": [{**data["claims"][0], "k": 0, "judged_by": "recipe", "outside": [{}]}]}
    write_json_atomic(tmp_path / "b.json", other)
    readme = tmp_path / "README.md"
    readme.write_text(
        "before\n<!-- population-table:start -->\nold\n<!-- population-table:end -->\nmiddle\n"
        "<!-- cross-kind-table:start -->\nold\n<!-- cross-kind-table:end -->\nafter\n"
    )
    args = ["population-table", "--json", f"a={tmp_path / 'a.json'}",
            "--cross", f"A={tmp_path / 'a.json'}", f"B={tmp_path / 'b.json'}"]  # fmt: skip
    assert main([*args, "--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith(
        "before\n<!-- population-table:start -->\n| claim | a (K=3) |\n|---|---|\n"
        "| `c` | 3/3 holds [0.29, 1.00] |\n<!-- population-table:end -->\nmiddle\n<!-- cross-kind-table:start -->\n"
    )
    assert "A: A (K=3); B: B (K=3)." in text
    assert "| `c` | 3/3 | 0/3 | 0.10 | x | +0.200 [+0.100, +0.300] | +0.200 [+0.100, +0.300] | 1 |" in text
    assert text.endswith("<!-- cross-kind-table:end -->\nafter\n")
    (tmp_path / "bad.md").write_text("no markers\n")
    capsys.readouterr()
    assert main([*args, "--write", str(tmp_path / "bad.md")]) == 2
    assert "exactly one population block (<!-- population-table:start -->" in capsys.readouterr().err
    (tmp_path / "twice.md").write_text(text + text)  # two blocks: which one is the table? refused, nothing written
    assert main([*args, "--write", str(tmp_path / "twice.md")]) == 2
    assert "exactly one population block" in capsys.readouterr().err
    assert (tmp_path / "twice.md").read_text() == text + text


def test_bare_record_keeps_the_recorded_recipe_and_committed_clears_it(tiny_checkpoint, tmp_path, capsys):
    """`gate --seeds K --record` with neither --recipe nor --override re-records the population's own recipe (it
    once silently swapped a fast-recipe population for the checkpoint's full recipe); `--recipe committed` asks
    for the full recipe explicitly."""
    from dt_circuits.cli import main

    ckpt = _fresh(tiny_checkpoint, tmp_path)
    base = ["gate", "--checkpoint", str(ckpt), "--quiet", "--seeds", "1", "--workers", "1", "--only", *WEIGHT_CLAIMS]
    assert main([*base, "--record", "--override", "steps=20"]) == 0
    assert read_manifest(ckpt)[MANIFEST_KEY]["overrides"] == {"steps": 20}
    assert main([*base, "--record"]) == 0
    assert read_manifest(ckpt)[MANIFEST_KEY]["overrides"] == {"steps": 20}
    assert main([*base, "--record", "--recipe", "committed"]) == 0
    assert read_manifest(ckpt)[MANIFEST_KEY]["overrides"] == {}
    capsys.readouterr()


def test_a_record_run_says_which_population_verdicts_it_changes(tiny_checkpoint, tmp_path):
    ckpt = _fresh(tiny_checkpoint, tmp_path)
    run_population(ckpt, 1, overrides=TINY_OVERRIDES, record=True, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL)
    manifest = read_manifest(ckpt)
    claim = WEIGHT_CLAIMS[0]
    previous = manifest[MANIFEST_KEY]["claims"][claim]["expected"]
    manifest[MANIFEST_KEY]["claims"][claim]["expected"] = "fails" if previous == "holds" else "holds"
    write_json_atomic(ckpt / "manifest.json", manifest)
    again = run_population(ckpt, 1, record=True, only=WEIGHT_CLAIMS, progress=False, executor=SERIAL)
    text = format_population(again)
    assert again.passed and f"CHANGED {claim}: previously recorded" in text
    assert f"{len(WEIGHT_CLAIMS) - 1}/{len(WEIGHT_CLAIMS)} population verdicts as in the previous record" in text
