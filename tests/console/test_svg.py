"""app/console/svg.py: projection, colour classes, the map and the charts (pure)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from shapely.geometry import MultiPolygon, Point, box

from app.console.svg import (
    NO_DATA,
    PALETTE,
    ZERO,
    Area,
    Series,
    Svg,
    bar_chart,
    choropleth,
    colour_scale,
    hbar_chart,
    line_chart,
    nice_ticks,
    path_data,
    project,
)

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def numbers(d: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", d)]


def test_projection_keeps_the_aspect_and_fits_the_view_box():
    # Two squares of 0.02° at latitude 30°: a degree of longitude is cos(30°) ≈ 0.866
    # of a degree of latitude, so the pair is 2 × 0.866 : 1 wide.
    shapes = {"A": box(121.50, 29.99, 121.52, 30.01), "B": box(121.52, 29.99, 121.54, 30.01)}
    p = project(shapes, width=800, max_height=800, pad=0)
    assert p.width == 800
    assert abs(p.width / p.height - 2 * 0.866) < 0.01
    for d in p.paths.values():
        xs, ys = numbers(d)[0::2], numbers(d)[1::2]
        assert min(xs) >= 0 and max(xs) <= p.width and min(ys) >= 0 and max(ys) <= p.height + 0.05
    # North is up: A and B share their top edge at y = 0; A is left of B.
    assert max(numbers(p.paths["A"])[0::2]) <= min(numbers(p.paths["B"])[0::2]) + 0.05
    assert min(numbers(p.paths["A"])[1::2]) == 0


def test_projection_simplifies_to_the_tolerance_but_never_loses_a_shape():
    # A circle of 2,000 points simplifies to far fewer; a speck smaller than
    # the tolerance is still drawn.
    circle = Point(121.5, 30).buffer(0.1, quad_segs=500)
    speck = box(121.55, 30.05, 121.550001, 30.050001)
    p = project({"circle": circle, "speck": speck}, width=400, tolerance=1.0)
    assert 8 < p.paths["circle"].count(",") < 200
    assert p.paths["speck"].startswith("M")


def test_holes_and_multipolygons_are_drawn_as_rings():
    ring = box(0, 0, 10, 10).difference(box(4, 4, 6, 6))
    islands = MultiPolygon([box(0, 0, 1, 1), box(5, 5, 6, 6)])
    assert path_data(ring).count("M") == 2 and path_data(ring).count("Z") == 2
    assert path_data(islands).count("M") == 2


def test_colour_scale_classes_counts_and_rates():
    counts = colour_scale([0, 3, 7, None], integer=True)
    assert counts.colour(0) == ZERO
    assert counts.colour(None) == NO_DATA
    assert counts.colour(1) == PALETTE[0] and counts.colour(2) == PALETTE[0]
    assert counts.colour(7) == PALETTE[3]
    assert [label for _c, label in counts.labels(str)] == ["0", "1–2", "3–4", "5–6", "7–8"]
    single = colour_scale([0, 1, 1], integer=True)
    assert [label for _c, label in single.labels(str)] == ["0", "1"]
    assert colour_scale([0, 0], integer=True).colour(0) == ZERO
    rates = colour_scale([0.37, 2.4], integer=False)
    assert rates.uppers == (0.5, 1.0, 1.5, 2.0, 2.5)
    assert rates.colour(2.4) == PALETTE[4] and rates.colour(0.37) == PALETTE[0]


def test_nice_ticks():
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(100, 4) == [0, 25, 50, 75, 100]


def test_map_links_tooltips_colours_and_escaping():
    p = project({"G1": box(0, 0, 1, 1), "G2": box(1, 0, 2, 1)})
    scale = colour_scale([5, 0], integer=True)
    svg = choropleth(
        p,
        [
            Area("G1", '翁山 <一> "网格" & co: 5', 5, "/console?grid=G1&x=1"),
            Area("G2", "G2: 0", 0, None),
            Area("G3", "no boundary", 2, "/console?grid=G3"),  # not drawn, listed by the page
        ],
        scale,
        title="地图 <title>",
        desc="desc & more",
        legend_title="Open cases",
        no_data_label="no households",
        fmt=lambda v: str(int(v)),
    )
    assert isinstance(svg, Svg) and svg.__html__() == str(svg)
    root = parse(svg)
    # A group, not an image: an image's content is presentational, so links in it
    # would be unreachable nested controls (axe: nested-interactive).
    assert root.get("role") == "group"
    assert root.find("s:title", NS).text == "地图 <title>"
    assert root.find("s:desc", NS).text == "desc & more"
    labelled = root.get("aria-labelledby").split()
    assert labelled == ["map-title", "map-desc"]
    paths = {p.get("data-code"): p for p in root.iter("{http://www.w3.org/2000/svg}path")}
    assert set(paths) == {"G1", "G2"}
    assert paths["G1"].get("fill") == scale.colour(5) != paths["G2"].get("fill") == ZERO
    assert paths["G1"].get("data-value") == "5"
    assert paths["G1"].find("s:title", NS).text == '翁山 <一> "网格" & co: 5'
    links = list(root.iter("{http://www.w3.org/2000/svg}a"))
    assert [a.get("href") for a in links] == ["/console?grid=G1&x=1"]
    # Each link is named by its area's label (escaped in the markup, intact when parsed).
    assert links[0].get("aria-label") == '翁山 <一> "网格" & co: 5'
    assert 'aria-label="翁山 &lt;一&gt; &quot;网格&quot; &amp; co: 5"' in svg
    assert links[0].find("s:path", NS).get("data-code") == "G1"
    assert links[0].get("tabindex") == "-1"  # the table is the keyboard path
    legend = [t.text for t in root.find("s:g[@class='gl-legend']", NS).iter() if t.text]
    assert legend[0] == "Open cases" and "no households" in legend
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_line_chart_has_a_point_per_value_and_breaks_on_missing():
    svg = line_chart(
        ["11-01", "11-02", "11-03", "11-04"],
        [Series("new", [1, 2, None, 4]), Series("resolved <", [0, 1, 1, 3])],
        title="New vs resolved",
        desc="per day",
        id_prefix="chart-daily",
    )
    root = parse(svg)
    # A chart holds no links: one picture, named by its title.
    assert root.get("role") == "img" and root.find("s:title", NS).text == "New vs resolved"
    assert root.get("aria-labelledby") == "chart-daily-title chart-daily-desc"
    assert not list(root.iter("{http://www.w3.org/2000/svg}a"))
    first, second = (
        root.findall("s:g[@class='gl-series gl-series-0']", NS),
        root.findall("s:g[@class='gl-series gl-series-1']", NS),
    )
    assert len(first[0].findall("s:circle", NS)) == 3  # None is not a point
    assert len(first[0].findall("s:polyline", NS)) == 1  # [1, 2] | [4]: one run of two
    assert len(second[0].findall("s:polyline", NS)) == 1
    assert second[0].find("s:polyline", NS).get("stroke-dasharray")  # not told by colour alone
    tips = [c.find("s:title", NS).text for c in first[0].findall("s:circle", NS)]
    assert tips == ["11-01 new: 1", "11-02 new: 2", "11-04 new: 4"]
    assert "resolved &lt;" in svg


def test_points_scale_to_their_values():
    svg = line_chart(
        ["a", "b"], [Series("s", [0, 8])], title="t", desc="d", id_prefix="c", height=224
    )
    root = parse(svg)
    ys = [float(c.get("cy")) for c in root.iter("{http://www.w3.org/2000/svg}circle")]
    # plot from y=24 (top, the tick 8) to y=200 (bottom, 0)
    assert ys == [200.0, 24.0]


def test_bar_and_hbar_charts():
    bars = parse(bar_chart(["x", "y"], [Series("n", [2, 4])], title="t", desc="d", id_prefix="b"))
    heights = [float(r.get("height")) for r in bars.iter("{http://www.w3.org/2000/svg}rect")]
    assert heights[1] == 2 * heights[0] > 0
    h = parse(
        hbar_chart(
            ["定海", "普陀", "none"],
            [3.0, 1.5, None],
            title="hours",
            desc="d",
            id_prefix="h",
            value_fmt=lambda v: f"{v:g} h",
        )
    )
    rects = list(h.iter("{http://www.w3.org/2000/svg}rect"))
    widths = [float(r.get("width")) for r in rects]
    assert widths[0] == 2 * widths[1] and widths[2] == 0
    texts = [t.text for t in h.iter("{http://www.w3.org/2000/svg}text")]
    assert "定海" in texts and "3 h" in texts and "–" in texts


def test_the_no_data_legend_entry_only_when_asked():
    p = project({"G1": box(0, 0, 1, 1)})
    scale = colour_scale([3], integer=True)
    common = {"title": "t", "desc": "d", "legend_title": "L", "fmt": lambda v: str(int(v))}
    without = choropleth(p, [Area("G1", "g", 3, None)], scale, no_data_label=None, **common)
    with_it = choropleth(p, [Area("G1", "g", 3, None)], scale, no_data_label="none", **common)
    assert "url(#nodata)" not in without.split("</g>", 1)[1]
    assert ">none</text>" in with_it and ">none</text>" not in without
    # The drawing is tall enough for its legend: the last row lies inside the viewBox.
    for svg in (without, with_it):
        root = parse(svg)
        height = float(root.get("viewBox").split()[3])
        legend = root.find("s:g[@class='gl-legend']", NS)
        offset = float(legend.get("transform").split()[1].rstrip(")"))
        last = max(float(r.get("y")) + float(r.get("height")) for r in legend.findall("s:rect", NS))
        assert offset + last <= height
