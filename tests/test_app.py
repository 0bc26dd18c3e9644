"""The app through Streamlit's headless harness (``AppTest``): the numbers the page shows are the library's on the
same state, the URL round-trips, bad input is one ``st.error`` line, and a claim saved from the page runs through
the suite runner with its verdict in the page. The library values here are computed directly (StateRenderer,
``run``, ``attribute``, the claims' ``recipe_hooks`` and ``metric_values``), never through ``dt_circuits.app``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from minigrid.core.world_object import Ball

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dt_circuits.analysis.attribution import attribute  # noqa: E402
from dt_circuits.analysis.interventions import Inputs, run  # noqa: E402
from dt_circuits.app.view import View, from_query, to_query  # noqa: E402
from dt_circuits.claims.evaluation.metrics import metric_values  # noqa: E402
from dt_circuits.claims.evaluation.recipes import recipe_hooks  # noqa: E402
from dt_circuits.claims.evaluation.subject import Subject  # noqa: E402
from dt_circuits.core.errors import InvalidInputError  # noqa: E402
from dt_circuits.core.paths import CHECKPOINTS_DIR, memory_reference_checkpoint  # noqa: E402
from dt_circuits.dt.checkpoint import load_checkpoint  # noqa: E402
from dt_circuits.dt.window import pad_window, stack_windows  # noqa: E402
from dt_circuits.env.memory import MemoryS7FixedStart  # noqa: E402
from dt_circuits.env.scenarios import GridState, StateRenderer  # noqa: E402

pytestmark = pytest.mark.xdist_group("app")

RAW = str(CHECKPOINTS_DIR / "raw-index")
#: agent at (2, 3) facing up, balls elsewhere; the front cell (2, 2) is empty until the page puts a ball there
STATE = {"state": "2,3,3;5,5;4,1;1,5", "rtg": "0.9", "t": "3"}
TIMEOUT = 120


@pytest.fixture(autouse=True)
def _main_module_restored():
    """Streamlit's AppTest runs the page as ``sys.modules["__main__"]`` and leaves it there. A ``spawn`` process
    pool started later in the same worker then runs the page script in every child as ``__mp_main__`` (streamlit,
    torch, the app: ~4 s of imports a child): the executor tests took 19-23 s after these tests instead of 0.3 s
    (CI runs, AMD EPYC). Put the test process's own ``__main__`` back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


def _script(tmp: Path, checkpoints: list[str], claims_dir: Path) -> Path:
    """A page script configured like ``dt-circuits app --checkpoint ... --claims-dir ...`` would configure it."""
    script = tmp / "page.py"
    script.write_text(
        "from pathlib import Path\nfrom dt_circuits.app.page import AppConfig, render\n"
        f"render(AppConfig({tuple(checkpoints)!r}, Path({str(claims_dir)!r}), Path({str(tmp / 'cache')!r})))\n"
    )
    return script


