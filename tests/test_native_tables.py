"""The table kernels in C (gwcheck/tables/_kernels.c): the grouping and pairing they do, checked against plain
Python; hash collisions; and arguments of the wrong type, length or range refused rather than misread."""

from __future__ import annotations

import numpy as np
import pytest

from gwcheck.tables import _kernels
from gwcheck.tables.grouping import group_ids, group_order, group_sort, pack_columns

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


def _reference_pair_fifo(rows, same, is_ingress, ts, window_ns, peer, ambiguous):
    """The Numba kernel this replaced, line for line."""
    queue, head = [], 0
    for k, i in enumerate(rows):
        if not same[k]:
            queue, head = [], 0
        if peer[i] != -1:
            continue
        if is_ingress[i]:
            queue.append(i)
            continue
        while head < len(queue) and ts[i] - ts[queue[head]] > window_ns:
            head += 1
        if head < len(queue):
            j = queue[head]
            peer[i], peer[j] = j, i
            if len(queue) - head > 1:
                ambiguous[i] = ambiguous[j] = True
            head += 1


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
    assert _kernels.hash_groups(np.zeros((1, 0), np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)) == (0, True)


def _colliding_words(prefix: int = 0) -> np.ndarray:
    """Two words per row, rows ``prefix`` distinct keys then (0, 0), (1, mix(1)) (same hash, different keys), (0, 0)."""
    m = _mix(0, 1)
    assert _mix(_mix(0, 0), 0) == _mix(_mix(0, 1), m)  # (0, 0) and (1, m) share a hash
    head = list(range(2, prefix + 2))
    return np.array([head + [0, 1, 0], head + [0, m, 0]], np.uint64)


@pytest.mark.parametrize("prefix", [0, 10_000])
def test_hash_collision_is_reported(prefix):
    words = _colliding_words(prefix)
    n = words.shape[1]
    groups, exact = _kernels.hash_groups(words, np.empty(n, np.int64), np.empty(n, np.int64))
    assert (groups, exact) == (0, False)


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
    words = np.array([[0, 1, 2, 1 << 63, MASK, 1, MASK]], np.uint64)
    ids, first = np.empty(7, np.int64), np.empty(7, np.int64)
    assert _kernels.hash_groups(words, ids, first) == (5, True)
    np.testing.assert_array_equal(ids, [0, 1, 2, 3, 4, 1, 4])
    np.testing.assert_array_equal(first[:5], [0, 1, 2, 3, 4])


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
    words = np.zeros((2, 4), np.uint64)
    ids, first = np.empty(4, np.int64), np.empty(4, np.int64)
    for bad in (words.astype(np.int64), words.astype(np.float64), words.astype(np.uint32), words.T):
        with pytest.raises(TypeError):
            _kernels.hash_groups(bad, ids, first)
    with pytest.raises(TypeError):
        _kernels.hash_groups(words, ids.astype(np.float64), first)
    with pytest.raises(TypeError):
        _kernels.hash_groups(words, ids.astype(np.uint64), first)
    with pytest.raises(TypeError):
        _kernels.hash_groups(words, ids.astype(">i8"), first)  # not native byte order
    readonly = np.empty(4, np.int64)
    readonly.flags.writeable = False
    with pytest.raises(TypeError):
        _kernels.hash_groups(words, ids, readonly)
    with pytest.raises(TypeError):
        _kernels.hash_groups(words, [0, 0, 0, 0], first)
    with pytest.raises(ValueError):
        _kernels.hash_groups(words.ravel(), np.empty(8, np.int64), np.empty(8, np.int64))  # not (words, rows)
    with pytest.raises(ValueError):
        _kernels.hash_groups(words, np.empty(3, np.int64), first)
    with pytest.raises(ValueError):
        _kernels.hash_groups(words, ids, np.empty(5, np.int64))
    with pytest.raises(ValueError):
        _kernels.hash_groups(np.zeros((0, 4), np.uint64), ids, first)  # no key words
    with pytest.raises(TypeError):
        _kernels.hash_groups(words, ids)


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


