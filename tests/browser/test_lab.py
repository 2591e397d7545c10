"""Notebook 01 in a real browser: JupyterLab in headless Chromium (Debian's ``chromium``, driven by
Playwright; its own browser download fails offline). The notebook runs top to bottom in smoke mode;
then the label-word explorer must answer a typed sentence with a new chart, and picking a template must
bring that template's own label words.

Run with ``make test-browser`` (CI does). Under plain ``pytest tests/`` it is skipped when Playwright
or Chromium is missing, unless BBTKIT_BROWSER_REQUIRED=1 makes that a failure."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import bbtkit as bk

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "01_prompt_based_learning.ipynb"
TOKEN = "bbt-course-browser-test"
REQUIRED = os.environ.get("BBTKIT_BROWSER_REQUIRED") == "1"


def chromium() -> str:
    found = os.environ.get("BBTKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        (pytest.fail if REQUIRED else pytest.skip)(
            "No Chromium: install Debian's package (apt-get install chromium) or set BBTKIT_CHROMIUM.")
    return found


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of notebook 01 (the browser's saves must not touch the repository)."""
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, BBTKIT_SMOKE="1", BBTKIT_DATA=str(bk.data_dir()), JUPYTER_CONFIG_DIR=str(root / "cfg"))
    log = open(root / "lab.log", "w")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.workspaces_dir={root / 'ws'}", f"--LabApp.user_settings_dir={root / 'settings'}"]
    server = subprocess.Popen(cmd + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("JupyterLab exited:\n" + (root / "lab.log").read_text()[-3000:])
                time.sleep(1)
        else:
            pytest.fail("JupyterLab did not answer in 2 minutes:\n" + (root / "lab.log").read_text()[-3000:])
        yield url, root
    finally:
        server.terminate()
        server.wait(30)
        log.close()


# The notebook panel JupyterLab shows, through the app it exposes to the page.
PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
STATE = f"""() => {{
  const nb = {PANEL};
  if (!nb || !nb.content || !nb.sessionContext || !nb.sessionContext.session) return "loading";
  const cells = nb.content.widgets.filter(c => c.model.type === "code");
  const errors = cells.flatMap(c => c.model.outputs.toJSON()).filter(o => o.output_type === "error");
  if (errors.length) return "error: " + errors[0].ename + ": " + errors[0].evalue;
  const done = cells.every(c => c.model.executionCount !== null);
  return nb.sessionContext.kernelDisplayStatus + (done ? " all-run" : "");
}}"""


def wait_for(page, predicate, what: str, timeout: float):
    """Poll predicate() until it is true; fail with what was awaited and the notebook's state."""
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(500)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; notebook state: {page.evaluate(STATE)}")


def test_notebook_01_runs_and_its_explorer_answers(lab):
    if REQUIRED:
        from playwright import sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (make test-browser does)")
    url, root = lab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/lab/tree/notebooks/{NOTEBOOK}?token={TOKEN}")
            wait_for(page, lambda: page.evaluate(STATE).startswith("idle"), "the kernel to start", 180)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            wait_for(page, lambda: (s := page.evaluate(STATE)) == "idle all-run" or s.startswith("error"),
                     "every cell to run", 900)
            assert page.evaluate(STATE) == "idle all-run", page.evaluate(STATE)

            # the explorer: its box holds the input text, the template, the label words and the chart
            box = page.locator(".widget-vbox", has=page.locator("textarea")).first
            box.scroll_into_view_if_needed()
            text, template, words = box.locator("textarea"), box.locator("select"), box.locator(".widget-text input")
            chart = lambda: box.locator("img").first.get_attribute("src", timeout=60_000)  # noqa: E731
            assert text.input_value() == "A gripping story with wonderful acting."
            assert words.input_value() == "negative, positive"       # the first template's own label words
            before = chart()
            assert before.startswith("data:image/png")

            text.fill("Two hours of my life I will never get back.")
            wait_for(page, lambda: chart() != before, "the chart to redraw for the typed sentence", 60)

            template.select_option(label="… In summary, it was")
            wait_for(page, lambda: words.input_value() == "terrible, great",
                     "the label words of '… In summary, it was' (terrible, great)", 60)
            typed = chart()
            template.select_option(label="… It was")
            wait_for(page, lambda: words.input_value() == "bad, great", "the label words of '… It was'", 60)
            wait_for(page, lambda: chart() != typed, "the chart to redraw for the new template", 60)
        except BaseException:
            page.screenshot(path=str(root / "failure.png"), full_page=True)
            print(f"screenshot: {root / 'failure.png'}; server log: {root / 'lab.log'}")
            raise
        finally:
            browser.close()
