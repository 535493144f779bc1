"""Plots of a Report: each builder takes the Report and returns a matplotlib ``Figure``.

Figures are made with ``matplotlib.figure.Figure`` on the Agg canvas, never through pyplot, so building one
touches no global state and needs no display.  Appliances keep one colour in every plot (``appliance_colours``).
A report without the data a plot needs gives a figure that says so instead of an error.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, PercentFormatter

from ..analysis.findings import FLOW_SEVERITY
from ..analysis.latency import paired_ingress
from ..analysis.symmetry import REASONS
from ..schema import NS_PER_MS, NS_PER_SECOND, NS_PER_US
from ..tables.legs import NO_PEER, Direction

if TYPE_CHECKING:
    from .model import Report

WIDTH_IN = 8.0  # 800 px at 100 dpi: every figure reads at that width
#: Appliance colours: matplotlib's tab10 with red last, since red means an error in these plots.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728")
UNKNOWN_COLOUR = "#7f7f7f"  # an appliance no role names
ENDPOINT_COLOUR = "#5c7c99"
SEVERITY_COLOURS = {"ok": "#2e7d32", "error": "#c62828", "warning": "#ef8f00", "info": "#1565c0"}
INK = "#444444"  # reference lines and legend keys
NO_DATA_HEIGHT_IN = 1.6
TIMELINE_REASONS = ("moved", "one_sided", "asymmetric")
MAX_TIMELINE_FLOWS = 40
CDF_POINTS = 2000
SILENCE_S = 30  # a longer silence is cut out of a time axis
MAX_TIME_SPANS = 4
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.dpi": 100,
}


def appliance_colours(report: Report) -> dict[str, str]:
    """The colour of every appliance, the same in every plot and in the HTML report."""
    names = list(dict.fromkeys([*report.roles.appliance_names(), *map(str, report.appliances.index)]))
    return {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(names)}


class ReportFigure(Figure):
    """A Figure that shows itself as a PNG wherever IPython displays it, with or without pyplot's inline backend."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png")
        return buffer.getvalue()


