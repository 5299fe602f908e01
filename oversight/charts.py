"""Charts rendered on the server as standalone SVG documents (pygal), for pages whose CSP allows no script.

A chart is shown with ``<img src="…svg">``: an SVG loaded as an image never runs script nor fetches anything, and
every chart is also cut free of pygal's ``<script>`` elements (its tooltips need JavaScript the console does not
allow), so what a browser receives is drawing and text only. Values are printed on the bars and points instead.
Labels are the caller's text (department names, purposes): pygal writes them through ElementTree, which escapes
them as XML text.

Every chart has a table behind it on its page, with the same figures (and CSV/xlsx exports): the chart is for
looking, the table for reading and drilling down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal
from xml.etree import ElementTree

import pygal
from pygal.style import Style

SVG_MEDIA_TYPE = "image/svg+xml"
# What an SVG chart response may do when opened on its own (a link copied, "open image in new tab"): nothing
# but show itself, with the style sheet pygal writes inside it.
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

# Chinese labels need a CJK font; Noto Sans CJK is what Debian's fonts-noto-cjk installs (the browser test's).
_FONT = '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif'
_STYLE = Style(
    font_family=_FONT,
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#888",
    # allowed, masked, denied, failed ... : colours told apart without relying on red/green alone
    colors=("#2b6cb0", "#dd6b20", "#718096", "#c53030", "#2f855a", "#805ad5", "#d69e2e", "#319795"),
    title_font_size=16,
    label_font_size=12,
    major_label_font_size=12,
    value_font_size=11,
    legend_font_size=12,
)

Series = Mapping[str, Sequence[float | int | None]]
Kind = Literal["bar", "stacked", "horizontal", "line"]
_CHARTS = {
    "bar": pygal.Bar,
    "stacked": pygal.StackedBar,
    "horizontal": pygal.HorizontalBar,
    "line": pygal.Line,
}


def chart(
    kind: Kind,
    title: str,
    labels: Sequence[str],
    series: Series,
    *,
    width: int = 720,
    height: int = 360,
    empty: str = "",
) -> str:
    """A standalone SVG document: ``labels`` along the axis, one bar/line per entry of ``series`` (each as long as
    ``labels``; None is no value). ``empty`` is the text shown when there is nothing to draw."""
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
    config = pygal.Config(
        style=_STYLE,
        width=width,
        height=height,
        js=[],
        print_values=kind != "line",
        show_dots=True,
        dots_size=3,
        x_label_rotation=30 if len(labels) > 6 and kind != "horizontal" else 0,
        truncate_label=-1,
        truncate_legend=-1,
        legend_at_bottom=True,
        no_data_text=empty,
        include_x_axis=True,
        min_scale=1,
        disable_xml_declaration=True,
    )
    drawing = _CHARTS[kind](config)
    drawing.title = title
    drawing.x_labels = list(labels)
    for name, values in series.items():
        drawing.add(name, list(values))
    tree = drawing.render_tree()
    _drop_scripts(tree)
    return ElementTree.tostring(tree, encoding="unicode")


def _drop_scripts(root: ElementTree.Element) -> None:
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
