"""JupyterLab in a real browser: run notebook 06, check for errors, move an explorer slider, take a screenshot.

Debian's Chromium, driven by Playwright for Python (Playwright's own browser download does not work offline).
The server runs on 127.0.0.1 with a random port and token, from this interpreter, and is always stopped.
"""
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NOTEBOOK = "notebooks/06_latents.ipynb"
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a free port; yields its base URL and token; always stops it."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is missing: `apt-get install -y chromium` (as .ci/run does) to run this test")
    pytest.importorskip("playwright.sync_api", reason="playwright is missing: pip install -e .[dev]")
    port, token = _free_port(), secrets.token_hex(16)
    work = tmp_path / "work" / "notebooks"  # a copy: the committed notebook is never touched
    work.mkdir(parents=True)
    shutil.copy(ROOT / NOTEBOOK, work)
    trained = ROOT / "runs" / "05_train" / "checkpoint.pt"
    if trained.exists():  # the model a learner has after notebook 05; on a clean clone 06 trains its quick one
        (work / "runs" / "05_train").mkdir(parents=True)
        shutil.copy(trained, work / "runs" / "05_train")
    settings = tmp_path / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}')
    notebook_settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)  # render every cell, so the explorer stays in the DOM when scrolled away
    (notebook_settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    apputils = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)  # no "official Jupyter news?" toast over the screenshot
    (apputils / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"))
    env.pop("VAE_SMOKE_TEST", None)  # 06 as a learner runs it; its figures go to the copy's own figures/
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path / 'work'}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0", "--allow-root",
           "--LabApp.extension_manager=readonly", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path / "work")
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not start within 60 s")
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


RUNNING = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
  return prompts.length > 0 && prompts.every(t => /\\[\\d+\\]/.test(t));
}"""


def test_notebook_06_runs_and_the_explorer_responds(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}&reset", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
            page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=60_000)
            page.wait_for_timeout(2000)  # let the kernel connect
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(RUNNING, timeout=300_000, polling=1000)

            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
            assert errors.count() == 0, errors.first.inner_text()[:2000]
            assert "Traceback" not in page.locator(".jp-Notebook").inner_text()

            try:
                _move_a_slider(page)
            except Exception:
                (ROOT / "runs").mkdir(exist_ok=True)
                page.screenshot(path=str(ROOT / "runs" / "browser-failure.png"), full_page=True)
                raise
            page.evaluate("() => document.querySelector('.vae-explorer').scrollIntoView({block: 'center'})")
            page.wait_for_timeout(500)  # let the scroll settle before the picture
            page.screenshot(path=str(ROOT / "figures" / "jupyterlab.png"))
        finally:
            browser.close()


def _move_a_slider(page):
    """Drag the first explorer slider to its right end; the decoded image must change."""
    image = page.locator(".vae-explorer-image").first
    image.scroll_into_view_if_needed()
    image.wait_for(state="visible", timeout=30_000)
    before = image.get_attribute("src")
    slider = page.locator(".vae-explorer-slider").first
    slider.scroll_into_view_if_needed()
    readout = slider.locator(".widget-readout").first
    start = readout.inner_text()
    handle = slider.locator(".noUi-handle, .ui-slider-handle, input[type=range]").first
    handle.focus()
    page.keyboard.press("End")  # the slider's maximum, +3 prior standard deviations
    page.wait_for_function("(r) => document.querySelector('.vae-explorer-slider .widget-readout').textContent !== r",
                           arg=start, timeout=10_000)
    page.wait_for_function("(b) => document.querySelector('.vae-explorer-image').src !== b", arg=before,
                           timeout=30_000)
    assert image.get_attribute("src") != before
