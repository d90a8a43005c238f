"""Server-side SVG: the grid map (a choropleth) and the statistics charts.

Pure: shapely geometries, numbers and already-translated strings in, markup
out. No JavaScript, no external assets. Every drawing has a `<title>` and a
`<desc>` that name it. A chart is `role="img"`: one picture. The map holds
links, and an image's content is presentational (links in it are "nested
interactive" controls that assistive technology cannot reach), so it is
`role="group"` and each linked area is a link named by its label. The pages
always show the same numbers, and the same links, in an HTML table beside the
drawing: that is the accessible (and keyboard) way through them, so the map's
links are left out of the tab order instead of doubling every tab stop.

Everything put into the markup is escaped here; the result is an `Svg`, a
`str` with `__html__`, so Jinja's autoescaping passes it through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry


class Svg(str):
    """Markup built here, every piece of text in it escaped."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(value: float) -> str:
    """A coordinate, short: `12.3`, `12`."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------- projection


@dataclass(frozen=True)
class Projected:
    """Shapes projected to a viewBox `0 0 width height`: an SVG path per code."""

    width: float
    height: float
    paths: dict[str, str]

    @property
    def view_box(self) -> str:
        return f"0 0 {_n(self.width)} {_n(self.height)}"


def _ring(coords: Iterable[tuple[float, float]]) -> str:
    points: list[str] = []
    for x, y in coords:
        point = f"{_n(x)},{_n(y)}"
        if not points or points[-1] != point:
            points.append(point)
    if len(points) > 1 and points[-1] == points[0]:
        points.pop()  # `Z` closes the ring
    if len(points) < 3:
        return ""
    return "M" + " ".join(points) + "Z"


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    parts = getattr(geom, "geoms", None)
    if parts is not None:  # a GeometryCollection out of simplify/union
        return [p for part in parts for p in _polygons(part)]
    return []


def path_data(geom: BaseGeometry) -> str:
    """The `d` of a path drawing `geom` (holes drawn with the even-odd rule)."""
    rings: list[str] = []
    for poly in _polygons(geom):
        rings.append(_ring(poly.exterior.coords))
        rings.extend(_ring(hole.coords) for hole in poly.interiors)
    return "".join(r for r in rings if r)


def project(
    shapes: Mapping[str, BaseGeometry],
    *,
    width: float = 800,
    max_height: float = 640,
    pad: float = 4,
    tolerance: float = 0.5,
) -> Projected:
    """Project lon/lat shapes into a viewBox, keeping the aspect, and simplify them.

    An equirectangular projection about the shapes' middle latitude (longitude
    shrunk by cos φ) is true enough at the scale of a city. `tolerance` is in
    viewBox units (≈ pixels): detail below it cannot be seen, only downloaded.
    """
    live = {code: g for code, g in shapes.items() if g is not None and not g.is_empty}
    if not live:
        return Projected(width=width, height=width / 2, paths={})
    minx, miny, maxx, maxy = shapely.total_bounds(list(live.values())).tolist()
    kx = math.cos(math.radians((miny + maxy) / 2))
    span_x, span_y = max((maxx - minx) * kx, 1e-9), max(maxy - miny, 1e-9)
    scale = min((width - 2 * pad) / span_x, (max_height - 2 * pad) / span_y)
    out_w, out_h = span_x * scale + 2 * pad, span_y * scale + 2 * pad

    def to_view(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        xs = pad + (coords[:, 0] - minx) * kx * scale
        ys = pad + (maxy - coords[:, 1]) * scale
        return np.column_stack((xs, ys))

    paths: dict[str, str] = {}
    for code, geom in live.items():
        flat = shapely.transform(geom, to_view)
        simple = shapely.simplify(flat, tolerance, preserve_topology=True)
        d = path_data(simple) or path_data(flat)
        if not d:  # smaller than a pixel (an islet): a dot, so it can still be seen and clicked
            c = flat.centroid
            d = _ring([(c.x - 1.5, c.y - 1.5), (c.x + 1.5, c.y - 1.5), (c.x + 1.5, c.y + 1.5),
                       (c.x - 1.5, c.y + 1.5)])  # fmt: skip
        paths[code] = d
    return Projected(width=out_w, height=out_h, paths=paths)


# ---------------------------------------------------------------- colour scale

# ColorBrewer OrRd, 5 classes: light to dark, readable in greyscale print.
PALETTE = ("#fdd49e", "#fdbb84", "#fc8d59", "#e34a33", "#b30000")
ZERO = "#f4f4f2"
NO_DATA = "url(#nodata)"


@dataclass(frozen=True)
class ColourScale:
    """Classes of values: 0 alone, then equal steps up to a round maximum."""

    uppers: tuple[float, ...]  # inclusive upper bound of each coloured class
    integer: bool

    def index(self, value: float | None) -> int | None:
        """-1 for zero, the class index for a positive value, None for no value."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if value <= 0:
            return -1
        for i, upper in enumerate(self.uppers):
            if value <= upper + 1e-9:
                return i
        return len(self.uppers) - 1

    def colour(self, value: float | None) -> str:
        i = self.index(value)
        if i is None:
            return NO_DATA
        return ZERO if i < 0 else PALETTE[i]

    def labels(self, fmt: Callable[[float], str]) -> list[tuple[str, str]]:
        """(colour, label) per class, zero first: `0`, `1–2`, `3–4`…"""
        out = [(ZERO, "0")]
        low = 0.0
        for i, upper in enumerate(self.uppers):
            if self.integer:
                first, last = int(low) + 1, int(upper)
                label = str(first) if first == last else f"{first}–{last}"
            else:
                label = f"{fmt(low)}–{fmt(upper)}"
            out.append((PALETTE[i], label))
            low = upper
        return out


