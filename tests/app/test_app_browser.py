"""The real app in headless Chromium: upload through the browser, open every page, change
controls, download an export bundle and check its members. Screenshots of every page are saved
under an artifacts folder the test prints (`$MBRL_TEST_ARTIFACTS` if set, else pytest's tmp)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest
import xarray as xr
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
        deadline = time.monotonic() + 180  # a loaded machine (pytest -n 2) starts it slowly
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


CHARTS = '[data-testid="stPlotlyChart"] .main-svg'
BUNDLE_EXTS = ("svg", "pdf", "png", "html", "csv", "nc")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots and the downloaded bundle are kept (printed, to find them)."""
    chosen = os.environ.get("MBRL_TEST_ARTIFACTS", "").strip()
    out = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test artifacts: {out}")
    return out


STATUS = '[data-testid="stStatusWidget"]'


def _settle(page, quiet: float = 1.0, timeout: float = 180.0) -> None:  # noqa: ANN001
    """Wait until the script run is over: Streamlit's status widget seen (if it shows within
    3 s: a fast run may be over before we look), then gone for `quiet` seconds."""
    with contextlib.suppress(playwright.TimeoutError):
        page.wait_for_selector(STATUS, timeout=3_000)
    deadline, since = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if page.locator(STATUS).count() == 0:
            since = since or time.monotonic()
            if time.monotonic() - since >= quiet:
                return
        else:
            since = None
        time.sleep(0.2)
    raise AssertionError("the app kept running for minutes")


def _no_exception(page) -> None:  # noqa: ANN001
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, shown.first.inner_text()


def _check_bundle(blob: bytes, stem: str) -> dict:
    zf = zipfile.ZipFile(io.BytesIO(blob))
    assert sorted(zf.namelist()) == sorted([f"{stem}.{e}" for e in BUNDLE_EXTS] + ["provenance.json"])
    assert ElementTree.fromstring(zf.read(f"{stem}.svg")).tag.endswith("svg")
    assert zf.read(f"{stem}.pdf").startswith(b"%PDF")
    assert zf.read(f"{stem}.png").startswith(b"\x89PNG\r\n\x1a\n")
    csv = pd.read_csv(io.BytesIO(zf.read(f"{stem}.csv")))
    nc = xr.open_dataset(io.BytesIO(zf.read(f"{stem}.nc")), engine="h5netcdf").load()
    assert len(csv) == int(nc["l1_error_mean"].size)
    assert sorted(csv["l1_error_mean"]) == pytest.approx(sorted(nc["l1_error_mean"].values.ravel()))
    return json.loads(zf.read("provenance.json"))


def test_upload_every_page_controls_and_bundle_in_a_browser(
    server: str, small_zip: Path, tmp_path: Path, datasets: Path, artifacts: Path
) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800}, accept_downloads=True)
            # generous: under `pytest -n 2` another worker's training shares the two cores
            page.set_default_timeout(180_000)
            # a deep link as the fresh server's first request still goes through app/main.py
            page.goto(f"{server}/gradient_error")
            page.wait_for_function(f"document.querySelectorAll('{CHARTS}').length >= 2")
            page.get_by_role("link", name="Runs library").click()
            page.wait_for_selector('[data-testid="stDataFrame"]')
            upload = '[data-testid="stFileUploader"] input[type="file"]'
            page.set_input_files(upload, str(bad))
            page.get_by_text("is not a usable run store").wait_for()
            _no_exception(page)
            page.set_input_files(upload, str(small_zip))
            page.get_by_text("to this session's runs").wait_for()
            _settle(page)
            page.screenshot(path=artifacts / "00_upload.png")

            links = page.locator('[data-testid="stSidebarNav"] a')
            titles = [links.nth(i).inner_text().split("\n")[-1] for i in range(links.count())]
            assert {"Runs library", "Gradient error", "Replay buffer"} <= set(titles)
            for i, title in enumerate(titles):
                link = page.get_by_role("link", name=title, exact=True)
                href = link.get_attribute("href")
                link.click()
                # the page writes its selection and settings into the query (URL state)
                page.wait_for_url(lambda url, href=href: url.split("?")[0] == href.split("?")[0])
                _settle(page)
                _no_exception(page)
                assert page.locator("h1").count() >= 1, title
                slug = re.sub(r"\W+", "_", title).lower()
                page.screenshot(path=artifacts / f"{i + 1:02d}_{slug}.png")

            # change controls: a page of the replay buffer
            page.get_by_role("link", name="Replay buffer", exact=True).click()
            _settle(page)
            number = page.get_by_label(re.compile(r"^Page \(1"))
            number.fill("3")
            number.press("Enter")
            page.get_by_text("Steps 50–74").wait_for()
            _no_exception(page)
            page.screenshot(path=artifacts / "buffer_page_3.png")

            # the uploaded run on the gradient page, then its first panel's bundle
            page.get_by_role("link", name="Gradient error", exact=True).click()
            _settle(page)
            runs = page.get_by_role("combobox", name="Runs")
            runs.click()
            runs.press("Backspace")  # the multiselect's default (the bundled run) out
            _settle(page)
            page.get_by_role("combobox", name="Runs").click()
            page.get_by_role("option", name=re.compile(r"small\.zarr\.zip")).click()
            page.keyboard.press("Escape")
            _settle(page)
            page.wait_for_function(f"document.querySelectorAll('{CHARTS}').length >= 2")
            _no_exception(page)
            expander = page.locator('[data-testid="stExpander"]').first
            expander.get_by_text("Export figure or data").click()
            expander.get_by_role("button", name="Prepare").click()  # the bundle, the default
            button = expander.get_by_role("button", name=re.compile(r"Download small_l1_error\.zip"))
            button.wait_for(timeout=120_000)
            page.screenshot(path=artifacts / "gradient_error_export.png")
            with page.expect_download() as info:
                button.click()
            saved = artifacts / info.value.suggested_filename
            info.value.save_as(saved)
            assert saved.name == "small_l1_error.zip"
            record = _check_bundle(saved.read_bytes(), "small_l1_error")
            assert [r["store"] for r in record["runs"]] == ["small.zarr.zip"]
            assert record["runs"][0]["kind"] == "gradient_error" and record["runs"][0]["config"]["seeds"] == 2
            assert [k[:7] for k in record["settings"]["ge_runs"]] == ["upload:"]
            assert record["page"] == "Gradient error" and record["style"]["column"] == "single"
            assert page.get_by_text("Export all 2 panels of this page (zip)").count() == 1
        finally:
            browser.close()
