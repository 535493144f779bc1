"""PacketTally: its one combined count agrees with counting each fact on its own, whatever the columns' dtypes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import gwcheck
from gwcheck.analysis.tallies import OUTER_FRAGMENT_FLAGS, PacketTally
from gwcheck.schema import GwlbShape
from gwcheck.simulate.scenario import Scenario
from gwcheck.simulate.simulator import simulate


def tally_of(packets: pd.DataFrame) -> PacketTally:
    tally = PacketTally()
    tally.add(packets)
    return tally


def test_counts_match_counting_each_fact(tmp_path: Path) -> None:
    output = tmp_path / "capture.pcap"
    simulate(Scenario(flows=40, outer_fragments=2, modified_options=2, health_check_unanswered=0.3), output)
    packets = gwcheck.read_packets(output)
    tally = tally_of(packets)
    kind, status, shape = packets["kind"].astype(str), packets["status"].astype(str), packets["gwlb_shape"].to_numpy()
    geneve = (kind == "geneve").to_numpy()
    assert dict(tally.by_kind) == kind.value_counts().to_dict()
    assert dict(tally.by_status) == status.value_counts().to_dict()
    assert tally.shape["exact"] == int((geneve & (shape == 0)).sum())
    decoded = geneve & (status == "ok").to_numpy()
    assert tally.shape_decoded["exact"] == int((decoded & (shape == 0)).sum())
    for flag in GwlbShape:
        assert tally.shape.get(flag.name.lower(), 0) == int((geneve & ((shape & flag.value) != 0)).sum())
    udp_fragment = ((packets["outer_frag"].to_numpy() & OUTER_FRAGMENT_FLAGS) != 0) & (packets["outer_proto"].to_numpy() == 17)
    assert tally.outer_fragment_packets == int((udp_fragment & (geneve | (kind == "ip_fragment").to_numpy())).sum())
    assert tally.outer_fragment_packets > 0
    assert tally.largest_inner_bytes == int(packets["inner_ip_len_bytes"].to_numpy()[geneve].max())
    assert len(tally.probes()) == int((kind == "tcp").sum()) > 0


def test_text_columns_count_as_categoricals(tmp_path: Path) -> None:
    output = tmp_path / "capture.pcap"
    simulate(Scenario(flows=20, health_check_unanswered=0.3), output)
    packets = gwcheck.read_packets(output)
    as_text = packets.assign(kind=packets["kind"].astype(object), status=packets["status"].astype(object))
    categorical, text = tally_of(packets), tally_of(as_text)
    for name in ("by_kind", "by_status", "shape", "shape_decoded", "sent", "received", "endpoint_packets"):
        assert dict(getattr(categorical, name)) == dict(getattr(text, name)), name
    assert np.array_equal(categorical.cookies, text.cookies)
    assert categorical.outer_fragment_packets == text.outer_fragment_packets
    pd.testing.assert_frame_equal(categorical.probes().astype({"kind": object}), text.probes())


def test_no_geneve_category_counts_no_geneve(tmp_path: Path) -> None:
    output = tmp_path / "capture.pcap"
    simulate(Scenario(flows=5, health_check_unanswered=0.3), output)
    packets = gwcheck.read_packets(output)
    tcp = packets[packets["kind"] == "tcp"]
    tcp = tcp.assign(kind=tcp["kind"].cat.remove_unused_categories(), status=tcp["status"].cat.remove_unused_categories())
    tally = tally_of(tcp)
    assert dict(tally.by_kind) == {"tcp": len(tcp)}
    assert tally.shape["exact"] == 0 and tally.cookies.size == 0 and len(tally.probes()) == len(tcp)
