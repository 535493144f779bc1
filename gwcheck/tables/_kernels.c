/* The table kernels: grouping rows by exact keys (grouping.py) and pairing legs first-in first-out (legs.py).
 *
 * Python allocates every output as a numpy array and passes it in; each argument is checked (C-contiguous,
 * element size and kind, length) before any loop, so a wrong dtype is a TypeError and a wrong length or an
 * index out of range a ValueError, never a misread.  Scratch memory (the hash table, the counting sort's
 * starts, the pairing queue) is the kernel's own, freed on every path.  Loops run without the GIL.
 */
#include "native.h"

#include <stdbool.h>
#include <stdlib.h>

#define NO_PEER (-1)

/* Element kinds, as buffer-protocol format characters (the element size is checked apart). */
#define SIGNED "lqn"    /* int64 */
#define UNSIGNED "LQN"  /* uint64 */
#define BOOL "?"        /* numpy bool */
#define BYTES "?bB"     /* read as truth values: bool or any 1-byte integer */

/* ``gw_view`` that also checks the elements' kind (``kinds``: format characters) and native byte order, so
 * that int64 is not read as float64 of the same size. */
static int typed_view(PyObject *object, Py_buffer *view, Py_ssize_t itemsize, int writable, const char *kinds,
                      const char *what) {
    if (gw_view(object, view, itemsize, writable, what) != 0) return -1;
    const char *format = view->format ? view->format : "B";
    const char *code = format;
#if PY_LITTLE_ENDIAN
    if (*code == '@' || *code == '=' || *code == '<') code++;
#else
    if (*code == '@' || *code == '=' || *code == '>' || *code == '!') code++;
#endif
    if (code[0] == '\0' || code[1] != '\0' || strchr(kinds, code[0]) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: expected elements of format '%s' (native order), got '%s'", what, kinds, format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void release(Py_buffer *views, int count) {
    for (int i = 0; i < count; i++) PyBuffer_Release(&views[i]);
}

/* ---------------------------------------------------------------- grouping */

static const uint64_t PRIME = 0x9E3779B185EBCA87ULL;  /* xxHash64's first prime, as hash_columns */
#define SHIFT 29
#define FIRST_BITS 12

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

static inline uint64_t row_hash(const uint64_t *words, Py_ssize_t k, Py_ssize_t n, Py_ssize_t i) {
    uint64_t x = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        x = (x ^ words[j * n + i]) * PRIME;
        x ^= x >> SHIFT;
    }
    return x;
}

/* Rows whose hash is computed ahead, their slots fetched into cache while the rows before them are placed. */
#define AHEAD 16
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define PREFETCH(address) ((void)(address))
#endif

/* Per row of ``words`` (k words by n rows, row i's words at i, n + i, ...): ``ids[i]``, its group numbered in
 * order of first appearance, and ``first[g]``, each group's first row.  Returns the number of groups, -1 if
 * two different keys shared a hash (ids and first are then not exact), -2 when out of memory.
 *
 * Rows are hashed as hash_columns does, into an open-addressing table kept at most half full and doubled as
 * groups appear: a key of few values keeps a small table in cache, where one sized by the rows costs page
 * faults on fresh memory. */
static int64_t hash_groups(const uint64_t *words, Py_ssize_t k, Py_ssize_t n, int64_t *ids, int64_t *first) {
    int bits = FIRST_BITS;
    uint64_t mask = ((uint64_t)1 << bits) - 1;
    slot_t *table = new_table(bits);
    if (table == NULL) return -2;
    uint64_t ahead[AHEAD];
    for (Py_ssize_t i = 0; i < n && i < AHEAD; i++) ahead[i] = row_hash(words, k, n, i);
    int64_t groups = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t x = ahead[i % AHEAD];
        if (i + AHEAD < n) {
            uint64_t later = row_hash(words, k, n, i + AHEAD);
            ahead[i % AHEAD] = later;
            PREFETCH(&table[slot_of(later, bits)]);
        }
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
                /* One word: the hash is a bijection of it, so an equal hash is an equal key. */
                if (k > 1) {
                    Py_ssize_t f = (Py_ssize_t)first[g];
                    for (Py_ssize_t j = 0; j < k; j++) {
                        if (words[j * n + i] != words[j * n + f]) {
                            free(table);
                            return -1;
                        }
                    }
                }
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
    free(table);
    return groups;
}

