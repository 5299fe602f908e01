"""The oversight charts: standalone SVG with no script, the caller's labels escaped, series checked."""

from xml.etree import ElementTree

import pytest

from oversight.charts import chart

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("kind", ["bar", "stacked", "horizontal", "line"])
def test_a_chart_is_an_svg_document_without_script_that_prints_its_labels(kind):
    svg = chart(kind, "访问次数", ["市场监管局", "人社局"], {"允许": [3, 4], "拒绝": [1, None]})
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert not [e for e in root.iter() if e.tag.endswith("script")], "pygal's tooltip script is cut"
    assert "<script" not in svg and "javascript" not in svg.lower()
    texts = {e.text for e in root.iter() if e.text}
    assert {"访问次数", "市场监管局", "人社局", "允许", "拒绝"} <= texts


def test_a_label_holding_markup_stays_text():
    svg = chart("bar", "t", ['<script>alert(1)</script><a href="x">'], {"s": [1]})
    root = ElementTree.fromstring(svg)  # still well-formed
    assert not [e for e in root.iter() if e.tag.endswith(("script", "}a"))]
    assert any(e.text == '<script>alert(1)</script><a href="x">' for e in root.iter())


def test_an_empty_chart_says_so():
    svg = chart("line", "趋势", [], {}, empty="本期无数据")
    assert "本期无数据" in svg


def test_a_series_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="2 values for 1 labels"):
        chart("bar", "t", ["a"], {"s": [1, 2]})
