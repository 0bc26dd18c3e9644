"""The app in a real browser: ``dt-circuits app`` started as a user starts it, driven by headless Chromium (Debian's
``chromium`` + ``chromium-driver``; nothing is downloaded at run time). Load a checkpoint, step 5 times with the
model, put a ball in front, ablate the obstacle head, read the P(forward) shown against the library's value for
that state, save a claim, and run the claim file under pytest. Screenshots go to ``test-artifacts/app/``.

Without Chromium the test skips, saying how to install it; under ``CI`` it fails instead.
"""

from __future__ import annotations

import os
import shutil
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

pytestmark = pytest.mark.xdist_group("app")

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
RAW = CHECKPOINTS_DIR / "raw-index"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "app"
WAIT = 60


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


@pytest.fixture
def server(tmp_path: Path):
    """``dt-circuits app`` on a free port, on raw-index, with an empty claims folder in tmp_path."""
    _require_browser()
    claims_dir = tmp_path / "claims"
    claims_dir.mkdir()
    port = _free_port()
    cmd = [sys.executable, "-m", "dt_circuits.cli", "app", "--checkpoint", str(RAW), "--claims-dir", str(claims_dir),
           "--port", str(port), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "DT_CIRCUITS_THREADS": "1"})
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + WAIT
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the app did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield url, claims_dir
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def browser(tmp_path: Path):
    os.environ["SE_AVOID_STATS"] = "true"  # Selenium's usage statistics off
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


def _idle(driver) -> None:  # noqa: ANN001
    """Wait until the script run the last action started has finished (Streamlit's status widget is gone)."""
    from selenium.webdriver.common.by import By

    time.sleep(0.3)
    _wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'), "page idle")


def _metric(driver, label: str) -> str | None:  # noqa: ANN001
    """The value shown by the metric labelled ``label`` (None while the page has none)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:
        for m in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
            if m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text.strip() == label:
                return m.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text.strip()
    except WebDriverException:  # the page re-rendered under us
        return None
    return None


def _shot(driver, tmp_path: Path, name: str) -> None:  # noqa: ANN001
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


def _library_p_forward(view) -> float:  # noqa: ANN001
    """P(forward) for the view's state, edits and intervention, from the library alone."""
    from minigrid.core.world_object import Ball

    x, y, d = view.agent
    obs = StateRenderer().render(GridState((x, y), d, view.obstacles))
    assert view.edits == ((3, 5, "ball"),)
    obs[3, 5] = Ball().encode()
    model = load_checkpoint(RAW)
    subject = Subject.from_model(model)
    inp = Inputs.make(obs[None], view.rtg, view.timestep)
    hooks, _ = recipe_hooks(subject, [subject.component(view.ablate)], view.recipe, view.rtg, 1, point=True)
    return float(torch.softmax(run(model, inp, hooks).double(), -1)[0, 2])


def test_the_app_in_a_browser(server, browser, tmp_path: Path) -> None:
    try:
        _drive(server, browser, tmp_path)
    except BaseException:
        _shot(browser, tmp_path, "failure")  # what the page showed when it went wrong
        raise


def _drive(server, browser, tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, claims_dir = server
    browser.get(f"{url}/?ckpt={RAW}&seed=1&rtg=0.9")
    _wait(browser, lambda d: _metric(d, "P(forward)"), "the checkpoint's page")
    _idle(browser)
    _shot(browser, tmp_path, "1-loaded")

    for step in range(1, 6):
        _click(browser, ".st-key-step_model button")
        _wait(browser, lambda d, step=step: _query(d).get("t") == str(step), f"step {step}")
    _idle(browser)
    _shot(browser, tmp_path, "2-five-steps")

    _click(browser, ".st-key-ball_front button")
    _wait(browser, lambda d: _query(d).get("edits") == "3,5,ball", "the ball in front")
    ablate = browser.find_element(By.CSS_SELECTOR, ".st-key-ablate")
    next(label for label in ablate.find_elements(By.TAG_NAME, "label") if label.text.startswith("L0H1")).click()
    _wait(browser, lambda d: _query(d).get("ablate") == "L0H1", "the obstacle head ablated")
    _idle(browser)
    _shot(browser, tmp_path, "3-ball-in-front-obstacle-head-ablated")

    view = from_query(_query(browser))
    assert view.timestep == 5 and view.ablate == "L0H1" and view.recipe == "mean"
    assert _metric(browser, "P(forward)") == f"{_library_p_forward(view):.4f}"

    next(
        b for b in browser.find_elements(By.CSS_SELECTOR, ".st-key-section button") if b.text == "Save as claim"
    ).click()
    box = _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".st-key-claim_id input"), "the claim form")
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

    result = subprocess.run(
        [sys.executable, "-m", "pytest", f"--checkpoint={RAW}", "--claims-dir", str(claims_dir), str(claims_dir),
         "-q", "-p", "no:cacheprovider", "-o", "addopts="],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "DT_CIRCUITS_THREADS": "1"}, check=False,
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-2000:]
    assert (" 1 passed" in f" {summary}") or (" 1 failed" in f" {summary}"), result.stdout[-3000:]
