/* The table kernels: grouping rows by exact keys (grouping.py) and pairing legs first-in first-out (legs.py).
 *
 * Python allocates every output as a numpy array and passes it in; each argument is checked (C-contiguous,
 * element size and kind, length) before any loop, so a wrong dtype is a TypeError and a wrong length or an
 * index out of range a ValueError, never a misread.  Scratch memory (the hash table, the counting sort's
 * starts, the pairing queues) is the kernel's own, freed on every path.  Loops run without the GIL.
 */
#include "native.h"

#include <stdbool.h>
#include <stdlib.h>

#define NO_PEER (-1)

/* Element formats besides native.h's GW_FORMAT_* (the element size is checked apart). */
#define BYTES "?bB"                   /* read as truth values: bool or any 1-byte integer */
#define KEY_FORMATS "?bBhHiIlLqQnN"   /* key columns: bools and integers of any width */
#define SIGNED_FORMATS "bhilqn"

/* ---------------------------------------------------------------- grouping */

static const uint64_t PRIME = 0x9E3779B185EBCA87ULL;  /* xxHash64's first prime, as hash_columns */
#define SHIFT 29
#define FIRST_BITS 12

/* A key column: its elements (integers or bools of 1, 2, 4 or 8 bytes) and whether they are signed. */
typedef struct {
    const void *data;
    Py_ssize_t itemsize;
    bool is_signed;
} column_t;

static inline uint64_t mix(uint64_t x, uint64_t value) {
    x = (x ^ value) * PRIME;
    return x ^ (x >> SHIFT);
}

/* The hashes of rows ``start`` to ``start + count - 1``, as hash_columns computes them: one column at a
 * time, a loop per element type, each value widened to 64 bits as numpy's astype(np.uint64) widens it. */
#define MIX_COLUMN(type)                                                                                  \
    for (Py_ssize_t i = 0; i < count; i++) hashes[i] = mix(j ? hashes[i] : 0, (uint64_t)((const type *)data)[start + i])

static void hash_rows(const column_t *columns, Py_ssize_t k, Py_ssize_t start, Py_ssize_t count, uint64_t *hashes) {
    for (Py_ssize_t j = 0; j < k; j++) {
        const void *data = columns[j].data;
        bool is_signed = columns[j].is_signed;
        switch (columns[j].itemsize) {
        case 1: if (is_signed) MIX_COLUMN(int8_t); else MIX_COLUMN(uint8_t); break;
        case 2: if (is_signed) MIX_COLUMN(int16_t); else MIX_COLUMN(uint16_t); break;
        case 4: if (is_signed) MIX_COLUMN(int32_t); else MIX_COLUMN(uint32_t); break;
        default: MIX_COLUMN(uint64_t); break;
        }
    }
}
#undef MIX_COLUMN

/* Whether every row from ``start`` to ``start + count - 1`` has the key of its group's first row: one column
 * at a time, a loop per element size (equal bits are equal values of one type).  ``ids`` and ``first`` (groups
 * of them, each a row below n) are read back from the caller's arrays: checked first, in case they changed. */
#define SAME_AS_FIRST(type)                                                                                  \
    for (Py_ssize_t i = start; i < start + count; i++) differ |= ((const type *)data)[i] != ((const type *)data)[first[ids[i]]]

static bool keys_match_first(const column_t *columns, Py_ssize_t k, Py_ssize_t start, Py_ssize_t count, const int64_t *ids,
                             const int64_t *first, int64_t groups, Py_ssize_t n) {
    for (Py_ssize_t i = start; i < start + count; i++)
        if ((uint64_t)ids[i] >= (uint64_t)groups || (uint64_t)first[ids[i]] >= (uint64_t)n) return false;
    for (Py_ssize_t j = 0; j < k; j++) {
        const void *data = columns[j].data;
        bool differ = false;
        switch (columns[j].itemsize) {
        case 1: SAME_AS_FIRST(uint8_t); break;
        case 2: SAME_AS_FIRST(uint16_t); break;
        case 4: SAME_AS_FIRST(uint32_t); break;
        default: SAME_AS_FIRST(uint64_t); break;
        }
        if (differ) return false;
    }
    return true;
}
#undef SAME_AS_FIRST

