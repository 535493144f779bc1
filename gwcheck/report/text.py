"""The report as plain text for a person at a terminal: the verdict first, then short tables and the findings."""

from __future__ import annotations

import datetime as dt
from typing import TextIO

from ..schema import NS_PER_SECOND
from .model import Report

EXAMPLES = 3


def sketch_note(report: Report) -> str:
    """How exact the latency percentiles are, when they come from sketches (a streamed or distributed analysis)."""
    accuracy = report.latency.get("sketch_relative_accuracy")
    return f" (percentiles within {accuracy:.0%}, from sketches)" if accuracy else ""


def _time(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "-"
    moment = dt.datetime.fromtimestamp(ts_ns // NS_PER_SECOND, tz=dt.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ts_ns % NS_PER_SECOND:09d}Z"


def _line(stream: TextIO, label: str, value: object) -> None:
    stream.write(f"{label:<16}{value}\n")


def _number(value: object, digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:,.{digits}f}"


def _table(stream: TextIO, headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(headers)]
    stream.write("  " + "  ".join(h.ljust(w) if k == 0 else h.rjust(w) for k, (h, w) in enumerate(zip(headers, widths))).rstrip() + "\n")
    for row in rows:
        stream.write("  " + "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths))).rstrip() + "\n")


def render_summary(summary: dict, stream: TextIO) -> None:
    """Write the capture summary of ``analysis.summary.capture_summary`` to ``stream``."""
    files = summary["files"]
    stream.write(f"Capture: {summary['packets']} packets in {len(files)} file{'s' if len(files) != 1 else ''}\n")
    for f in files:
        links = ", ".join(sorted({str(i["link_type"]) for i in f["interfaces"]}))
        damage = f"  DAMAGED at byte {f['damage']['offset']}: {f['damage']['reason']}" if f["damage"] else ""
        stream.write(f"  {f['path']}  {f['format']}  link type {links}  {f['packets']} packets{damage}\n")
    _line(stream, "Time span", f"{_time(summary['first_ts_ns'])} .. {_time(summary['last_ts_ns'])} ({summary['duration_s']:.3f} s)")
    _line(stream, "By kind", ", ".join(f"{k} {v}" for k, v in summary["by_kind"].items()) or "-")
    _line(stream, "By status", ", ".join(f"{k} {v}" for k, v in summary["by_status"].items()) or "-")
    shape = summary["gwlb_shape"]
    deviations = ", ".join(f"{k} {v}" for k, v in shape.items() if k != "exact")
    _line(stream, "GWLB shape", f"exact {shape['exact']}" + (f"; deviations: {deviations}" if deviations else ""))
    roles = summary["roles"]
    _line(stream, "Roles found by", roles["method"])
    _line(stream, "Endpoints", ", ".join(e["endpoint"] for e in summary["endpoints"]) or "-")
    _line(stream, "Flow cookies", summary["cookies"])


def render_report(report: Report, stream: TextIO, verbose: bool = False, quiet: bool = False) -> None:
    """Write ``report`` to ``stream``: with ``quiet`` only the verdict; with ``verbose`` every flow key of every finding."""
    stream.write(f"gwcheck: {report.verdict}\n")
    if quiet:
        return
    stream.write("\n")
    render_summary(report.summary, stream)
    stream.write("\nAppliances\n")
    health = report.appliance_health
    rows = []
    for name, row in report.appliances.iterrows():
        checks = "-"
        if not health.empty and name in health.index and health.loc[name, "probes"]:
            checks = f"{int(health.loc[name, 'healthy'])}/{int(health.loc[name, 'probes'])}"
        returned = row["returned"] / row["packets_in"] * 100 if row["packets_in"] else None
        rows.append([str(name), _number(row["flows"]), _number(row["packets_in"]), f"{row['packets_in_share'] * 100:.1f}%",
                     f"{_number(returned, 2)}%", _number(row["latency_p50_us"], 1), _number(row["latency_p99_us"], 1), checks])
    _table(stream, ["appliance", "flows", "packets in", "share", "returned", "p50 us", "p99 us", "health ok"], rows)
    stream.write("\nEndpoints\n")
    rows = [[str(name), _number(row["flows"]), _number(row["packets_in"]), f"{row['packets_in_share'] * 100:.1f}%",
             _number(row["not_returned"]), _number(row["latency_p99_us"], 1)] for name, row in report.endpoints.iterrows()]
    _table(stream, ["endpoint", "flows", "packets in", "share", "not returned", "p99 us"], rows)
    stream.write("\nSymmetry\n")
    verdicts = report.flows["verdict"].value_counts() if len(report.flows) else {}
    _table(stream, ["verdict", "flows"], [[str(k), _number(v)] for k, v in dict(verdicts).items()])
    overall = report.latency["overall"]
    stream.write(
        f"\nLatency         {overall['count']:,} returned packets: p50 {_number(overall['p50'], 1)} us, "
        f"p99 {_number(overall['p99'], 1)} us, max {_number(overall['max'], 1)} us{sketch_note(report)}\n"
    )
    stream.write("\nFindings\n")
    if not report.findings:
        stream.write("  none\n")
    for finding in report.findings:
        stream.write(f"  [{finding.severity}] {finding.message}\n")
        stream.write(f"      likely cause: {finding.cause}\n")
        keys = finding.flow_keys if verbose else finding.examples(EXAMPLES)
        for key in keys:
            stream.write(f"      {key}\n")
        if len(keys) < len(finding.flow_keys):
            stream.write(f"      ... {len(finding.flow_keys) - len(keys)} more (--verbose lists them all)\n")
