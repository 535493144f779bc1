"""The table kernels in C (gwcheck/tables/_kernels.c): the grouping and pairing they do, checked against plain
Python; hash collisions; and arguments of the wrong type, length or range refused rather than misread.  Also the
helpers built on them (sorts by counting, links, names per flow), checked against numpy's and plain Python's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gwcheck.tables import _kernels
from gwcheck.summaries import ascending
from gwcheck.tables.flows import names_per_flow
from gwcheck.tables.grouping import group_ids, group_order, group_sort, lex_order, pack_columns
from gwcheck.tables.legs import Direction, link_roles
from gwcheck.tables.roles import Ends, Links, Roles, role_index

from conftest import pair_first_in_first_out

PRIME = 0x9E3779B185EBCA87
MASK = (1 << 64) - 1


def _mix(x: int, word: int) -> int:
    """One step of the rows' hash (grouping.hash_columns), in Python integers."""
    x = ((x ^ word) * PRIME) & MASK
    return x ^ (x >> 29)


def _reference_groups(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    seen: dict[tuple, int] = {}
    ids, first = [], []
    for i, key in enumerate(zip(*(c.tolist() for c in columns))):
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        ids.append(seen[key])
    return np.array(ids, np.int64), np.array(first, np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_group_ids_match_python(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 20000))
    values = int(rng.choice([2, 50, 5000, 1 << 40]))
    columns = [
        rng.integers(-values, values, n).astype(np.int64),
        rng.integers(0, 4, n).astype(np.uint8),
        rng.integers(0, values, n).astype(np.uint64) * np.uint64(0x100000001),  # wide: more than one word
    ][: int(rng.integers(1, 4))]
    ids, first = group_ids(columns)
    expected_ids, expected_first = _reference_groups(columns)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(first, expected_first)
    assert ids.dtype == first.dtype == np.int64
    order = group_order(ids, len(first))
    np.testing.assert_array_equal(order, np.argsort(ids, kind="stable"))
    order, same = group_sort(columns)
    np.testing.assert_array_equal(order, np.argsort(ids, kind="stable"))
    np.testing.assert_array_equal(same, np.r_[False, ids[order][1:] == ids[order][:-1]])


def test_many_groups_grow_the_table():
    rng = np.random.default_rng(7)
    key = rng.permutation(300_000).astype(np.int64)
    key = np.concatenate([key, key[::-1]])
    ids, first = group_ids([key, key % 7])
    np.testing.assert_array_equal(first, np.arange(300_000))
    np.testing.assert_array_equal(ids[:300_000], np.arange(300_000))
    np.testing.assert_array_equal(ids[300_000:], np.arange(300_000)[::-1])


def test_empty():
    ids, first = group_ids([np.zeros(0, np.int64)])
    assert len(ids) == len(first) == 0
    assert len(group_order(np.zeros(0, np.int64), 0)) == 0
    assert _kernels.hash_groups([np.zeros(0, np.uint64)], np.zeros(0, np.int64), np.zeros(0, np.int64)) == (0, True)


def _colliding_words(prefix: int = 0) -> np.ndarray:
    """Two uint64 columns (the rows of the array): ``prefix`` distinct keys then (0, 0), (1, mix(1)) (same hash,
    different keys), (0, 0)."""
    m = _mix(0, 1)
    assert _mix(_mix(0, 0), 0) == _mix(_mix(0, 1), m)  # (0, 0) and (1, m) share a hash
    head = list(range(2, prefix + 2))
    return np.array([head + [0, 1, 0], head + [0, m, 0]], np.uint64)


@pytest.mark.parametrize("prefix", [0, 10_000])
def test_hash_collision_is_reported(prefix):
    words = _colliding_words(prefix)
    n = words.shape[1]
    groups, exact = _kernels.hash_groups(list(words), np.empty(n, np.int64), np.empty(n, np.int64))
    assert (groups, exact) == (0, False)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, bool])