typedef struct {
    uint64_t hash;
    int64_t group;  /* -1: empty */
} slot_t;

/* Fibonacci hashing: the top ``bits`` bits. */
static inline uint64_t slot_of(uint64_t x, int bits) { return (x * 0x9E3779B97F4A7C15ULL) >> (64 - bits); }

static slot_t *new_table(int bits) {
    size_t size = (size_t)1 << bits;
    slot_t *table = malloc(size * sizeof(slot_t));
    if (table != NULL)
        for (size_t s = 0; s < size; s++) table[s].group = -1;
    return table;
}

/* Rows hashed at a time (two blocks of hashes live on the stack), and rows whose slots are fetched into cache
 * while the rows before them are placed. */
#define BLOCK 1024
#define AHEAD 16
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)(address))
#endif

/* Per row of the ``k`` key columns (n rows each): ``ids[i]``, its group numbered in order of first appearance,
 * and ``first[g]``, each group's first row.  Returns the number of groups, -1 if two different keys shared a
 * hash (ids and first are then not exact), -2 when out of memory.
 *
 * Rows are hashed as hash_columns does, a block at a time, into an open-addressing table kept at most half full
 * and doubled as groups appear: a key of few values keeps a small table in cache, where one sized by the rows
 * costs page faults on fresh memory.  Each block's keys are then compared with their groups' first rows. */
static int64_t hash_groups(const column_t *columns, Py_ssize_t k, Py_ssize_t n, int64_t *ids, int64_t *first) {
    uint64_t hashes[2][BLOCK];
    int bits = FIRST_BITS;
    uint64_t mask = ((uint64_t)1 << bits) - 1;
    slot_t *table = new_table(bits);
    if (table == NULL) return -2;
    int64_t groups = 0;
    if (n > 0) hash_rows(columns, k, 0, n < BLOCK ? n : BLOCK, hashes[0]);
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t count = n - start < BLOCK ? n - start : BLOCK, next = start + BLOCK;
        const uint64_t *hash = hashes[(start / BLOCK) & 1];
        if (next < n) hash_rows(columns, k, next, n - next < BLOCK ? n - next : BLOCK, hashes[(next / BLOCK) & 1]);
        for (Py_ssize_t i = start; i < start + count; i++) {
            if (i + AHEAD < n) PREFETCH(&table[slot_of(hashes[((i + AHEAD) / BLOCK) & 1][(i + AHEAD) % BLOCK], bits)]);
            uint64_t x = hash[i - start];
            uint64_t s = slot_of(x, bits);
            for (;;) {
                int64_t g = table[s].group;
                if (g < 0) {
                    table[s].group = groups;
                    table[s].hash = x;
                    ids[i] = groups;
                    first[groups] = i;
                    groups++;
                    break;
                }
                if (table[s].hash == x) {
                    ids[i] = g;
                    break;
                }
                s = (s + 1) & mask;
            }
            if (2 * (uint64_t)groups > mask + 1) {  /* more than half full: double */
                slot_t *old = table;
                uint64_t old_size = mask + 1;
                if (bits >= 56) {  /* more groups than memory holds */
                    free(old);
                    return -2;
                }
                bits++;
                mask = ((uint64_t)1 << bits) - 1;
                table = new_table(bits);
                if (table == NULL) {
                    free(old);
                    return -2;
                }
                for (uint64_t q = 0; q < old_size; q++) {
                    if (old[q].group >= 0) {
                        uint64_t t = slot_of(old[q].hash, bits);
                        while (table[t].group >= 0) t = (t + 1) & mask;
                        table[t] = old[q];
                    }
                }
                free(old);
            }
        }
        /* One column: the hash is a bijection of its value, so an equal hash is an equal key. */
        if (k > 1 && !keys_match_first(columns, k, start, count, ids, first, groups, n)) {
            free(table);
            return -1;
        }
    }
    free(table);
    return groups;
}