def _nice(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ value."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        nice = step * 10**exp
        if nice >= value - 1e-12:
            return float(nice)
    return float(10 ** (exp + 1))


def colour_scale(values: Iterable[float | None], *, integer: bool, classes: int = 5) -> ColourScale:
    """Equal classes over (0, max]; counts get whole-number bounds."""
    top = max((v for v in values if v is not None and not math.isnan(v)), default=0.0)
    if top <= 0:
        return ColourScale(uppers=(1.0,), integer=integer)
    if integer:
        whole = math.ceil(top)
        count = min(classes, whole)
        width = math.ceil(whole / count)
        count = math.ceil(whole / width)
        return ColourScale(uppers=tuple(float(width * (i + 1)) for i in range(count)), integer=True)
    step = _nice(top / classes)
    n = max(1, math.ceil(top / step - 1e-9))
    return ColourScale(uppers=tuple(step * (i + 1) for i in range(n)), integer=False)


# ---------------------------------------------------------------- the map


@dataclass(frozen=True)
class Area:
    """One drawn unit: its code, its tooltip and where a click goes."""

    code: str
    label: str  # e.g. "翁山一网格 (DH-01): 3"
    value: float | None
    href: str | None


def _open_svg(
    *,
    width: float,
    height: float,
    id_prefix: str,
    title: str,
    desc: str,
    cls: str,
    role: str = "img",
) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{_e(cls)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" role="{_e(role)}" '
        f'aria-labelledby="{_e(id_prefix)}-title {_e(id_prefix)}-desc" '
        f'preserveAspectRatio="xMidYMid meet">',
        f'<title id="{_e(id_prefix)}-title">{_e(title)}</title>',
        f'<desc id="{_e(id_prefix)}-desc">{_e(desc)}</desc>',
    ]


def choropleth(
    projected: Projected,
    areas: Sequence[Area],
    scale: ColourScale,
    *,
    title: str,
    desc: str,
    legend_title: str,
    no_data_label: str | None,
    fmt: Callable[[float], str],
    id_prefix: str = "map",
) -> Svg:
    """The map: each area with a path filled by its class, a tooltip and a link.

    A `role="group"` named by its title and description; each link is named by
    its area's label (the tooltip's text), and kept out of the tab order: the
    page's table has the same links.

    Areas without a path (no boundary) are not drawn; the page lists them.
    The legend sits below the map, inside the drawing, so it prints with it.
    """
    legend = scale.labels(fmt)
    if no_data_label is not None:  # e.g. a rate of a unit without households
        legend.append((NO_DATA, no_data_label))
    rows = len(legend)
    legend_h = 24 + 18 * rows
    height = projected.height + legend_h
    out = _open_svg(
        width=projected.width,
        height=height,
        id_prefix=id_prefix,
        title=title,
        desc=desc,
        cls="gl-map",
        role="group",  # not "img": it holds links (axe: nested-interactive)
    )
    out.append(
        '<defs><pattern id="nodata" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#aaa" stroke-width="2"/></pattern></defs>'
    )
    out.append('<g class="gl-areas" stroke="#555" stroke-width="0.6" fill-rule="evenodd">')
    for area in areas:
        d = projected.paths.get(area.code)
        if d is None:
            continue
        value = "" if area.value is None else fmt(area.value)
        path = (
            f'<path d="{d}" fill="{scale.colour(area.value)}" data-code="{_e(area.code)}" '
            f'data-value="{_e(value)}"><title>{_e(area.label)}</title></path>'
        )
        if area.href:
            path = (
                f'<a href="{_e(area.href)}" aria-label="{_e(area.label)}" tabindex="-1">{path}</a>'
            )
        out.append(path)
    out.append("</g>")
    y = projected.height + 14
    out.append(f'<g class="gl-legend" font-size="12" transform="translate(8 {_n(y)})">')
    out.append(f'<text x="0" y="0">{_e(legend_title)}</text>')
    for i, (colour, label) in enumerate(legend):
        row_y = 6 + 18 * i
        out.append(
            f'<rect x="0" y="{row_y}" width="18" height="12" fill="{colour}" stroke="#555" '
            f'stroke-width="0.5"/><text x="24" y="{row_y + 10}">{_e(label)}</text>'
        )
    out.append("</g></svg>")
    return Svg("".join(out))


# ---------------------------------------------------------------- charts


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


SERIES_COLOURS = ("#1f5fa8", "#d9822b", "#2e8540", "#8e44ad")
SERIES_DASH = ("", "6 3", "2 2", "8 3 2 3")  # shape, not only colour, tells series apart


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """0 and round steps up to at least `top`: `[0, 2, 4, 6]`."""
    if top <= 0:
        return [0.0, 1.0]
    step = _nice(top / count)
    n = math.ceil(top / step - 1e-9)
    return [step * i for i in range(n + 1)]


def _tick_label(value: float, fmt: Callable[[float], str] | None) -> str:
    if fmt is not None:
        return fmt(value)
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class _Frame:
    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom


def _axes(
    frame: _Frame,
    x_labels: Sequence[str],
    ticks: list[float],
    *,
    x_at: Callable[[int], float],
    tick_fmt: Callable[[float], str] | None,
) -> list[str]:
    out = ['<g class="gl-axes" font-size="11" fill="#333">']
    top = ticks[-1]
    for t in ticks:
        y = frame.top + frame.plot_h * (1 - t / top)
        out.append(
            f'<line x1="{_n(frame.left)}" x2="{_n(frame.width - frame.right)}" '
            f'y1="{_n(y)}" y2="{_n(y)}" stroke="#ddd"/>'
            f'<text x="{_n(frame.left - 4)}" y="{_n(y + 4)}" text-anchor="end">'
            f"{_e(_tick_label(t, tick_fmt))}</text>"
        )
    every = max(1, math.ceil(len(x_labels) / 10))
    base = frame.height - frame.bottom
    for i, label in enumerate(x_labels):
        if i % every and i != len(x_labels) - 1:
            continue
        out.append(
            f'<text x="{_n(x_at(i))}" y="{_n(base + 14)}" text-anchor="middle">{_e(label)}</text>'
        )
    out.append(
        f'<line x1="{_n(frame.left)}" x2="{_n(frame.width - frame.right)}" '
        f'y1="{_n(base)}" y2="{_n(base)}" stroke="#333"/></g>'
    )
    return out


def _legend(series: Sequence[Series], frame: _Frame, *, bars: bool) -> list[str]:
    if len(series) < 2:
        return []
    out = ['<g class="gl-legend" font-size="11">']
    x = frame.left
    for i, s in enumerate(series):
        colour, dash = SERIES_COLOURS[i % 4], SERIES_DASH[i % 4]
        if bars:
            out.append(f'<rect x="{_n(x)}" y="4" width="14" height="10" fill="{colour}"/>')
        else:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(
                f'<line x1="{_n(x)}" x2="{_n(x + 18)}" y1="9" y2="9" stroke="{colour}" '
                f'stroke-width="2.5"{dash_attr}/>'
            )
        out.append(f'<text x="{_n(x + 22)}" y="13">{_e(s.name)}</text>')
        x += 30 + 13 * len(s.name)
    out.append("</g>")
    return out


def _top(series: Sequence[Series], y_max: float | None) -> float:
    if y_max is not None:
        return y_max
    return max((v for s in series for v in s.values if v is not None), default=0.0)


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    id_prefix: str,
    y_max: float | None = None,
    tick_fmt: Callable[[float], str] | None = None,
    value_fmt: Callable[[float], str] | None = None,
    width: float = 720,
    height: float = 260,
) -> Svg:
    """Lines over categories (days, weeks); a missing value breaks the line."""
    frame = _Frame(width, height, left=44, right=12, top=24, bottom=24)
    ticks = nice_ticks(_top(series, y_max)) if y_max is None else nice_ticks(y_max, 4)
    n = len(x_labels)

    def x_at(i: int) -> float:
        return frame.left + (frame.plot_w * (i + 0.5) / n if n else 0)

    def y_at(v: float) -> float:
        return frame.top + frame.plot_h * (1 - v / ticks[-1])

    out = _open_svg(
        width=width, height=height, id_prefix=id_prefix, title=title, desc=desc, cls="gl-chart"
    )
    out += _axes(frame, x_labels, ticks, x_at=x_at, tick_fmt=tick_fmt)
    for k, s in enumerate(series):
        colour, dash = SERIES_COLOURS[k % 4], SERIES_DASH[k % 4]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        runs: list[list[str]] = [[]]
        marks: list[str] = []
        for i, v in enumerate(s.values[:n]):
            if v is None:
                runs.append([])
                continue
            x, y = x_at(i), y_at(v)
            runs[-1].append(f"{_n(x)},{_n(y)}")
            shown = value_fmt(v) if value_fmt else _tick_label(v, None)
            marks.append(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{colour}">'
                f"<title>{_e(x_labels[i])} {_e(s.name)}: {_e(shown)}</title></circle>"
            )
        out.append(f'<g class="gl-series gl-series-{k}">')
        for run in runs:
            if len(run) > 1:
                out.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"{dash_attr}/>'
                )
        out += marks
        out.append("</g>")
    out += _legend(series, frame, bars=False)
    out.append("</svg>")
    return Svg("".join(out))


