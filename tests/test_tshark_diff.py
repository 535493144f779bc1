"""Differential test: gwcheck's columns against tshark's, packet by packet, on every Geneve capture.

The reference is ``F.tshark-fields.tsv`` beside each corpus capture (TShark 4.0.17, ``-d udp.port==6081,geneve``):
one row per frame, a field's values for every layer that has it joined by commas (outer first).  Which
value belongs to which layer is read off ``frame.protocols``.  A second test runs tshark live on a capture
gwcheck's own builders wrote.

Where the two decoders differ on purpose the test asserts the difference and says which side is right.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import gwcheck
from gwcheck.capture.writer import PcapWriter
from gwcheck.decode.geneve import AWS_OPTION_CLASS, AWS_OPTION_ATTACHMENT_ID, AWS_OPTION_ENDPOINT_ID, AWS_OPTION_FLOW_COOKIE
from gwcheck.schema import DecodeStatus, GwlbShape, FragmentFlags

from conftest import TSHARK_FIELDS_SUFFIX, frame_timestamps, gwlb_frames

pytestmark = pytest.mark.corpus

IP_FAMILY = ("ip", "ipv6")
# tcp.flags.str is 12 characters, one per bit from 0x800 down to 0x001; a set bit shows a letter, a clear one '·'.
TCP_FLAGS_STR_BITS = 12
TCP_FLAGS_CLEAR = "\u00b7"
TSHARK_FIELDS = (
    "frame.number frame.time_epoch frame.len frame.cap_len frame.protocols vlan.id ip.src ip.dst ipv6.src ipv6.dst "
    "ip.ttl ip.id ip.flags.df ip.len udp.srcport udp.dstport udp.length udp.checksum geneve.version "
    "geneve.option.length geneve.flags.oam geneve.flags.critical geneve.proto_type geneve.vni geneve.option.class "
    "geneve.option.type geneve.option.type.critical geneve.option.unknown.data tcp.srcport tcp.dstport tcp.flags.str "
    "icmp.type icmpv6.type"
).split()


# --- reading tshark's field dump --------------------------------------------------------------------------


@dataclass
class TsharkFrame:
    """One row of a tshark field dump: every field as the list of its per-layer values."""

    fields: dict[str, list[str]]
    layers: list[str]

    def values(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def value(self, name: str, k: int = 0) -> str | None:
        values = self.values(name)
        return values[k] if k < len(values) else None

    def nth(self, protocol: str, position: int) -> int:
        """How many ``protocol`` layers precede layer ``position``: the index of its values in ``protocol.*`` fields."""
        return self.layers[:position].count(protocol)

    def ip_layers(self) -> list[int]:
        return [k for k, layer in enumerate(self.layers) if layer in IP_FAMILY]

    def outer_ip(self) -> int | None:
        return next(iter(self.ip_layers()), None)

    def inner_ip(self) -> int | None:
        """Position of the first IP layer after Geneve, or None."""
        if "geneve" not in self.layers:
            return None
        geneve = self.layers.index("geneve")
        return next((k for k in self.ip_layers() if k > geneve), None)


def read_tshark_fields(path: Path) -> list[TsharkFrame]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    frames = []
    for line in lines[1:]:
        values = line.split("\t")
        fields = {name: value.split(",") if value else [] for name, value in zip(header, values)}
        frames.append(TsharkFrame(fields, fields["frame.protocols"][0].split(":")))
    return frames


# --- gwcheck's columns in tshark's terms --------------------------------------------------------------------


def address(hi: int, lo: int) -> str:
    value = ipaddress.IPv6Address((int(hi) << 64) | int(lo))
    return str(value.ipv4_mapped or value)


def tcp_flags(flags_str: str) -> int:
    assert len(flags_str) == TCP_FLAGS_STR_BITS, flags_str
    return sum(1 << (TCP_FLAGS_STR_BITS - 1 - k) for k, c in enumerate(flags_str) if c != TCP_FLAGS_CLEAR)


def hex_int(text: str) -> int:
    return int(text, 16)


def compare_outer(frame: TsharkFrame, row: pd.Series, diffs: list[str]) -> None:
    """Outer IP and UDP: the first IP layer and the first UDP layer."""
    pos = frame.outer_ip()
    layer = frame.layers[pos]
    k = frame.nth(layer, pos)
    check(diffs, "outer_ip_version", row.outer_ip_version, 4 if layer == "ip" else 6)
    check(diffs, "outer src", address(row.outer_src_hi, row.outer_src_lo), str(ipaddress.ip_address(frame.value(f"{layer}.src", k))))
    check(diffs, "outer dst", address(row.outer_dst_hi, row.outer_dst_lo), str(ipaddress.ip_address(frame.value(f"{layer}.dst", k))))
    if layer == "ip":
        check(diffs, "outer_ttl", row.outer_ttl, int(frame.value("ip.ttl", k)))
        check(diffs, "outer_ip_id", row.outer_ip_id, hex_int(frame.value("ip.id", k)))
        check(diffs, "outer DF", bool(row.outer_frag & FragmentFlags.DF), frame.value("ip.flags.df", k) == "1")
        check(diffs, "outer_ip_len_bytes", row.outer_ip_len_bytes, int(frame.value("ip.len", k)))
    check(diffs, "outer_sport", row.outer_sport, int(frame.value("udp.srcport")))
    check(diffs, "outer_dport", row.outer_dport, int(frame.value("udp.dstport")))
    check(diffs, "outer_udp_len_bytes", row.outer_udp_len_bytes, int(frame.value("udp.length")))
    check(diffs, "outer_udp_checksum", row.outer_udp_checksum, hex_int(frame.value("udp.checksum")))


def compare_geneve(frame: TsharkFrame, row: pd.Series, diffs: list[str]) -> None:
    """The Geneve header, the options walk and the AWS option values (tshark's unknown.data for class 0x0108)."""
    check(diffs, "geneve_version", row.geneve_version, int(frame.value("geneve.version")))
    lengths = [int(v) for v in frame.values("geneve.option.length")]
    check(diffs, "geneve_opt_len_bytes", row.geneve_opt_len_bytes, lengths[0])
    check(diffs, "geneve_oam", bool(row.geneve_oam), frame.value("geneve.flags.oam") == "1")
    check(diffs, "geneve_critical", bool(row.geneve_critical), frame.value("geneve.flags.critical") == "1")
    check(diffs, "geneve_protocol", row.geneve_protocol, hex_int(frame.value("geneve.proto_type")))
    check(diffs, "geneve_vni", row.geneve_vni, hex_int(frame.value("geneve.vni")))
    classes = [hex_int(v) for v in frame.values("geneve.option.class")]
    types = [hex_int(v) for v in frame.values("geneve.option.type")]
    check(diffs, "geneve_opt_count", row.geneve_opt_count, len(classes))
    # geneve.option.length holds the header's option length, then each option's length with its 4-byte header.
    check(diffs, "option lengths add up", sum(lengths[1:]), lengths[0])
    shape = GwlbShape(int(row.gwlb_shape))
    check(diffs, "OTHER_CLASS", GwlbShape.OTHER_CLASS in shape, any(c != AWS_OPTION_CLASS for c in classes))
    check(diffs, "CRITICAL_OPTION", GwlbShape.CRITICAL_OPTION in shape, "1" in frame.values("geneve.option.type.critical"))
    # tshark names class 0x0108 "Amazon.com, Inc." but knows none of its types: their data is unknown.data hex.
    # Only classes without a tshark dissector (not GCP's 0x0132) have unknown.data, one value per such option.
    unknown = iter(frame.values("geneve.option.unknown.data"))
    aws = {}
    for option_class, option_type in zip(classes, types):
        if option_class == 0x0132:
            continue
        data = next(unknown)
        if option_class == AWS_OPTION_CLASS:
            aws[option_type & 0x7F] = int(data, 16)
    check(diffs, "aws_endpoint_id", row.aws_endpoint_id, aws.get(AWS_OPTION_ENDPOINT_ID, 0))
    check(diffs, "aws_attachment_id", row.aws_attachment_id, aws.get(AWS_OPTION_ATTACHMENT_ID, 0))
    check(diffs, "aws_flow_cookie", row.aws_flow_cookie, aws.get(AWS_OPTION_FLOW_COOKIE, 0))


def compare_inner(frame: TsharkFrame, row: pd.Series, diffs: list[str]) -> None:
    """The first IP packet after Geneve and the transport header right after it."""
    pos = frame.inner_ip()
    if pos is None:
        check(diffs, "inner_ip_version", row.inner_ip_version, 0)
        return
    layer = frame.layers[pos]
    k = frame.nth(layer, pos)
    check(diffs, "inner_ip_version", row.inner_ip_version, 4 if layer == "ip" else 6)
    check(diffs, "inner src", address(row.inner_src_hi, row.inner_src_lo), str(ipaddress.ip_address(frame.value(f"{layer}.src", k))))
    check(diffs, "inner dst", address(row.inner_dst_hi, row.inner_dst_lo), str(ipaddress.ip_address(frame.value(f"{layer}.dst", k))))
    if layer == "ip":
        check(diffs, "inner_ttl", row.inner_ttl, int(frame.value("ip.ttl", k)))
        check(diffs, "inner_ip_id", row.inner_ip_id, hex_int(frame.value("ip.id", k)))
        check(diffs, "inner DF", bool(row.inner_frag & FragmentFlags.DF), frame.value("ip.flags.df", k) == "1")
        check(diffs, "inner_ip_len_bytes", row.inner_ip_len_bytes, int(frame.value("ip.len", k)))
    l4 = frame.layers[pos + 1] if pos + 1 < len(frame.layers) else None
    if l4 == "tcp":
        t = frame.nth("tcp", pos + 1)
        check(diffs, "inner_proto", row.inner_proto, 6)
        check(diffs, "inner_sport", row.inner_sport, int(frame.value("tcp.srcport", t)))
        check(diffs, "inner_dport", row.inner_dport, int(frame.value("tcp.dstport", t)))
        check(diffs, "inner_tcp_flags", row.inner_tcp_flags, tcp_flags(frame.value("tcp.flags.str", t)))
    elif l4 == "udp":
        u = frame.nth("udp", pos + 1)
        check(diffs, "inner_proto", row.inner_proto, 17)
        check(diffs, "inner_sport", row.inner_sport, int(frame.value("udp.srcport", u)))
        check(diffs, "inner_dport", row.inner_dport, int(frame.value("udp.dstport", u)))
    elif l4 in ("icmp", "icmpv6"):
        check(diffs, "inner_icmp_type", row.inner_icmp_type, int(frame.value(f"{l4}.type", frame.nth(l4, pos + 1))))
    elif l4 == "gre":
        # gwcheck decodes the packet GWLB carries and stops at its transport: here GRE (47), which tshark
        # follows to a second IP/TCP layer.  Both are right; gwcheck's inner packet is the client's packet,
        # and the TCP ports tshark shows belong to the client's own tunnel.
        check(diffs, "inner_proto", row.inner_proto, 47)
        check(diffs, "inner_sport", row.inner_sport, 0)


def check(diffs: list[str], what: str, ours, theirs) -> None:
    if ours != theirs:
        diffs.append(f"{what}: gwcheck {ours!r}, tshark {theirs!r}")


def compare_frame(frame: TsharkFrame, row: pd.Series) -> list[str]:
    diffs: list[str] = []
    check(diffs, "wire_len_bytes", row.wire_len_bytes, int(frame.value("frame.len")))
    if frame.value("frame.cap_len") is not None:
        check(diffs, "cap_len_bytes", row.cap_len_bytes, int(frame.value("frame.cap_len")))
    if frame.value("frame.time_epoch") is not None:
        seconds, _, fraction = frame.value("frame.time_epoch").partition(".")
        check(diffs, "ts_ns", row.ts_ns, int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")))
    check(diffs, "vlan_id", row.vlan_id, int(frame.value("vlan.id") or 0))
    compare_outer(frame, row, diffs)
    compare_geneve(frame, row, diffs)
    compare_inner(frame, row, diffs)
    return diffs


# --- the corpus --------------------------------------------------------------------------------------------

# BIG TCP (Linux 6.3+) sends GSO packets over 64 KB with IPv4 total length 0 / IPv6 payload length 0 and a
# UDP length of 0: the real lengths are only in the frame.  tshark 4.0 calls the UDP header malformed
# ("Bad length value 0 < 8") and stops; so does tcpdump 4.99.3 ("bad-len 0", F.tcpdump-vv.txt).  gwcheck
# takes the lengths from the frame and decodes on, as newer tcpdump does ("presumed BIG TCP" in F.out, the
# expected output of tcpdump's own test suite).  gwcheck is right: the zeros are not lies but the kernel's
# convention for packets over 64 KB (shared/docs/gwlb.md, "Capture artefacts"), and the frame is whole.
# The expected values are those of F.out.  (GSO super-packets, gso-*, keep real lengths below 64 KB: there
# tshark and gwcheck agree field for field.)
BIG_TCP_EXPECTED = {
    # name: (outer IP length, inner version, inner IP length, inner sport, inner dport)
    "bigtcp-ipv4-geneve-ipv4.pcap": (80102, 4, 80052, 35663, 38005),
    "bigtcp-ipv4-geneve-ipv6.pcap": (80122, 6, 80072, 40433, 41423),
    "bigtcp-ipv6-geneve-ipv4.pcap": (80122, 4, 80052, 43959, 39887),
    "bigtcp-ipv6-geneve-ipv6.pcap": (80142, 6, 80072, 38339, 43997),
}


def check_big_tcp(row: pd.Series, frame: TsharkFrame, expected: tuple[int, int, int, int, int]) -> None:
    outer_len, inner_version, inner_len, sport, dport = expected
    # What tshark saw agrees where it got to.
    assert "_ws.malformed" in frame.values("_ws.malformed")
    assert frame.layers[-1] == "udp" and "geneve" not in frame.layers
    outer = frame.layers[frame.outer_ip()]
    assert address(row.outer_src_hi, row.outer_src_lo) == str(ipaddress.ip_address(frame.value(f"{outer}.src")))
    assert address(row.outer_dst_hi, row.outer_dst_lo) == str(ipaddress.ip_address(frame.value(f"{outer}.dst")))
    if outer == "ip":
        assert int(frame.value("ip.len")) == outer_len  # tshark too takes the IPv4 length from the frame
        assert int(frame.value("udp.length")) == 0  # ... but stops at the UDP length
        assert row.outer_sport == int(frame.value("udp.srcport"))
    else:
        assert int(frame.value("ipv6.plen")) == 0
    # gwcheck goes on, with the lengths of the frame.
    assert row.status == DecodeStatus.OK.label
    assert row.kind == "geneve"
    assert row.outer_ip_len_bytes == outer_len == row.wire_len_bytes - 14
    assert row.outer_udp_len_bytes == outer_len - (20 if outer == "ip" else 40)
    assert row.geneve_protocol == 0x6558
    assert row.geneve_vni == 0x1389
    assert (row.inner_ip_version, row.inner_ip_len_bytes, row.inner_sport, row.inner_dport) == (
        inner_version, inner_len, sport, dport,
    )
    assert row.inner_tcp_flags == 0x18  # [P.]
    assert row.inner_l4_payload_bytes == 80000


def test_every_geneve_field_matches_tshark(geneve_capture: Path) -> None:
    frames = read_tshark_fields(geneve_capture.with_name(geneve_capture.name + TSHARK_FIELDS_SUFFIX))
    table = gwcheck.read_packets(geneve_capture)
    assert len(table) == len(frames)
    if geneve_capture.name in BIG_TCP_EXPECTED:
        (frame,) = frames
        check_big_tcp(table.iloc[0], frame, BIG_TCP_EXPECTED[geneve_capture.name])
        return
    report = []
    for frame, (_, row) in zip(frames, table.iterrows()):
        diffs = compare_frame(frame, row)
        if diffs:
            report.append(f"frame {frame.value('frame.number')}: " + "; ".join(diffs))
    assert not report, "\n".join(report)


# --- tshark live, on a capture gwcheck's builders wrote ------------------------------------------------------


@pytest.mark.tshark
def test_tshark_live_on_generated_gwlb_capture(tmp_path: Path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not on PATH: the live differential test needs it")
    frames = gwlb_frames(6) + gwlb_frames(4, vlan=42)
    path = tmp_path / "gwlb.pcap"
    with PcapWriter(path, nanosecond=True) as writer:
        for ts, frame in zip(frame_timestamps(len(frames)), frames):
            writer.write(ts, frame)
    command = [tshark, "-r", str(path), "-d", "udp.port==6081,geneve", "-T", "fields", "-E", "header=y",
               "-E", "separator=/t", "-E", "aggregator=,", "-E", "occurrence=a"]
    for field in TSHARK_FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    dump = tmp_path / "gwlb.tsv"
    dump.write_text(result.stdout, encoding="utf-8")
    tshark_frames = read_tshark_fields(dump)
    table = gwcheck.read_packets(path)
    assert len(tshark_frames) == len(table) == len(frames)
    assert (table.status == DecodeStatus.OK.label).all()
    assert {f.layers[f.inner_ip()] for f in tshark_frames} == {"ip", "ipv6"}
    assert {f.layers[f.inner_ip() + 1] for f in tshark_frames} == {"tcp", "udp", "icmp", "icmpv6"}
    report = []
    for frame, (_, row) in zip(tshark_frames, table.iterrows()):
        diffs = compare_frame(frame, row)
        if diffs:
            report.append(f"frame {frame.value('frame.number')}: " + "; ".join(diffs))
    assert not report, "\n".join(report)
