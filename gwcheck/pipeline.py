"""``analyze``: captures in, Report out. The one entry point the command line and notebooks share."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from .addresses import format_addresses
from .analysis import distribution as dist
from .analysis.findings import Finding, flow_findings, sort_findings
from .analysis.health import health_by_appliance, health_checks
from .analysis.latency import handshake_rtts, latency_by, latency_over_time, overall_latency, paired_ingress
from .analysis.summary import capture_summary
from .analysis.symmetry import classify_flows
from .decode.geneve import GENEVE_PORT, vpce_id
from .errors import ConfigError
from .flowkey import format_flow_key
from .report.model import Report
from .schema import FragmentFlags, GwlbShape
from .tables.flows import STICKINESS, build_flows, build_transits
from .tables.legs import OPTION_NAMES, Direction, Pairing, build_legs
from .tables.packets import Progress, read_packets
from .tables.roles import infer_roles, parse_addresses

DEFAULT_WINDOW_S = 1.0
DEFAULT_MAX_IMBALANCE = 1.5  # max/mean flows per appliance above which the spread is called uneven
OUTER_FRAGMENT_FLAGS = int(FragmentFlags.MF | FragmentFlags.OFFSET)

PathLike = str | os.PathLike


def analyze(
    captures: PathLike | Iterable[PathLike] | None = None,
    *,
    packets: pd.DataFrame | None = None,
    port: int = GENEVE_PORT,
    appliances: Iterable[str] = (),
    gwlb_nodes: Iterable[str] = (),
    window_s: float = DEFAULT_WINDOW_S,
    stickiness: str = "5-tuple",
    tcp_idle_timeout_s: float = 350.0,
    udp_idle_timeout_s: float = 120.0,
    expect_appliances: int | None = None,
    max_imbalance: float = DEFAULT_MAX_IMBALANCE,
    progress: Progress | None = None,
) -> Report:
    """Analyse captures taken on GWLB appliances (or an already read packet table) and return the Report.

    ``appliances`` and ``gwlb_nodes`` state roles that the traffic cannot show; ``window_s`` bounds how
    long an appliance may hold a packet; ``stickiness`` is the target group's flow key (5-tuple, 3-tuple,
    2-tuple); the idle timeouts are GWLB's (350 s TCP, 120 s others, by default).  ``progress`` is called
    with (bytes done, bytes in all) while the captures are read.
    """
    if stickiness not in STICKINESS:
        raise ConfigError(f"stickiness must be one of {', '.join(STICKINESS)}, got {stickiness!r}")
    if window_s <= 0:
        raise ConfigError(f"pairing window must be positive, got {window_s} s")
    if packets is None:
        if captures is None:
            raise ConfigError("give captures to read or a packet table")
        packets = read_packets(captures, port=port, progress=progress)
    roles = infer_roles(packets, parse_addresses(list(appliances), "appliance"), parse_addresses(list(gwlb_nodes), "GWLB node"))
    appliance_names, node_names = roles.appliance_names(), roles.gwlb_node_names()
    legs = build_legs(packets, roles, window_s)
    _name_legs(legs, appliance_names, node_names)
    transits = build_transits(legs, stickiness)
    flows = build_flows(transits, legs, appliance_names, node_names, tcp_idle_timeout_s, udp_idle_timeout_s)
    flows = _describe_flows(flows).join(classify_flows(flows))
    handshakes = handshake_rtts(transits)
    flows = flows.join(handshakes)
    paired = paired_ingress(legs)
    latency = {
        "appliance": latency_by(paired, "appliance", appliance_names),
        "gwlb_node": latency_by(paired, "gwlb_node", node_names),
        "aws_endpoint_id": latency_by(paired, "aws_endpoint_id"),
    }
    appliance_table = dist.spread(legs, "appliance", latency["appliance"], appliance_names)
    node_table = dist.spread(legs, "gwlb_node", latency["gwlb_node"], node_names)
    endpoint_table = dist.spread(legs, "aws_endpoint_id", latency["aws_endpoint_id"])
    endpoint_table.index = [vpce_id(e) for e in endpoint_table.index]
    endpoint_table.index.name = "endpoint"
    probes = health_checks(packets, roles)
    appliance_health = health_by_appliance(probes, appliance_names)
    distribution = _distribution(appliance_table, node_table, endpoint_table, flows, expect_appliances)
    mtu = _mtu(packets, flows)
    idle = _idle(flows, tcp_idle_timeout_s, udp_idle_timeout_s)
    findings = flow_findings(flows) + _other_findings(packets, legs, flows, appliance_table, appliance_health, distribution, mtu, max_imbalance)
    return Report(
        packets=packets,
        legs=legs,
        flows=flows,
        appliances=appliance_table,
        gwlb_nodes=node_table,
        endpoints=endpoint_table,
        health_checks=probes,
        appliance_health=appliance_health,
        latency_over_time=latency_over_time(paired, appliance_names),
        handshakes=handshakes,
        new_flows=dist.new_flows_per_second(flows),
        roles=roles,
        summary=capture_summary(packets, roles),
        latency={
            "overall": overall_latency(paired),
            "by_appliance": latency["appliance"].to_dict(orient="index"),
            "by_endpoint": {vpce_id(k): v for k, v in latency["aws_endpoint_id"].to_dict(orient="index").items()},
            "by_gwlb_node": latency["gwlb_node"].to_dict(orient="index"),
            "handshake": {
                "server_rtt_us": _describe_series(handshakes["server_rtt_us"]),
                "client_rtt_us": _describe_series(handshakes["client_rtt_us"]),
            },
        },
        distribution=distribution,
        mtu=mtu,
        idle=idle,
        pairing=_pairing_counts(legs, roles),
        findings=sort_findings(findings),
        settings={
            "port": port,
            "window_s": window_s,
            "stickiness": stickiness,
            "tcp_idle_timeout_s": tcp_idle_timeout_s,
            "udp_idle_timeout_s": udp_idle_timeout_s,
            "expect_appliances": expect_appliances,
            "max_imbalance": max_imbalance,
        },
    )


def _name_legs(legs: pd.DataFrame, appliance_names: list[str], node_names: list[str]) -> None:
    """Readable companions of the legs' integer codes, as categoricals (a byte or two a row)."""
    legs["direction_name"] = pd.Categorical.from_codes(legs["direction"].to_numpy(), categories=[d.name.lower() for d in Direction])
    legs["appliance_name"] = pd.Categorical.from_codes(legs["appliance"].to_numpy(), categories=appliance_names)
    legs["gwlb_node_name"] = pd.Categorical.from_codes(legs["gwlb_node"].to_numpy(), categories=node_names)
    legs["options_differ"] = pd.Categorical.from_codes(
        legs["option_diff"].to_numpy().astype(np.int8), categories=[_option_names(bits) or "none" for bits in range(8)]
    )


