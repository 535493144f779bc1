"""FlowState: legs fed chunk by chunk give the flow table that build_flows and handshake_rtts give for all of them at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from gwcheck.analysis.latency import handshake_rtts
from gwcheck.schema import NS_PER_SECOND
from gwcheck.simulate.scenario import Scenario
from gwcheck.simulate.simulator import simulate
from gwcheck.tables.flows import build_flows, build_transits
from gwcheck.tables.flowstate import FlowState
from gwcheck.tables.legs import Direction, build_legs
from gwcheck.tables.packets import read_packets
from gwcheck.tables.roles import infer_roles

FAULTY = dict(
    flows=150, asymmetric=5, one_sided=5, moved=5, not_returned_rate=0.01, stale_cookie=4, modified_options=3,
    originated=3, idle_gap=4, over_mtu=2, outer_fragments=2, gso=2,
)
LAYOUTS = {
    "merged": dict(seed=7),
    "split-skewed": dict(seed=11, split=True, format="pcapng", clock_offsets_ms=[0.0, 700.0, -900.0]),
}
SETTINGS = {
    "default": dict(),
    "short-timeouts": dict(tcp_idle_timeout_s=0.5, udp_idle_timeout_s=0.2),  # many idle gaps, many epochs
    "2-tuple-coarse-sketch": dict(stickiness="2-tuple", relative_accuracy=0.05),
}
PER_50_LEGS = "per-50-legs"  # one chunk per ~50 legs
CHUNKINGS = [
    *(("default", count) for count in (1, 2, 7, PER_50_LEGS)),
    ("short-timeouts", 7), ("short-timeouts", PER_50_LEGS),
    ("2-tuple-coarse-sketch", 7),
]
SKETCHED = ("latency_p50_us", "latency_p99_us")
WRONG_COOKIES = 4  # egress legs given a cookie their flow never carried
SPLIT_EVERY = 9  # flows whose two directions are put on different appliances for part of their life


@dataclass
class Capture:
    legs: pd.DataFrame
    appliance_names: list[str]
    node_names: list[str]


@pytest.fixture(scope="module", params=LAYOUTS)
def capture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Capture:
    """A simulated capture with every fault the simulator makes, plus wrong cookies and split directions."""
    output = tmp_path_factory.mktemp(request.param) / "c.pcap"
    truth = simulate(Scenario(**FAULTY, **LAYOUTS[request.param]), output)
    packets = read_packets([output.with_name(f["path"]) for f in truth["files"]])
    roles = infer_roles(packets, [], [])
    legs = build_legs(packets, roles, 1.0)
    # Wrong cookies: some returned packets carry a cookie GWLB never sent (options are not part of pairing).
    rng = np.random.default_rng(1)
    returned = np.flatnonzero((legs["direction"].to_numpy() == Direction.EGRESS) & (legs["peer"].to_numpy() >= 0))
    chosen = legs["packet"].to_numpy()[rng.choice(returned, WRONG_COOKIES, replace=False)]
    packets.loc[chosen, "aws_flow_cookie"] = np.arange(0xBAD00000, 0xBAD00000 + WRONG_COOKIES, dtype=np.uint32)
    legs = build_legs(packets, roles, 1.0)
    _split_directions(legs)
    return Capture(legs, roles.appliance_names(), roles.gwlb_node_names())


def _split_directions(legs: pd.DataFrame) -> None:
    """Move the lower end's packets of every ``SPLIT_EVERY``-th flow to the next appliance, in the first half of
    the flow's life for some flows and the second half for others: epochs split and unsplit, closed and open."""
    leg_flow = _leg_flows(legs)
    src = legs["inner_src_hi"].to_numpy(), legs["inner_src_lo"].to_numpy()
    dst = legs["inner_dst_hi"].to_numpy(), legs["inner_dst_lo"].to_numpy()
    lower_end_sends = (src[0] < dst[0]) | ((src[0] == dst[0]) & (src[1] < dst[1]))
    ts = legs["ts_ns"].to_numpy()
    middle = pd.Series(ts).groupby(leg_flow).transform("median").to_numpy()
    early = (leg_flow % SPLIT_EVERY == 0) & (ts < middle)
    late = (leg_flow % SPLIT_EVERY == 4) & (ts >= middle)
    moved = (leg_flow >= 0) & lower_end_sends & (early | late)
    appliance = legs["appliance"].to_numpy()
    legs["appliance"] = np.where(moved, (appliance + 1) % (appliance.max() + 1), appliance).astype(appliance.dtype)


def _leg_flows(legs: pd.DataFrame, stickiness: str = "5-tuple") -> np.ndarray:
    """The flow (row of build_flows) of every leg; -1 for legs in none."""
    copy = legs.copy(deep=False)
    build_transits(copy, stickiness)
    return copy["flow"].to_numpy()