/* A key column's buffer: C-contiguous, one dimension, integers or bools of 1, 2, 4 or 8 bytes in native order. */
static int key_view(PyObject *object, Py_buffer *view, column_t *column, Py_ssize_t j) {
    char what[32];
    snprintf(what, sizeof what, "columns[%zd]", j);
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous array", what);
        return -1;
    }
    Py_ssize_t size = view->itemsize;
    if (size != 1 && size != 2 && size != 4 && size != 8) {
        PyErr_Format(PyExc_TypeError, "%s: expected 1, 2, 4 or 8-byte elements, got %zd", what, size);
        PyBuffer_Release(view);
        return -1;
    }
    if (!gw_format_is(view->format, KEY_FORMATS)) {
        PyErr_Format(PyExc_TypeError, "%s: expected elements of format '%s' (native byte order), got '%s'", what, KEY_FORMATS,
                     view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    if (view->ndim != 1) {
        PyErr_Format(PyExc_ValueError, "%s: expected one dimension, got %d", what, view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    column->data = view->buf;
    column->itemsize = size;
    column->is_signed = gw_format_is(view->format, SIGNED_FORMATS);
    return 0;
}

/* The key columns a kernel is called with: the sequence, its views (``extra`` views of the other arguments
 * first, then one per column) and each column's data and type. */
typedef struct {
    PyObject *sequence;
    Py_ssize_t k;
    Py_buffer *views;
    column_t *columns;
} keys_t;

/* Take the sequence of key columns (at least one) and room for its views and ``extra`` more; -1 with an
 * exception set, and nothing left to release. */
static int keys_open(PyObject *object, Py_ssize_t extra, keys_t *keys) {
    keys->sequence = PySequence_Fast(object, "columns: expected a sequence of arrays");
    if (keys->sequence == NULL) return -1;
    keys->k = PySequence_Fast_GET_SIZE(keys->sequence);
    keys->views = PyMem_Calloc((size_t)(keys->k + extra), sizeof(Py_buffer));
    keys->columns = PyMem_Calloc((size_t)(keys->k > 0 ? keys->k : 1), sizeof(column_t));
    if (keys->views == NULL || keys->columns == NULL)
        PyErr_NoMemory();
    else if (keys->k < 1)
        PyErr_SetString(PyExc_ValueError, "columns: no key columns");
    else
        return 0;
    PyMem_Free(keys->views);
    PyMem_Free(keys->columns);
    Py_DECREF(keys->sequence);
    return -1;
}

/* View every key column after the ``*held`` views taken, each of ``n`` elements (as ``as``); -1 with an
 * exception set.  ``*held`` counts the views to release either way. */
static int keys_view(keys_t *keys, int *held, Py_ssize_t n, const char *as) {
    for (Py_ssize_t j = 0; j < keys->k; j++) {
        Py_buffer *view = &keys->views[*held];
        if (key_view(PySequence_Fast_GET_ITEM(keys->sequence, j), view, &keys->columns[j], j) != 0) return -1;
        ++*held;
        if (gw_len(view) != n) {
            PyErr_Format(PyExc_ValueError, "columns[%zd]: expected %zd elements (as %s), got %zd", j, n, as, gw_len(view));
            return -1;
        }
    }
    return 0;
}

/* Release the ``held`` views and everything ``keys_open`` took. */
static void keys_close(keys_t *keys, int held) {
    gw_release(keys->views, held);
    PyMem_Free(keys->views);
    PyMem_Free(keys->columns);
    Py_DECREF(keys->sequence);
}

PyDoc_STRVAR(hash_groups_doc,
"hash_groups(columns, ids, first) -> (groups, exact)\n\n"
"Group rows by equal keys, a key being a row's values in ``columns`` (a sequence of C-contiguous 1-D arrays of\n"
"one length, each of integers or bools of any width): writes each row's group, numbered in order of first\n"
"appearance, to ``ids`` and each group's first row to ``first[:groups]`` (both int64, one element per row).\n"
"``exact`` is False if two different keys shared a hash: ids and first are then incomplete and groups is 0.");

static PyObject *py_hash_groups(PyObject *self, PyObject *args) {
    PyObject *columns_object, *ids_object, *first_object;
    if (!PyArg_ParseTuple(args, "OOO:hash_groups", &columns_object, &ids_object, &first_object)) return NULL;
    keys_t keys;
    if (keys_open(columns_object, 2, &keys) != 0) return NULL;
    Py_buffer *views = keys.views;
    int held = 0;
    PyObject *result = NULL;
    if (gw_typed_view(ids_object, &views[held], 8, GW_FORMAT_I64, 1, "ids") != 0) goto done;
    held++;
    if (gw_typed_view(first_object, &views[held], 8, GW_FORMAT_I64, 1, "first") != 0) goto done;
    held++;
    Py_ssize_t n = gw_len(&views[0]);
    if (gw_len(&views[1]) != n) {
        PyErr_Format(PyExc_ValueError, "first: expected %zd elements (as ids), got %zd", n, gw_len(&views[1]));
        goto done;
    }
    if (keys_view(&keys, &held, n, "ids") != 0) goto done;
    int64_t groups;
    int64_t *ids = (int64_t *)views[0].buf, *first = (int64_t *)views[1].buf;
    Py_BEGIN_ALLOW_THREADS
    groups = hash_groups(keys.columns, keys.k, n, ids, first);
    Py_END_ALLOW_THREADS
    if (groups == -2)
        PyErr_NoMemory();
    else if (groups == -1)
        result = Py_BuildValue("(LO)", (long long)0, Py_False);
    else
        result = Py_BuildValue("(LO)", (long long)groups, Py_True);
done:
    keys_close(&keys, held);
    return result;
}

/* A stable counting sort of rows by ``ids``; ``start`` has n_groups + 1 zeroed elements.  Returns false if an
 * id is outside 0 to n_groups - 1 (nothing is then written to ``order``). */
static bool counting_order(const int64_t *ids, Py_ssize_t n, int64_t n_groups, int64_t *start, int64_t *order) {
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t g = ids[i];
        if (g < 0 || g >= n_groups) return false;
        start[g + 1]++;
    }
    for (int64_t g = 0; g < n_groups; g++) start[g + 1] += start[g];
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t g = ids[i];
        if (g < 0 || g >= n_groups || start[g] < 0 || start[g] >= n) return false;  /* ids changed meanwhile */
        order[start[g]++] = i;
    }
    return true;
}

PyDoc_STRVAR(counting_order_doc,
"counting_order(ids, n_groups, order)\n\n"
"Write to ``order`` (int64, as long as ``ids``) the rows ordered by their group in ``ids`` (int64, each\n"
"0 to n_groups - 1), in row order within a group: a stable counting sort.  ValueError if an id is out of range.");

static PyObject *py_counting_order(PyObject *self, PyObject *args) {
    PyObject *ids_object, *order_object;
    long long n_groups;
    if (!PyArg_ParseTuple(args, "OLO:counting_order", &ids_object, &n_groups, &order_object)) return NULL;
    if (n_groups < 0 || (unsigned long long)n_groups >= (size_t)PY_SSIZE_T_MAX / sizeof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "n_groups: %lld out of range", n_groups);
        return NULL;
    }
    Py_buffer views[2];
    int held = 0;
    if (gw_typed_view(ids_object, &views[held], 8, GW_FORMAT_I64, 0, "ids") != 0) goto fail;
    held++;
    if (gw_typed_view(order_object, &views[held], 8, GW_FORMAT_I64, 1, "order") != 0) goto fail;
    held++;
    Py_ssize_t n = gw_len(&views[0]);
    if (gw_len(&views[1]) != n) {
        PyErr_Format(PyExc_ValueError, "order: expected %zd elements (as ids), got %zd", n, gw_len(&views[1]));
        goto fail;
    }
    int64_t *start = calloc((size_t)n_groups + 1, sizeof(int64_t));
    if (start == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    bool ok;
    Py_BEGIN_ALLOW_THREADS
    ok = counting_order((const int64_t *)views[0].buf, n, n_groups, start, (int64_t *)views[1].buf);
    Py_END_ALLOW_THREADS
    free(start);
    gw_release(views, held);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "ids: a group outside 0 to %lld", n_groups - 1);
        return NULL;
    }
    Py_RETURN_NONE;
