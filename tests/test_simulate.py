"""gwcheck simulate: captures that decode cleanly, have GWLB's shape, show every fault, and a truth that matches them.

Every check recomputes what it needs from the written bytes (through ``read_packets`` and plain numpy
checksums), never from the simulator's own bookkeeping.
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwcheck import read_packets
from gwcheck.addresses import format_addresses
from gwcheck.cli import main
from gwcheck.decode.geneve import vpce_id
from gwcheck.errors import ConfigError
from gwcheck.simulate import frames as fr
from gwcheck.simulate.scenario import Scenario, appliance_ip, gwlb_node_ip
from gwcheck.simulate.simulator import simulate, truth_path_for
from gwcheck.summaries import latency_summary_us

AWS_CLASS = 0x0108
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
SYN, RST, ACK = 0x02, 0x04, 0x10
MF, OFFSET = 0x2, 0x4  # schema.FragmentFlags
PAIR_WINDOW_NS = 1_000_000_000
GWLB_MAX_INNER_BYTES = 8500

FAULTY = Scenario(
    seed=11, flows=160, duration_s=30.0, asymmetric=6, one_sided=6, moved=6, stale_cookie=6, modified_options=6,
    originated=6, idle_gap=6, over_mtu=3, outer_fragments=3, gso=3, not_returned_rate=0.03, not_returned_endpoint=1,
    health_check_interval_s=5.0, health_check_unanswered=0.3, failing_appliance=2,
)


# -- helpers -----------------------------------------------------------------------------------------------
def decode(paths: Path | list[Path]) -> pd.DataFrame:
    """read_packets, with the outer and inner addresses as text."""
    df = read_packets(paths)
    for side in ("outer_src", "outer_dst", "inner_src", "inner_dst"):
        df[side] = format_addresses(df[f"{side}_hi"].to_numpy(), df[f"{side}_lo"].to_numpy())
    return df


def geneve_legs(df: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """The Geneve legs (first fragments included), with ``appliance``, ``ingress``, a flow ``key`` and a ``packet``
    column that is the same for a packet's ingress and egress legs."""
    appliances = {appliance_ip(a) for a in range(scenario.appliances)}
    legs = df[df.kind == "geneve"].copy()
    legs["ingress"] = legs.outer_dst.isin(appliances)
    legs["appliance"] = np.where(legs.ingress, legs.outer_dst, legs.outer_src)
    legs["key"] = [
        flow_key(e, p, a, ap, b, bp)
        for e, p, a, ap, b, bp in zip(legs.aws_endpoint_id, legs.inner_proto, legs.inner_src, legs.inner_sport, legs.inner_dst, legs.inner_dport)
    ]
    # A fragmented egress leg's inner packet is cut short, so its digest differs: TCP packets are known by their headers.
    tcp = zip(legs.inner_src, legs.inner_dst, legs.inner_sport, legs.inner_dport, legs.inner_tcp_seq, legs.inner_tcp_ack,
              legs.inner_tcp_flags, legs.inner_ip_len_bytes)
    legs["packet"] = [header if proto == TCP else digest for proto, digest, header in zip(legs.inner_proto, legs.inner_digest, tcp)]
    return legs


def flow_key(endpoint: int, proto: int, a: str, a_port: int, b: str, b_port: int) -> tuple:
    """An inner flow within one endpoint, whichever way the packet goes."""
    return int(endpoint), int(proto), frozenset({(a, int(a_port)), (b, int(b_port))})


def row_key(row: dict) -> tuple:
    endpoint = int(row["endpoint"].removeprefix("vpce-"), 16)
    return flow_key(endpoint, row["protocol"], row["client"], row["client_port"], row["server"], row["server_port"])


def rows_of(truth: dict, fault: str) -> list[dict]:
    return [row for row in truth["flow_rows"] if fault in row["faults"] + row["artefacts"]]


def pairs(legs: pd.DataFrame) -> pd.DataFrame:
    """Ingress legs joined with the egress leg of the same inner packet on the same appliance."""
    ingress = legs[legs.ingress]
    egress = legs[~legs.ingress]
    return ingress.merge(egress, on=["appliance", "packet"], suffixes=("_in", "_out"))


