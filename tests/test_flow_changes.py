"""The flow table's changes of appliance and split flows: judged on the rows of flows that use several appliances
alone (gwcheck/tables/flows.py), they are what judging every row gives."""

from __future__ import annotations

import numpy as np
import pytest

from gwcheck.tables import flows
from gwcheck.tables.flows import flow_changes, flow_epochs, rows_of_several_appliances, split_epochs


def _random_transits(seed: int) -> dict[str, np.ndarray]:
    """Rows sorted by flow, then time: most flows on one appliance, some moving between a few, some idle gaps."""
    rng = np.random.default_rng(seed)
    n_flows = int(rng.integers(1, 400))
    flow = np.sort(rng.integers(0, n_flows, int(rng.integers(1, 5000))))
    moving = rng.random(n_flows) < 0.2
    appliance = np.where(moving[flow], rng.integers(-1, 3, len(flow)), flow % 3).astype(np.int16)
    ts = np.cumsum(rng.choice([1, 10**6, 200 * 10**9], len(flow), p=[0.5, 0.45, 0.05])).astype(np.int64)
    tcp = rng.random(len(flow)) < 0.7
    return {
        "flow": flow, "ts": ts, "cookie": rng.integers(0, 3, len(flow)).astype(np.uint32), "appliance": appliance,
        "sender_is_a": rng.random(len(flow)) < 0.5, "tcp": tcp, "syn": tcp & (rng.random(len(flow)) < 0.1),
        "timeout": np.where(tcp, 350e9, 120e9), "carried": rng.random(len(flow)) < 0.05, "n_flows": n_flows,
    }


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("carried", [False, True])
def test_changes_of_moving_flows_alone_are_changes_of_all(seed, carried, monkeypatch):
    r = _random_transits(seed)
    args = (r["flow"], r["ts"], r["cookie"], r["appliance"], r["sender_is_a"], r["tcp"], r["syn"], r["timeout"], r["n_flows"])
    kept = r["carried"] if carried else None
    fast, fast_idle = flow_changes(*args, kept)
    monkeypatch.setattr(flows, "rows_of_several_appliances", lambda flow, appliance, n_flows: np.arange(len(flow)))
    every, every_idle = flow_changes(*args, kept)
    np.testing.assert_array_equal(fast_idle, every_idle)
    assert list(fast) == list(every)
    for name in every:
        assert fast[name].dtype == every[name].dtype, name
        np.testing.assert_array_equal(fast[name], every[name], err_msg=name)


@pytest.mark.parametrize("seed", range(8))
def test_split_flows_are_among_flows_of_several_appliances(seed):
    r = _random_transits(seed)
    idle = flow_changes(r["flow"], r["ts"], r["cookie"], r["appliance"], r["sender_is_a"], r["tcp"], r["syn"], r["timeout"], r["n_flows"])[1]
    every = split_epochs(r["flow"], flow_epochs(r["flow"], idle), r["sender_is_a"], r["appliance"])
    rows = rows_of_several_appliances(r["flow"], r["appliance"], r["n_flows"])
    alone = split_epochs(r["flow"][rows], flow_epochs(r["flow"][rows], idle[rows]), r["sender_is_a"][rows], r["appliance"][rows])
    np.testing.assert_array_equal(alone[0], every[0])
    np.testing.assert_array_equal(alone[1], every[1])


def test_rows_of_several_appliances():
    flow = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    appliance = np.array([5, 5, 1, 2, 1, 7, 4, 4], np.int16)
    np.testing.assert_array_equal(rows_of_several_appliances(flow, appliance, 5), [2, 3, 4])
    np.testing.assert_array_equal(rows_of_several_appliances(flow[::-1], appliance[::-1], 5), np.arange(8))  # unsorted: every row