fail:
    gw_release(views, held);
    return NULL;
}

/* ---------------------------------------------------------------- leg pairing */

/* Whether rows ``a`` and ``b`` have equal values in every key column (equal bits are equal values of one type). */
static bool same_key(const column_t *columns, Py_ssize_t k, Py_ssize_t a, Py_ssize_t b) {
    for (Py_ssize_t j = 0; j < k; j++) {
        const void *data = columns[j].data;
        bool equal;
        switch (columns[j].itemsize) {
        case 1: equal = ((const uint8_t *)data)[a] == ((const uint8_t *)data)[b]; break;
        case 2: equal = ((const uint16_t *)data)[a] == ((const uint16_t *)data)[b]; break;
        case 4: equal = ((const uint32_t *)data)[a] == ((const uint32_t *)data)[b]; break;
        default: equal = ((const uint64_t *)data)[a] == ((const uint64_t *)data)[b]; break;
        }
        if (!equal) return false;
    }
    return true;
}

/* The open ingress legs of one key, oldest first: a queue linked through ``next`` (indexed by leg). */
typedef struct {
    uint64_t hash;
    int64_t head;        /* oldest open ingress; -1: an empty slot */
    int64_t tail;        /* newest open ingress */
    int64_t tail_place;  /* its place in the legs paired: the key columns' row of the slot's key */
} queue_t;