def _figure(height_in: float, title: str) -> Figure:
    figure = ReportFigure(figsize=(WIDTH_IN, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=11, fontweight="bold")
    return figure


def _no_data(ax, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#777777", transform=ax.transAxes)


def _no_data_figure(title: str, message: str) -> Figure:
    """A small figure that says why there is nothing to plot."""
    figure = _figure(NO_DATA_HEIGHT_IN, title)
    _no_data(figure.subplots(), message)
    return figure


def _capture_start_ns(report: Report) -> int:
    start = report.summary.get("first_ts_ns")
    return int(start) if start is not None else 0


def plot_latency(report: Report) -> Figure:
    """Appliance dwell time per appliance: a histogram on log-spaced bins and the cumulative distribution."""
    title = "Latency through each appliance (ingress to egress)"
    with matplotlib.rc_context(STYLE):
        names = report.roles.appliance_names()
        dwell = _dwell_times_us(report, names)
        if not dwell or not names:
            return _no_data_figure(title, "no data: no packet came back")
        figure = _figure(3.6, title)
        hist_ax, cdf_ax = figure.subplots(1, 2)
        colours = appliance_colours(report)
        low = max(min(v[0].min() for v in dwell.values()), 0.1)
        high = max(max(v[0].max() for v in dwell.values()), 1.0)
        bins = np.geomspace(low * 0.9, high * 1.1, 60)
        for name in names:
            if name not in dwell:
                continue
            values, weights = dwell[name]
            order = np.argsort(values, kind="stable")
            values, weights = values[order], weights[order]
            count = int(weights.sum())
            label = f"{name} ({count:,})"
            hist_ax.hist(np.clip(values, bins[0], None), bins=bins, weights=weights, histtype="step", linewidth=1.4, color=colours[name], label=label)
            cumulative = np.cumsum(weights) / count
            picks = np.unique(np.linspace(0, values.size - 1, min(values.size, CDF_POINTS)).astype(np.int64))
            cdf_ax.step(values[picks], cumulative[picks], where="post", linewidth=1.4, color=colours[name], label=label)
        hist_ax.set(xscale="log", title="Histogram", xlabel="latency (µs, log scale)", ylabel="returned packets")
        cdf_ax.set(xscale="log", title="Cumulative distribution", xlabel="latency (µs, log scale)", ylabel="share of returned packets", ylim=(0, 1.02))
        cdf_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        for share, text in ((0.5, "p50"), (0.99, "p99")):
            cdf_ax.axhline(share, color=INK, linewidth=0.7, linestyle=":")
            cdf_ax.annotate(text, (0, share), xycoords=("axes fraction", "data"), xytext=(2, 2), textcoords="offset points", fontsize=7, color=INK)
        cdf_ax.legend(loc="lower right", title="appliance (packets)", title_fontsize=8)
        return figure


def _timeline_packets(when_ax, within_ax, report: Report, shown: pd.DataFrame, colours: dict[str, str], start_ns: int) -> set[str]:
    """Each flow's packets as dots in its appliance's colour (filled client to server, hollow back); the appliances drawn."""
    names = report.roles.appliance_names()
    legs = report.legs
    direction, peer = legs["direction"].to_numpy(), legs["peer"].to_numpy()
    transit = (direction == Direction.INGRESS) | ((direction == Direction.EGRESS) & (peer == NO_PEER))
    legs = legs[transit & np.isin(legs["flow"].to_numpy(), shown.index.to_numpy())]
    row_of = {flow: k for k, flow in enumerate(shown.index)}
    for flow, flow_legs in legs.groupby("flow", sort=False):
        row = shown.loc[flow]
        y = row_of[flow]
        ts = flow_legs["ts_ns"].to_numpy()
        forward = (flow_legs["inner_src_hi"].to_numpy() == row["client_hi"]) & (flow_legs["inner_src_lo"].to_numpy() == row["client_lo"])
        leg_colours = np.array([colours.get(names[a], UNKNOWN_COLOUR) if 0 <= a < len(names) else UNKNOWN_COLOUR for a in flow_legs["appliance"].to_numpy()])
        first_s, last_s = (row["first_ns"] - start_ns) / NS_PER_SECOND, (row["last_ns"] - start_ns) / NS_PER_SECOND
        when_ax.plot([first_s, last_s], [y, y], color="#999999", linewidth=1, zorder=1)
        within_ms = (ts - row["first_ns"]) / NS_PER_MS
        within_ax.plot([0, within_ms.max()], [y, y], color="#bbbbbb", linewidth=0.8, zorder=1)
        for ax, x in ((when_ax, (ts - start_ns) / NS_PER_SECOND), (within_ax, within_ms)):
            ax.scatter(x[forward], np.full(forward.sum(), y), s=18, c=leg_colours[forward], zorder=2, linewidths=0.8)
            ax.scatter(x[~forward], np.full((~forward).sum(), y), s=18, facecolors="white", edgecolors=leg_colours[~forward], zorder=2, linewidths=1.1)
    return {names[a] for a in legs["appliance"].to_numpy() if 0 <= a < len(names)}


def _timeline_spans(when_ax, within_ax, shown: pd.DataFrame, colours: dict[str, str], start_ns: int) -> set[str]:
    """Each flow from its first to its last packet, in the colour of its first appliance; the appliances drawn."""
    used = set()
    for y, (_, row) in enumerate(shown.iterrows()):
        first = row["appliances"].split(",")[0]
        used.add(first)
        first_s, last_s = (row["first_ns"] - start_ns) / NS_PER_SECOND, (row["last_ns"] - start_ns) / NS_PER_SECOND
        when_ax.plot([first_s, last_s], [y, y], color=colours.get(first, UNKNOWN_COLOUR), linewidth=2.5, zorder=1)
        within_ax.plot([0, (row["last_ns"] - row["first_ns"]) / NS_PER_MS], [y, y], color=colours.get(first, UNKNOWN_COLOUR), linewidth=2.5, zorder=1)
    return {name for name in used if name in colours}


def _dwell_times_us(report: Report, names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per appliance name, dwell times in microseconds with their weights: every paired leg, or a sketch's buckets."""
    if "direction" in report.legs:
        paired = paired_ingress(report.legs)
        latency_us = paired["latency_ns"].to_numpy() / NS_PER_US
        appliance = paired["appliance"].to_numpy()
        out = {}
        for k, name in enumerate(names):
            values = latency_us[appliance == k]
            if values.size:
                out[name] = (values, np.ones(values.size, np.int64))
        return out
    out = {}
    for name, sketch in report.latency_sketches.items():
        if sketch.count:
            values, counts = sketch.histogram_ns()
            out[name] = (values / NS_PER_US, counts)
    return out


def _active_spans(seconds: np.ndarray, max_spans: int = MAX_TIME_SPANS) -> list[tuple[int, int]]:
    """The stretches of capture time that hold data, split at the longest silences (over ``SILENCE_S``)."""
    seconds = np.unique(seconds)
    gaps = np.diff(seconds)
    cuts = np.sort(np.argsort(gaps)[::-1][: max_spans - 1])
    cuts = cuts[gaps[cuts] > SILENCE_S]
    starts = np.r_[0, cuts + 1]
    ends = np.r_[cuts, len(seconds) - 1]
    return [(int(seconds[a]), int(seconds[b])) for a, b in zip(starts, ends)]


def _mark_breaks(axes: list) -> None:
    """Hide the inner spines of side-by-side axes and draw the usual // marks where the time axis breaks."""
    marks = dict(marker=[(-1, -1.5), (1, 1.5)], markersize=8, linestyle="none", color="#555555", mec="#555555", mew=1, clip_on=False)
    for left, right in zip(axes[:-1], axes[1:]):
        left.spines["right"].set_visible(False)
        right.spines["left"].set_visible(False)
        right.tick_params(axis="y", which="both", left=False, labelleft=False)
        left.plot([1], [0], transform=left.transAxes, **marks)
        right.plot([0], [0], transform=right.transAxes, **marks)


def plot_latency_over_time(report: Report) -> Figure:
    """p50 and p99 dwell time per appliance and second of capture (each appliance on its own capture's clock).

    Long silences (over ``SILENCE_S``) are cut out of the time axis, which breaks there.
    """
    title = "Latency over time per appliance (p50 solid, p99 dashed)"
    with matplotlib.rc_context(STYLE):
        table = report.latency_over_time
        if table is None or table.empty:
            return _no_data_figure(title, "no data: no packet came back")
        figure = _figure(3.4, title)
        colours = appliance_colours(report)
        start_s = _capture_start_ns(report) // NS_PER_SECOND
        spans = _active_spans(table["second"].to_numpy() - start_s)
        widths = [max(b - a + 1, 0.15 * (spans[-1][1] - spans[0][0] + 1)) for a, b in spans]
        axes = list(figure.subplots(1, len(spans), sharey=True, width_ratios=widths, squeeze=False)[0])
        for name, rows in table.groupby("appliance", sort=True):
            rows = rows.sort_values("second")
            seconds = rows["second"].to_numpy() - start_s
            colour = colours.get(str(name), UNKNOWN_COLOUR)
            for ax, (first, last) in zip(axes, spans):
                inside = (seconds >= first) & (seconds <= last)
                if not inside.any():
                    continue
                # A second without returned packets breaks the line instead of bridging the gap.
                values = rows[inside].set_index(seconds[inside])[["p50_us", "p99_us"]].reindex(np.arange(first, last + 1))
                ax.plot(values.index, values["p50_us"], color=colour, linewidth=1.5, marker="o", markersize=3)
                ax.plot(values.index, values["p99_us"], color=colour, linewidth=1.2, linestyle="--", marker="o", markersize=2.5, alpha=0.85)
        for ax, (first, last) in zip(axes, spans):
            ax.set_xlim(first - 0.5, last + 0.5)
            ax.xaxis.get_major_locator().set_params(integer=True, nbins=max(2, min(8, last - first + 1)))
        axes[0].set(yscale="log", ylabel="latency (µs, log scale)")
        _mark_breaks(axes)
        figure.supxlabel("time since the capture's first packet (s)" + (", silences cut out" if len(spans) > 1 else ""), fontsize=9)
        handles = [Line2D([], [], color=colours.get(str(n), UNKNOWN_COLOUR), linewidth=2, label=str(n)) for n in sorted(table["appliance"].unique())]
        handles += [
            Line2D([], [], color=INK, linewidth=1.5, label="p50"),
            Line2D([], [], color=INK, linewidth=1.2, linestyle="--", label="p99"),
        ]
        axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure


def _share_bars(ax, table: pd.DataFrame, column: str, colours: list[str], title: str, formatter: EngFormatter) -> None:
    values = table[column].to_numpy(dtype=float)
    labels = [str(i) for i in table.index]
    y = np.arange(len(values))
    ax.barh(y, values, color=colours, height=0.65)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    even = values.sum() / len(values)
    ax.axvline(even, color=INK, linestyle="--", linewidth=1)
    ax.set_title(title, fontsize=9)
    ax.xaxis.set_major_formatter(formatter)
    ax.grid(axis="y", visible=False)
    ax.set_xlim(0, max(values.max(), even) * 1.18 if values.max() > 0 else 1)
    total = values.sum()
    for k, value in enumerate(values):
        share = f"{value / total:.0%}" if total else "-"
        ax.annotate(share, (value, k), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7, color="#333333")


def plot_distribution(report: Report) -> Figure:
    """Flows, packets and bytes per appliance and per endpoint, with the even share marked."""
    title = "Traffic per appliance and per endpoint (dashed: an even share)"
    rows = [(what, table) for what, table in (("appliance", report.appliances), ("endpoint", report.endpoints)) if table is not None and not table.empty]
    with matplotlib.rc_context(STYLE):
        if not rows:
            return _no_data_figure(title, "no data: no appliance carried traffic")
        height = 1.3 + sum(0.9 + 0.28 * len(t) for _, t in rows)
        figure = _figure(height, title)
        grid = figure.subplots(len(rows), 3, squeeze=False, height_ratios=[len(t) + 2 for _, t in rows])
        colours = appliance_colours(report)
        metrics = (("flows", "flows", ""), ("packets_in", "packets in", ""), ("bytes_in", "inner bytes in", "B"))
        for (what, table), axes in zip(rows, grid):
            bar_colours = [colours.get(str(i), UNKNOWN_COLOUR) if what == "appliance" else ENDPOINT_COLOUR for i in table.index]
            for k, (ax, (column, label, unit)) in enumerate(zip(axes, metrics)):
                _share_bars(ax, table, column, bar_colours, f"{label} per {what}", EngFormatter(unit=unit, sep=""))
                if k:
                    ax.set_yticklabels([])
        return figure


def plot_symmetry(report: Report) -> Figure:
    """Flows per verdict: symmetric, or the most severe reason that made the flow faulty."""
    with matplotlib.rc_context(STYLE):
        flows = report.flows
        counts = flows["verdict"].value_counts() if len(flows) else pd.Series(dtype=int)
        order = [v for v in ("symmetric", *REASONS) if v in counts.index] + sorted(set(counts.index) - {"symmetric", *REASONS})
        if not order:
            return _no_data_figure("Flows by symmetry verdict", "no data: no flows")
        slots = max(len(order), 3)  # one or two verdicts keep thin bars, centred
        figure = _figure(1.0 + 0.3 * slots, "Flows by symmetry verdict")
        ax = figure.subplots()
        values = [int(counts[v]) for v in order]
        colours = [SEVERITY_COLOURS["ok"] if v == "symmetric" else SEVERITY_COLOURS[FLOW_SEVERITY.get(v, "info")] for v in order]
        y = np.arange(len(order))
        ax.barh(y, values, color=colours, height=0.65)
        ax.set_yticks(y, [v.replace("_", " ") for v in order])
        pad = (slots - len(order)) / 2
        ax.set_ylim(len(order) - 0.5 + pad, -0.5 - pad)
        ax.grid(axis="y", visible=False)
        total = sum(values)
        ax.set_xlim(0, max(values) * 1.2)
        for k, value in enumerate(values):
            ax.annotate(f"{value:,} ({value / total:.1%})", (value, k), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_xlabel("flows")
        present = [s for s in ("ok", "error", "warning", "info") if SEVERITY_COLOURS[s] in colours]
        labels = {"ok": "symmetric", "error": "error", "warning": "warning", "info": "info"}
        if len(present) > 1:
            ax.legend(handles=[Line2D([], [], color=SEVERITY_COLOURS[s], linewidth=6, label=labels[s]) for s in present], loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return figure


def _timeline_flows(flows: pd.DataFrame, limit: int = MAX_TIMELINE_FLOWS) -> tuple[pd.DataFrame, int]:
    """Up to ``limit`` flows that moved, went one-sided or asymmetric, in time order, and how many there are.

    When there are more, each kind gets its turn (earliest first), so that the few flows that moved are not
    crowded out by many asymmetric ones.
    """
    if flows.empty:
        return flows, 0
    kind = flows["reasons"].str.split(",").apply(lambda r: next((k for k, reason in enumerate(TIMELINE_REASONS) if reason in r), -1))
    chosen = flows[kind >= 0].assign(_kind=kind[kind >= 0]).sort_values(["first_ns", "key"])
    turn = chosen.groupby("_kind").cumcount()
    shown = chosen.assign(_turn=turn).sort_values(["_turn", "_kind"], kind="stable").head(limit)
    return shown.sort_values(["first_ns", "key"]).drop(columns=["_kind", "_turn"]), len(chosen)


def _short_key(row: pd.Series) -> str:
    """The flow key with its endpoint cut to the last digits, which tell the endpoints of one capture apart."""
    key, _, endpoint = str(row["key"]).partition(" @ ")
    return f"{key} @…{endpoint[-5:]}"


def _timeline_reason(reasons: str) -> str:
    found = reasons.split(",")
    return next((r for r in TIMELINE_REASONS if r in found), found[0] or "symmetric").replace("_", " ")


def plot_timeline(report: Report, flows: pd.DataFrame | None = None) -> Figure:
    """Flows that moved between appliances or went one-sided or asymmetric (or the ``flows`` given, rows of
    ``report.flows``): when they ran, and where each packet went.

    Left, each flow from its first to its last packet in capture time; right, each packet's time since its
    flow's first packet.  Colours are appliances; filled dots travel client to server, hollow ones back;
    a black cross marks the packet that changed appliance.
    """
    if flows is None:
        shown, total = _timeline_flows(report.flows)
        title = "Flows that moved, went one-sided or asymmetric"
    else:
        shown, total = flows.sort_values(["first_ns", "key"]).head(MAX_TIMELINE_FLOWS), len(flows)
        title = "Flows chosen"
    with matplotlib.rc_context(STYLE):
        if total > len(shown):
            title += f" ({len(shown)} of {total})"
        if shown.empty:
            return _no_data_figure(title, "no flow moved, went one-sided or asymmetric")
        figure = _figure(1.6 + 0.24 * max(len(shown), 3), title)
        when_ax, within_ax = figure.subplots(1, 2, sharey=True, width_ratios=[1, 1])
        colours = appliance_colours(report)
        names = report.roles.appliance_names()
        start_ns = _capture_start_ns(report)
        if "direction" in report.legs:
            used = _timeline_packets(when_ax, within_ax, report, shown, colours, start_ns)
        else:  # a streamed analysis keeps no legs: each flow's span, in the colour of its first appliance
            used = _timeline_spans(when_ax, within_ax, shown, colours, start_ns)
        for y, (_, row) in enumerate(shown.iterrows()):
            if row["moved_at_ns"] >= 0:
                when_ax.scatter([(row["moved_at_ns"] - start_ns) / NS_PER_SECOND], [y], marker="x", s=45, color="black", zorder=3, gid="moved")
                within_ax.scatter([(row["moved_at_ns"] - row["first_ns"]) / NS_PER_MS], [y], marker="x", s=45, color="black", zorder=3, gid="moved")
        when_ax.set_yticks(range(len(shown)), [_short_key(r) for _, r in shown.iterrows()], fontsize=7)
        when_ax.set_ylim(len(shown) - 0.5, -0.5)
        for y, reasons in enumerate(shown["reasons"]):
            within_ax.annotate(_timeline_reason(reasons), (1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=7, color="#333333")
        when_ax.set(title="When", xlabel="capture time (s)")
        within_ax.set(title="Inside each flow", xlabel="since the flow's first packet (ms; log > 1 ms)")
        within_ax.set_xscale("symlog", linthresh=1.0, linscale=0.6)
        within_ax.set_xlim(left=-0.05)
        for ax in (when_ax, within_ax):
            ax.grid(axis="y", visible=False)
        used = sorted(used, key=names.index)
        handles = [Line2D([], [], marker="o", linestyle="", color=colours[n], label=n) for n in used]
        if "direction" in report.legs:
            handles += [
                Line2D([], [], marker="o", linestyle="", color=INK, label="client to server"),
                Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor=INK, label="server to client"),
            ]
        handles.append(Line2D([], [], marker="x", linestyle="", color="black", label="changed appliance"))
        figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
        return figure