PyDoc_STRVAR(hash_groups_doc,
"hash_groups(words, ids, first) -> (groups, exact)\n\n"
"Group the rows of ``words`` (a C-contiguous (words, rows) uint64 array) by equal columns: writes each row's\n"
"group, numbered in order of first appearance, to ``ids`` and each group's first row to ``first[:groups]``\n"
"(both int64, one element per row).  ``exact`` is False if two different keys shared a hash: ids and first\n"
"are then incomplete and groups is 0.");

static PyObject *py_hash_groups(PyObject *self, PyObject *args) {
    PyObject *words_object, *ids_object, *first_object;
    if (!PyArg_ParseTuple(args, "OOO:hash_groups", &words_object, &ids_object, &first_object)) return NULL;
    Py_buffer views[3];
    int held = 0;
    if (typed_view(words_object, &views[held], 8, 0, UNSIGNED, "words") != 0) goto fail;
    held++;
    if (typed_view(ids_object, &views[held], 8, 1, SIGNED, "ids") != 0) goto fail;
    held++;
    if (typed_view(first_object, &views[held], 8, 1, SIGNED, "first") != 0) goto fail;
    held++;
    Py_buffer *words = &views[0], *ids = &views[1], *first = &views[2];
    if (words->ndim != 2 || words->shape == NULL) {
        PyErr_Format(PyExc_ValueError, "words: expected a (words, rows) array, got %d dimensions", words->ndim);
        goto fail;
    }
    Py_ssize_t k = words->shape[0], n = words->shape[1];
    if (gw_len(ids) != n || gw_len(first) != n) {
        PyErr_Format(PyExc_ValueError, "ids and first: expected %zd elements (the rows of words), got %zd and %zd", n,
                     gw_len(ids), gw_len(first));
        goto fail;
    }
    if (k < 1 && n > 0) {
        PyErr_SetString(PyExc_ValueError, "words: no key words");
        goto fail;
    }
    int64_t groups;
    Py_BEGIN_ALLOW_THREADS
    groups = hash_groups((const uint64_t *)words->buf, k, n, (int64_t *)ids->buf, (int64_t *)first->buf);
    Py_END_ALLOW_THREADS
    release(views, held);
    if (groups == -2) return PyErr_NoMemory();
    if (groups == -1) return Py_BuildValue("(LO)", (long long)0, Py_False);
    return Py_BuildValue("(LO)", (long long)groups, Py_True);
fail:
    release(views, held);
    return NULL;
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
    if (typed_view(ids_object, &views[held], 8, 0, SIGNED, "ids") != 0) goto fail;
    held++;
    if (typed_view(order_object, &views[held], 8, 1, SIGNED, "order") != 0) goto fail;
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
    release(views, held);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "ids: a group outside 0 to %lld", n_groups - 1);
        return NULL;
    }
    Py_RETURN_NONE;
fail:
    release(views, held);
    return NULL;
}

/* ---------------------------------------------------------------- leg pairing */

/* Pair legs ``rows`` (m of them, grouped by key, in capture order within a key; each a leg below n, checked
 * before): each egress takes the oldest unpaired ingress of its key within the window.  ``queue`` has m
 * elements. */
static void pair_fifo(const int64_t *rows, const uint8_t *same_as_previous, Py_ssize_t m, Py_ssize_t n,
                      const uint8_t *is_ingress, const int64_t *ts, int64_t window_ns, int64_t *peer, uint8_t *ambiguous,
                      int64_t *queue) {
    Py_ssize_t head = 0, tail = 0;
    for (Py_ssize_t k = 0; k < m; k++) {
        int64_t i = rows[k];
        if ((uint64_t)i >= (uint64_t)n) continue;  /* checked before; only if rows changed meanwhile */
        if (!same_as_previous[k]) head = tail = 0;
        if (peer[i] != NO_PEER) continue;  /* paired by an earlier pass */
        if (is_ingress[i]) {
            queue[tail++] = i;
            continue;
        }
        /* Differences wrap, as int64 arithmetic does in numpy. */
        while (head < tail && (int64_t)((uint64_t)ts[i] - (uint64_t)ts[queue[head]]) > window_ns) head++;
        if (head < tail) {
            int64_t j = queue[head];
            peer[i] = j;
            peer[j] = i;
            if (tail - head > 1) {
                ambiguous[i] = 1;
                ambiguous[j] = 1;
            }
            head++;
        }
    }
}