@pytest.fixture
def app(tmp_path: Path):
    """A fresh page on raw-index (claims folder: an empty one in tmp_path), not yet run."""
    claims_dir = tmp_path / "claims"
    claims_dir.mkdir()

    def make(**query: str) -> AppTest:
        at = AppTest.from_file(str(_script(tmp_path, [RAW], claims_dir)), default_timeout=TIMEOUT)
        for key, value in query.items():
            at.query_params[key] = value
        return at

    make.claims_dir = claims_dir  # type: ignore[attr-defined]
    return make


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _frame(at: AppTest, column: str):
    """The first table the page shows with ``column`` (AppTest does not keep a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _no_failure(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _library_inputs(ball_in_front: bool) -> Inputs:
    obs = StateRenderer().render(GridState((2, 3), 3, ((1, 5), (4, 1), (5, 5))))
    if ball_in_front:
        obs[3, 5] = Ball().encode()  # the view's front cell, as Minigrid encodes a ball
    return Inputs.make(obs[None], 0.9, 3)


def test_numbers_shown_are_the_librarys(app) -> None:
    at = app(**STATE, ablate="L0H1", recipe="zero", edits="3,5,ball").run()
    _no_failure(at)
    model = load_checkpoint(RAW)
    subject = Subject.from_model(model)
    inp = _library_inputs(ball_in_front=True)
    hooks, _ = recipe_hooks(subject, [subject.component("L0H1")], "zero", 0.9, 1, point=True)
    probs = torch.softmax(run(model, inp, hooks).double(), -1)[0].numpy()
    clean = torch.softmax(run(model, inp).double(), -1)[0].numpy()
    shown = _metrics(at)
    assert shown == {f"P({a})": f"{p:.4f}" for a, p in zip(("left", "right", "forward"), probs, strict=True)}
    assert [m.delta for m in at.metric] == [f"{p - q:+.4f}" for p, q in zip(probs, clean, strict=True)]
    assert abs(probs[2] - clean[2]) > 1e-3  # the intervention does something on this state: the check has teeth

    dla = _frame(at, "intervened")
    expected = attribute(model, inp, "forward", fwd_hooks=hooks).grouped()
    assert dla.loc["L0H1", "intervened"] == pytest.approx(float(expected["L0H1"][0]), abs=1e-9)
    assert dla.loc["L0 MLP", "clean"] == pytest.approx(float(attribute(model, inp, "forward").grouped()["L0 MLP"][0]))

    at.button_group(key="section").set_value("Recipes").run()
    recipes = _frame(at, "mean-rtg-mix")
    base = metric_values(subject, inp, "p_forward")[0]
    for recipe in ("zero", "mean", "counterfactual"):
        paired = None
        if recipe == "counterfactual":
            paired = _library_inputs(ball_in_front=False)  # the same state with the front ball removed
        h, _ = recipe_hooks(subject, [subject.component("L0H1")], recipe, 0.9, 1, point=True, paired=paired)
        assert recipes.loc["L0H1", recipe] == pytest.approx(metric_values(subject, inp, "p_forward", h)[0] - base)


def test_view_round_trips_through_the_url(app) -> None:
    view = View(RAW, (2, 3, 3), ((1, 5), (4, 1)), ((3, 5, "ball"), (0, 0, "goal")), -0.5, 7, "mlp", "resample",
                "forward-right", 4, ())  # fmt: skip
    assert from_query(to_query(view)) == view
    with pytest.raises(InvalidInputError, match="view cell"):
        from_query({"edits": "9,9,ball"})
    query = to_query(view)
    at = app(**query).run()
    _no_failure(at)
    assert at.query_params == query  # the page writes back exactly the view it was opened with
    assert at.radio(key="ablate").value == "mlp" and at.radio(key="recipe").value == "resample"
    assert at.slider(key="rtg").value == -0.5 and at.number_input(key="t").value == 7
    assert at.number_input(key="reset_seed").value == 4  # "Reset env" starts at the episode's own seed
    at.button(key="ball_front").click().run()  # an edit the page makes lands in the URL
    assert from_query(at.query_params).edits == ((0, 0, "goal"), (3, 5, "ball"))


def test_playing_steps_the_env_and_the_scrubber_goes_back(app) -> None:
    at = app(**STATE).run()
    first = dict(at.query_params)
    for _ in range(3):
        at.button(key="step_model").click().run()
    _no_failure(at)
    assert at.number_input(key="t").value == 3 + 3
    # an intervention chosen in the sidebar (not the URL) applies to the state played, in the same run
    at.radio(key="ablate").set_value("L0H1").run()
    at.radio(key="recipe").set_value("zero").run()
    assert from_query(at.query_params).ablate == "L0H1"
    assert any(c.value.endswith("t = 6 (under zero on L0H1)") for c in at.caption)
    assert all(m.delta is not None for m in at.metric)
    at.slider(key="hist").set_value(0).run()
    assert dict(at.query_params) == first  # the first step's whole view, intervention included


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"ckpt": "/nonexistent/checkpoint"}, "cannot load checkpoint: checkpoint not found"),
        ({"state": "0,0,0"}, "agent at (0, 0) is on a wall"),
        ({"rtg": "lots"}, "invalid URL: rtg must be a number"),
    ],
)
def test_bad_input_is_one_error_line(app, query, message) -> None:
    at = app(**query).run()
    assert not at.exception
    assert len(at.error) == 1 and "\n" not in at.error[0].value
    assert at.error[0].value.startswith(message)


def test_an_unreadable_checkpoint_file_is_one_error_line(app, tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    at = app(ckpt=str(bad)).run()
    assert not at.exception and len(at.error) == 1 and "\n" not in at.error[0].value
    assert at.error[0].value.startswith("cannot load checkpoint:")


def test_a_claims_file_that_does_not_import_is_one_error_line(app) -> None:
    (app.claims_dir / "broken.py").write_text("from dt_circuits.claim import Nothing\n")
    at = app(**STATE).run()
    at.button_group(key="section").set_value("Claims").run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "claim file broken.py does not import: ImportError: cannot import name 'Nothing' from 'dt_circuits.claim' "
        f"({Path(__import__('dt_circuits.claim').claim.__file__)})"
    ]


def test_a_saved_claim_runs_and_its_verdict_shows(app) -> None:
    at = app(**STATE, ablate="L0H1", recipe="zero", edits="3,5,ball").run()
    at.button_group(key="section").set_value("Save as claim").run()
    at.text_input(key="claim_id").set_value("app-test-claim")
    at.radio(key="claim_side").set_value("at most")
    at.number_input(key="claim_bound").set_value(0.5)
    at.button(key="save_claim").click().run(timeout=TIMEOUT)
    _no_failure(at)
    path = app.claims_dir / "app_test_claim.py"
    text = path.read_text()
    assert text.startswith('"""zero on L0H1 changes p_forward by at most 0.5 on obstacle-in-front at RTG 0.9.')
    assert "from dt_circuits.claim import Ablation, Check, Claim, OnFamily" in text
    assert "Saved from the dt-circuits app" in text
    verdict = next(m.value for m in at.markdown if m.value.startswith("Verdict of `app-test-claim`"))
    json_file = next((app.claims_dir.parent / "cache").glob("claims-*.json"))
    import json

    data = json.loads(json_file.read_text())
    (claim,) = data["claims"]
    assert claim["id"] == "app-test-claim" and claim["checks"][0]["bound"] == "≤ 0.5"
    assert verdict == f"Verdict of `app-test-claim`: **{claim['verdict']}** ({claim['reason']})"


