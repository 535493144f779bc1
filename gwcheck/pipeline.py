"""``analyze``: captures in, Report out. The one entry point the command line and notebooks share."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .addresses import address_texts
from .analysis import distribution as dist
from .analysis.findings import Finding, flow_findings, sort_findings
from .analysis.health import health_by_appliance, health_checks
from .analysis.latency import handshake_rtts
from .analysis.tallies import LegTally, PacketTally, Tallies
from .analysis.summary import capture_summary
from .analysis.symmetry import classify_flows
from .decode.geneve import GENEVE_PORT, vpce_id
from .errors import ConfigError
from .flowkey import format_flow_keys
from .report.model import Report
from .tables.flows import STICKINESS, build_flows, build_transits
from .tables.grouping import group_ids
from .tables.legs import OPTION_NAMES, Direction, Pairing, build_legs
from .tables.packets import Progress, empty_packets, read_packets
from .tables.roles import Address, Links, Roles, infer_roles, parse_addresses
from .text import take_text, text_column

DEFAULT_WINDOW_S = 1.0
DEFAULT_MAX_IMBALANCE = 1.5  # max/mean flows per appliance above which the spread is called uneven

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
    settings = AnalysisSettings(
        port, tuple(appliances), tuple(gwlb_nodes), window_s, stickiness, tcp_idle_timeout_s, udp_idle_timeout_s, expect_appliances, max_imbalance
    )
    if packets is None:
        if captures is None:
            raise ConfigError("give captures to read or a packet table")
        packets = read_packets(captures, port=port, progress=progress)
    links = Links.of(packets)  # found once for the roles, the legs and the packet tally
    roles = infer_roles(packets, *settings.stated_roles(), links=links)
    legs = build_legs(packets, roles, window_s, links=links)
    name_legs(legs, roles.appliance_names(), roles.gwlb_node_names())
    tallies = Tallies(captures=list(packets.attrs.get("captures", [])))
    tallies.packets.add(packets, links)
    tallies.legs.add(legs)
    transits = build_transits(legs, stickiness)
    flows = build_flows(transits, legs, roles.appliance_names(), roles.gwlb_node_names(), tcp_idle_timeout_s, udp_idle_timeout_s)
    return assemble_report(flows, handshake_rtts(transits), tallies, roles, settings.as_dict(), packets=packets, legs=legs)


@dataclass(frozen=True)
class AnalysisSettings:
    """How to analyse, whichever way the captures are read (``analyze``, ``--stream`` and live, ``--dask``).

    The fields are ``analyze``'s keyword arguments of the same names; a window or stickiness it cannot
    take raises ConfigError.
    """

    port: int = GENEVE_PORT
    appliances: tuple[str, ...] = ()
    gwlb_nodes: tuple[str, ...] = ()
    window_s: float = DEFAULT_WINDOW_S
    stickiness: str = "5-tuple"
    tcp_idle_timeout_s: float = 350.0
    udp_idle_timeout_s: float = 120.0
    expect_appliances: int | None = None
    max_imbalance: float = DEFAULT_MAX_IMBALANCE

    def __post_init__(self) -> None:
        object.__setattr__(self, "appliances", tuple(self.appliances))
        object.__setattr__(self, "gwlb_nodes", tuple(self.gwlb_nodes))
        if self.stickiness not in STICKINESS:
            raise ConfigError(f"stickiness must be one of {', '.join(STICKINESS)}, got {self.stickiness!r}")
        if self.window_s <= 0:
            raise ConfigError(f"pairing window must be positive, got {self.window_s} s")
        self.stated_roles()  # an address that is not one fails here, before any capture is read

    def stated_roles(self) -> tuple[tuple[Address, ...], tuple[Address, ...]]:
        """The appliances and GWLB nodes the user stated, as addresses."""
        return parse_addresses(list(self.appliances), "appliance"), parse_addresses(list(self.gwlb_nodes), "GWLB node")

    def as_dict(self) -> dict:
        """The settings a Report records (``Report.settings``): all but the stated roles, which its roles show."""
        return {name: value for name, value in asdict(self).items() if name not in ("appliances", "gwlb_nodes")}


def assemble_report(
    flows: pd.DataFrame,
    handshakes: pd.DataFrame,
    tallies: Tallies,
    roles: Roles,
    settings: dict,
    packets: pd.DataFrame | None = None,
    legs: pd.DataFrame | None = None,
) -> Report:
    """The Report of a flow table (``build_flows`` columns, raw), its handshake times and the tallies of its packets and legs.

    Every way of reading captures ends here: in one piece, as a stream, or on Dask.  ``packets`` and
    ``legs`` are the tables themselves when they were kept (else the Report carries empty ones).
    ``settings`` are ``analyze``'s keyword arguments that shape the analysis.
    """
    appliance_names, node_names = roles.appliance_names(), roles.gwlb_node_names()
    flows = _describe_flows(flows)  # a copy, to which the verdicts and handshake times are added in place
    for extra in (classify_flows(flows), handshakes.reindex(flows.index)):
        for name, column in extra.items():
            flows[name] = column
    latency = tallies.legs.latency
    latency_tables = {
        "appliance": latency.by("appliance", appliance_names),
        "gwlb_node": latency.by("gwlb_node", node_names),
        "aws_endpoint_id": latency.by("aws_endpoint_id"),
    }
    per_appliance = dist.flows_per_place(flows["appliances"])
    appliance_table = dist.spread(tallies.legs.place("appliance"), per_appliance, latency_tables["appliance"], appliance_names, "appliance")
    node_table = dist.spread(tallies.legs.place("gwlb_node"), dist.flows_per_place(flows["gwlb_nodes"]), latency_tables["gwlb_node"], node_names, "gwlb_node")
    endpoint_table = dist.spread(
        tallies.legs.place("aws_endpoint_id"), flows["endpoint_id"].value_counts(), latency_tables["aws_endpoint_id"], None, "aws_endpoint_id"
    )
    endpoint_table.index = [vpce_id(e) for e in endpoint_table.index]
    endpoint_table.index.name = "endpoint"
    probes = health_checks(tallies.packets.probes(), roles)
    appliance_health = health_by_appliance(probes, appliance_names)
    distribution = _distribution(appliance_table, node_table, endpoint_table, flows, settings.get("expect_appliances"))
    mtu = _mtu(tallies.packets, flows)
    idle = _idle(flows, settings["tcp_idle_timeout_s"], settings["udp_idle_timeout_s"])
    findings = flow_findings(flows) + _other_findings(tallies, appliance_table, appliance_health, distribution, mtu, settings, settings.get("max_imbalance", DEFAULT_MAX_IMBALANCE))
    return Report(
        packets=packets if packets is not None else empty_packets(),
        legs=legs if legs is not None else pd.DataFrame(),
        flows=flows,
        appliances=appliance_table,
        gwlb_nodes=node_table,
        endpoints=endpoint_table,
        health_checks=probes,
        appliance_health=appliance_health,
        latency_over_time=latency.over_time(appliance_names),
        handshakes=handshakes,
        new_flows=dist.new_flows_per_second(flows),
        roles=roles,
        summary=capture_summary(tallies.packets, tallies.captures, roles),
        latency={
            "overall": latency.overall(),
            "by_appliance": latency_tables["appliance"].to_dict(orient="index"),
            "by_endpoint": {vpce_id(k): v for k, v in latency_tables["aws_endpoint_id"].to_dict(orient="index").items()},
            "by_gwlb_node": latency_tables["gwlb_node"].to_dict(orient="index"),
            "handshake": {
                "server_rtt_us": _describe_series(handshakes["server_rtt_us"]),
                "client_rtt_us": _describe_series(handshakes["client_rtt_us"]),
            },
            **({} if latency.exact else {"sketch_relative_accuracy": latency.relative_accuracy}),
        },
        distribution=distribution,
        mtu=mtu,
        idle=idle,
        pairing=_pairing_counts(tallies.legs, roles),
        findings=sort_findings(findings),
        settings=dict(settings),
        latency_sketches={} if latency.exact else latency.appliance_sketches(appliance_names),
    )


def name_legs(legs: pd.DataFrame, appliance_names: list[str], node_names: list[str]) -> None:
    """Readable companions of the legs' integer codes, as categoricals (a byte or two a row)."""
    legs["direction_name"] = pd.Categorical.from_codes(legs["direction"].to_numpy(), categories=[d.name.lower() for d in Direction])
    legs["appliance_name"] = pd.Categorical.from_codes(legs["appliance"].to_numpy(), categories=appliance_names)
    legs["gwlb_node_name"] = pd.Categorical.from_codes(legs["gwlb_node"].to_numpy(), categories=node_names)
    legs["options_differ"] = pd.Categorical.from_codes(
        legs["option_diff"].to_numpy().astype(np.int8), categories=[_option_names(bits) or "none" for bits in range(8)]
    )