def bar_chart(
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    id_prefix: str,
    tick_fmt: Callable[[float], str] | None = None,
    width: float = 720,
    height: float = 260,
) -> Svg:
    """Grouped vertical bars, one group per category."""
    frame = _Frame(width, height, left=44, right=12, top=24, bottom=24)
    ticks = nice_ticks(_top(series, None))
    n, k_count = len(x_labels), max(1, len(series))
    slot = frame.plot_w / n if n else 0
    bar_w = max(1.0, slot * 0.8 / k_count)

    def x_at(i: int) -> float:
        return frame.left + slot * (i + 0.5)

    out = _open_svg(
        width=width, height=height, id_prefix=id_prefix, title=title, desc=desc, cls="gl-chart"
    )
    out += _axes(frame, x_labels, ticks, x_at=x_at, tick_fmt=tick_fmt)
    base = frame.height - frame.bottom
    for k, s in enumerate(series):
        colour = SERIES_COLOURS[k % 4]
        out.append(f'<g class="gl-series gl-series-{k}" fill="{colour}">')
        for i, v in enumerate(s.values[:n]):
            if v is None:
                continue
            h = frame.plot_h * v / ticks[-1]
            x = frame.left + slot * i + slot * 0.1 + bar_w * k
            out.append(
                f'<rect x="{_n(x)}" y="{_n(base - h)}" width="{_n(bar_w)}" height="{_n(h)}">'
                f"<title>{_e(x_labels[i])} {_e(s.name)}: {_e(_tick_label(v, None))}</title></rect>"
            )
        out.append("</g>")
    out += _legend(series, frame, bars=True)
    out.append("</svg>")
    return Svg("".join(out))