def _option_names(bits: int) -> str:
    return ",".join(name for bit, name in OPTION_NAMES.items() if bits & bit)


def _describe_flows(flows: pd.DataFrame) -> pd.DataFrame:
    """Text columns people read: client, server, endpoint and the flow key."""
    flows = flows.copy()
    client = format_addresses(flows["client_hi"].to_numpy(), flows["client_lo"].to_numpy())
    server = format_addresses(flows["server_hi"].to_numpy(), flows["server_lo"].to_numpy())
    endpoints, inverse = np.unique(flows["endpoint_id"].to_numpy(), return_inverse=True)
    endpoint = np.array([vpce_id(e) for e in endpoints], dtype=object)[inverse.reshape(-1)]
    flows["client"], flows["server"], flows["endpoint"] = client, server, endpoint
    flows["options_differ"] = [_option_names(int(d)) for d in flows["option_diff"].to_numpy()]
    # Built from the numpy arrays: iterating pandas' Arrow-backed string columns costs a microsecond a value.
    flows["key"] = [
        format_flow_key(p, c, cp, s, sp, e)
        for p, c, cp, s, sp, e in zip(
            flows["protocol"].tolist(), client, flows["client_port"].tolist(), server, flows["server_port"].tolist(), endpoint
        )
    ]
    return flows


def _pairing_counts(legs: pd.DataFrame, roles) -> dict:
    """How the legs paired: by outcome, how many were ambiguous, and how the roles behind directions were found."""
    counts = legs["pairing"].value_counts()
    return {
        "legs": int(len(legs)),
        "ingress": int((legs["direction"].to_numpy() == Direction.INGRESS).sum()),
        "egress": int((legs["direction"].to_numpy() == Direction.EGRESS).sum()),
        "by_outcome": {str(label): int(count) for label, count in counts.items()},  # these add up to "legs"
        "ambiguous_paired": int(legs["ambiguous"].sum()),  # paired legs that had identical twins
        "roles_method": roles.method,
    }