def _option_names(bits: int) -> str:
    return ",".join(name for bit, name in OPTION_NAMES.items() if bits & bit)


_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


def _describe_flows(flows: pd.DataFrame) -> pd.DataFrame:
    """Text columns people read: client, server, endpoint and the flow key."""
    # A copy the caller's table does not see change: with pandas' copy-on-write (always, from pandas 3) a
    # shallow one, which copies a column only when it is written.
    flows = flows.copy(deep=not _COPY_ON_WRITE)
    # Text made once per distinct value and put together by Arrow's kernels, not by a Python call per flow.
    client = address_texts(flows["client_hi"].to_numpy(), flows["client_lo"].to_numpy())
    server = address_texts(flows["server_hi"].to_numpy(), flows["server_lo"].to_numpy())
    endpoint_id = flows["endpoint_id"].to_numpy()
    inverse, firsts = group_ids([endpoint_id])
    endpoint = take_text([vpce_id(e) for e in endpoint_id[firsts]], inverse)
    flows["client"], flows["server"], flows["endpoint"] = text_column(client), text_column(server), text_column(endpoint)
    options = take_text([_option_names(bits) for bits in range(1 << len(OPTION_NAMES))], flows["option_diff"].to_numpy())
    ports = flows["client_port"].to_numpy(), flows["server_port"].to_numpy()
    key = format_flow_keys(flows["protocol"].to_numpy(), client, ports[0], server, ports[1], endpoint)
    # These two were always assigned as lists: an empty table keeps the float columns an empty list makes.
    flows["options_differ"] = text_column(options) if len(flows) else []
    flows["key"] = text_column(key) if len(flows) else []
    return flows