static queue_t *new_queues(int bits) {
    size_t size = (size_t)1 << bits;
    queue_t *table = malloc(size * sizeof(queue_t));
    if (table != NULL)
        for (size_t s = 0; s < size; s++) table[s].head = -1;
    return table;
}

/* Empty slot ``s`` of a linear-probing table, shifting back the slots after it that probed past it, so that
 * every key stays reachable from its home slot without tombstones. */
static void remove_queue(queue_t *table, uint64_t mask, int bits, uint64_t s) {
    for (uint64_t t = (s + 1) & mask; table[t].head >= 0; t = (t + 1) & mask) {
        uint64_t home = slot_of(table[t].hash, bits);
        if (((t - home) & mask) >= ((t - s) & mask)) {  /* home not after s: the entry may move back to s */
            table[s] = table[t];
            s = t;
        }
    }
    table[s].head = -1;
}

/* Double a table more than half full; false when out of memory (the table is then freed). */
static bool grow_queues(queue_t **table, int *bits, uint64_t *mask) {
    queue_t *old = *table;
    uint64_t old_size = *mask + 1;
    if (*bits >= 56) {  /* more keys than memory holds */
        free(old);
        return false;
    }
    *table = new_queues(++*bits);
    *mask = ((uint64_t)1 << *bits) - 1;
    if (*table == NULL) {
        free(old);
        return false;
    }
    for (uint64_t q = 0; q < old_size; q++) {
        if (old[q].head >= 0) {
            uint64_t t = slot_of(old[q].hash, *bits);
            while ((*table)[t].head >= 0) t = (t + 1) & *mask;
            (*table)[t] = old[q];
        }
    }
    free(old);
    return true;
}

/* Pair the legs ``rows`` (m of them, in capture order; every leg, 0 to m - 1, when rows is NULL; each below n,
 * checked before), whose keys are the m rows of the ``k`` key ``columns``, in one pass: each egress takes the oldest
 * open ingress of its key within the window, exactly as grouping by key and pairing each key first-in first-out
 * does; writes each pair's ``latency`` (both legs).  Only keys with open ingress are in the hash table (a key leaves it when its queue empties), so the table
 * holds the keys in flight, not every key; the queues are linked through ``next`` (n elements).  Returns false
 * when out of memory. */
