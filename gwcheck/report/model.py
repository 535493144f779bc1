"""The Report: everything one analysis found, as tables and findings, and its versioned JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..analysis.findings import Finding
from ..tables.roles import Roles

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Version of the JSON document ``Report.to_dict`` returns; bumped when a field changes meaning or goes.
REPORT_SCHEMA_VERSION = 1


@dataclass
class Report:
    """What ``gwcheck.analyze`` returns; its DataFrames are the tables a notebook digs into."""

    packets: pd.DataFrame
    legs: pd.DataFrame
    flows: pd.DataFrame
    appliances: pd.DataFrame
    gwlb_nodes: pd.DataFrame
    endpoints: pd.DataFrame
    health_checks: pd.DataFrame
    appliance_health: pd.DataFrame
    latency_over_time: pd.DataFrame
    handshakes: pd.DataFrame
    new_flows: pd.DataFrame
    roles: Roles
    summary: dict[str, Any]
    latency: dict[str, Any]
    distribution: dict[str, Any]
    mtu: dict[str, Any]
    idle: dict[str, Any]
    pairing: dict[str, Any]
    findings: list[Finding]
    settings: dict[str, Any] = field(default_factory=dict)
    #: Per appliance, the latency sketch of an analysis that kept no legs (streamed, distributed); else empty.
    latency_sketches: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True when no finding is an error or a warning."""
        return not any(f.severity in ("error", "warning") for f in self.findings)

    @property
    def verdict(self) -> str:
        """One line: healthy, or what is wrong and how much."""
        if self.healthy:
            flows = len(self.flows)
            return f"healthy: {flows} flows symmetric, every packet returned, {len(self.roles.appliances)} appliances"
        errors = [f for f in self.findings if f.severity == "error"]
        worst = (errors or self.findings)[0]
        others = sum(1 for f in self.findings if f.severity in ("error", "warning")) - 1
        more = f" (and {others} more finding{'s' if others != 1 else ''})" if others > 0 else ""
        return f"{'problems found' if errors else 'warnings'}: {worst.message}{more}"

    def __repr__(self) -> str:
        return f"<gwcheck Report: {self.verdict}>"

    def _repr_html_(self) -> str:
        """What Jupyter shows for a report: the verdict, the appliances and the findings."""
        import html

        colour = "#1a7f37" if self.healthy else "#cf222e"
        columns = ["flows", "packets_in", "returned", "not_returned", "latency_p50_us", "latency_p99_us"]
        appliances = self.appliances[columns].to_html(float_format=lambda v: f"{v:,.1f}", border=0) if len(self.appliances) else ""
        rows = "".join(
            f"<tr><td>{html.escape(f.severity)}</td><td>{html.escape(f.message)}</td><td>{html.escape(f.cause)}</td></tr>"
            for f in self.findings
        )
        findings = f"<table><tr><th>severity</th><th>finding</th><th>likely cause</th></tr>{rows}</table>" if rows else "<p>No findings.</p>"
        return (
            f'<div><p style="color:{colour};font-weight:bold">gwcheck: {html.escape(self.verdict)}</p>'
            f"<p>{self.summary['packets']:,} packets, {len(self.flows):,} flows; roles: {html.escape(self.roles.method)}</p>"
            f"<h4>Appliances</h4>{appliances}<h4>Findings</h4>{findings}</div>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready document (schema version ``REPORT_SCHEMA_VERSION``)."""
        return _clean(
            {
                "schema_version": REPORT_SCHEMA_VERSION,
                "verdict": self.verdict,
                "healthy": self.healthy,
                "settings": self.settings,
                "summary": self.summary,
                "roles": {"method": self.roles.method, "gwlb_nodes": self.roles.gwlb_node_names(), "appliances": self.roles.appliance_names()},
                "appliances": _records(self.appliances, "appliance"),
                "gwlb_nodes": _records(self.gwlb_nodes, "gwlb_node"),
                "endpoints": _records(self.endpoints, "endpoint"),
                "latency_us": self.latency,
                "distribution": self.distribution,
                "symmetry": self.flows["verdict"].value_counts().to_dict() if len(self.flows) else {},
                "pairing": self.pairing,
                "mtu": self.mtu,
                "idle": self.idle,
                "health_checks": _records(self.appliance_health, "appliance"),
                "findings": [f.to_dict() for f in self.findings],
            }
        )

    def plot_latency(self) -> Figure:
        """Latency per appliance: histogram and cumulative distribution (a matplotlib Figure)."""
        from .plots import plot_latency

        return plot_latency(self)

    def plot_latency_over_time(self) -> Figure:
        """p50 and p99 latency per appliance and second of capture."""
        from .plots import plot_latency_over_time

        return plot_latency_over_time(self)

    def plot_distribution(self) -> Figure:
        """Flows, packets and bytes per appliance and per endpoint, with the even share marked."""
        from .plots import plot_distribution

        return plot_distribution(self)

    def plot_symmetry(self) -> Figure:
        """Flows per symmetry verdict."""
        from .plots import plot_symmetry

        return plot_symmetry(self)

    def plot_timeline(self, flows: pd.DataFrame | None = None) -> Figure:
        """A timeline of the flows that moved between appliances or went one-sided or asymmetric, or of ``flows``."""
        from .plots import plot_timeline

        return plot_timeline(self, flows)

    def flows_with(self, reason: str) -> pd.DataFrame:
        """The flows given ``reason`` (one of ``gwcheck.analysis.symmetry.REASONS``, or "symmetric")."""
        if reason == "symmetric":
            return self.flows[self.flows["verdict"] == "symmetric"]
        return self.flows[[reason in r.split(",") for r in self.flows["reasons"]]]


def _records(frame: pd.DataFrame, name: str) -> list[dict]:
    if frame is None or frame.empty:
        return []
    return [{name: index, **row} for index, row in frame.to_dict(orient="index").items()]


def _clean(value: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, NaN to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