def _pairing_counts(legs: LegTally, roles: Roles) -> dict:
    """How the legs paired: by outcome, how many were ambiguous, and how the roles behind directions were found."""
    return {
        "legs": legs.legs,
        "ingress": legs.ingress,
        "egress": legs.egress,
        "by_outcome": {p.label: int(legs.by_outcome.get(p.label, 0)) for p in Pairing},  # these add up to "legs"
        "ambiguous_paired": legs.ambiguous,  # paired legs that had identical twins
        "roles_method": roles.method,
    }


def _describe_series(values: pd.Series) -> dict:
    values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    clean = values[~np.isnan(values)]
    if len(clean) == 0:
        return {"count": 0}
    p50, p99 = np.quantile(clean, [0.5, 0.99]).tolist()  # as Series.quantile takes them
    return {"count": int(len(clean)), "p50": p50, "p99": p99, "max": float(clean.max())}


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


def _mtu(packets: PacketTally, flows: pd.DataFrame) -> dict:
    return {
        "over_mtu_packets": int(flows["over_mtu_packets"].sum()) if len(flows) else 0,
        "over_mtu_flows": int((flows["over_mtu_packets"] > 0).sum()) if len(flows) else 0,
        "gso_super_packets": int(flows["gso_packets"].sum()) if len(flows) else 0,
        "gso_flows": int((flows["gso_packets"] > 0).sum()) if len(flows) else 0,
        "outer_fragment_packets": packets.outer_fragment_packets,
        "fragmented_legs": int(flows["fragmented_legs"].sum()) if len(flows) else 0,
        "largest_inner_bytes": packets.largest_inner_bytes,
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
    tallies: Tallies,
    appliances: pd.DataFrame,
    health: pd.DataFrame,
    distribution: dict,
    mtu: dict,
    settings: dict,
    max_imbalance: float,
) -> list[Finding]:
    findings = []
    packets, legs = tallies.packets, tallies.legs
    if legs.legs == 0:
        findings.append(
            Finding(
                "no_gwlb_traffic", "error", 0, "packets",
                f"no Geneve packets on UDP port {settings.get('port', GENEVE_PORT)} among {packets.packets:,} packets",
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
    deviating = packets.shape.get("deviating", 0)
    if deviating:
        flags = {k: v for k, v in packets.shape.items() if k not in ("exact", "deviating") and v}
        findings.append(
            Finding(
                "gwlb_shape", "warning", deviating, "packets",
                f"{deviating} Geneve packets differ from the shape GWLB sends: " + ", ".join(f"{k} {v}" for k, v in flags.items()),
                "Geneve that is not GWLB's (another cloud or tunnel on the port), or options changed on the way",
            )
        )
    bad_statuses = {k: v for k, v in packets.by_status.items() if k != "ok" and v}
    bad = sum(bad_statuses.values())
    if bad:
        findings.append(
            Finding(
                "decode_errors", "warning", bad, "packets",
                f"{bad} packets could not be fully decoded: " + ", ".join(f"{k} {v}" for k, v in sorted(bad_statuses.items(), key=lambda kv: (-kv[1], kv[0]))),
                "a snap length shorter than the packets, or damaged frames: capture with -s 0",
            )
        )
    for capture in tallies.captures:
        if capture.get("error"):  # left out of an analysis of several files (gwcheck analyze --dask)
            findings.append(
                Finding(
                    "unreadable_capture", "error", 1, "files", f"{capture['path']} cannot be read: {capture['error']}",
                    "not a pcap or pcapng file, missing, or not readable where the analysis ran; the other files were analysed",
                )
            )
        elif capture.get("damage"):
            findings.append(
                Finding(
                    "damaged_capture", "warning", 1, "files",
                    f"{capture['path']} is damaged at byte {capture['damage']['offset']}: {capture['damage']['reason']}",
                    "the capture was cut short (tcpdump killed, disk full, copy interrupted); packets before the damage were analysed",
                )
            )
    unknown = legs.unknown
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
    ambiguous = legs.ambiguous
    if ambiguous:
        findings.append(
            Finding("ambiguous_pairs", "info", ambiguous, "legs", f"{ambiguous} legs had identical twins and were paired first-in first-out", "retransmissions or identical packets in flight"),
        )
    in_flight = int(legs.by_outcome.get(Pairing.IN_FLIGHT.label, 0))
    if in_flight:
        findings.append(
            Finding("in_flight", "info", in_flight, "packets", f"{in_flight} packets in the capture's last window had not come back yet", "the capture stopped while they were inside the appliance"),
        )
    return findings
