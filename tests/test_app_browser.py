"""The app in a real browser: ``dt-circuits app`` started as a user starts it, driven by headless Chromium (Debian's
``chromium`` + ``chromium-driver``; nothing is downloaded at run time). Load a checkpoint, step 5 times with the
model, put a ball in front (where there was none), zero-ablate the obstacle head, read every action probability and
its delta against the library's values for that state, save a claim, and run the claim file under pytest.
Screenshots go to ``test-artifacts/app/``.

The scenario is chosen so that each step has teeth: the ball edit changes the observation and the probabilities,
and the ablation moves them by far more than the 4 decimals shown (the test asserts both from the library).

Without Chromium the test skips, saying how to install it; under ``CI`` it fails instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import pytest
import torch

from dt_circuits.analysis.interventions import Inputs, run
from dt_circuits.app.view import from_query
from dt_circuits.claims.evaluation.recipes import recipe_hooks
from dt_circuits.claims.evaluation.subject import Subject
from dt_circuits.core.paths import CHECKPOINTS_DIR, REPO_ROOT
from dt_circuits.dt.checkpoint import load_checkpoint
from dt_circuits.env.scenarios import GridState, StateRenderer
from dt_circuits.env.spec import FRONT_VIEW_CELL, OBJECT

pytestmark = pytest.mark.xdist_group("app")

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
RAW = CHECKPOINTS_DIR / "raw-index"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "app"
WAIT = 60
ACTIONS = ("left", "right", "forward")
#: The scenario, found with the library on raw-index (Intel Xeon, 2 cores, torch CPU): seed 3, 5 sampled model
#: steps from RTG 0.9 put the agent at (5, 1) facing down with the front cell empty; P(left, right, forward) is
#: (0.1581, 0.1791, 0.6629). A ball in front makes it (0.4042, 0.5958, 0.0000); zero-ablating L0H1 (the obstacle
#: head) then gives (0.4018, 0.4522, 0.1460), deltas (-0.0024, -0.1436, +0.1459). (With seed 1 the front cell
#: already held a ball, and L0H1 under mean moved P(forward) by +0.0001, which proved nothing.)
SEED, STEPS, COMPONENT, RECIPE = 3, 5, "L0H1", "zero"


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if missing:
        message = f"no browser for the app test ({', '.join(missing)}): apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The app's process and where it listens."""

    def __init__(self, tmp_path: Path) -> None:
        self.claims_dir = tmp_path / "claims"
        self.claims_dir.mkdir()
        port = _free_port()
        self.url = f"http://localhost:{port}"
        self.log_path = tmp_path / "server.log"
        cmd = [sys.executable, "-m", "dt_circuits.cli", "app", "--checkpoint", str(RAW), "--port", str(port),
               "--claims-dir", str(self.claims_dir), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
        self._log = self.log_path.open("w")
        # its own process group: `dt-circuits app` runs `streamlit run` as a child, which a signal to the CLI
        # process alone would leave running (and serving, and holding CPU) after the test
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "DT_CIRCUITS_THREADS": "1"},
        )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """End the CLI process and the Streamlit server it started (the whole process group)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            deadline = time.monotonic() + 3
            while _group_running(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not _group_running(self.proc.pid):
                break
        self.proc.wait(timeout=5)
        self._log.close()


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (exited ones waiting to be reaped do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state not in "ZX":
            return True
    return False


@pytest.fixture
def server(tmp_path: Path):
    """``dt-circuits app`` started on a free port, on raw-index, with an empty claims folder in tmp_path (not yet
    waited for, so that the browser starts meanwhile: ``server.wait_ready()``)."""
    _require_browser()
    srv = Server(tmp_path)
    yield srv
    srv.stop()


#: ``python -m pytest ARGS`` with its imports done before it is told to go (a line on stdin), so that they overlap
#: with the browser session instead of following it; the claim file it runs exists only once the page saved it
RUNNER = (
    "import sys\n"
    "import pytest\n"
    "import dt_circuits.claim, dt_circuits.claims.plugin, dt_circuits.claims.evaluation.checks\n"
    "import dt_circuits.claims.suite.run, dt_circuits.evaluation.pool\n"
    "try:\n    import envpool  # the claims' default env backend, when installed\n"
    "except ImportError:\n    pass\n"
    "sys.stdin.readline()\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)


@pytest.fixture
def claim_runner(server: Server, tmp_path: Path):
    """A pytest process for the claims folder the app saves into, waiting to be told to run."""
    cmd = [sys.executable, "-c", RUNNER, f"--checkpoint={RAW}", "--claims-dir", str(server.claims_dir),
           str(server.claims_dir), "-q", "-p", "no:cacheprovider", "-o", "addopts="]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "DT_CIRCUITS_THREADS": "1"},
    )  # fmt: skip
    yield proc
    if proc.poll() is None:  # the test failed before it ran the claim
        proc.kill()
        proc.communicate()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SE_AVOID_STATS", "true")  # Selenium's usage statistics off
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1800"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _query(driver) -> dict[str, str]:  # noqa: ANN001
    return dict(parse_qsl(urlparse(driver.current_url).query))


def _wait(driver, condition, what: str, timeout: float = WAIT):  # noqa: ANN001
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: condition(d), message=what)


def _click(driver, css: str) -> None:  # noqa: ANN001
    """Click the first element matching ``css`` once the page is idle (a click during a rerun can be lost)."""
    from selenium.webdriver.common.by import By

    _idle(driver)
    element = _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, css), css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


#: what is on the page while a script run is pending or running: Streamlit marks every element of the previous run
#: ``data-stale="true"`` from the moment a widget asks for a rerun until the run has re-sent it, and shows its
#: status widget only after a run has taken 500 ms (so its absence alone says nothing about a short or new run)
BUSY = '[data-testid="stStatusWidget"], [data-stale="true"]'


def _idle(driver) -> None:  # noqa: ANN001
    """Wait until the script run the last action started has finished: no stale element, no status widget."""
    from selenium.webdriver.common.by import By

    time.sleep(0.2)  # the click's rerun request reaches the page
    _wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, BUSY), "page idle")


def _metrics(driver) -> dict[str, tuple[str, str | None]] | None:  # noqa: ANN001
    """label -> (value, delta or None) of every metric shown (None while the page re-renders under us)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    out = {}
    try:
        for m in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
            label = m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text.strip()
            value = m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip()
            delta = m.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricDelta"]')
            out[label] = (value, delta[0].text.strip().split()[-1] if delta else None)
    except WebDriverException:
        return None
    return out


