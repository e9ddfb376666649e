"""Live view: a training store still being written by the engine's RunWriter; the page, run
again after a new commit, shows the new snapshot (the reader reopens a store whose commit
changed), and offers the live toggle while the store is `running`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from app_helpers import LEARNING_PAGE, assert_clean, chart_traces, floats, page

from app.library import DATASETS_ENV
from engine.record import RunWriter

EPISODES = 3


def _snapshot(w: RunWriter, i: int, rng: np.random.Generator) -> np.ndarray:
    """Commit evaluation snapshot `i` (at env step 1000 (i + 1)); returns its episode returns."""
    returns = rng.normal(100.0 * i, 5.0, size=EPISODES).astype(np.float32)
    w.append("eval", snapshot=[i], env_step=[1000 * (i + 1)], length=[[1000] * EPISODES], **{"return": returns[None]})
    w.commit()
    return returns


def test_page_shows_each_new_snapshot_of_a_running_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv(DATASETS_ENV, str(folder))
    rng = np.random.default_rng(0)
    w = RunWriter.create(folder / "live.zarr", kind="training", env_id="InvertedPendulum-v5", algorithm="sac",
                         seed=0, config={"algo": "sac", "env_id": "InvertedPendulum-v5", "seed": 0})
    try:
        w.add_group("eval", coords={"episode": np.arange(EPISODES)})
        means = [_snapshot(w, 0, rng).mean()]
        at = page(LEARNING_PAGE)
        assert_clean(at)
        assert at.toggle(key="live").value  # running: live view on by default
        assert at.number_input(key="live_every").value == 5
        line = chart_traces(at, 0)[-1]
        np.testing.assert_allclose(floats(line["x"]), [1000])
        np.testing.assert_allclose(floats(line["y"]), means, rtol=1e-6)

        for i in (1, 2):  # the writer commits, the page runs again: the new snapshot is drawn
            means.append(_snapshot(w, i, rng).mean())
            at.run()
            assert_clean(at)
            line = chart_traces(at, 0)[-1]
            np.testing.assert_allclose(floats(line["x"]), [1000, 2000, 3000][: i + 1])
            np.testing.assert_allclose(floats(line["y"]), means, rtol=1e-6)
    finally:
        w.close(status="failed")
    at.run()
    assert_clean(at)
    assert not at.get("toggle") or all(t.key != "live" for t in at.toggle)  # no longer running


@pytest.mark.browser
def test_live_view_refreshes_a_real_browser(tmp_path: Path) -> None:
    """`streamlit run` + headless Chromium: with `?live_every=1` the open page redraws each new
    snapshot the writer commits, with no user action (the `run_every` fragment's rerun)."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from app.export import find_chromium

    if find_chromium() is None:
        pytest.skip("needs Chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright")
    from app_helpers import REPO

    folder = tmp_path / "runs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    w = RunWriter.create(folder / "live.zarr", kind="training", env_id="X-v0", algorithm="sac", seed=0,
                         config={"algo": "sac", "env_id": "X-v0", "seed": 0})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env={**os.environ, DATASETS_ENV: str(folder)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        w.add_group("eval", coords={"episode": np.arange(EPISODES)})
        _snapshot(w, 0, rng)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=find_chromium(), args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(180_000)  # generous: under `pytest -n 2` a training may share the cores
            deadline = time.monotonic() + 180  # the server may still be starting (slowly, under -n 2)
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/learning_curves?live_every=1")
                    break
                except sync_api.Error:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            page.wait_for_selector(".js-plotly-plot")
            x = "() => Array.from(document.querySelector('.js-plotly-plot')._fullData.at(-1).x)"
            assert page.evaluate(x) == [1000]
            for i in (1, 2):
                _snapshot(w, i, rng)
                page.wait_for_function(f"() => document.querySelector('.js-plotly-plot')?._fullData.at(-1).x.length == {i + 1}",
                                       timeout=120_000)
                assert page.evaluate(x) == [1000 * (k + 1) for k in range(i + 1)]
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        w.close(status="failed")
