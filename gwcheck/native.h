/* Shared by gwcheck's C kernels: byte readers and the checked views of the arrays Python passes in.
 *
 * Readers take a byte pointer; callers check bounds first.  Arrays arrive through the buffer protocol
 * (numpy arrays, bytes, mmap): gw_view checks that each is C-contiguous with the element size the kernel
 * expects, so a wrong dtype is a TypeError, never a misread.
 */
#ifndef GWCHECK_NATIVE_H
#define GWCHECK_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t gw_u16be(const uint8_t *p) { return ((uint64_t)p[0] << 8) | p[1]; }
static inline uint64_t gw_u32be(const uint8_t *p) {
    return ((uint64_t)p[0] << 24) | ((uint64_t)p[1] << 16) | ((uint64_t)p[2] << 8) | p[3];
}
static inline uint64_t gw_u64be(const uint8_t *p) { return (gw_u32be(p) << 32) | gw_u32be(p + 4); }
static inline uint64_t gw_u16le(const uint8_t *p) { return ((uint64_t)p[1] << 8) | p[0]; }
static inline uint64_t gw_u32le(const uint8_t *p) {
    return ((uint64_t)p[3] << 24) | ((uint64_t)p[2] << 16) | ((uint64_t)p[1] << 8) | p[0];
}
static inline uint64_t gw_u64le(const uint8_t *p) { return (gw_u32le(p + 4) << 32) | gw_u32le(p); }
static inline uint64_t gw_u16(const uint8_t *p, int big_endian) { return big_endian ? gw_u16be(p) : gw_u16le(p); }
static inline uint64_t gw_u32(const uint8_t *p, int big_endian) { return big_endian ? gw_u32be(p) : gw_u32le(p); }
static inline uint64_t gw_u64(const uint8_t *p, int big_endian) { return big_endian ? gw_u64be(p) : gw_u64le(p); }

/* A Python object's buffer, checked: C-contiguous, element size ``itemsize``, writable when asked.
 * On success fills ``view`` (release it with PyBuffer_Release) and returns 0; else sets TypeError and returns -1.
 * ``what`` names the argument in the message. */
static inline int gw_view(PyObject *object, Py_buffer *view, Py_ssize_t itemsize, int writable, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) != 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous%s array", what, writable ? " writable" : "");
        return -1;
    }
    if (view->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd-byte elements, got %zd", what, itemsize, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The buffer-protocol formats (the struct module's characters) of each element type gwcheck passes to C; the size is
 * checked apart, so 'L' (unsigned long) passes as uint32 or uint64 only where it has that size. */
#define GW_FORMAT_U8 "B"
#define GW_FORMAT_BOOL "?"
#define GW_FORMAT_U16 "H"
#define GW_FORMAT_U32 "IL"
#define GW_FORMAT_U64 "QL"
#define GW_FORMAT_I64 "ql"

/* Whether a buffer's ``format`` is a single element of one of the ``formats`` characters, in native byte order. */
static inline int gw_format_is(const char *format, const char *formats) {
    if (format == NULL) format = "B";
#if PY_LITTLE_ENDIAN
    if (*format == '@' || *format == '=' || *format == '<') format++;
#else
    if (*format == '@' || *format == '=' || *format == '>' || *format == '!') format++;
#endif
    return format[0] != '\0' && format[1] == '\0' && strchr(formats, format[0]) != NULL;
}

/* gw_view that also checks the elements' type (``formats``, e.g. GW_FORMAT_I64) and native byte order, so that
 * int64 is never read as float64 of the same size, nor a big-endian array as a native one. */
static inline int gw_typed_view(PyObject *object, Py_buffer *view, Py_ssize_t itemsize, const char *formats, int writable,
                                const char *what) {
    if (gw_view(object, view, itemsize, writable, what) != 0) return -1;
    if (!gw_format_is(view->format, formats)) {
        PyErr_Format(PyExc_TypeError, "%s: expected elements of format '%s' (native byte order), got '%s'", what, formats,
                     view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Release the first ``count`` of ``views``: the ones taken so far, on any path out of a kernel's wrapper. */
static inline void gw_release(Py_buffer *views, int count) {
    for (int i = 0; i < count; i++) PyBuffer_Release(&views[i]);
}

/* Elements in a checked view. */
static inline Py_ssize_t gw_len(const Py_buffer *view) { return view->len / view->itemsize; }

#endif
