"""Shared fixtures: the real capture corpus in ../shared/corpus, and small GWLB captures built in memory.

The corpus lives beside the repository (``../shared/corpus``, described in its README.md) and is never
copied into it.  Tests that read it take the ``corpus`` fixture, or one of the parameters
``corpus_capture`` (every pcap/pcapng file) and ``geneve_capture`` (every file with a tshark field dump);
without the corpus they skip, saying where they looked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
CAPTURE_SUFFIXES = (".pcap", ".pcapng")
TSHARK_FIELDS_SUFFIX = ".tshark-fields.tsv"
MISSING_CORPUS = f"shared corpus not found at {CORPUS}: these tests read ../shared/corpus"


def corpus_captures() -> list[Path]:
    """Every capture file in the corpus, sorted; empty when the corpus is absent."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in CAPTURE_SUFFIXES)


def geneve_captures() -> list[Path]:
    """The corpus captures with a tshark Geneve field dump beside them (``F.tshark-fields.tsv``)."""
    return [p for p in corpus_captures() if p.with_name(p.name + TSHARK_FIELDS_SUFFIX).is_file()]


def corpus_id(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The corpus directory; skips the test when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(MISSING_CORPUS)
    return CORPUS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``corpus_capture`` and ``geneve_capture`` over the corpus files (one skipped case when absent)."""
    for name, lister in (("corpus_capture", corpus_captures), ("geneve_capture", geneve_captures)):
        if name in metafunc.fixturenames:
            paths = lister()
            if paths:
                metafunc.parametrize(name, paths, ids=[corpus_id(p) for p in paths])
            else:
                metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=MISSING_CORPUS))], ids=["no-corpus"])


# --- small GWLB traffic built with gwcheck.simulate.frames ----------------------------------------------

GWLB_IP = "10.0.8.64"
APPLIANCE_IP = "10.0.10.74"
GWLB_SPORT = 60276
ENDPOINT_ID = 0x31E129CDC0CD8633
ATTACHMENT_ID = 0
FLOW_COOKIE = 0x3DC956AC
BASE_TS_NS = 1_696_602_052_914_666_123


def gwlb_frames(count: int = 6, vlan: int | None = None) -> list[bytes]:
    """``count`` Ethernet frames of GWLB traffic: TCP, UDP and ICMP inner packets, IPv4 and IPv6, alternating."""
    from gwcheck.simulate import frames as fr

    options = fr.aws_options(ENDPOINT_ID, ATTACHMENT_ID, FLOW_COOKIE)
    out = []
    for k in range(count):
        if k % 2:
            src, dst = "2001:db8::1", f"2001:db8::{k + 2:x}"
        else:
            src, dst = "10.2.0.1", f"10.2.0.{k + 2}"
        proto = fr.icmp_protocol(src) if k % 3 == 2 else (fr.IPPROTO_TCP if k % 3 == 0 else fr.IPPROTO_UDP)
        if proto == fr.IPPROTO_TCP:
            l4 = fr.tcp(src, dst, 39198 + k, 443, 1000 * k, 7, fr.TCP_SYN | (fr.TCP_ACK if k else 0), b"x" * k, mss=1360)
        elif proto == fr.IPPROTO_UDP:
            l4 = fr.udp(src, dst, 5353 + k, 53, b"q" * (k + 3))
        else:
            l4 = fr.icmp_echo(src, dst, 0x1234, k, b"ping")
        inner = fr.ip_packet(src, dst, proto, l4, ttl=64 - k, ident=0x100 + k)
        packet = fr.gwlb_encapsulate(inner, GWLB_IP, APPLIANCE_IP, GWLB_SPORT, options, ident=k)
        out.append(fr.ethernet(packet, fr.ethertype_of(packet), vlans=() if vlan is None else (vlan,)))
    return out


def frame_timestamps(count: int) -> list[int]:
    """Nanosecond timestamps, 1.5 ms apart plus an odd nanosecond part."""
    return [BASE_TS_NS + k * 1_500_017 for k in range(count)]


def pair_first_in_first_out(rows, is_ingress, ts, window_ns: int, peer: list, ambiguous: list) -> None:
    """The rule of leg pairing within one key, as a model for the tests: the key's legs ``rows`` in capture order,
    each egress paired with the oldest unpaired ingress before it within ``window_ns``; legs already paired
    (``peer`` not -1) are skipped, and an egress that could have taken several marks both ``ambiguous``."""
    queue, head = [], 0
    for i in rows:
        if peer[i] != -1:
            continue
        if is_ingress[i]:
            queue.append(i)
            continue
        while head < len(queue) and ts[i] - ts[queue[head]] > window_ns:
            head += 1  # too old for this egress: left unpaired
        if head < len(queue):
            j = queue[head]
            peer[i], peer[j] = j, i
            if len(queue) - head > 1:
                ambiguous[i] = ambiguous[j] = True
            head += 1