def folds_to_ffff(data: bytes) -> bool:
    """RFC 1071: data that includes its own correct checksum sums to 0xFFFF in ones' complement."""
    words = np.frombuffer(data + b"\0" * (len(data) % 2), ">u2").sum(dtype=np.uint64)
    total = int(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!I3xB", length, proto)


def check_ip_packet(packet: bytes) -> None:
    """Assert the IPv4 header checksum and the TCP/UDP/ICMP checksum of an unfragmented IP packet."""
    if packet[0] >> 4 == 4:
        header = (packet[0] & 0x0F) * 4
        assert folds_to_ffff(packet[:header]), "IPv4 header checksum"
        proto, src, dst, payload = packet[9], packet[12:16], packet[16:20], packet[header:]
        if struct.unpack_from("!H", packet, 6)[0] & 0x3FFF:  # MF or an offset: a fragment
            return
    else:
        proto, src, dst, payload = packet[6], packet[8:24], packet[24:40], packet[40:]
    if proto == UDP and struct.unpack_from("!H", payload, 6)[0] == 0:
        return  # no checksum (IPv4)
    if proto == ICMP:
        assert folds_to_ffff(payload), "ICMP checksum"
    elif proto in (TCP, UDP, ICMPV6):
        assert folds_to_ffff(pseudo_header(src, dst, proto, len(payload)) + payload), f"protocol {proto} checksum"


def frames_of(df: pd.DataFrame, paths: dict[str, Path]) -> list[bytes]:
    """The captured bytes of each packet, read at the offsets the decoder found."""
    data = {name: path.read_bytes() for name, path in paths.items()}
    return [data[f][o : o + n] for f, o, n in zip(df.file.astype(str), df.frame_offset, df.cap_len_bytes)]


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame]:
    path = tmp_path_factory.mktemp("faulty") / "faulty.pcap"
    truth = simulate(FAULTY, path)
    return truth, decode(path)


# -- determinism ---------------------------------------------------------------------------------------------
def test_same_seed_writes_the_same_bytes_and_truth(tmp_path: Path) -> None:
    scenario = Scenario(seed=7, flows=30, asymmetric=2, not_returned_rate=0.1, split=True, format="pcapng", clock_offsets_ms=[0, 3, -2])
    written = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        simulate(scenario, tmp_path / run / "x.pcapng")
        written.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert written[0] == written[1]
    assert len(written[0]) == 4  # three captures and the truth


def test_another_seed_writes_other_bytes(tmp_path: Path) -> None:
    simulate(Scenario(seed=1, flows=10), tmp_path / "one.pcap")
    simulate(Scenario(seed=2, flows=10), tmp_path / "two.pcap")
    assert (tmp_path / "one.pcap").read_bytes() != (tmp_path / "two.pcap").read_bytes()


# -- formats and links ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", ["ethernet", "vlan", "sll2"])
@pytest.mark.parametrize("file_format", ["pcap", "pcap-ns", "pcapng"])
def test_every_format_and_link_decodes_cleanly(tmp_path: Path, file_format: str, link: str) -> None:
    scenario = Scenario(seed=3, flows=12, link=link, format=file_format, outer_fragments=1, appliance_mode="route")
    path = tmp_path / "x.cap"
    truth = simulate(scenario, path)
    df = decode(path)
    assert len(df) == truth["packets"]
    assert set(df.status) == {"ok"}
    assert set(df.kind) == {"geneve", "tcp", "ip_fragment"}
    assert ((df.kind == "ip_fragment") == ((df.outer_frag & OFFSET) != 0)).all()
    assert set(df.link_type) == {276 if link == "sll2" else 1}
    assert set(df.vlan_id) == {scenario.vlan_id if link == "vlan" else 0}
    assert df.attrs["captures"][0]["format"] == file_format