static bool pair_legs(const column_t *columns, Py_ssize_t k, const int64_t *rows, Py_ssize_t m, Py_ssize_t n,
                      const uint8_t *is_ingress, const int64_t *ts, int64_t window_ns, int64_t *peer, int64_t *latency,
                      uint8_t *ambiguous, int64_t *next) {
    uint64_t hashes[2][BLOCK];
    int bits = FIRST_BITS;
    uint64_t mask = ((uint64_t)1 << bits) - 1, used = 0;
    queue_t *table = new_queues(bits);
    if (table == NULL) return false;
    if (m > 0) hash_rows(columns, k, 0, m < BLOCK ? m : BLOCK, hashes[0]);
    for (Py_ssize_t start = 0; start < m; start += BLOCK) {
        Py_ssize_t count = m - start < BLOCK ? m - start : BLOCK, following = start + BLOCK;
        const uint64_t *hash = hashes[(start / BLOCK) & 1];
        if (following < m)
            hash_rows(columns, k, following, m - following < BLOCK ? m - following : BLOCK, hashes[(following / BLOCK) & 1]);
        for (Py_ssize_t r = start; r < start + count; r++) {
            if (r + AHEAD < m) PREFETCH(&table[slot_of(hashes[((r + AHEAD) / BLOCK) & 1][(r + AHEAD) % BLOCK], bits)]);
            int64_t i = rows != NULL ? rows[r] : (int64_t)r;
            if ((uint64_t)i >= (uint64_t)n) continue;  /* checked before; only if rows changed meanwhile */
            if (peer[i] != NO_PEER) continue;         /* paired by an earlier pass */
            uint64_t x = hash[r - start];
            uint64_t s = slot_of(x, bits);
            while (table[s].head >= 0 && !(table[s].hash == x && same_key(columns, k, r, table[s].tail_place))) s = (s + 1) & mask;
            queue_t *queue = &table[s];
            if (is_ingress[i]) {
                if (queue->head >= 0) {
                    next[queue->tail] = i;
                    queue->tail = i;
                    queue->tail_place = r;
                } else {
                    *queue = (queue_t){.hash = x, .head = i, .tail = i, .tail_place = r};
                    if (2 * ++used > mask + 1 && !grow_queues(&table, &bits, &mask)) return false;
                }
                continue;
            }
            if (queue->head < 0) continue;  /* no open ingress of its key */
            /* Ingress older than the window leaves the queue, and the queue is empty once its tail leaves;
             * differences wrap, as int64 arithmetic does in numpy. */
            bool open = true;
            while (open && (int64_t)((uint64_t)ts[i] - (uint64_t)ts[queue->head]) > window_ns) {
                open = queue->head != queue->tail;
                if (open) queue->head = next[queue->head];
            }
            if (open) {
                int64_t j = queue->head;
                peer[i] = j;
                peer[j] = i;
                /* |ts[i] - ts[j]| as numpy's int64 arithmetic gives it: the difference wraps, and so does its negation. */
                uint64_t after = (uint64_t)ts[i] - (uint64_t)ts[j];
                latency[i] = latency[j] = (int64_t)after < 0 ? (int64_t)(0 - after) : (int64_t)after;
                open = j != queue->tail;
                if (open) {  /* another ingress of the key could have been the one */
                    ambiguous[i] = 1;
                    ambiguous[j] = 1;
                    queue->head = next[j];
                }
            }
            if (!open) {
                remove_queue(table, mask, bits, s);
                used--;
            }
        }
    }
    free(table);
    return true;
}

PyDoc_STRVAR(pair_legs_doc,
"pair_legs(columns, rows, is_ingress, ts, window_ns, peer, latency, ambiguous)\n\n"
"Pair the legs ``rows`` (int64, in capture order; None: every leg in order) whose keys are the rows of\n"
"``columns`` (C-contiguous 1-D arrays of integers or bools, one element per leg paired): each egress takes the\n"
"oldest unpaired ingress of its key, in one pass with a hash table of the keys with ingress waiting.\n"
"``is_ingress`` (bool), ``ts`` (int64), ``peer`` (int64, written), ``latency`` (int64, |ts difference| of each\n"
"pair, written) and ``ambiguous`` (bool, written) are indexed by leg; legs already paired (peer not -1) are\n"
"skipped, and ingress older than ``window_ns`` when an egress arrives is left unpaired.  ValueError if a row\n"
"is not a leg.");