def test_hash_groups_takes_columns_of_any_integer_width(dtype):
    rng = np.random.default_rng(3)
    narrow = rng.integers(0, 2 if dtype is bool else 100, 5000).astype(dtype)
    if np.dtype(dtype).kind == "i":
        narrow = (narrow - 50).astype(dtype)  # negative values too
    wide = rng.integers(-3, 3, 5000)
    for columns in ([narrow], [narrow, wide], [wide, narrow, narrow]):
        ids, first = np.empty(5000, np.int64), np.empty(5000, np.int64)
        groups, exact = _kernels.hash_groups(columns, ids, first)
        expected_ids, expected_first = _reference_groups(columns)
        assert exact and groups == len(expected_first)
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(first[:groups], expected_first)


def test_hash_groups_hashes_as_hash_columns():
    """Columns of any width hash as hash_columns widens them, so a collision there is one here."""
    words = _colliding_words()
    signed = words.view(np.int64)  # the same bits, as int64: -1 widens to all ones as it does in astype(np.uint64)
    assert (_kernels.hash_groups(list(signed), np.empty(3, np.int64), np.empty(3, np.int64))) == (0, False)
    narrow = [np.array([0, 1, 0], np.int8), words[1]]
    assert _kernels.hash_groups(narrow, np.empty(3, np.int64), np.empty(3, np.int64)) == (0, False)


def test_hash_collision_falls_back_to_sorting():
    words = _colliding_words()
    columns = [words[0], words[1]]
    np.testing.assert_array_equal(pack_columns(columns), words)  # the packed words keep the collision
    ids, first = group_ids(columns)
    np.testing.assert_array_equal(ids, [0, 1, 0])
    np.testing.assert_array_equal(first, [0, 1])
    order, same = group_sort(columns)
    np.testing.assert_array_equal(order, [0, 2, 1])
    np.testing.assert_array_equal(same, [False, True, False])


def test_one_word_keys_never_collide():
    """With one word the hash is a bijection (an odd multiplier, then a xor-shift), so the kernel may skip
    comparing keys: distinct values give distinct hashes."""
    column = np.array([0, 1, 2, 1 << 63, MASK, 1, MASK], np.uint64)
    ids, first = np.empty(7, np.int64), np.empty(7, np.int64)
    assert _kernels.hash_groups([column], ids, first) == (5, True)
    np.testing.assert_array_equal(ids, [0, 1, 2, 3, 4, 1, 4])
    np.testing.assert_array_equal(first[:5], [0, 1, 2, 3, 4])