def test_memory_checkpoint_plays_with_the_librarys_window(tmp_path: Path) -> None:
    path = memory_reference_checkpoint()
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"MemoryDT-GatedMLP checkpoint missing at {path}")
        pytest.skip(f"MemoryDT-GatedMLP checkpoint missing at {path}: see README 'The published DTI checkpoints'")
    claims_dir = tmp_path / "claims"
    claims_dir.mkdir()
    at = AppTest.from_file(str(_script(tmp_path, [str(path)], claims_dir)), default_timeout=TIMEOUT)
    at.query_params.update({"actions": "2,2", "seed": "3", "rtg": "0.9"})
    at.run()
    _no_failure(at)
    env = MemoryS7FixedStart()
    frames = [env.reset(seed=3)[0]["image"]]
    frames += [env.step(2)[0]["image"] for _ in range(2)]
    model = load_checkpoint(path)
    window = pad_window(np.stack(frames), np.array([2, 2]), np.full(3, 0.9), np.arange(3),
                        n_timesteps=model.cfg.n_timesteps, pad_action=model.cfg.n_actions, initial_rtg=0.9)  # fmt: skip
    probs = model.action_probs(*stack_windows([window]))[0].numpy()
    assert [m.value for m in at.metric] == [f"{p:.4f}" for p in probs]
    labels = _frame(at, "R0").columns
    assert list(labels[:3]) == ["R0", "s0", "a0"] and labels[-1] == f"s{model.cfg.n_timesteps - 1}"


def test_stopping_the_command_stops_the_server(tmp_path: Path) -> None:
    """``dt-circuits app`` becomes the Streamlit server, so the signal a user (or a service manager) sends the
    command's process stops the page; no server is left behind on the port."""
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "dt_circuits.cli", "app", "--port", str(port), "--cache-dir", str(tmp_path / "c")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    health = f"http://localhost:{port}/_stcore/health"

    def up() -> bool:
        try:
            return urllib.request.urlopen(health, timeout=2).read() == b"ok"
        except OSError:
            return False

    try:
        deadline = time.monotonic() + 60
        while not up():
            assert proc.poll() is None and time.monotonic() < deadline, "the app did not start"
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)  # the command's own process, not its group
        proc.wait(timeout=20)
        assert not up(), "a server is still answering after the command was stopped"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
