"""What a chart draws, read from its SVG: the marks of each series its legend names, its axes' titles.

Vega's SVG renderer (the one ``?format=svg`` and the /app pages use) writes each mark item as an element in a
``<g class="mark-{kind} role-mark ...">`` group (``path`` for lines, areas and points, ``line`` for rules,
``text`` for text marks) with its paint (``stroke``, ``fill``, ``stroke-dasharray``, ``opacity``) as attributes,
and each legend as a ``role-legend`` group whose symbols carry the paint of the series they name. A series is
drawn when a visible mark has its paint: a line that is in the document but has no stroke (the bug of issue
21, where a shared colour scale left the geo chart's lines unstroked) counts for no series.

The same parser reads the SVG a browser page holds (``element.innerHTML`` of a chart drawn by vega-embed).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass

MARK_CLASS = re.compile(r"\bmark-(\w+)\b")
TRANSLATE = re.compile(r"translate\(\s*([-\d.e]+)[ ,]+([-\d.e]+)\s*\)")
PATH_POINTS = re.compile(r"[MLml]")
NO_PAINT = {None, "", "none", "transparent"}


@dataclass(frozen=True)
class Mark:
    """One drawn item of a mark: its kind (``line``, ``area``, ``symbol``, ``rule``, ``text``...) and its paint."""

    kind: str
    label: str  # Vega's aria-label: the item's data, e.g. "Date: Jan 01, 2021; series: observed"
    stroke: str | None
    fill: str | None
    dash: str | None
    opacity: float
    points: int  # vertices of a path (lines, areas); 1 for other items
    x: float | None  # a point's or text's position (from its transform), else None
    text: str

    @property
    def visible(self) -> bool:
        if self.opacity <= 0.0:
            return False
        if self.kind in ("line", "rule"):
            return self.stroke not in NO_PAINT and self.points >= 2
        if self.kind == "text":
            return bool(self.text) and self.fill not in NO_PAINT
        return (self.fill not in NO_PAINT or self.stroke not in NO_PAINT) and self.points >= 1


@dataclass(frozen=True)
class LegendEntry:
    """A legend's entry: the series' label and the paint its symbol shows (colour, dash), per legend channel."""

    label: str
    stroke: str | None  # None when the legend is not for stroke colours
    fill: str | None  # None when the legend is not for fill colours
    dash: str | None  # None when the legend is not for dashes

    def draws(self, mark: Mark) -> bool:
        """Whether ``mark`` is painted as this entry's symbol: its colour (as the legend's stroke or fill) and dash."""
        by_colour = self.stroke is not None or self.fill is not None
        coloured = (self.stroke is not None and mark.stroke == self.stroke) or (
            self.fill is not None and mark.fill == self.fill
        )
        if by_colour and not coloured:
            return False
        return self.dash is None or self.dash == mark.dash


@dataclass(frozen=True)
class ChartMarks:
    """Everything a chart drew that a reader sees: marks, legend entries, axis titles and labels, titles."""

    marks: tuple[Mark, ...]
    legend: tuple[LegendEntry, ...]
    axis_titles: tuple[str, ...]
    axis_labels: tuple[str, ...]  # every axis' tick labels, in document order
    titles: tuple[str, ...]  # chart titles and subtitles, line by line

    def drawn(self, kind: str) -> list[Mark]:
        """The visible marks of ``kind``."""
        return [m for m in self.marks if m.kind == kind and m.visible]

    def per_series(self) -> dict[str, Counter[str]]:
        """For each series the legend names, how many visible marks of each kind are painted as its symbol."""
        return {
            entry.label: Counter(m.kind for m in self.marks if m.visible and entry.draws(m)) for entry in self.legend
        }

    def texts(self) -> list[str]:
        """The text marks' strings (labels drawn on the plot, e.g. "test starts")."""
        return [m.text for m in self.drawn("text")]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _classes(element: ElementTree.Element) -> str:
    return element.attrib.get("class", "")


def _text(element: ElementTree.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _mark(kind: str, element: ElementTree.Element) -> Mark:
    attrib = element.attrib
    tag = _local(element.tag)
    if tag == "path" and kind in ("line", "area", "trail"):
        points = len(PATH_POINTS.findall(attrib.get("d", "")))
    elif tag == "line":
        points = 2
    else:
        points = 1 if attrib.get("d", "x") or tag != "path" else 0
    position = TRANSLATE.search(attrib.get("transform", ""))
    return Mark(
        kind=kind,
        label=attrib.get("aria-label", ""),
        stroke=attrib.get("stroke"),
        fill=attrib.get("fill"),
        dash=attrib.get("stroke-dasharray"),
        opacity=float(attrib.get("opacity", attrib.get("stroke-opacity", "1"))),
        points=points,
        x=float(position.group(1)) if position else None,
        text=_text(element) if tag == "text" else "",
    )


def _children(group: ElementTree.Element, role: str, tag: str) -> list[ElementTree.Element]:
    """The ``tag`` elements directly inside the groups of class ``role`` under ``group``, in document order."""
    return [child for g in group.iter() if role in _classes(g).split() for child in g if _local(child.tag) == tag]


def _legend(group: ElementTree.Element) -> list[LegendEntry]:
    channels = group.attrib.get("aria-label", "").split(" with ")[0].lower()
    by_stroke = "stroke color" in channels
    by_fill = "fill color" in channels
    by_dash = "strokedash" in channels or "stroke dash" in channels
    symbols = _children(group, "role-legend-symbol", "path")
    labels = _children(group, "role-legend-label", "text")
    entries: list[LegendEntry] = []
    for symbol, label in zip(symbols, labels, strict=True):
        stroke, fill = symbol.attrib.get("stroke"), symbol.attrib.get("fill")
        entries.append(
            LegendEntry(
                label=_text(label),
                stroke=stroke if by_stroke else None,
                fill=fill if by_fill else None,
                dash=symbol.attrib.get("stroke-dasharray") if by_dash else None,
            )
        )
    return entries


def _lines(text: ElementTree.Element) -> list[str]:
    """A text element's lines (Vega writes a multi-line text as one ``tspan`` per line)."""
    spans = [t for t in text if _local(t.tag) == "tspan"]
    return [_text(t) for t in spans] if spans else [_text(text)]


def chart_marks(svg: str | bytes) -> ChartMarks:
    """Parse an SVG drawn by Vega into its marks, legend entries, axis titles and chart titles."""
    root = ElementTree.fromstring(svg)
    marks: list[Mark] = []
    legend: list[LegendEntry] = []
    axis_titles: list[str] = []
    axis_labels: list[str] = []
    titles: list[str] = []
    for group in root.iter():
        classes = _classes(group)
        kind = MARK_CLASS.search(classes)
        if "role-legend" in classes.split():
            legend.extend(_legend(group))
        elif kind and "role-mark" in classes.split():
            marks.extend(_mark(kind.group(1), item) for item in group if _local(item.tag) in ("path", "line", "text"))
        elif "role-axis-title" in classes:
            axis_titles.extend(_text(t) for t in group if _local(t.tag) == "text")
        elif "role-axis-label" in classes:
            axis_labels.extend(_text(t) for t in group if _local(t.tag) == "text")
        elif "role-title-text" in classes or "role-title-subtitle" in classes:
            titles.extend(line for t in group if _local(t.tag) == "text" for line in _lines(t))
    return ChartMarks(tuple(marks), tuple(legend), tuple(axis_titles), tuple(axis_labels), tuple(titles))