@pytest.mark.parametrize("seed", range(6))
def test_lex_order_is_lexsort(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 5000))
    narrow = [rng.random(n) < 0.5, rng.integers(-3, 4, n).astype(np.int16), rng.integers(0, 3, n).astype(np.uint8),
              np.sort(rng.integers(0, max(1, n // 7), n))]  # a small combined span: counted
    wide = [rng.integers(0, 1 << 40, n), rng.integers(0, 2, n)]  # too wide to count: lexsort itself
    unsigned = [rng.integers(0, 3, n).astype(np.uint64) + np.uint64(1 << 63)]  # not all int64 values
    for keys in (narrow, wide, unsigned, narrow[1:2]):
        order = lex_order(keys)
        np.testing.assert_array_equal(order, np.lexsort(keys))
        assert order.dtype == np.lexsort(keys).dtype


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16, np.uint64])
def test_ascending_is_a_stable_argsort(dtype):
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 1000, 100_000):
        for high in (3, min(1 << 20, np.iinfo(dtype).max), np.iinfo(dtype).max):
            values = rng.integers(0, high, n, dtype=dtype, endpoint=True)
            np.testing.assert_array_equal(ascending(values), np.argsort(values, kind="stable"))
    negative = rng.integers(-5, 5, 1000)
    np.testing.assert_array_equal(ascending(negative), np.argsort(negative, kind="stable"))


def test_links_and_their_roles():
    rng = np.random.default_rng(2)
    n = 3000
    addresses = np.array([[0, 7], [0, 9], [1, 7], [3, 2]], np.uint64)  # hi, lo: one shares a low half with another
    src, dst = addresses[rng.integers(0, 4, n)], addresses[rng.integers(0, 4, n)]
    kind = np.where(rng.random(n) < 0.8, "geneve", "tcp")
    version = np.where(rng.random(n) < 0.95, 4, 0).astype(np.uint8)
    packets = pd.DataFrame({"kind": pd.Categorical(kind), "outer_ip_version": version, "outer_src_hi": src[:, 0],
                            "outer_src_lo": src[:, 1], "outer_dst_hi": dst[:, 0], "outer_dst_lo": dst[:, 1]})
    links = Links.of(packets)
    expected: dict[tuple, int] = {}
    for i, (k, v, s, d) in enumerate(zip(kind, version, map(tuple, src.tolist()), map(tuple, dst.tolist()))):
        if k == "geneve" and v > 0:
            expected.setdefault((s, d), len(expected))
            assert links.link[i] == expected[(s, d)]
        else:
            assert links.link[i] == -1
    assert list(zip(links.src.addresses(), links.dst.addresses())) == list(expected)
    np.testing.assert_array_equal(links.link[links.first], np.arange(len(expected)))
    roles = Roles(gwlb_nodes=((0, 7),), appliances=((0, 9), (3, 2)), method="stated by the user")
    direction, appliance, node = link_roles(links.src, links.dst, roles)
    assert direction.dtype == np.int8 and appliance.dtype == node.dtype == np.int16
    for k, (s, d) in enumerate(expected):
        ends = [role_index(np.array([a[0]], np.uint64), np.array([a[1]], np.uint64), r)[0] for a in (s, d) for r in (roles.gwlb_nodes, roles.appliances)]
        src_node, src_appliance, dst_node, dst_appliance = ends
        if dst_appliance >= 0 > src_appliance:
            assert (direction[k], appliance[k], node[k]) == (Direction.INGRESS, dst_appliance, src_node)
        elif src_appliance >= 0 > dst_appliance:
            assert (direction[k], appliance[k], node[k]) == (Direction.EGRESS, src_appliance, dst_node)
        else:
            assert (direction[k], appliance[k], node[k]) == (Direction.UNKNOWN, -1, -1)
    empty = Links.of(packets.iloc[:0])
    assert len(empty.link) == len(empty.first) == len(empty.src.hi) == 0


@pytest.mark.parametrize("sort", [True, False])
def test_names_per_flow_joins_each_flows_distinct_values(sort):
    rng = np.random.default_rng(4)
    n_flows = 300
    flow = rng.integers(0, n_flows - 5, 4000)  # the last flows have no rows
    mixed = flow % 10 == 0
    cookie = np.where(mixed, rng.integers(0, 3, len(flow)) * 0x10001, flow * 0x1000193).astype(np.uint32)
    appliance = np.where(mixed, rng.integers(-1, 4, len(flow)), flow % 3).astype(np.int16)
    if sort:
        order = np.argsort(flow, kind="stable")
        flow, cookie, appliance = flow[order], cookie[order], appliance[order]
    names = ["a", "b", "c"]
    for values, labels in ((cookie, None), (appliance, names)):
        got = list(names_per_flow(flow, values, labels, n_flows))
        for f in range(n_flows):
            distinct = sorted(set(values[flow == f].tolist()))
            if labels is not None:
                text = [labels[v] if 0 <= v < len(labels) else "?" for v in distinct]
            else:
                text = [f"0x{v:08x}" for v in distinct]
            assert got[f] == ",".join(text), f


def test_group_order_takes_any_integer_ids():
    ids = np.array([2, 0, 1, 0, 2], np.int32)
    np.testing.assert_array_equal(group_order(ids, 3), [1, 3, 2, 0, 4])
    np.testing.assert_array_equal(group_order(ids[::-1], 3), [1, 3, 2, 0, 4])  # not contiguous
    with pytest.raises(TypeError):
        group_order(ids.astype(float), 3)


@pytest.mark.parametrize("ids, n_groups", [([0, 3], 3), ([0, -1], 3), ([0], 0), ([0], -1)])
def test_group_order_refuses_ids_out_of_range(ids, n_groups):
    order = np.full(len(ids), 7, np.int64)
    with pytest.raises(ValueError):
        _kernels.counting_order(np.array(ids, np.int64), n_groups, order)
    assert (order == 7).all()  # nothing written


def test_hash_groups_refuses_wrong_arguments():
    columns = [np.zeros(4, np.uint64), np.zeros(4, np.int16)]
    ids, first = np.empty(4, np.int64), np.empty(4, np.int64)
    for bad in (np.zeros(4, np.float64), np.zeros(4, np.float32), np.zeros(4, ">u8"), np.zeros(4, np.complex64),
                np.zeros(8, np.uint64)[::2], np.zeros(4, "S3"), [0, 0, 0, 0]):
        with pytest.raises(TypeError):
            _kernels.hash_groups([columns[0], bad], ids, first)
    with pytest.raises(TypeError):
        _kernels.hash_groups(np.uint64(0), ids, first)  # not a sequence
    with pytest.raises(TypeError):
        _kernels.hash_groups(columns, ids.astype(np.float64), first)
    with pytest.raises(TypeError):
        _kernels.hash_groups(columns, ids.astype(np.uint64), first)
    with pytest.raises(TypeError):
        _kernels.hash_groups(columns, ids.astype(">i8"), first)  # not native byte order
    readonly = np.empty(4, np.int64)
    readonly.flags.writeable = False
    with pytest.raises(TypeError):
        _kernels.hash_groups(columns, ids, readonly)
    with pytest.raises(TypeError):
        _kernels.hash_groups(columns, [0, 0, 0, 0], first)
    with pytest.raises(ValueError):
        _kernels.hash_groups([np.zeros((2, 2), np.uint64)], ids, first)  # not one dimension
    with pytest.raises(ValueError):
        _kernels.hash_groups(columns, np.empty(3, np.int64), first)
    with pytest.raises(ValueError):
        _kernels.hash_groups(columns, ids, np.empty(5, np.int64))
    with pytest.raises(ValueError):
        _kernels.hash_groups([columns[0], np.zeros(5, np.int16)], ids, first)  # columns of different lengths
    with pytest.raises(ValueError):
        _kernels.hash_groups([], ids, first)  # no key columns
    with pytest.raises(TypeError):
        _kernels.hash_groups(columns, ids)
    assert _kernels.hash_groups(columns, ids, first) == (1, True)  # the good arguments
    np.testing.assert_array_equal(ids, 0)


def test_counting_order_refuses_wrong_arguments():
    ids = np.array([0, 1, 0], np.int64)
    with pytest.raises(TypeError):
        _kernels.counting_order(ids.astype(np.float64), 2, np.empty(3, np.int64))
    with pytest.raises(TypeError):
        _kernels.counting_order(ids, 2, np.empty(3, np.float64))
    with pytest.raises(ValueError):
        _kernels.counting_order(ids, 2, np.empty(4, np.int64))
    with pytest.raises(ValueError):
        _kernels.counting_order(ids, 1 << 62, np.empty(3, np.int64))


def _reference_pair(keys, rows, is_ingress, ts, window_ns, peer, ambiguous):
    """The path pair_legs replaced: group the legs by key in capture order, then pair each key first-in first-out."""
    by_key: dict[tuple, list[int]] = {}
    for row, key in zip(rows, zip(*(k.tolist() for k in keys))):
        by_key.setdefault(key, []).append(row)
    for legs in by_key.values():
        pair_first_in_first_out(legs, is_ingress, ts, window_ns, peer, ambiguous)


def _random_legs(rng, n):
    """Legs of few keys (of two columns: several files) with random directions, and times that mostly advance but
    step back now and then, as within one capture file."""
    keys = [rng.integers(0, 3, n).astype(np.int8), rng.integers(0, max(1, n // 12), n).astype(np.uint64) << np.uint64(40)]
    is_ingress = rng.random(n) < 0.55
    ts = np.cumsum(rng.integers(-150, 400, n)).astype(np.int64)
    return keys, is_ingress, ts


@pytest.mark.parametrize("seed", range(12))
def test_pair_legs_matches_pairing_per_key(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4000))
    keys, is_ingress, ts = _random_legs(rng, n)
    window = int(rng.choice([0, 300, 2000, 1 << 62]))
    peer = np.full(n, -1, np.int64)
    earlier = rng.choice(n, n // 10, replace=False)  # paired by an earlier pass
    peer[earlier] = rng.integers(0, n, len(earlier))
    ambiguous = rng.random(n) < 0.05
    rows = np.sort(rng.choice(n, int(rng.integers(0, n + 1)), replace=False)) if seed % 2 else None
    expected_peer, expected_ambiguous = peer.copy(), ambiguous.copy()
    taken = [k if rows is None else k[rows] for k in keys]
    latency = np.full(n, -1, np.int64)
    _kernels.pair_legs(taken, rows, is_ingress, ts, window, peer, latency, ambiguous)
    _reference_pair(taken, range(n) if rows is None else rows.tolist(), is_ingress.tolist(), ts.tolist(), window,
                    expected_peer, expected_ambiguous)
    np.testing.assert_array_equal(peer, expected_peer)
    np.testing.assert_array_equal(ambiguous, expected_ambiguous)
    now = (expected_peer != -1) & (latency != -1)  # paired here, not by the earlier pass
    np.testing.assert_array_equal(latency[now], np.abs(ts[now] - ts[expected_peer[now]]))
    if window >= 2000 and n >= 100:  # the case is not vacuous: legs pair, some ambiguously
        fresh = np.setdiff1d(np.arange(n), earlier)
        assert (peer[fresh] >= 0).any() and ambiguous[fresh].any()


def test_pair_legs_many_keys_in_flight_grow_and_shrink_the_table():
    """Tens of thousands of keys open at once (the table doubles), closed in another order than opened (slots
    leave it and the ones after them shift back), some never closed."""
    rng = np.random.default_rng(11)
    opened = rng.permutation(60_000).astype(np.uint64)
    closed = rng.permutation(opened)[:50_000]
    key = np.concatenate([opened, closed, opened[:5000]])
    is_ingress = np.r_[np.ones(60_000, bool), np.zeros(55_000, bool)]
    ts = np.arange(len(key), dtype=np.int64)
    peer, ambiguous = np.full(len(key), -1, np.int64), np.zeros(len(key), bool)
    _kernels.pair_legs([key], None, is_ingress, ts, 1 << 40, peer, np.empty(len(key), np.int64), ambiguous)
    expected_peer, expected_ambiguous = np.full(len(key), -1, np.int64), np.zeros(len(key), bool)
    _reference_pair([key], range(len(key)), is_ingress.tolist(), ts.tolist(), 1 << 40, expected_peer, expected_ambiguous)
    np.testing.assert_array_equal(peer, expected_peer)
    assert not ambiguous.any()


def test_pair_legs_first_in_first_out():
    # Key A: ingress 0 and 1, then egress 2 and 3; key B: ingress 4 too old for egress 5.
    key = np.array([0, 0, 0, 0, 1, 1], np.int64)
    is_ingress = np.array([True, True, False, False, True, False])
    ts = np.array([0, 10, 20, 30, 0, 2000], np.int64)
    peer, latency, ambiguous = np.full(6, -1, np.int64), np.full(6, -1, np.int64), np.zeros(6, bool)
    _kernels.pair_legs([key], None, is_ingress, ts, 1000, peer, latency, ambiguous)
    np.testing.assert_array_equal(peer, [2, 3, 0, 1, -1, -1])
    np.testing.assert_array_equal(latency, [20, 20, 20, 20, -1, -1])
    np.testing.assert_array_equal(ambiguous, [True, False, True, False, False, False])


def test_pair_legs_tells_keys_of_one_hash_apart():
    words = _colliding_words(100)  # (0, 0) and (1, m) share a hash: ingress of one, egress of the other, then (0, 0)
    n = words.shape[1]
    is_ingress = np.r_[np.ones(n - 1, bool), False]
    is_ingress[n - 2] = False  # (1, m): an egress no ingress of its own key explains
    peer, ambiguous = np.full(n, -1, np.int64), np.zeros(n, bool)
    _kernels.pair_legs(list(words), None, is_ingress, np.arange(n, dtype=np.int64), 1000, peer, np.empty(n, np.int64), ambiguous)
    assert peer[n - 2] == -1
    assert peer[n - 3] == n - 1 and peer[n - 1] == n - 3


def test_pair_legs_times_wrap_as_int64():
    ts = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max], np.int64)  # the difference wraps to -1
    peer, latency, ambiguous = np.full(2, -1, np.int64), np.full(2, -1, np.int64), np.zeros(2, bool)
    _kernels.pair_legs([np.zeros(2, np.int64)], None, np.array([True, False]), ts, 0, peer, latency, ambiguous)
    np.testing.assert_array_equal(peer, [1, 0])
    np.testing.assert_array_equal(latency, np.abs(ts[::-1] - ts))  # numpy's wrapped |difference|: 1


def test_pair_legs_refuses_wrong_arguments():
    n = 4
    good = dict(
        columns=[np.zeros(n, np.int64)], rows=None, is_ingress=np.array([True, False] * 2),
        ts=np.arange(n, dtype=np.int64), window_ns=10, peer=np.full(n, -1, np.int64),
        latency=np.full(n, -1, np.int64), ambiguous=np.zeros(n, bool),
    )

    def call(**changes):
        args = {**good, **changes}
        _kernels.pair_legs(*args.values())

    for name, bad in [
        ("columns", [np.zeros(n, np.float64)]), ("columns", np.zeros(n, np.int64)), ("columns", [np.zeros((2, 2), np.int64)]),
        ("rows", np.arange(n, dtype=np.float64)), ("rows", np.arange(n, dtype=np.int32)),
        ("is_ingress", good["is_ingress"].astype(np.float32)),
        ("ts", good["ts"].astype(np.float64)), ("ts", good["ts"].astype(np.uint64)),
        ("peer", good["peer"].astype(np.float64)), ("latency", good["latency"].astype(np.uint64)),
        ("ambiguous", good["ambiguous"].astype(np.uint8)), ("ts", np.arange(2 * n, dtype=np.int64)[::2]), ("window_ns", "10"),
    ]:
        with pytest.raises((TypeError, ValueError)):
            call(**{name: bad})
    readonly = np.full(n, -1, np.int64)
    readonly.flags.writeable = False
    with pytest.raises(TypeError):
        call(peer=readonly)
    for changes in [
        {"columns": []}, {"columns": [np.zeros(n - 1, np.int64)]}, {"is_ingress": np.ones(n + 1, bool)},
        {"ts": np.arange(n - 1, dtype=np.int64)}, {"ambiguous": np.zeros(n + 1, bool)}, {"latency": np.zeros(n - 1, np.int64)},
        {"rows": np.array([0, 1, 4], np.int64), "columns": [np.zeros(3, np.int64)]},  # leg 4 of 4
        {"rows": np.array([1, -1], np.int64), "columns": [np.zeros(2, np.int64)]},
        {"rows": np.array([0, 1], np.int64)},  # columns of 4 keys for 2 legs
    ]:
        peer = np.full(n, -1, np.int64)
        with pytest.raises(ValueError):
            call(**changes, peer=peer)
        assert (peer == -1).all()  # nothing written
    call()
    np.testing.assert_array_equal(good["peer"], [1, 0, 3, 2])