static PyObject *py_pair_legs(PyObject *self, PyObject *args) {
    PyObject *columns_object, *rows_object, *ingress_object, *ts_object, *peer_object, *latency_object, *ambiguous_object;
    long long window_ns;
    if (!PyArg_ParseTuple(args, "OOOOLOOO:pair_legs", &columns_object, &rows_object, &ingress_object, &ts_object, &window_ns,
                          &peer_object, &latency_object, &ambiguous_object))
        return NULL;
    keys_t keys;
    if (keys_open(columns_object, 6, &keys) != 0) return NULL;
    Py_buffer *views = keys.views;
    int64_t *next = NULL;
    int held = 0;
    PyObject *result = NULL;
    if (gw_typed_view(ingress_object, &views[held], 1, BYTES, 0, "is_ingress") != 0) goto done;
    held++;
    if (gw_typed_view(ts_object, &views[held], 8, GW_FORMAT_I64, 0, "ts") != 0) goto done;
    held++;
    if (gw_typed_view(peer_object, &views[held], 8, GW_FORMAT_I64, 1, "peer") != 0) goto done;
    held++;
    if (gw_typed_view(latency_object, &views[held], 8, GW_FORMAT_I64, 1, "latency") != 0) goto done;
    held++;
    if (gw_typed_view(ambiguous_object, &views[held], 1, GW_FORMAT_BOOL, 1, "ambiguous") != 0) goto done;
    held++;
    Py_buffer *ingress = &views[0], *ts = &views[1], *peer = &views[2], *latency = &views[3], *ambiguous = &views[4];
    Py_ssize_t n = gw_len(peer);
    if (gw_len(ingress) != n || gw_len(ts) != n || gw_len(latency) != n || gw_len(ambiguous) != n) {
        PyErr_Format(PyExc_ValueError, "is_ingress, ts, latency, ambiguous: expected %zd elements (as peer), got %zd, %zd, %zd, %zd",
                     n, gw_len(ingress), gw_len(ts), gw_len(latency), gw_len(ambiguous));
        goto done;
    }
    const int64_t *rows = NULL;
    Py_ssize_t m = n;
    if (rows_object != Py_None) {
        if (gw_typed_view(rows_object, &views[held], 8, GW_FORMAT_I64, 0, "rows") != 0) goto done;
        held++;
        rows = (const int64_t *)views[held - 1].buf;
        m = gw_len(&views[held - 1]);
        for (Py_ssize_t r = 0; r < m; r++) {
            if (rows[r] < 0 || rows[r] >= n) {
                PyErr_Format(PyExc_ValueError, "rows[%zd]: %lld is not a leg (0 to %zd)", r, (long long)rows[r], n - 1);
                goto done;
            }
        }
    }
    if (keys_view(&keys, &held, m, "rows") != 0) goto done;
    next = malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    if (next == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    bool ok;
    Py_BEGIN_ALLOW_THREADS
    ok = pair_legs(keys.columns, keys.k, rows, m, n, (const uint8_t *)ingress->buf, (const int64_t *)ts->buf, window_ns,
                   (int64_t *)peer->buf, (int64_t *)latency->buf, (uint8_t *)ambiguous->buf, next);
    Py_END_ALLOW_THREADS
    if (ok) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        PyErr_NoMemory();
    }
done:
    free(next);
    keys_close(&keys, held);
    return result;
}

/* ---------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"hash_groups", py_hash_groups, METH_VARARGS, hash_groups_doc},
    {"counting_order", py_counting_order, METH_VARARGS, counting_order_doc},
    {"pair_legs", py_pair_legs, METH_VARARGS, pair_legs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "The table kernels: hash grouping, a counting sort by group, and FIFO pairing of legs in one pass.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