def test_checksums_are_valid(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    simulate(Scenario(seed=4, flows=40, ipv6_share=0.5, outer_fragments=2, appliance_mode="route", link="vlan",
                      protocol_mix={"tcp": 1, "udp": 1, "quic": 1, "icmp": 1}), path)
    df = decode(path)
    frames = frames_of(df, {str(path): path})
    checked_udp = 0
    for frame, kind, vlans, inner_at, frag in zip(frames, df.kind, df.vlan_count, df.inner_offset, df.outer_frag):
        outer = frame[14 + 4 * vlans :]
        check_ip_packet(outer)  # outer IPv4 header, and the UDP or health check TCP checksum
        checked_udp += kind == "geneve" and not frag & MF and struct.unpack_from("!H", outer, 26)[0] != 0
        if kind == "geneve" and not frag & MF:
            check_ip_packet(frame[inner_at:])
    assert checked_udp > 0


# -- GWLB's shape --------------------------------------------------------------------------------------------
def test_legs_have_gwlb_shape(tmp_path: Path) -> None:
    scenario = Scenario(seed=5, flows=40)
    path = tmp_path / "x.pcap"
    simulate(scenario, path)
    df = decode(path)
    legs = geneve_legs(df, scenario)
    assert (legs.outer_ip_version == 4).all() and (legs.gwlb_shape == 0).all()
    assert (legs.geneve_opt_count == 3).all() and (legs.geneve_vni == 0).all() and (legs.encap_overhead_bytes == 68).all()
    for frame, inner_at in zip(frames_of(legs, {str(path): path}), legs.inner_offset):
        options = frame[inner_at - 32 : inner_at]
        assert [struct.unpack_from("!HBB", options, at) for at in (0, 12, 24)] == [(AWS_CLASS, 1, 2), (AWS_CLASS, 2, 2), (AWS_CLASS, 3, 1)]
    ingress = legs[legs.ingress]
    assert (ingress.outer_ttl == 255).all() and (ingress.outer_ip_id == 0).all()
    assert set(ingress.outer_dport) == {6081}
    paired = pairs(legs)
    assert len(paired) == len(ingress) == int((~legs.ingress).sum())  # every packet returned, once
    assert (paired.outer_src_in == paired.outer_dst_out).all() and (paired.outer_dst_in == paired.outer_src_out).all()
    assert (paired.outer_sport_in == paired.outer_sport_out).all() and (paired.outer_dport_in == paired.outer_dport_out).all()
    for column in ("aws_endpoint_id", "aws_attachment_id", "aws_flow_cookie", "geneve_protocol"):
        assert (paired[f"{column}_in"] == paired[f"{column}_out"]).all()
    assert (paired.outer_ttl_out == 2).all()


def test_encapsulation_table_packs_what_wrap_packs() -> None:
    """The vectorised headers of the fast path equal those of the scalar GwlbEncapsulation, its reference."""
    rng = np.random.default_rng(0)
    n = 50
    settings = [  # (source, destination, inner protocol, TTL, UDP checksum, link) of two bases
        ("10.0.0.10", "10.0.1.100", 0x0800, 255, True, fr.ethernet(b"", 0x0800)),
        ("10.0.1.100", "10.0.0.10", 0x86DD, 2, False, fr.ethernet(b"", 0x0800, vlans=[7])[4:]),
    ]
    bases = [fr.GwlbEncapsulation(src, dst, 0, bytes(32), proto, ttl, checksum, link=link) for src, dst, proto, ttl, checksum, link in settings]
    base = rng.integers(0, 2, n)
    sport = rng.integers(1024, 65536, n)
    options = [fr.aws_options(int(e), int(a), int(c)) for e, a, c in zip(rng.integers(1, 2**60, n), rng.integers(0, 2, n), rng.integers(1, 2**32, n))]
    inner = [rng.integers(0, 256, int(size), dtype=np.uint8).tobytes() for size in rng.integers(20, 1600, n)]
    ip_ids = rng.integers(0, 65536, n)
    table = fr.EncapsulationTable(bases, base, sport, options)
    rows = table.headers(np.arange(n), np.array([len(p) for p in inner]), np.array([fr.word_sum(p) for p in inner]), ip_ids)
    for k in range(n):
        src, dst, proto, ttl, checksum, link = settings[base[k]]
        reference = fr.GwlbEncapsulation(src, dst, int(sport[k]), options[k], proto, ttl, checksum, link=link)
        assert rows[k].tobytes() + inner[k] == reference.wrap(inner[k], int(ip_ids[k]))


# -- timestamps and latency ----------------------------------------------------------------------------------
def test_pcap_rounds_timestamps_down_to_microseconds(tmp_path: Path) -> None:
    settings = dict(seed=6, flows=30, latency_median_us=[0.7])  # sub-microsecond dwell: rounding shows
    simulate(Scenario(**settings, format="pcap"), tmp_path / "us.pcap")
    simulate(Scenario(**settings, format="pcapng"), tmp_path / "ns.pcapng")
    us, ns = decode(tmp_path / "us.pcap").ts_ns.to_numpy(), decode(tmp_path / "ns.pcapng").ts_ns.to_numpy()
    assert (ns % 1000 != 0).any()
    assert (np.sort(us) == np.sort(ns // 1000 * 1000)).all()


@pytest.mark.parametrize("file_format", ["pcap", "pcapng"])
def test_latency_in_the_truth_is_that_of_the_written_timestamps(tmp_path: Path, file_format: str) -> None:
    scenario = Scenario(seed=6, flows=60, format=file_format, latency_median_us=[40.0, 80.0, 400.0])
    path = tmp_path / "x.cap"
    truth = simulate(scenario, path)
    paired = pairs(geneve_legs(decode(path), scenario))
    latency = paired.ts_ns_out - paired.ts_ns_in
    for appliance, side in truth["appliances"].items():
        expected = latency_summary_us(latency[paired.appliance == appliance].to_numpy())
        assert side["latency_us"] == pytest.approx(expected, rel=1e-12)
    assert truth["latency_us"] == pytest.approx(latency_summary_us(latency.to_numpy()), rel=1e-12)


def test_split_writes_one_capture_per_appliance_with_its_clock_offset(tmp_path: Path) -> None:
    offsets_ms = [0.0, 250.0, -40.5]
    settings = dict(seed=8, flows=30, format="pcapng", split=True)
    (tmp_path / "offset").mkdir()
    (tmp_path / "even").mkdir()
    truth = simulate(Scenario(**settings, clock_offsets_ms=offsets_ms), tmp_path / "offset" / "x.pcapng")
    simulate(Scenario(**settings), tmp_path / "even" / "x.pcapng")  # the same decisions, every clock right
    assert [f["path"] for f in truth["files"]] == [f"x-appliance{a}.pcapng" for a in (1, 2, 3)]
    for a, offset_ms in enumerate(offsets_ms):
        name = f"x-appliance{a + 1}.pcapng"
        shifted, even = decode(tmp_path / "offset" / name), decode(tmp_path / "even" / name)
        assert set(geneve_legs(shifted, Scenario(**settings)).appliance) == {appliance_ip(a)}
        assert truth["files"][a] == {"path": name, "appliance": appliance_ip(a), "packets": len(shifted)}
        assert (shifted.ts_ns.to_numpy() - even.ts_ns.to_numpy() == round(offset_ms * 1_000_000)).all()


# -- the truth against an independent count -------------------------------------------------------------------
def test_truth_counts_agree_with_the_decoded_packets(tmp_path: Path) -> None:
    """About 50,000 packets with every fault: per appliance, endpoint and GWLB node, the truth is what a count finds."""
    scenario = Scenario(seed=12, flows=2400, duration_s=40.0, appliances=4, endpoints=3, asymmetric=40, one_sided=40,
                        moved=40, stale_cookie=40, modified_options=40, originated=30, idle_gap=20, outer_fragments=10,
                        not_returned_rate=0.02, health_check_unanswered=0.2)
    path = tmp_path / "x.pcap"
    truth = simulate(scenario, path)
    df = decode(path)
    assert 40_000 < len(df) == truth["packets"] < 60_000
    legs = geneve_legs(df, scenario)
    legs["node"] = np.where(legs.ingress, legs.outer_src, legs.outer_dst)
    legs["endpoint"] = [vpce_id(e) for e in legs.aws_endpoint_id]
    assert truth["geneve_legs"] == len(legs)
    returned = set(zip(legs.appliance[~legs.ingress], legs.packet[~legs.ingress]))
    legs["alone"] = legs.ingress & np.array([pair not in returned for pair in zip(legs.appliance, legs.packet)])
    legs["in_flight"] = legs.alone & (legs.ts_ns > legs.ts_ns.max() - PAIR_WINDOW_NS)  # excused near the end
    for column, sides in (("appliance", truth["appliances"]), ("endpoint", truth["endpoints"]), ("node", truth["gwlb_nodes"])):
        for side, expected in sides.items():
            here = legs[legs[column] == side]
            found = {
                "packets_in": int(here.ingress.sum()),
                "packets_out": int((~here.ingress).sum()),
                "not_returned": int((here.alone & ~here.in_flight).sum()),
                "in_flight": int(here.in_flight.sum()),
                "flows": here.key.nunique(),
            }
            assert {k: expected[k] for k in found} == found, f"{column} {side}"
    assert truth["flows"] == legs.key.nunique() == len(truth["flow_rows"])
    assert {row_key(row) for row in truth["flow_rows"]} == set(legs.key)


def test_health_check_counts(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    probes = df[df.kind == "tcp"]
    assert set(probes.outer_dport[probes.outer_tcp_flags == SYN]) == {80}
    for appliance, side in truth["appliances"].items():
        syn = probes[(probes.outer_dst == appliance) & (probes.outer_tcp_flags == SYN)]
        answered = probes[(probes.outer_src == appliance) & (probes.outer_tcp_flags == SYN | ACK)]
        tries = syn.groupby(["outer_src", "outer_sport"]).size()
        assert side["health_checks"] == {"probes": len(tries), "answered": len(answered), "unanswered": len(tries) - len(answered)}


def test_no_flows_writes_only_health_checks(tmp_path: Path) -> None:
    truth = simulate(Scenario(seed=2, flows=0, duration_s=30.0, health_check_interval_s=5.0), tmp_path / "x.pcap")
    df = decode(tmp_path / "x.pcap")
    assert set(df.kind) == {"tcp"} and len(df) == truth["packets"] > 0
    assert truth["flows"] == truth["geneve_legs"] == 0 and truth["health_checks"]["probes"] == 2 * 3 * 6


# -- faults, as gwlb.md says they look ------------------------------------------------------------------------
def flow_legs(legs: pd.DataFrame, row: dict, any_endpoint: bool = False) -> pd.DataFrame:
    """The legs of the truth row's inner flow (in any endpoint, if asked)."""
    key = row_key(row)
    if any_endpoint:
        return legs[[k[1:] == key[1:] for k in legs.key]]
    return legs[legs.key == key]


def test_asymmetric_flows_reach_another_appliance_by_another_endpoint(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    rows = rows_of(truth, "asymmetric")
    assert len(rows) == 2 * FAULTY.asymmetric  # each direction is a flow of its own endpoint
    for row in rows:
        flow = flow_legs(legs, row, any_endpoint=True).sort_values("ts_ns")
        forward = flow.inner_src == flow.inner_src.iloc[0]
        for column in ("appliance", "aws_endpoint_id", "aws_flow_cookie"):
            assert flow[column][forward].nunique() == 1 and flow[column][~forward].nunique() == 1
            assert flow[column][forward].iloc[0] != flow[column][~forward].iloc[0]


def test_one_sided_flows_show_one_direction(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    for row in rows_of(truth, "one_sided"):
        flow = flow_legs(legs, row)
        assert set(flow.inner_src) == {row["client"]} and len(flow) > 0


def test_moved_flows_show_on_two_appliances_with_one_cookie(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    for row in rows_of(truth, "moved"):
        flow = flow_legs(legs, row).sort_values("ts_ns")
        assert flow.appliance.nunique() == 2 and flow.aws_flow_cookie.nunique() == 1
        first, then = flow[flow.appliance == flow.appliance.iloc[0]], flow[flow.appliance != flow.appliance.iloc[0]]
        assert set(first.inner_src) == set(then.inner_src) == {row["client"], row["server"]}  # both directions, before and after


def test_not_returned_packets_are_concentrated_on_one_endpoint(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    returned = set(zip(legs.appliance[~legs.ingress], legs.packet[~legs.ingress]))
    ingress = legs[legs.ingress]
    alone = ingress[[pair not in returned for pair in zip(ingress.appliance, ingress.packet)]]
    assert len(alone) == truth["not_returned"] + truth["in_flight"] > 0
    endpoint = list(truth["endpoints"])[FAULTY.not_returned_endpoint]
    assert {vpce_id(e) for e in alone.aws_endpoint_id} == {endpoint}
    assert all(side["not_returned"] == 0 for name, side in truth["endpoints"].items() if name != endpoint)


def test_stale_cookie_egress_carries_the_older_flows_cookie(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    rows = rows_of(truth, "stale_cookie")
    assert len(rows) == FAULTY.stale_cookie
    for row in rows:
        flow = flow_legs(legs, row).sort_values("ts_ns")
        cookies = list(dict.fromkeys(flow.aws_flow_cookie[flow.ingress]))  # in order of first ingress
        assert len(cookies) == 2
        old, new = cookies
        new_flow = flow[flow.ts_ns >= flow.ts_ns[flow.ingress & (flow.aws_flow_cookie == new)].min()]
        assert (new_flow.aws_flow_cookie[~new_flow.ingress] == old).all() and (~new_flow.ingress).any()


def test_modified_options_come_back_with_another_attachment(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    paired = pairs(legs)
    modified = paired[paired.aws_attachment_id_in != paired.aws_attachment_id_out]
    assert {k for k in modified.key_in} == {row_key(row) for row in rows_of(truth, "modified_options")}
    assert (modified.aws_flow_cookie_in == modified.aws_flow_cookie_out).all()


def test_originated_flows_have_egress_never_seen_on_ingress(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    seen = set(legs.packet[legs.ingress])
    originated = legs[~legs.ingress & ~legs.packet.isin(seen)]
    rows = rows_of(truth, "originated")
    assert rows and {row_key(row) for row in rows} <= set(originated.key)


def test_idle_gaps_end_with_a_new_cookie(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    rows = rows_of(truth, "idle_gap")
    assert len(rows) == FAULTY.idle_gap
    for row in rows:
        flow = flow_legs(legs, row).sort_values("ts_ns")
        flow = flow[flow.ingress]
        gaps = np.diff(flow.ts_ns.to_numpy())
        gap = int(np.argmax(gaps))
        timeout = FAULTY.tcp_idle_timeout_s if row["protocol"] == TCP else FAULTY.udp_idle_timeout_s
        assert gaps[gap] > timeout * 1e9
        before, after = flow.iloc[gap], flow.iloc[gap + 1]
        assert before.aws_flow_cookie != after.aws_flow_cookie
        assert after.inner_src == row["client"]
        if row["protocol"] == TCP:
            assert not after.inner_tcp_flags & SYN


def test_mtu_faults_and_gso(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    legs = geneve_legs(df, FAULTY)
    over = legs[legs.inner_ip_len_bytes > GWLB_MAX_INNER_BYTES]
    assert {row_key(row) for row in truth["flow_rows"] if row["over_mtu_packets"]} == set(over.key)
    assert over.packet.nunique() == sum(row["over_mtu_packets"] for row in truth["flow_rows"]) > 0
    fragmented = legs[(legs.outer_frag & MF) != 0]
    assert (~fragmented.ingress).all() and len(fragmented) == sum(row["fragmented_legs"] for row in truth["flow_rows"]) > 0
    assert set(fragmented.key) == {row_key(row) for row in rows_of(truth, "outer_fragments")}
    assert (df.kind == "ip_fragment").sum() >= len(fragmented)
    gso = rows_of(truth, "gso")
    assert len(gso) == FAULTY.gso and all(not row["faults"] for row in gso)
    for row in gso:
        flow = flow_legs(legs, row)
        mss = flow.inner_tcp_mss[flow.inner_tcp_flags & SYN != 0].min()
        assert flow.inner_l4_payload_bytes.max() > mss


def test_failing_and_unanswered_health_checks(faulty: tuple[dict, pd.DataFrame]) -> None:
    truth, df = faulty
    probes = df[df.kind == "tcp"]
    failing = appliance_ip(FAULTY.failing_appliance)
    from_failing = probes[probes.outer_src == failing]
    assert from_failing.empty  # no SYN-ACK, no answer at all
    assert ((df.kind == "geneve") & (df.outer_dst == failing)).any()  # while traffic still arrives
    healthy = probes[probes.outer_src == appliance_ip(0)]
    assert (healthy.outer_http_status == 200).any() and (healthy.outer_tcp_flags & RST != 0).any()
    assert (probes.outer_src.isin([gwlb_node_ip(n) for n in range(FAULTY.gwlb_nodes)]) | probes.outer_src.isin(
        [appliance_ip(a) for a in range(FAULTY.appliances)])).all()
    syn_acked = set(zip(probes.outer_dst[probes.outer_tcp_flags == SYN | ACK], probes.outer_dport[probes.outer_tcp_flags == SYN | ACK]))
    syns = set(zip(probes.outer_src[probes.outer_tcp_flags == SYN], probes.outer_sport[probes.outer_tcp_flags == SYN]))
    unanswered = len(syns - syn_acked)
    assert unanswered == truth["health_checks"]["unanswered"] > truth["appliances"][failing]["health_checks"]["unanswered"] > 0


# -- settings and the command line ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        {"flows": -1}, {"appliances": 0}, {"appliances": 101}, {"gwlb_nodes": 0}, {"endpoints": 0}, {"duration_s": 0},
        {"weights": [1.0, 2.0]}, {"weights": [1.0, -1.0, 1.0]}, {"weights": [0.0, 0.0, 0.0]},
        {"latency_median_us": [1.0, 2.0]}, {"latency_median_us": [0.0]}, {"latency_sigma": -1.0},
        {"clock_offsets_ms": [1.0]}, {"ipv6_share": 1.5}, {"link": "token-ring"}, {"format": "erf"},
        {"appliance_mode": "nat"}, {"vlan_id": 4095}, {"moved": -1}, {"originated": -1}, {"flows": 3, "gso": 4},
        {"appliances": 1, "asymmetric": 1}, {"endpoints": 1, "asymmetric": 1}, {"not_returned_rate": 2.0},
        {"health_check_unanswered": -0.1}, {"health_check_interval_s": -1.0}, {"failing_appliance": 3},
        {"not_returned_endpoint": 2}, {"protocol_mix": {"sctp": 1.0}}, {"protocol_mix": {"tcp": 0.0}},
        {"tcp_idle_timeout_s": 0.0}, {"endpoint_setup_ms": -1.0},
    ],
)
def test_validate_rejects_bad_settings(settings: dict) -> None:
    with pytest.raises(ConfigError):
        Scenario(**settings).validate()


def test_cli_simulate_writes_captures_and_truth(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / "cli.pcapng"
    code = main(["simulate", "-o", str(path), "--seed", "3", "--flows", "20", "--format", "pcapng", "--split",
                 "--clock-offsets-ms", "0,5,-5", "--one-sided", "2", "--link", "sll2"], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli-appliance1.pcapng", "cli-appliance2.pcapng", "cli-appliance3.pcapng", "cli.truth.json"]
    truth = json.loads(truth_path_for(path).read_text())
    assert truth["scenario"]["one_sided"] == 2 and "one_sided 2" in out.getvalue()
    assert sum(f["packets"] for f in truth["files"]) == truth["packets"] == len(read_packets(sorted(tmp_path.glob("*.pcapng"))))


@pytest.mark.parametrize("arguments", [["--weights", "1,2"], ["--flows", "2", "--gso", "3"], ["--link", "token-ring"], ["--appliances", "0"]])
def test_cli_simulate_exits_2_on_bad_settings(tmp_path: Path, arguments: list[str]) -> None:
    err = io.StringIO()
    assert main(["simulate", "-o", str(tmp_path / "x.pcap"), *arguments], stdout=io.StringIO(), stderr=err) == 2
    assert "error" in err.getvalue()
    assert not (tmp_path / "x.pcap").exists()