PyDoc_STRVAR(pair_fifo_doc,
"pair_fifo(rows, same_as_previous, is_ingress, ts, window_ns, peer, ambiguous)\n\n"
"Pair legs ``rows`` (int64, grouped by key, in capture order within a key; ``same_as_previous``, bool per\n"
"row: its key equals the previous row's): each egress takes the oldest unpaired ingress of its key.\n"
"``is_ingress`` (bool), ``ts`` (int64), ``peer`` (int64, written) and ``ambiguous`` (bool, written) are\n"
"indexed by leg; legs already paired (peer not -1) are skipped, and ingress older than ``window_ns`` when an\n"
"egress arrives is left unpaired.  ValueError if a row is not a leg.");

static PyObject *py_pair_fifo(PyObject *self, PyObject *args) {
    PyObject *rows_object, *same_object, *ingress_object, *ts_object, *peer_object, *ambiguous_object;
    long long window_ns;
    if (!PyArg_ParseTuple(args, "OOOOLOO:pair_fifo", &rows_object, &same_object, &ingress_object, &ts_object, &window_ns,
                          &peer_object, &ambiguous_object))
        return NULL;
    Py_buffer views[6];
    int held = 0;
    if (typed_view(rows_object, &views[held], 8, 0, SIGNED, "rows") != 0) goto fail;
    held++;
    if (typed_view(same_object, &views[held], 1, 0, BYTES, "same_as_previous") != 0) goto fail;
    held++;
    if (typed_view(ingress_object, &views[held], 1, 0, BYTES, "is_ingress") != 0) goto fail;
    held++;
    if (typed_view(ts_object, &views[held], 8, 0, SIGNED, "ts") != 0) goto fail;
    held++;
    if (typed_view(peer_object, &views[held], 8, 1, SIGNED, "peer") != 0) goto fail;
    held++;
    if (typed_view(ambiguous_object, &views[held], 1, 1, BOOL, "ambiguous") != 0) goto fail;
    held++;
    Py_buffer *rows = &views[0], *same = &views[1], *ingress = &views[2], *ts = &views[3], *peer = &views[4],
              *ambiguous = &views[5];
    Py_ssize_t m = gw_len(rows), n = gw_len(peer);
    if (gw_len(same) != m) {
        PyErr_Format(PyExc_ValueError, "same_as_previous: expected %zd elements (as rows), got %zd", m, gw_len(same));
        goto fail;
    }
    if (gw_len(ingress) != n || gw_len(ts) != n || gw_len(ambiguous) != n) {
        PyErr_Format(PyExc_ValueError, "is_ingress, ts, ambiguous: expected %zd elements (as peer), got %zd, %zd, %zd", n,
                     gw_len(ingress), gw_len(ts), gw_len(ambiguous));
        goto fail;
    }
    const int64_t *row = (const int64_t *)rows->buf;
    Py_ssize_t bad = -1;
    int64_t *queue = malloc((size_t)(m > 0 ? m : 1) * sizeof(int64_t));
    if (queue == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < m && bad < 0; k++)  /* every row a leg, before anything is written */
        if (row[k] < 0 || row[k] >= n) bad = k;
    if (bad < 0)
        pair_fifo(row, (const uint8_t *)same->buf, m, n, (const uint8_t *)ingress->buf, (const int64_t *)ts->buf, window_ns,
                  (int64_t *)peer->buf, (uint8_t *)ambiguous->buf, queue);
    Py_END_ALLOW_THREADS
    free(queue);
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "rows[%zd]: %lld is not a leg (0 to %zd)", bad, (long long)row[bad], n - 1);
        goto fail;
    }
    release(views, held);
    Py_RETURN_NONE;
fail:
    release(views, held);
    return NULL;
}

/* ---------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"hash_groups", py_hash_groups, METH_VARARGS, hash_groups_doc},
    {"counting_order", py_counting_order, METH_VARARGS, counting_order_doc},
    {"pair_fifo", py_pair_fifo, METH_VARARGS, pair_fifo_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "The table kernels: hash grouping, a counting sort by group, and FIFO pairing of legs.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
