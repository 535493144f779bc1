"""Every real capture of ../shared/corpus through ``read_packets``: counts, decode statuses, link types, clocks, and the golden AWS capture.

The expectations come from the reference outputs beside each capture (capinfos, tshark, tcpdump) and from
the corpus README; where they disagree the comment says which one the test follows and why.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

import gwcheck
from gwcheck.errors import CaptureDamageWarning
from gwcheck.schema import DecodeStatus, PacketKind

from conftest import corpus_id

pytestmark = pytest.mark.corpus

STATUS_LABELS = {s.label for s in DecodeStatus}
KIND_LABELS = {k.label for k in PacketKind}


def capinfos_packets(capture: Path) -> int:
    text = capture.with_name(capture.name + ".capinfos.txt").read_text(encoding="utf-8")
    return int(re.search(r"^Number of packets:\s+(\d+)", text, re.MULTILINE).group(1))


def address(hi: int, lo: int) -> str:
    value = ipaddress.IPv6Address((int(hi) << 64) | int(lo))
    return str(value.ipv4_mapped or value)


def epoch_ns(text: str) -> int:
    """tshark's frame.time_epoch ("1696602052.914666000") as integer nanoseconds, without float rounding."""
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9])


def read(path: Path):
    """read_packets, failing the test on any damage warning: no corpus file is damaged at the file level."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CaptureDamageWarning)
        return gwcheck.read_packets(path)


# --- every file ---------------------------------------------------------------------------------------------


def test_every_capture_reads_with_capinfos_packet_count(corpus_capture: Path) -> None:
    table = read(corpus_capture)
    assert len(table) == capinfos_packets(corpus_capture)
    assert set(table.status.astype(str)) <= STATUS_LABELS
    assert set(table.kind.astype(str)) <= KIND_LABELS
    assert not table.status.isna().any() and not table.kind.isna().any()
    (capture,) = table.attrs["captures"]
    assert capture["packets"] == len(table) and capture["damage"] is None
    assert (table.cap_len_bytes <= table.wire_len_bytes).all()


# Broken on purpose (README, "Broken on purpose").  Each status is checked against what tshark and tcpdump say
# in F.tshark.txt / F.tcpdump-v.txt; the frame's on-the-wire length decides truncated (snapped) from malformed
# (a length field that lies about a frame captured whole).
BROKEN = {
    # IP total length 85 in a whole 98-byte frame holding 84 bytes of IP: the field lies.
    # tshark "IPv4 total length exceeds packet length (84 bytes)"; tcpdump "truncated-ip - 1 bytes missing!".
    "tcpdump/tests/ipv4_invalid_total_length.pcap": DecodeStatus.MALFORMED_OUTER_IP_TOTAL_LENGTH,
    # IHL 4: tshark "Bogus IP header length (16, must be at least 20)"; tcpdump "bad-hlen 16".
    "tcpdump/tests/ipv4_invalid_hdr_length.pcap": DecodeStatus.MALFORMED_OUTER_IP_HEADER_LENGTH,
    # 19 bytes of IPv4 header, then the frame ends: tcpdump "[|ip]", tshark an exception past the end.
    "tcpdump/tests/ipv4_invalid_length.pcap": DecodeStatus.TRUNCATED_OUTER_IP,
    # 39 bytes of IPv6 header: tcpdump "[|ip6]", tshark "IPv6 header must be exactly 40 bytes".
    "tcpdump/tests/ipv6_invalid_length.pcap": DecodeStatus.TRUNCATED_OUTER_IP,
    # Snap length 60 of a 262,144-byte frame cuts the 8-byte Fragment header after 6 bytes: tcpdump "[|frag6]",
    # tshark "[Packet size limited during capture]".  The 27,136-byte payload length fits the wire length.
    "tcpdump/tests/ip6_frag_asan.pcap": DecodeStatus.TRUNCATED_OUTER_IP,
    # The README says "IP total length 4,419 in a 3,600-byte snap", but 3,600 is the interface's snap length:
    # the record itself is 337 bytes captured of 337 on the wire.  So the 4,419 is a lie, not a snap:
    # tshark "IPv4 total length exceeds packet length (323 bytes)", tcpdump "truncated-ip - 4096 bytes missing!".
    "tcpdump/tests/icmp-cksum-oobr-3.pcapng": DecodeStatus.MALFORMED_OUTER_IP_TOTAL_LENGTH,
    # The README says "snap length cuts inside the Geneve options", but the bytes say otherwise: the one
    # 8-byte option is whole and the IP length (44) ends the packet right after it, so the inner Ethernet
    # header is what is missing.  tshark: "[Malformed Packet: Ethernet]"; tcpdump: "[|ether]"; Zeek:
    # geneve_empty_packet.  The test follows the bytes and both decoders.
    "zeek/testing/btest/Traces/tunnels/geneve-truncated.pcapng": DecodeStatus.TRUNCATED_INNER_ETHERNET,
}


def test_every_capture_decode_status(corpus_capture: Path) -> None:
    """Every packet of a broken-on-purpose file gets its status; every packet of every other file decodes ok."""
    expected = BROKEN.get(corpus_id(corpus_capture), DecodeStatus.OK)
    table = read(corpus_capture)
    assert set(table.status.astype(str)) == {expected.label}, table.status.value_counts()


def test_broken_fields_decoded_before_the_break(corpus: Path) -> None:
    row = read(corpus / "tcpdump/tests/ipv4_invalid_total_length.pcap").iloc[0]
    assert (address(row.outer_src_hi, row.outer_src_lo), address(row.outer_dst_hi, row.outer_dst_lo)) == (
        "140.211.9.206", "45.33.127.156",
    )
    assert (row.outer_ip_len_bytes, row.outer_ttl, row.outer_ip_id) == (85, 64, 61862)
    row = read(corpus / "tcpdump/tests/ip6_frag_asan.pcap").iloc[0]
    assert (row.wire_len_bytes, row.cap_len_bytes, row.outer_ip_version, row.outer_ttl) == (262144, 60, 6, 16)
    assert address(row.outer_src_hi, row.outer_src_lo) == "452:22:19:0:41a:e4ff:10ff:484d"
    row = read(corpus / "tcpdump/tests/icmp-cksum-oobr-3.pcapng").iloc[0]
    assert (row.wire_len_bytes, row.cap_len_bytes, row.outer_ip_len_bytes, row.outer_proto) == (337, 337, 4419, 1)


# --- link types and clocks ----------------------------------------------------------------------------------

# First packet of each file as tshark 4.0.17 shows it (frame.time_epoch, frame.len, vlan.id, addresses, ports).
LINK_TYPES = {
    # name: (link type, format, first ts as tshark prints it, wire length, vlan, src, dst, sport, dport, kind)
    "tcpdump/tests/tcp-handshake-nano.pcap":
        (113, "pcap-ns", "1418145369.924505488", 76, 0, "131.155.215.69", "137.116.81.94", 46656, 80, "tcp"),
    "scapy/test/pcaps/netflowv9.pcap":
        (1, "pcap-ns", "1508409869.575718995", 158, 0, "192.168.100.1", "10.100.101.1", 33092, 2055, "udp"),
    "tcpdump/tests/RADIUS-RFC4675.pcap":
        (113, "pcap", "1412865683.428268", 124, 0, "127.0.0.1", "127.0.0.1", 53334, 1812, "udp"),
    "tcpdump/tests/babel.pcap":
        (113, "pcap", "1302205459.518440", 76, 0, "fe80::68d3:1235:d068:1f9e", "ff02::1:6", 6697, 6697, "udp"),
    "zeek/testing/btest/Traces/linux_dlt_sll2.pcap":
        (276, "pcap", "1660534249.872259", 104, 0, "192.0.2.1", "192.0.2.1", 0, 0, "icmp"),
    "suricata-verify/tests/decode-sll2-01/input.pcap":
        (276, "pcap", "1736381483.613927", 80, 0, "192.168.1.253", "192.168.1.21", 56478, 80, "tcp"),
    "zeek/testing/btest/Traces/dns/dns_notify2.pcap":
        (1, "pcap", "1774311700.120433", 388, 120, "203.0.113.26", "214.187.42.114", 53, 53669, "udp"),
    "suricata-verify/tests/udp-hdr-keyword/input.pcap":
        (1, "pcap", "1560955603.329230", 46, 6, "192.168.0.1", "255.255.255.255", 53, 80, "udp"),
    "tcpdump/tests/LINKTYPE_RAW_ipv4.pcap":
        (101, "pcap", "1751997551.951226", 57, 0, "192.168.1.100", "9.9.9.9", 12345, 53, "udp"),
    "tcpdump/tests/LINKTYPE_IPV6.pcap":
        (229, "pcap", "1751997566.204450", 77, 0, "2001:db8::1", "2620:fe::9", 12345, 53, "udp"),
    "zeek/testing/btest/Traces/chksums/ip6-udp-bad-chksum.pcap":
        (1, "pcap", "1332781342.923813", 66, 0, "2001:4f8:4:7:2e0:81ff:fe52:ffff", "2001:4f8:4:7:2e0:81ff:fe52:9a6b", 30000, 13000, "udp"),
}


@pytest.mark.parametrize("name", sorted(LINK_TYPES))
def test_link_type_first_packet(corpus: Path, name: str) -> None:
    link_type, fmt, ts, wire_len, vlan, src, dst, sport, dport, kind = LINK_TYPES[name]
    table = read(corpus / name)
    assert table.attrs["captures"][0]["format"] == fmt
    assert (table.link_type == link_type).all()
    row = table.iloc[0]
    assert row.ts_ns == epoch_ns(ts)
    assert (row.wire_len_bytes, row.vlan_id, row.kind) == (wire_len, vlan, kind)
    assert (address(row.outer_src_hi, row.outer_src_lo), address(row.outer_dst_hi, row.outer_dst_lo)) == (src, dst)
    assert (row.outer_sport, row.outer_dport) == (sport, dport)


def test_vlan_tagged_udp(corpus: Path) -> None:
    table = read(corpus / "zeek/testing/btest/Traces/dns/dns_notify2.pcap")
    assert (table.vlan_id == 120).all() and (table.vlan_count == 1).all()


def test_sll2_non_ip_frames_are_counted_not_dropped(corpus: Path) -> None:
    # linux_dlt_sll2.pcap: 4 ICMP/ICMPv6 echo frames and 2 ARP frames (tshark.txt).
    table = read(corpus / "zeek/testing/btest/Traces/linux_dlt_sll2.pcap")
    assert table.kind.value_counts()[["icmp", "non_ip"]].tolist() == [4, 2]


# pcapng-multi-interface.pcapng: interface 0 (eth0) ticks in nanoseconds, interface 1 (Windows) in
# microseconds (capinfos).  Timestamps are tshark's frame.time_epoch, exactly.
MULTI_INTERFACE = [
    ("1767663089.500330493", 0, 96),
    ("1767663089.514291940", 0, 214),
    ("1767663437.111897000", 1, 70),
    ("1767663437.126460000", 1, 166),
    ("1767663437.128303000", 1, 70),
    ("1767663437.140942000", 1, 182),
]


def test_multi_interface_pcapng_clocks(corpus: Path) -> None:
    table = read(corpus / "zeek/testing/btest/Traces/pcapng-multi-interface.pcapng")
    assert table.ts_ns.tolist() == [epoch_ns(ts) for ts, _, _ in MULTI_INTERFACE]
    assert table.interface.tolist() == [interface for _, interface, _ in MULTI_INTERFACE]
    assert table.wire_len_bytes.tolist() == [length for _, _, length in MULTI_INTERFACE]
    interfaces = table.attrs["captures"][0]["interfaces"]
    assert [(i["name"], i["ts_resolution"], i["link_type"]) for i in interfaces] == [
        ("eth0", "ns", 1),
        ("\\Device\\NPF_{5AE6EDB4-EFF9-46B3-A3C2-EE50C688A9E6}", "us", 1),
    ]


@pytest.mark.tshark
def test_every_capture_clock_and_lengths_match_tshark_live(corpus_capture: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not on PATH: this test compares with a live tshark run")
    result = subprocess.run(
        [tshark, "-r", str(corpus_capture), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    expected = [line.split("\t") for line in result.stdout.splitlines()]
    table = read(corpus_capture)
    assert table.ts_ns.tolist() == [epoch_ns(ts) for ts, _, _ in expected]
    assert table.wire_len_bytes.tolist() == [int(n) for _, n, _ in expected]
    assert table.cap_len_bytes.tolist() == [int(n) for _, _, n in expected]


# --- the golden AWS capture ---------------------------------------------------------------------------------

GOLDEN = "suricata-verify/tests/bug-6402-01/input.pcap"


def _keep_duplicates(pairs: list[tuple[str, object]]) -> dict[str, list[object]]:
    """tshark -T json repeats a key for each layer of a protocol ("ip" three times here): keep them all."""
    out: dict[str, list[object]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def tshark_json_layers(capture: Path) -> list[dict[str, list]]:
    with open(capture.with_name(capture.name + ".tshark.json"), encoding="utf-8") as handle:
        packets = json.load(handle, object_pairs_hook=_keep_duplicates)
    return [packet["_source"][0]["layers"][0] for packet in packets]


def test_golden_real_aws_capture(corpus: Path) -> None:
    capture = corpus / GOLDEN
    table = read(capture)
    assert len(table) == 12
    assert (table.status == DecodeStatus.OK.label).all()
    assert (table.kind == PacketKind.GENEVE.label).all()
    assert (table.aws_endpoint_id == 0x31E129CDC0CD8633).all()
    assert {gwcheck.vpce_id(v) for v in table.aws_endpoint_id} == {"vpce-031e129cdc0cd8633"}
    assert (table.aws_attachment_id == 0).all()
    assert (table.aws_flow_cookie == 0x3DC956AC).all()
    assert (table.gwlb_shape == 0).all()
    assert (table.encap_overhead_bytes == 68).all()
    assert (table.geneve_opt_len_bytes == 32).all() and (table.geneve_opt_count == 3).all()
    assert (table.geneve_protocol == 0x0800).all() and (table.geneve_vni == 0).all()
    assert {address(h, l) for h, l in zip(table.outer_src_hi, table.outer_src_lo)} == {"10.0.10.74"}
    assert {address(h, l) for h, l in zip(table.outer_dst_hi, table.outer_dst_lo)} == {"10.0.8.64"}
    assert (table.outer_sport == 60276).all() and (table.outer_dport == 6081).all()
    assert (table.outer_ttl == 255).all() and (table.outer_ip_id == 0).all()
    assert (table.inner_offset == 14 + 68).all()
    # Inner addresses and clocks, packet by packet, from tshark's JSON: its second "ip" layer is the packet
    # GWLB carries (the third is inside the client's GRE tunnel, which gwcheck does not enter).
    layers = tshark_json_layers(capture)
    assert len(layers) == len(table)
    for k, (packet, row) in enumerate(zip(layers, table.itertuples())):
        outer, inner, _ = packet["ip"]
        assert address(row.outer_src_hi, row.outer_src_lo) == outer["ip.src"][0], k
        assert address(row.inner_src_hi, row.inner_src_lo) == inner["ip.src"][0], k
        assert address(row.inner_dst_hi, row.inner_dst_lo) == inner["ip.dst"][0], k
        assert row.inner_ttl == int(inner["ip.ttl"][0]), k
        assert row.inner_proto == int(inner["ip.proto"][0]) == 47, k
        assert row.ts_ns == epoch_ns(packet["frame"][0]["frame.time_epoch"][0]), k
    # Both inner directions of the one client connection carry the same cookie (README).
    directions = {(address(r.inner_src_hi, r.inner_src_lo), address(r.inner_dst_hi, r.inner_dst_lo)) for r in table.itertuples()}
    assert directions == {("10.0.1.72", "10.0.2.31"), ("10.0.2.31", "10.0.1.72")}
    assert np.all(table.inner_digest != 0)
