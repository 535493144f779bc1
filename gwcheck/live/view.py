"""What ``gwcheck live`` shows every interval: a ``Snapshot`` of the Report so far, as one status line (any stream) or
a view redrawn in place on a terminal (rich).  Renderers write to the stream they are given and return nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from ..analysis.findings import Finding
from ..report.model import Report

APPLIANCES_SHOWN = 3  # on the status line; the terminal view shows all
FINDINGS_SHOWN = 5
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


@dataclass(frozen=True)
class ApplianceLine:
    name: str
    packets_in: int
    returned_share: float | None  # returned / (returned + not returned); packets still in flight are neither
    latency_p50_us: float | None
    latency_p99_us: float | None


@dataclass(frozen=True)
class Snapshot:
    """The numbers of one refresh: totals, rates since the previous refresh, and the findings, newest first."""

    elapsed_s: float
    packets: int
    packets_per_s: float
    flows: int
    flows_per_s: float
    returned_share: float | None
    appliances: tuple[ApplianceLine, ...]
    symmetry: dict[str, int]  # flows by verdict
    findings: tuple[Finding, ...]  # those new since the previous refresh first
    new_findings: int  # how many of ``findings`` are new


def take_snapshot(report: Report | None, previous: Snapshot | None, elapsed_s: float, packets: int) -> Snapshot:
    """The snapshot of ``report`` (None: nothing captured yet), ``elapsed_s`` into the capture, after ``previous``."""
    since = elapsed_s - (previous.elapsed_s if previous else 0.0)
    flows = len(report.flows) if report is not None else 0

    def rate(now: int, before: int) -> float:
        return (now - before) / since if since > 0 else 0.0

    appliances: list[ApplianceLine] = []
    returned = lost = 0
    symmetry: dict[str, int] = {}
    findings: list[Finding] = []
    if report is not None:
        for name, row in report.appliances.iterrows():
            back, gone = int(row["returned"]), int(row["not_returned"])
            returned, lost = returned + back, lost + gone
            appliances.append(ApplianceLine(str(name), int(row["packets_in"]), _share(back, gone), _number(row["latency_p50_us"]), _number(row["latency_p99_us"])))
        if len(report.flows):
            symmetry = {str(k): int(v) for k, v in report.flows["verdict"].value_counts().items() if v}
        findings = list(report.findings)
    seen = {f.kind for f in previous.findings} if previous else set()
    new = [f for f in findings if f.kind not in seen]
    return Snapshot(
        elapsed_s=elapsed_s,
        packets=packets,
        packets_per_s=rate(packets, previous.packets if previous else 0),
        flows=flows,
        flows_per_s=rate(flows, previous.flows if previous else 0),
        returned_share=_share(returned, lost),
        appliances=tuple(appliances),
        symmetry=symmetry,
        findings=tuple(new + [f for f in findings if f.kind in seen]),
        new_findings=len(new),
    )


def _share(returned: int, lost: int) -> float | None:
    return returned / (returned + lost) if returned + lost else None


def _number(value: object) -> float | None:
    return None if value is None or value != value else float(value)  # NaN: no latency measured


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}us"


def status_line(snapshot: Snapshot) -> str:
    """One short line: rates, returned share, latency per appliance, symmetry and the newest finding."""
    s = snapshot
    parts = [
        f"{s.elapsed_s:.1f}s",
        f"{s.packets:,} packets ({s.packets_per_s:,.0f}/s)",
        f"{s.flows:,} flows ({s.flows_per_s:,.1f}/s)",
        f"returned {_percent(s.returned_share)}",
    ]
    shown = [f"{a.name} p50 {_us(a.latency_p50_us)} p99 {_us(a.latency_p99_us)}" for a in s.appliances[:APPLIANCES_SHOWN]]
    if len(s.appliances) > APPLIANCES_SHOWN:
        shown.append(f"{len(s.appliances) - APPLIANCES_SHOWN} more appliances")
    parts += shown
    parts.append(" ".join(f"{verdict} {count:,}" for verdict, count in s.symmetry.items()) or "no flows yet")
    if s.new_findings:
        first = s.findings[0]
        more = f" (+{s.new_findings - 1} new)" if s.new_findings > 1 else ""
        parts.append(f"new {first.severity}: {first.kind}{more}")
    elif s.findings:
        parts.append(f"{len(s.findings)} finding{'s' if len(s.findings) != 1 else ''}")
    return "gwcheck live: " + ", ".join(parts)


class StatusLines:
    """A status line per refresh, for logs and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def update(self, snapshot: Snapshot) -> None:
        self.stream.write(status_line(snapshot) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class TerminalView:
    """The snapshot redrawn in place on a terminal (rich Live); it disappears on close, for the report to follow."""

    def __init__(self, stream: TextIO, title: str) -> None:
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.live = Live(console=Console(file=stream, highlight=False), auto_refresh=False, transient=True)
        self.live.start()

    def update(self, snapshot: Snapshot) -> None:
        self.live.update(self.render(snapshot), refresh=True)

    def render(self, s: Snapshot):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        head = Text.from_markup(
            f"[bold]{self.title}[/]  {s.elapsed_s:.0f} s   {s.packets:,} packets ({s.packets_per_s:,.0f}/s)   "
            f"{s.flows:,} flows ({s.flows_per_s:,.1f}/s)   returned {_percent(s.returned_share)}   [dim]Ctrl-C: stop and report[/]"
        )
        table = Table(title_justify="left", box=None, padding=(0, 2))
        for column in ("appliance", "packets in", "returned", "p50", "p99"):
            table.add_column(column, justify="left" if column == "appliance" else "right")
        for a in s.appliances:
            colour = "green" if a.returned_share is None or a.returned_share >= 0.9999 else "red"
            table.add_row(a.name, f"{a.packets_in:,}", f"[{colour}]{_percent(a.returned_share)}[/]", _us(a.latency_p50_us), _us(a.latency_p99_us))
        symmetry = ", ".join(f"[{'green' if v == 'symmetric' else 'red'}]{v}[/] {n:,}" for v, n in s.symmetry.items()) or "no flows yet"
        lines = [head, table, Text.from_markup(f"flows: {symmetry}")]
        for k, finding in enumerate(s.findings[:FINDINGS_SHOWN]):
            mark = "new " if k < s.new_findings else "    "
            line = Text(mark, style="bold")
            line.append(f"{finding.severity:<7} ", style=SEVERITY_STYLE.get(finding.severity, ""))
            line.append(finding.message)
            lines.append(line)
        if len(s.findings) > FINDINGS_SHOWN:
            lines.append(Text(f"    ... {len(s.findings) - FINDINGS_SHOWN} more findings", style="dim"))
        return Group(*lines)

    def close(self) -> None:
        self.live.stop()