def batch(legs: pd.DataFrame, capture: Capture, stickiness: str = "5-tuple", tcp_idle_timeout_s: float = 350.0,
          udp_idle_timeout_s: float = 120.0, relative_accuracy: float = 0.01) -> pd.DataFrame:
    """What the batch analysis makes of ``legs``: build_flows joined with handshake_rtts (exact: no accuracy to use)."""
    legs = legs.copy(deep=False)
    transits = build_transits(legs, stickiness)
    flows = build_flows(transits, legs, capture.appliance_names, capture.node_names, tcp_idle_timeout_s, udp_idle_timeout_s)
    return flows.join(handshake_rtts(transits))


def take(legs: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The legs where ``mask`` holds, with ``peer`` counted among them (no pair may be split by the mask)."""
    rows = np.flatnonzero(mask)
    position = np.full(len(legs), -1, np.int64)
    position[rows] = np.arange(len(rows))
    part = legs.iloc[rows].reset_index(drop=True)
    peer = part["peer"].to_numpy()
    part["peer"] = np.where(peer >= 0, position[np.maximum(peer, 0)], -1)
    assert (part["peer"].to_numpy()[peer >= 0] >= 0).all(), "a pair straddles the mask"
    return part


def chunks(legs: pd.DataFrame, count: int, seed: int) -> list[pd.DataFrame]:
    """``legs`` cut at up to ``count - 1`` random leg times, each moved down until no pair straddles it."""
    rng = np.random.default_rng(seed)
    ts, peer = legs["ts_ns"].to_numpy(), legs["peer"].to_numpy()
    paired = peer >= 0
    cuts = set()
    for cut in rng.choice(ts, max(count - 1, 0)):
        while (straddling := paired & (ts >= cut) & (ts[np.maximum(peer, 0)] < cut)).any():
            cut = ts[peer[straddling]].min()
        cuts.add(int(cut))
    edges = [ts.min(), *sorted(cuts), ts.max() + 1]
    return [take(legs, (ts >= low) & (ts < high)) for low, high in zip(edges[:-1], edges[1:])]


def feed(parts: list[pd.DataFrame], **settings) -> FlowState:
    state = FlowState(**settings)
    for part in parts:
        state.update(part)
    return state


def renumbered(flows: pd.DataFrame) -> pd.DataFrame:
    return flows.reset_index(drop=True).rename_axis("flow")


def assert_same(got: pd.DataFrame, expected: pd.DataFrame, relative_accuracy: float = 0.01) -> None:
    """Every column equal, but the sketched quantiles: within the relative accuracy."""
    assert list(got.columns) == list(expected.columns)
    assert (got.dtypes == expected.dtypes).all()
    exact = [c for c in expected.columns if c not in SKETCHED]
    pd.testing.assert_frame_equal(got[exact], expected[exact], check_exact=True)
    for column in SKETCHED:
        g, e = got[column].to_numpy(), expected[column].to_numpy()
        assert np.array_equal(np.isnan(g), np.isnan(e)), column
        known = ~np.isnan(e)
        assert (np.abs(g[known] - e[known]) <= relative_accuracy * e[known] * (1 + 1e-9)).all(), column


@pytest.mark.parametrize(("settings", "count"), CHUNKINGS, ids=[f"{s}-{c}" for s, c in CHUNKINGS])
def test_chunks_give_the_batch_flow_table(capture: Capture, settings: str, count: int | str) -> None:
    legs = capture.legs
    parts = chunks(legs, len(legs) // 50 if count == PER_50_LEGS else count, seed=len(str(count)))
    state = feed(parts, **SETTINGS[settings])
    expected = batch(legs, capture, **SETTINGS[settings])
    assert_same(state.flows(capture.appliance_names, capture.node_names), expected, SETTINGS[settings].get("relative_accuracy", 0.01))
    assert len(state) == len(expected)


def test_the_capture_has_every_fault_to_carry(capture: Capture) -> None:
    """The comparisons above are not vacuous: every fault column is set on some flows."""
    flows = batch(capture.legs, capture, tcp_idle_timeout_s=0.5, udp_idle_timeout_s=0.2)
    for column in (
        "idle_gaps", "new_cookie_after_idle", "new_appliance_after_idle", "non_syn_after_idle", "appliance_changes",
        "directions_split", "stale_cookie_legs", "wrong_cookie_legs", "modified_option_legs", "over_mtu_packets",
        "gso_packets", "fragmented_legs", "originated", "not_returned",
    ):
        assert flows[column].astype(bool).any(), column
    assert (flows["moved_at_ns"] >= 0).any()
    assert flows["client_rtt_us"].notna().any() and flows["server_rtt_us"].notna().any()


def test_one_chunk_equals_many_chunks_exactly(capture: Capture) -> None:
    """The per-flow sketches merge exactly, so chunking changes no value at all, the quantiles included."""
    whole = feed([capture.legs], tcp_idle_timeout_s=0.5, udp_idle_timeout_s=0.2)
    parts = feed(chunks(capture.legs, 20, seed=3), tcp_idle_timeout_s=0.5, udp_idle_timeout_s=0.2)
    names = capture.appliance_names, capture.node_names
    pd.testing.assert_frame_equal(parts.flows(*names), whole.flows(*names), check_exact=True)
    assert parts.nbytes == whole.nbytes


def test_chunks_without_legs_change_nothing(capture: Capture) -> None:
    names = capture.appliance_names, capture.node_names
    state = FlowState()
    empty = capture.legs.iloc[:0]
    state.update(empty)
    assert len(state) == 0 and state.nbytes == 0
    assert_same(state.flows(*names), batch(empty, capture))
    parts = chunks(capture.legs, 7, seed=5)
    for part in parts:
        state.update(part)
        state.update(empty)
    assert_same(state.flows(*names), batch(capture.legs, capture))


def test_retire_returns_and_forgets_the_quiet_flows(capture: Capture) -> None:
    legs, names = capture.legs, (capture.appliance_names, capture.node_names)
    ts = legs["ts_ns"].to_numpy()
    times = np.unique(ts)
    widest = np.argmax(np.diff(times))
    pause = (times[widest] + times[widest + 1]) // 2  # the middle of the capture's longest silence
    before = ts < pause
    # Retire just after the last packet before the pause of a flow that resumes after it.
    flow = _leg_flows(legs)
    resuming = np.intersect1d(flow[before & (flow >= 0)], flow[~before & (flow >= 0)])
    assert len(resuming), "no flow spans the pause"
    retire_before = int(ts[before & np.isin(flow, resuming)].max()) + 1

    prefix = take(legs, before)
    state = feed(chunks(prefix, 5, seed=4))
    expected = batch(prefix, capture)
    quiet = expected["last_ns"].to_numpy() < retire_before
    assert 0 < quiet.sum() < len(expected)
    retired = state.retire(retire_before, *names)
    assert_same(retired, renumbered(expected[quiet]))
    assert len(state) == (~quiet).sum()
    assert_same(state.flows(*names), renumbered(expected[~quiet]))

    # Later packets of a retired flow's key start a new flow: as if the retired flows' legs were never seen.
    forgotten = np.zeros(len(legs), bool)
    forgotten[np.flatnonzero(before)[np.isin(_leg_flows(prefix), np.flatnonzero(quiet))]] = True
    for part in chunks(take(legs, ~before), 5, seed=6):
        state.update(part)
    final = state.flows(*names)
    assert_same(final, batch(take(legs, ~forgotten), capture))
    assert _ends(retired) & _ends(final), "no retired key came back"


def _ends(flows: pd.DataFrame) -> set:
    """Each flow's endpoint, protocol and two ends, whichever is the client."""
    ends = zip(flows["client_hi"], flows["client_lo"], flows["client_port"], flows["server_hi"], flows["server_lo"], flows["server_port"])
    return {(e, p, frozenset({(ch, cl, cp), (sh, sl, sp)})) for e, p, (ch, cl, cp, sh, sl, sp) in zip(flows["endpoint_id"], flows["protocol"], ends)}


def test_memory_grows_with_flows_not_packets(capture: Capture) -> None:
    """The same flows fed again and again, later each time: as many flows held and as many bytes, eight times the packets."""
    legs = capture.legs
    span = int(legs["ts_ns"].max() - legs["ts_ns"].min()) + NS_PER_SECOND
    state, held, repeats = FlowState(), [], []
    for r in range(8):
        repeat = legs.assign(ts_ns=legs["ts_ns"] + r * span)
        repeats.append(repeat.assign(peer=np.where(legs["peer"] >= 0, legs["peer"] + r * len(legs), -1)))
        for part in chunks(repeat, 2, seed=r):
            state.update(part)
        held.append((len(state), state.nbytes))
    assert set(held) == {held[0]}, held
    assert_same(state.flows(capture.appliance_names, capture.node_names), batch(pd.concat(repeats, ignore_index=True), capture))


def test_legs_out_of_time_order_are_refused(capture: Capture) -> None:
    first, second = [part for part in chunks(capture.legs, 7, seed=1) if len(part)][:2]
    state = FlowState()
    state.update(second)
    with pytest.raises(ValueError, match="time order"):
        state.update(first)
