"""Export bundles: one zip per panel or page with the figure (SVG, PDF, PNG, standalone HTML),
the plotted data (CSV, NetCDF) and a provenance JSON; and the paper style applied to a copy of
the figure at export (the figure on screen is untouched).

Pure functions: bytes in memory, nothing written to disk.
"""

from __future__ import annotations

import io
import json
import textwrap
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
import xarray as xr

from app.export import data_csv, data_netcdf, figure_html, figure_image

CSS_PX_PER_INCH = 96.0
"""Plotly sizes are CSS pixels; Chromium prints PDFs at 96 px per inch."""
PX_PER_PT = CSS_PX_PER_INCH / 72.0
COLUMN_WIDTH_IN = {"single": 3.5, "double": 7.16}
"""Text widths of common two-column paper templates (IEEE/ICML-like), in inches."""
IMAGE_FORMATS = ("svg", "pdf", "png")
SCREEN_PNG_SCALE = 2.0
"""PNG scale of an unstyled (screen-size) figure: sharp on high-density displays."""


@dataclass(frozen=True)
class PaperStyle:
    """How an exported figure is laid out for a paper (sizes in inches and points)."""

    column: str = "single"
    """"single" or "double" column; sets the width unless `width_in` is given."""
    width_in: float | None = None
    """Figure width in inches; None: the column's width."""
    aspect: float = 0.75
    """Height / width."""
    font_pt: float = 8.0
    """Size of tick labels, legend and axis titles, in points."""
    title_pt: float = 9.0
    """Size of the figure title and subplot titles, in points."""
    font_family: str = "Times New Roman, Times, serif"
    """CSS font family (the PDF embeds what Chromium resolves it to)."""
    png_dpi: int = 300
    """Resolution of the PNG."""
    show_title: bool = False
    """Keep the figure's title (papers usually say it in the caption instead)."""

    def __post_init__(self) -> None:
        if self.column not in COLUMN_WIDTH_IN:
            raise ValueError(f"column must be one of {list(COLUMN_WIDTH_IN)}, not {self.column!r}")
        if self.width_in is not None and not 0.5 <= self.width_in <= 30:
            raise ValueError(f"width_in must be between 0.5 and 30 inches, not {self.width_in}")
        if not 4 <= self.font_pt <= 40 or not 4 <= self.title_pt <= 40:
            raise ValueError("font sizes must be between 4 and 40 pt")

    @property
    def width(self) -> float:
        """Width in inches."""
        return self.width_in if self.width_in is not None else COLUMN_WIDTH_IN[self.column]

    @property
    def width_px(self) -> int:
        """Width in CSS pixels."""
        return round(self.width * CSS_PX_PER_INCH)

    @property
    def height_px(self) -> int:
        """Height in CSS pixels."""
        return round(self.width * self.aspect * CSS_PX_PER_INCH)

    @property
    def png_scale(self) -> float:
        """Kaleido's scale factor giving `png_dpi` at the figure's physical width."""
        return self.png_dpi / CSS_PX_PER_INCH


def styled(fig: go.Figure, style: PaperStyle) -> go.Figure:
    """A copy of `fig` sized and lettered for a paper; `fig` itself is not changed.

    The legend goes in a row above the plot (it wraps), the title is dropped unless
    `show_title`, and margins start small: plotly grows them to fit ticks, titles and legend.
    """
    out = go.Figure(fig)
    font, title = style.font_pt * PX_PER_PT, style.title_pt * PX_PER_PT
    out.update_layout(
        width=style.width_px, height=style.height_px, autosize=False,
        font={"family": style.font_family, "size": font},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom",
                "traceorder": "normal", "font": {"size": font}, "title": {"font": {"size": font}}},
        margin={"l": 2, "r": 2, "t": 2, "b": 2, "autoexpand": True},
    )
    if style.show_title:
        out.update_layout(title={"font": {"size": title}, "x": 0, "xanchor": "left", "yref": "container"})
    else:
        out.update_layout(title_text=None)
    out.update_xaxes(automargin=True)
    out.update_yaxes(automargin=True)
    # a y title longer than the plot is tall is cut off: wrap it (about 0.55 em per character)
    fits = max(8, int(0.7 * style.height_px / (0.55 * font)))
    out.for_each_yaxis(lambda ax: ax.update(title_text=_wrap(ax.title.text, fits)) if ax.title.text else None)
    out.update_annotations(font_size=title)  # subplot titles are annotations
    return out


def _wrap(text: str, width: int) -> str:
    """`text` broken into lines of at most about `width` characters at spaces (`<br>`)."""
    if len(text) <= width or "<br>" in text:
        return text
    return "<br>".join(textwrap.wrap(text, width, break_long_words=False))


def provenance(
    runs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], panels: Sequence[str],
    style: PaperStyle | None, *, page: str, app_version: str,
) -> dict[str, Any]:
    """The provenance record of a bundle: what was plotted, from which stores, how, when."""
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "page": page,
        "panels": list(panels),
        "runs": [dict(r) for r in runs],
        "settings": dict(settings),
        "style": asdict(style) if style is not None else "screen",
        "app_version": app_version,
        "software": _versions(),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("plotly", "kaleido", "xarray", "zarr", "numpy", "pandas", "streamlit"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def run_record(name: str, key: str, origin: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """One run's entry in a provenance record: its store and the identity the store declares."""
    config = attrs.get("config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            pass
    keep = ("run_id", "kind", "env_id", "algorithm", "seed", "status", "engine_version", "commit",
            "created", "updated", "committed")
    return {"store": name, "key": key, "origin": origin,
            **{k: attrs[k] for k in keep if k in attrs}, "config": config}


def bundle_members(
    stem: str, fig: go.Figure, data: xr.Dataset | xr.DataArray, style: PaperStyle | None,
    *, images: bool = True,
) -> dict[str, bytes]:
    """The files of one panel, named `{stem}.{ext}`: images (if `images`), HTML, CSV, NetCDF.

    Images and HTML are of the styled copy (at the paper size); with no style, of the figure as
    on screen (PNG at twice its pixel size).
    """
    paper = styled(fig, style) if style is not None else fig
    png_scale = style.png_scale if style is not None else SCREEN_PNG_SCALE
    out: dict[str, bytes] = {}
    if images:
        for fmt in IMAGE_FORMATS:
            scale = png_scale if fmt == "png" else 1.0
            out[f"{stem}.{fmt}"] = figure_image(paper, fmt, scale=scale)
    out[f"{stem}.html"] = figure_html(paper)
    out[f"{stem}.csv"] = data_csv(data)
    out[f"{stem}.nc"] = data_netcdf(data)
    return out


def export_bundle(
    panels: Sequence[tuple[str, go.Figure, xr.Dataset | xr.DataArray]], record: Mapping[str, Any],
    style: PaperStyle | None, *, images: bool = True,
) -> bytes:
    """A zip with every panel's files (`bundle_members`) and `provenance.json`.

    Panel stems must be unique (they name the members).
    """
    stems = [p[0] for p in panels]
    if len(set(stems)) != len(stems):
        raise ValueError(f"panel names repeat: {stems}")
    stamp = datetime.now(UTC).timetuple()[:6]

    def member(name: str) -> zipfile.ZipInfo:  # readable by all once unzipped (default 0o600)
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.external_attr, info.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
        return info

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for stem, fig, data in panels:
            for name, blob in bundle_members(stem, fig, data, style, images=images).items():
                zf.writestr(member(name), blob)
        zf.writestr(member("provenance.json"), json.dumps(record, indent=2, default=str))
    return buf.getvalue()