def hbar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    desc: str,
    id_prefix: str,
    value_fmt: Callable[[float], str] | None = None,
    width: float = 720,
    label_width: float = 150,
) -> Svg:
    """Horizontal bars with the value written at each bar's end."""
    row_h, top = 22, 6
    height = top * 2 + row_h * max(1, len(labels))
    top_value = max((v for v in values if v is not None), default=0.0) or 1.0
    plot_w = width - label_width - 70
    out = _open_svg(
        width=width, height=height, id_prefix=id_prefix, title=title, desc=desc, cls="gl-chart"
    )
    out.append(f'<g class="gl-bars" font-size="12" fill="{SERIES_COLOURS[0]}">')
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = top + row_h * i
        shown = "–" if v is None else (value_fmt(v) if value_fmt else _tick_label(v, None))
        w = 0.0 if v is None else plot_w * v / top_value
        out.append(
            f'<text x="{_n(label_width - 6)}" y="{_n(y + 15)}" text-anchor="end" fill="#333">'
            f"{_e(label)}</text>"
            f'<rect x="{_n(label_width)}" y="{_n(y + 3)}" width="{_n(w)}" height="{row_h - 6}">'
            f"<title>{_e(label)}: {_e(shown)}</title></rect>"
            f'<text x="{_n(label_width + w + 4)}" y="{_n(y + 15)}" fill="#333">{_e(shown)}</text>'
        )
    out.append("</g></svg>")
    return Svg("".join(out))