def _describe_series(values: pd.Series) -> dict:
    clean = values.dropna()
    if clean.empty:
        return {"count": 0}
    return {"count": int(len(clean)), "p50": float(clean.quantile(0.5)), "p99": float(clean.quantile(0.99)), "max": float(clean.max())}


def _distribution(appliances: pd.DataFrame, nodes: pd.DataFrame, endpoints: pd.DataFrame, flows: pd.DataFrame, expect: int | None) -> dict:
    out = {}
    for name, table in (("appliances", appliances), ("gwlb_nodes", nodes), ("endpoints", endpoints)):
        out[name] = {
            metric: dist.fairness(table[metric].to_numpy()) if len(table) else dist.fairness(np.zeros(0))
            for metric in ("flows", "packets_in", "bytes_in")
        }
    sticky = dist.stickiness(flows)
    out["stickiness"] = {
        "flows": sticky["flows"],
        "on_one_appliance": sticky["on_one_appliance"],
        "on_several": flows.loc[sticky["on_several"], "key"].tolist() if len(flows) else [],
    }
    out["appliances_seen"] = int(len(appliances))
    out["appliances_expected"] = expect
    return out


def _mtu(packets: pd.DataFrame, flows: pd.DataFrame) -> dict:
    geneve = (packets["kind"] == "geneve").to_numpy()
    fragments = (packets["outer_frag"].to_numpy() & OUTER_FRAGMENT_FLAGS) != 0
    udp_fragments = fragments & (packets["outer_proto"].to_numpy() == 17)
    return {
        "over_mtu_packets": int(flows["over_mtu_packets"].sum()) if len(flows) else 0,
        "over_mtu_flows": int((flows["over_mtu_packets"] > 0).sum()) if len(flows) else 0,
        "gso_super_packets": int(flows["gso_packets"].sum()) if len(flows) else 0,
        "gso_flows": int((flows["gso_packets"] > 0).sum()) if len(flows) else 0,
        "outer_fragment_packets": int((udp_fragments & (geneve | (packets["kind"] == "ip_fragment").to_numpy())).sum()),
        "fragmented_legs": int(flows["fragmented_legs"].sum()) if len(flows) else 0,
        "largest_inner_bytes": int(packets.loc[geneve, "inner_ip_len_bytes"].max()) if geneve.any() else 0,
        "largest_mss": int(flows["mss"].max()) if len(flows) else 0,
    }


def _idle(flows: pd.DataFrame, tcp_timeout_s: float, other_timeout_s: float) -> dict:
    gaps = flows[flows["idle_gaps"] > 0] if len(flows) else flows
    return {
        "tcp_timeout_s": tcp_timeout_s,
        "other_timeout_s": other_timeout_s,
        "flows_with_gaps": int(len(gaps)),
        "new_cookie_after": int(gaps["new_cookie_after_idle"].sum()) if len(gaps) else 0,
        "new_appliance_after": int(gaps["new_appliance_after_idle"].sum()) if len(gaps) else 0,
        "non_syn_after": int(gaps["non_syn_after_idle"].sum()) if len(gaps) else 0,
        "flows": gaps["key"].tolist() if len(gaps) else [],
    }


