"""Export speed: an image through kaleido's persistent server vs one-shot kaleido (a browser
started per image), interleaved; then a whole panel bundle (SVG, PDF, PNG, HTML, CSV, NetCDF)
with the server warm. Run: `python bench/export_bundle.py [--repeats 3]` (about 1 min)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's app, not an installed one

import kaleido  # noqa: E402
import plotly.io as pio  # noqa: E402

from app import export  # noqa: E402
from app.bundle import PaperStyle, bundle_members  # noqa: E402
from app.figures.gradient_error import l1_error_figure  # noqa: E402
from app.studies import gradient_error as study  # noqa: E402
from engine.record import open_run  # noqa: E402

STORE = Path(__file__).resolve().parents[1] / "datasets" / "gradient_error.zarr.zip"


def _timed(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tree = open_run(STORE)
    curve = study.l1_vs_horizon(tree, "std")
    bound = study.bound_shape(tree, curve.sel(stat="mean"))
    fig, data = l1_error_figure(curve, bound, log_y=True), study.l1_plot_data(curve, bound)
    one_shot, served = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeats):  # interleaved: the neighbours' load hits both alike
            kaleido.stop_sync_server(silence_warnings=True)
            one_shot.append(_timed(lambda: pio.to_image(fig, format="svg", width=1000, height=500)))
            kaleido.start_sync_server(silence_warnings=True)
            pio.to_image(fig, format="svg", width=1000, height=500)  # the server's first image
            served.append(_timed(lambda: pio.to_image(fig, format="svg", width=1000, height=500)))
        export._server_started = True  # noqa: SLF001 - the server above is the app's
        bundles = [_timed(lambda: bundle_members("l1", fig, data, PaperStyle())) for _ in range(args.repeats)]
        kaleido.stop_sync_server(silence_warnings=True)
    best = min(one_shot), min(served)
    print(f"SVG image, one-shot kaleido (browser per image): {best[0]:.2f} s (best of {args.repeats})")
    print(f"SVG image, persistent kaleido server:            {best[1]:.2f} s")
    print(f"ratio one-shot / server: x{best[0] / best[1]:.1f}")
    print(f"panel bundle (3 images + HTML + CSV + NetCDF), server warm: {min(bundles):.2f} s "
          f"(= x{min(bundles) / best[0]:.2f} of one one-shot image)")


if __name__ == "__main__":
    main()