def _random_legs(rng, n):
    """Legs of a few keys with random directions and times, grouped as _pair_by groups them."""
    key = rng.integers(0, max(1, n // 6), n)
    is_ingress = rng.random(n) < 0.55
    ts = np.cumsum(rng.integers(0, 400, n)).astype(np.int64)
    order, same = group_sort([key])
    return np.arange(n, dtype=np.int64)[order], same, is_ingress, ts


@pytest.mark.parametrize("seed", range(8))
def test_pair_fifo_matches_python(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    rows, same, is_ingress, ts = _random_legs(rng, n)
    window = int(rng.choice([0, 500, 5000, 1 << 62]))
    peer = np.full(n, -1, np.int64)
    earlier = rng.choice(n, n // 10, replace=False)  # paired by an earlier pass
    peer[earlier] = rng.integers(0, n, len(earlier))
    ambiguous = rng.random(n) < 0.05
    expected_peer, expected_ambiguous = peer.copy(), ambiguous.copy()
    _kernels.pair_fifo(rows, same, is_ingress, ts, window, peer, ambiguous)
    _reference_pair_fifo(rows.tolist(), same.tolist(), is_ingress.tolist(), ts.tolist(), window, expected_peer, expected_ambiguous)
    np.testing.assert_array_equal(peer, expected_peer)
    np.testing.assert_array_equal(ambiguous, expected_ambiguous)


def test_pair_fifo_first_in_first_out():
    # Key A: ingress 0 and 1, then egress 2 and 3; key B: ingress 4 too old for egress 5.
    rows = np.array([0, 1, 2, 3, 4, 5], np.int64)
    same = np.array([False, True, True, True, False, True])
    is_ingress = np.array([True, True, False, False, True, False])
    ts = np.array([0, 10, 20, 30, 0, 2000], np.int64)
    peer, ambiguous = np.full(6, -1, np.int64), np.zeros(6, bool)
    _kernels.pair_fifo(rows, same, is_ingress, ts, 1000, peer, ambiguous)
    np.testing.assert_array_equal(peer, [2, 3, 0, 1, -1, -1])
    np.testing.assert_array_equal(ambiguous, [True, False, True, False, False, False])


def test_pair_fifo_times_wrap_as_int64():
    rows = np.array([0, 1], np.int64)
    ts = np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max], np.int64)  # the difference wraps to -1
    peer, ambiguous = np.full(2, -1, np.int64), np.zeros(2, bool)
    _kernels.pair_fifo(rows, np.array([False, True]), np.array([True, False]), ts, 0, peer, ambiguous)
    np.testing.assert_array_equal(peer, [1, 0])


def test_pair_fifo_refuses_wrong_arguments():
    n = 4
    good = dict(
        rows=np.arange(n, dtype=np.int64), same=np.ones(n, bool), is_ingress=np.array([True, False] * 2),
        ts=np.arange(n, dtype=np.int64), window_ns=10, peer=np.full(n, -1, np.int64), ambiguous=np.zeros(n, bool),
    )

    def call(**changes):
        args = {**good, **changes}
        _kernels.pair_fifo(*args.values())

    for name, bad in [
        ("rows", good["rows"].astype(np.float64)), ("rows", good["rows"].astype(np.int32)),
        ("same", good["same"].astype(np.int64)), ("is_ingress", good["is_ingress"].astype(np.float32)),
        ("ts", good["ts"].astype(np.float64)), ("ts", good["ts"].astype(np.uint64)),
        ("peer", good["peer"].astype(np.float64)), ("ambiguous", good["ambiguous"].astype(np.uint8)),
        ("ts", np.arange(2 * n, dtype=np.int64)[::2]), ("window_ns", "10"),
    ]:
        with pytest.raises(TypeError):
            call(**{name: bad})
    readonly = np.full(n, -1, np.int64)
    readonly.flags.writeable = False
    with pytest.raises(TypeError):
        call(peer=readonly)
    for changes in [
        {"same": np.ones(n - 1, bool)}, {"is_ingress": np.ones(n + 1, bool)}, {"ts": np.arange(n - 1, dtype=np.int64)},
        {"ambiguous": np.zeros(n + 1, bool)},
        {"rows": np.array([0, 1, 4], np.int64), "same": np.ones(3, bool)},  # leg 4 of 4
        {"rows": np.array([1, -1], np.int64), "same": np.ones(2, bool)},
    ]:
        peer = np.full(n, -1, np.int64)
        with pytest.raises(ValueError):
            call(**changes, peer=peer)
        assert (peer == -1).all()  # nothing written
    call()
    np.testing.assert_array_equal(good["peer"], [1, 0, 3, 2])