def _other_findings(
    packets: pd.DataFrame,
    legs: pd.DataFrame,
    flows: pd.DataFrame,
    appliances: pd.DataFrame,
    health: pd.DataFrame,
    distribution: dict,
    mtu: dict,
    max_imbalance: float,
) -> list[Finding]:
    findings = []
    if len(legs) == 0:
        findings.append(
            Finding(
                "no_gwlb_traffic", "error", 0, "packets",
                f"no Geneve packets on UDP port {packets.attrs.get('port', GENEVE_PORT)} among {len(packets):,} packets",
                "the capture holds no GWLB traffic: capture on the appliance's GWLB-facing interface with 'udp port 6081', or give --port",
            )
        )
    if not health.empty and health["failed"].sum():
        failing = health[health["failed"] > 0]
        still_used = [a for a in failing.index if a in appliances.index and appliances.loc[a, "packets_in"] > 0]
        note = f"; Geneve traffic still reaches {', '.join(still_used)}" if still_used else ""
        findings.append(
            Finding(
                "failing_health_checks", "error", int(failing["failed"].sum()), "probes",
                f"{int(failing['failed'].sum())} of {int(health['probes'].sum())} health checks failed on {len(failing)} appliance(s){note}",
                "the appliance does not answer GWLB's health checks: check that it listens on the health-check port and its security group allows the GWLB nodes",
                by_appliance={a: int(failing.loc[a, "failed"]) for a in failing.index},
            )
        )
    expected = distribution["appliances_expected"]
    if expected is not None and distribution["appliances_seen"] < expected:
        findings.append(
            Finding(
                "missing_appliances", "error", expected - distribution["appliances_seen"], "appliances",
                f"{distribution['appliances_seen']} appliances seen, {expected} expected",
                "some registered appliances get no traffic: they may be unhealthy, draining, or their captures were not given",
            )
        )
    balance = distribution["appliances"]["flows"]
    if len(appliances) > 1 and balance["max_mean_ratio"] is not None and balance["max_mean_ratio"] > max_imbalance:
        findings.append(
            Finding(
                "uneven_load", "warning", int(len(appliances)), "appliances",
                f"flows per appliance max/mean {balance['max_mean_ratio']:.2f} (Jain's index {balance['jain_index']:.2f}) exceeds {max_imbalance}",
                "flows spread unevenly over appliances: few large flows, appliances added recently (existing flows stay), or unhealthy targets",
                by_appliance={a: int(n) for a, n in appliances["flows"].items()},
            )
        )
    shape = packets["gwlb_shape"].to_numpy()[(packets["kind"] == "geneve").to_numpy()]
    if (shape != 0).any():
        flags = {flag.name.lower(): int(((shape & flag.value) != 0).sum()) for flag in GwlbShape if ((shape & flag.value) != 0).any()}
        findings.append(
            Finding(
                "gwlb_shape", "warning", int((shape != 0).sum()), "packets",
                f"{int((shape != 0).sum())} Geneve packets differ from the shape GWLB sends: " + ", ".join(f"{k} {v}" for k, v in flags.items()),
                "Geneve that is not GWLB's (another cloud or tunnel on the port), or options changed on the way",
            )
        )
    counts = packets["status"].value_counts()
    bad = int(counts.drop("ok", errors="ignore").sum())
    if bad:
        findings.append(
            Finding(
                "decode_errors", "warning", bad, "packets",
                f"{bad} packets could not be fully decoded: " + ", ".join(f"{k} {v}" for k, v in counts.drop("ok", errors="ignore")[lambda c: c > 0].items()),
                "a snap length shorter than the packets, or damaged frames: capture with -s 0",
            )
        )
    for capture in packets.attrs.get("captures", []):
        if capture.get("damage"):
            findings.append(
                Finding(
                    "damaged_capture", "warning", 1, "files",
                    f"{capture['path']} is damaged at byte {capture['damage']['offset']}: {capture['damage']['reason']}",
                    "the capture was cut short (tcpdump killed, disk full, copy interrupted); packets before the damage were analysed",
                )
            )
    unknown = int((legs["direction"].to_numpy() == Direction.UNKNOWN).sum())
    if unknown:
        findings.append(
            Finding(
                "unknown_roles", "warning", unknown, "packets",
                f"{unknown} Geneve packets between addresses of unknown role were not paired",
                "state the roles with --appliance IP and --gwlb IP",
            )
        )
    if mtu["gso_super_packets"]:
        findings.append(
            Finding(
                "gso_artefacts", "info", mtu["gso_super_packets"], "packets",
                f"{mtu['gso_super_packets']} GSO/GRO super-packets in {mtu['gso_flows']} flows (not MTU violations)",
                "segmentation offload on the capturing host: tcpdump sees packets before the NIC splits them",
            )
        )
    ambiguous = int(legs["ambiguous"].sum())
    if ambiguous:
        findings.append(
            Finding("ambiguous_pairs", "info", ambiguous, "legs", f"{ambiguous} legs had identical twins and were paired first-in first-out", "retransmissions or identical packets in flight"),
        )
    in_flight = int((legs["pairing"] == Pairing.IN_FLIGHT.label).sum())
    if in_flight:
        findings.append(
            Finding("in_flight", "info", in_flight, "packets", f"{in_flight} packets in the capture's last window had not come back yet", "the capture stopped while they were inside the appliance"),
        )
    return findings