def _caption(driver) -> str:  # noqa: ANN001
    """The caption over the action probabilities ("" while there is none)."""
    from selenium.webdriver.common.by import By

    for c in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stCaptionContainer"]'):
        if c.text.startswith("action probabilities"):
            return c.text
    return ""


def _shot(driver, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


def _library_obs(view):  # noqa: ANN001
    """The observation of the view's state as the real env renders it, edits applied (ball only), by the library."""
    from minigrid.core.world_object import Ball

    x, y, d = view.agent
    obs = StateRenderer().render(GridState((x, y), d, view.obstacles))
    for ex, ey, kind in view.edits:
        assert kind == "ball", view.edits
        obs[ex, ey] = Ball().encode()
    return obs


def _library_probs(view) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """(P under the view's intervention, P clean) per action, for the view's state and edits, from the library."""
    model = load_checkpoint(RAW)
    subject = Subject.from_model(model)
    inp = Inputs.make(_library_obs(view)[None], view.rtg, view.timestep)
    hooks = []
    if view.ablate:
        hooks, _ = recipe_hooks(subject, [subject.component(view.ablate)], view.recipe, view.rtg, 1, point=True)
    probs = torch.softmax(run(model, inp, hooks).double(), -1)[0].tolist()
    clean = torch.softmax(run(model, inp).double(), -1)[0].tolist()
    return probs, clean


def _shown(values: list[float]) -> dict[str, str]:
    return {f"P({a})": f"{p:.4f}" for a, p in zip(ACTIONS, values, strict=True)}


def test_the_app_in_a_browser(server: Server, browser, claim_runner, tmp_path: Path) -> None:  # noqa: ANN001
    server.wait_ready()
    try:
        _drive(server, browser, claim_runner, tmp_path)
    except BaseException:
        _shot(browser, tmp_path, "failure")  # what the page showed when it went wrong
        raise


def _drive(server: Server, browser, claim_runner: subprocess.Popen, tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, claims_dir = server.url, server.claims_dir
    browser.get(f"{url}/?ckpt={RAW}&seed={SEED}&rtg=0.9")
    _wait(browser, lambda d: (_metrics(d) or {}).get("P(forward)"), "the checkpoint's page")
    _idle(browser)
    _shot(browser, tmp_path, "1-loaded")

    for step in range(1, STEPS + 1):
        _click(browser, ".st-key-step_model button")
        _wait(browser, lambda d, step=step: _query(d).get("t") == str(step), f"step {step}")
    _idle(browser)
    _shot(browser, tmp_path, "2-five-steps")
    before = from_query(_query(browser))
    assert before.timestep == STEPS and not before.edits and not before.ablate
    front = _library_obs(before)[FRONT_VIEW_CELL]
    assert front[0] == OBJECT["empty"], f"the front cell already holds object {front[0]}: the edit would be a no-op"

    _click(browser, ".st-key-ball_front button")
    _wait(browser, lambda d: _query(d).get("edits") == "3,5,ball", "the ball in front")
    _idle(browser)
    edited = from_query(_query(browser))
    (unedited, _), (with_ball, _) = _library_probs(before), _library_probs(edited)
    assert max(abs(p - q) for p, q in zip(with_ball, unedited, strict=True)) >= 0.05  # the edit changes the state
    assert {k: v for k, (v, _) in (_metrics(browser) or {}).items()} == _shown(with_ball)

    for key, text in (("ablate", COMPONENT), ("recipe", RECIPE)):
        radio = browser.find_element(By.CSS_SELECTOR, f".st-key-{key}")
        _idle(browser)
        next(label for label in radio.find_elements(By.TAG_NAME, "label") if label.text.split()[0] == text).click()
        _wait(browser, lambda d, key=key, text=text: _query(d).get(key) == text, f"{key}={text} in the URL")
    # the URL changes at the start of the rerun, the numbers at its end: wait for the caption, then for the run
    _wait(browser, lambda d: _caption(d).endswith(f"(under {RECIPE} on {COMPONENT})"), "the ablated numbers")
    _idle(browser)
    _shot(browser, tmp_path, "3-ball-in-front-obstacle-head-ablated")

    view = from_query(_query(browser))
    assert (view.timestep, view.edits, view.ablate, view.recipe) == (STEPS, ((3, 5, "ball"),), COMPONENT, RECIPE)
    probs, clean = _library_probs(view)
    assert clean == with_ball
    assert max(abs(p - q) for p, q in zip(probs, clean, strict=True)) >= 0.05  # the ablation has an effect to show
    assert _caption(browser) == f"action probabilities at RTG {view.rtg:g}, t = {STEPS} (under {RECIPE} on {COMPONENT})"
    shown = _metrics(browser)
    assert shown == {
        label: (value, f"{p - q:+.4f}")
        for (label, value), p, q in zip(_shown(probs).items(), probs, clean, strict=True)
    }

    next(
        b for b in browser.find_elements(By.CSS_SELECTOR, ".st-key-section button") if b.text == "Save as claim"
    ).click()
    box = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".st-key-claim_id input"), "the claim form")
    _idle(browser)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("browser-saved-claim", Keys.ENTER)
    _idle(browser)
    run_now = browser.find_element(By.CSS_SELECTOR, ".st-key-claim_run label")
    run_now.click()  # save only: the claim is run below under pytest
    _idle(browser)
    _click(browser, ".st-key-save_claim button")
    path = claims_dir / "browser_saved_claim.py"
    _wait(browser, lambda d: f"saved {path}" in d.page_source, "the saved claim")
    _shot(browser, tmp_path, "4-claim-saved")
    assert 'id="browser-saved-claim"' in path.read_text().replace("'", '"')

    # the keyboard plays too: → is the "right" button's step (a turn: same cell, direction + 1)
    before = from_query(_query(browser))
    browser.execute_script("document.activeElement && document.activeElement.blur();")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    _wait(browser, lambda d: _query(d).get("t") == str(before.timestep + 1), "the arrow key's step")
    _idle(browser)
    after = from_query(_query(browser))
    assert after.agent == (*before.agent[:2], (before.agent[2] + 1) % 4), (before.agent, after.agent)

    out, err = claim_runner.communicate("go\n", timeout=3 * WAIT)  # the claim file now exists: run it
    summary = out.strip().splitlines()[-1]
    assert claim_runner.returncode in (0, 1), out[-3000:] + err[-2000:]
    assert (" 1 passed" in f" {summary}") or (" 1 failed" in f" {summary}"), out[-3000:]
