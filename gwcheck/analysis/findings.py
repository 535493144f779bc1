"""Findings: what is wrong, how often, where, on which flows, and the likely cause in plain words."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .symmetry import REASONS

SEVERITIES = ("error", "warning", "info")
FLOW_SEVERITY = {
    "originated": "error",
    "asymmetric": "error",
    "one_sided": "error",
    "stale_cookie": "error",
    "wrong_cookie": "error",
    "modified_options": "error",
    "not_returned": "error",
    "outer_fragments": "error",
    "over_mtu": "error",
    "moved": "warning",
    "idle_gap": "warning",
}
EXAMPLE_KEYS = 5
FINDING_COLUMNS = [
    "key", "appliances", "gwlb_nodes", "endpoint", "not_returned", "stale_cookie_legs", "wrong_cookie_legs",
    "modified_option_legs", "over_mtu_packets", "fragmented_legs", "max_gap_s",
]
#: What each flow reason means, as the end of "N of M flows ...".
REASON_PHRASES = {
    "originated": "were originated by an appliance",
    "asymmetric": "were asymmetric: their directions crossed different appliances or endpoints",
    "one_sided": "were one-sided: only one direction reached an appliance",
    "stale_cookie": "were answered with an older flow's cookie",
    "wrong_cookie": "were answered with a cookie GWLB never sent them",
    "modified_options": "came back with changed GWLB options",
    "not_returned": "had packets that never came back",
    "outer_fragments": "came back as outer IP fragments",
    "over_mtu": "carried inner packets over 8,500 bytes",
    "moved": "moved to another appliance part way",
    "idle_gap": "went silent past the idle timeout and came back as new flows",
}


@dataclass
class Finding:
    """One kind of problem, with its count and the flows or places behind it."""

    kind: str
    severity: str  # error, warning or info
    count: int  # flows, packets or probes, as ``unit`` says
    unit: str
    message: str  # what was seen, with numbers
    cause: str  # the likely cause, in plain words
    flow_keys: list[str] = field(default_factory=list)
    by_appliance: dict[str, int] = field(default_factory=dict)
    by_endpoint: dict[str, int] = field(default_factory=dict)
    by_gwlb_node: dict[str, int] = field(default_factory=dict)
    rates: dict[str, dict[str, float]] = field(default_factory=dict)  # per appliance/endpoint/node: count / flows there

    def examples(self, n: int = EXAMPLE_KEYS) -> list[str]:
        return self.flow_keys[:n]

    def to_dict(self) -> dict:
        return asdict(self)


def _breakdown(rows: pd.DataFrame, column: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value, times in rows[column].value_counts().items():
        for name in str(value).split(","):
            if name:
                counts[name] = counts.get(name, 0) + int(times)
    return dict(sorted(counts.items()))


def flow_findings(flows: pd.DataFrame) -> list[Finding]:
    """One finding per flow reason that occurs, with every flow key behind it."""
    findings = []
    # Reasons read once per distinct list of them (flows share few), not once per flow.
    codes, lists = pd.factorize(flows["reasons"])
    reasons = [set(r.split(",")) - {""} for r in lists]
    occurring = set().union(*reasons)
    if not occurring:
        return findings
    totals = {"appliance": _breakdown(flows, "appliances"), "endpoint": flows["endpoint"].value_counts().to_dict(), "gwlb_node": _breakdown(flows, "gwlb_nodes")}
    is_faulty = np.array([bool(r) for r in reasons], bool)[codes]
    faulty = flows.loc[is_faulty, FINDING_COLUMNS]  # the few columns findings read, of faulty flows
    faulty_codes = codes[is_faulty]
    for reason, cause in REASONS.items():
        if reason not in occurring:
            continue
        rows = faulty[np.array([reason in r for r in reasons], bool)[faulty_codes]]
        detail = _detail(reason, rows)
        by_appliance, by_node = _breakdown(rows, "appliances"), _breakdown(rows, "gwlb_nodes")
        by_endpoint = dict(sorted(rows["endpoint"].value_counts().to_dict().items()))
        rates = {
            place: {name: count / totals[place][name] for name, count in counts.items() if totals[place].get(name)}
            for place, counts in (("appliance", by_appliance), ("endpoint", by_endpoint), ("gwlb_node", by_node))
        }
        findings.append(
            Finding(
                kind=reason,
                severity=FLOW_SEVERITY[reason],
                count=len(rows),
                unit="flows",
                message=f"{len(rows)} of {len(flows)} flows {REASON_PHRASES[reason]}{detail}",
                cause=cause,
                flow_keys=rows["key"].tolist(),
                by_appliance=by_appliance,
                by_endpoint=by_endpoint,
                by_gwlb_node=by_node,
                rates=rates,
            )
        )
    return findings


def _detail(reason: str, rows: pd.DataFrame) -> str:
    if reason == "not_returned":
        return f" ({int(rows['not_returned'].sum())} packets)"
    if reason in ("stale_cookie", "wrong_cookie", "modified_options"):
        column = {"stale_cookie": "stale_cookie_legs", "wrong_cookie": "wrong_cookie_legs", "modified_options": "modified_option_legs"}[reason]
        return f" ({int(rows[column].sum())} return legs)"
    if reason == "over_mtu":
        return f" ({int(rows['over_mtu_packets'].sum())} inner packets over 8,500 bytes)"
    if reason == "outer_fragments":
        return f" ({int(rows['fragmented_legs'].sum())} fragmented return legs)"
    if reason == "idle_gap":
        return f" (longest silence {rows['max_gap_s'].max():.0f} s)"
    return ""


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then most frequent."""
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), -f.count, f.kind))
