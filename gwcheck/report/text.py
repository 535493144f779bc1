"""The capture summary as plain text for a person at a terminal."""

from __future__ import annotations

import datetime as dt
from typing import TextIO

NS_PER_SECOND = 1_000_000_000


def _time(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "-"
    moment = dt.datetime.fromtimestamp(ts_ns // NS_PER_SECOND, tz=dt.timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{ts_ns % NS_PER_SECOND:09d}Z"


def _line(stream: TextIO, label: str, value: object) -> None:
    stream.write(f"{label:<16}{value}\n")


def render_summary(summary: dict, stream: TextIO) -> None:
    """Write the capture summary of ``analysis.summary.capture_summary`` to ``stream``."""
    files = summary["files"]
    stream.write(f"Capture summary: {summary['packets']} packets in {len(files)} file{'s' if len(files) != 1 else ''}\n")
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
    for row in roles["gwlb_nodes"] + roles["appliances"]:
        name = "GWLB node" if row["role"] == "gwlb" else "Appliance"
        _line(stream, f"  {name}", f"{row['address']:<16} sent {row['packets_sent']}, received {row['packets_received']}")
    _line(stream, "Endpoints", len(summary["endpoints"]))
    for e in summary["endpoints"]:
        stream.write(f"  {e['endpoint']}  {e['packets']} packets, {e['cookies']} cookies, attachment {', '.join(e['attachment_ids'])}\n")
    _line(stream, "Flow cookies", summary["cookies"])
