"""The report on a terminal, with colour and tables that fit its width (rich); plain text elsewhere (report.text)."""

from __future__ import annotations

from typing import TextIO

from .model import Report
from .text import EXAMPLES, render_report, sketch_note

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def render(report: Report, stream: TextIO, verbose: bool = False, quiet: bool = False) -> None:
    """Write ``report`` to ``stream``: rich tables and colour on a terminal, plain text otherwise."""
    if not is_terminal(stream):
        render_report(report, stream, verbose=verbose, quiet=quiet)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, highlight=False)
    style = "bold green" if report.healthy else ("bold red" if any(f.severity == "error" for f in report.findings) else "bold yellow")
    console.print(f"gwcheck: {report.verdict}", style=style)
    if quiet:
        return
    summary = report.summary
    console.print(
        f"{summary['packets']:,} packets in {len(summary['files'])} file(s), {summary['duration_s']:.3f} s; "
        f"roles: {report.roles.method}",
        style="dim",
    )
    appliances = Table(title="Appliances", title_justify="left")
    for column in ("appliance", "flows", "packets in", "share", "returned", "p50 us", "p99 us", "health ok"):
        appliances.add_column(column, justify="left" if column == "appliance" else "right", no_wrap=column == "appliance")
    health = report.appliance_health
    for name, row in report.appliances.iterrows():
        returned = row["returned"] / row["packets_in"] * 100 if row["packets_in"] else float("nan")
        checks = "-"
        if not health.empty and name in health.index and health.loc[name, "probes"]:
            ok, probes = int(health.loc[name, "healthy"]), int(health.loc[name, "probes"])
            checks = f"[{'green' if ok == probes else 'red'}]{ok}/{probes}[/]"
        colour = "green" if returned >= 99.99 else "red"
        appliances.add_row(
            str(name), f"{int(row['flows']):,}", f"{int(row['packets_in']):,}", f"{row['packets_in_share'] * 100:.1f}%",
            f"[{colour}]{returned:.2f}%[/]", _us(row["latency_p50_us"]), _us(row["latency_p99_us"]), checks,
        )
    console.print(appliances)
    endpoints = Table(title="Endpoints", title_justify="left")
    for column in ("endpoint", "flows", "packets in", "share", "not returned", "p99 us"):
        endpoints.add_column(column, justify="left" if column == "endpoint" else "right", no_wrap=column == "endpoint")
    for name, row in report.endpoints.iterrows():
        endpoints.add_row(str(name), f"{int(row['flows']):,}", f"{int(row['packets_in']):,}", f"{row['packets_in_share'] * 100:.1f}%",
                          f"{int(row['not_returned']):,}", _us(row["latency_p99_us"]))
    console.print(endpoints)
    symmetry = Table(title="Symmetry", title_justify="left")
    symmetry.add_column("verdict")
    symmetry.add_column("flows", justify="right")
    for verdict, count in (report.flows["verdict"].value_counts().items() if len(report.flows) else []):
        symmetry.add_row(f"[{'green' if verdict == 'symmetric' else 'red'}]{verdict}[/]", f"{count:,}")
    console.print(symmetry)
    overall = report.latency["overall"]
    console.print(f"Latency: {overall['count']:,} returned packets, p50 {_us(overall['p50'])} us, p99 {_us(overall['p99'])} us, max {_us(overall['max'])} us{sketch_note(report)}")
    console.print("Findings", style="bold")
    if not report.findings:
        console.print("  none", style="green")
    for finding in report.findings:
        console.print(f"  [{SEVERITY_STYLE[finding.severity]}]{finding.severity:<7}[/] {finding.message}")
        console.print(f"          likely cause: {finding.cause}", style="dim")
        keys = finding.flow_keys if verbose else finding.examples(EXAMPLES)
        for key in keys:
            console.print(f"          {key}", highlight=False, markup=False)
        if len(keys) < len(finding.flow_keys):
            console.print(f"          ... {len(finding.flow_keys) - len(keys)} more (--verbose lists them all)", style="dim")


def _us(value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.1f}"
