"""The real app in headless Chromium: upload through the browser, plot, export, download."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_helpers import REPO

from app.export import find_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None, reason="needs Chromium (apt-get install chromium)"),
]
playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")

BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """`streamlit run app/main.py` on a free loopback port, as the README starts it."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MBRL_WORKBENCH_DATASETS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start: {proc.stderr.read()!r}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_upload_plot_and_export_in_a_browser(
    server: str, small_zip: Path, tmp_path: Path, datasets: Path
) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.set_default_timeout(30_000)
            # a deep link as the fresh server's first request still goes through app/main.py
            page.goto(f"{server}/gradient_error")
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= 2"
            )
            page.get_by_role("link", name="Runs library").click()
            page.wait_for_selector('[data-testid="stDataFrame"]')
            upload = '[data-testid="stFileUploader"] input[type="file"]'

            page.set_input_files(upload, str(bad))
            page.get_by_text("is not a usable run store").wait_for()
            assert page.locator('[data-testid="stException"]').count() == 0

            page.set_input_files(upload, str(small_zip))
            page.get_by_text("to this session's runs").wait_for()

            page.get_by_role("link", name="Gradient error").click()
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= 2"
            )
            assert page.locator('[data-testid="stException"]').count() == 0

            expander = page.locator('[data-testid="stExpander"]').first
            expander.get_by_text("Export figure or data").click()
            expander.get_by_role("button", name="Prepare").click()  # PNG, the default
            button = expander.get_by_role("button", name="Download gradient_error_l1_error.png")
            button.wait_for(timeout=60_000)
            with page.expect_download() as info:
                button.click()
            saved = tmp_path / info.value.suggested_filename
            info.value.save_as(saved)
            assert saved.name == "gradient_error_l1_error.png"
            assert saved.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        finally:
            browser.close()
