/* RAW10 (Android ImageFormat.RAW10 / MIPI CSI-2 RAW10) unpack and pack kernels for station.raw10.
 *
 * Four pixels in five bytes: bytes 0-3 hold P0..P3[9:2], byte 4 holds P3[1:0]<<6|P2<<4|P1<<2|P0.
 * The Python side (station/raw10.py) checks every size, stride and dtype before calling in; here the
 * buffers are taken as given. Up to MAX_THREADS POSIX threads, the GIL released, take bands of ROWS_PER_TAKE rows
 * from a shared counter until none is left, so a thread the scheduler holds back (a loaded machine) leaves its
 * share to the others rather than making every one wait for it.
 * Built by setup.py as an optional extension: without a C compiler station.raw10 falls back to numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <tmmintrin.h>
#define HAVE_SSSE3_PATH 1
#endif

#define MAX_THREADS 8
/* 8 MB of an 8192-wide uint16 frame (12 bands of a 50 MP one): on a quiet machine as fast as fixed halves (the
 * unpack at 0.93-1.0 times np.copy's time; 128-row bands gave 0.98-1.27), and a held-back thread's bands still
 * go to the others */
#define ROWS_PER_TAKE 512

typedef struct {
    const uint8_t *src;
    uint16_t *dst;
    Py_ssize_t width, stride, height;
    Py_ssize_t *next_row; /* shared by every job of a call: the first row no thread has taken yet */
    int bad; /* pack: a code above 1023 was seen */
} job_t;

/* The next band [*row0, *row1) of rows for this job; 0 when every row is taken. */
static int take_rows(job_t *j, Py_ssize_t *row0, Py_ssize_t *row1) {
    *row0 = __atomic_fetch_add(j->next_row, ROWS_PER_TAKE, __ATOMIC_RELAXED);
    if (*row0 >= j->height) return 0;
    *row1 = *row0 + ROWS_PER_TAKE < j->height ? *row0 + ROWS_PER_TAKE : j->height;
    return 1;
}

/* One group from its 8-byte little-endian word (the group's 5 bytes and 3 of the next): the four high
 * bytes spread into the four 16-bit lanes, the low bit pairs spread by one multiply. */
static inline uint64_t unpack_word(uint64_t x) {
    uint64_t lo = ((x >> 32) & 0xFF) * (1ull + (1ull << 14) + (1ull << 28) + (1ull << 42));
    lo &= 0x0003000300030003ull;                    /* lane k: (b4 >> 2k) & 3 */
    x &= 0xFFFFFFFFull;
    x = (x | (x << 16)) & 0x0000FFFF0000FFFFull;  /* b0 b1 at bits 0-15, b2 b3 at 32-47 */
    x = (x | (x << 8)) & 0x00FF00FF00FF00FFull;   /* lane k: b_k */
    return (x << 2) | lo;
}

/* One group straight from the spec. */
static inline void unpack_bytes(const uint8_t *s, uint16_t *d) {
    const unsigned lo = s[4];
    d[0] = (uint16_t)((s[0] << 2) | (lo & 3));
    d[1] = (uint16_t)((s[1] << 2) | ((lo >> 2) & 3));
    d[2] = (uint16_t)((s[2] << 2) | ((lo >> 4) & 3));
    d[3] = (uint16_t)((s[3] << 2) | (lo >> 6));
}

#ifdef HAVE_SSSE3_PATH
/* Two groups (10 bytes -> 8 pixels) per step with SSSE3 byte shuffles; only on CPUs that have it (checked at
 * run time). The high bytes go to the low byte of each 16-bit lane and are shifted up by 2; each group's fifth
 * byte is copied into its four lanes and multiplied by 64, 16, 4, 1 so that lane k's bit pair lands at bits
 * 6-7, then shifted down by 6 and masked. A 16-byte load reads 6 bytes past the pair: only while they are in
 * the row; the rest of the row goes through the word path. Returns the groups done. */
__attribute__((target("ssse3"))) static Py_ssize_t unpack_pairs_ssse3(const uint8_t *s, uint16_t *d,
                                                                      Py_ssize_t groups) {
    const __m128i hi_shuf = _mm_setr_epi8(0, -1, 1, -1, 2, -1, 3, -1, 5, -1, 6, -1, 7, -1, 8, -1);
    const __m128i lo_shuf = _mm_setr_epi8(4, -1, 4, -1, 4, -1, 4, -1, 9, -1, 9, -1, 9, -1, 9, -1);
    const __m128i lo_mul = _mm_setr_epi16(64, 16, 4, 1, 64, 16, 4, 1);
    const __m128i three = _mm_set1_epi16(3);
    const Py_ssize_t row_bytes = groups * 5;
    Py_ssize_t g = 0;
    if (((uintptr_t)d & 15) == 0) { /* aligned rows: streaming stores, the output is not read back soon */
        for (; g * 5 + 16 <= row_bytes; g += 2, s += 10, d += 8) {
            const __m128i v = _mm_loadu_si128((const __m128i *)s);
            const __m128i hi = _mm_slli_epi16(_mm_shuffle_epi8(v, hi_shuf), 2);
            __m128i lo = _mm_mullo_epi16(_mm_shuffle_epi8(v, lo_shuf), lo_mul);
            lo = _mm_and_si128(_mm_srli_epi16(lo, 6), three);
            _mm_stream_si128((__m128i *)d, _mm_or_si128(hi, lo));
        }
        _mm_sfence();
        return g;
    }
    for (; g * 5 + 16 <= row_bytes; g += 2, s += 10, d += 8) {
        const __m128i v = _mm_loadu_si128((const __m128i *)s);
        const __m128i hi = _mm_slli_epi16(_mm_shuffle_epi8(v, hi_shuf), 2);
        __m128i lo = _mm_mullo_epi16(_mm_shuffle_epi8(v, lo_shuf), lo_mul);
        lo = _mm_and_si128(_mm_srli_epi16(lo, 6), three);
        _mm_storeu_si128((__m128i *)d, _mm_or_si128(hi, lo));
    }
    return g;
}
#endif

static int use_ssse3 = 0;

static void unpack_row(const uint8_t *s, uint16_t *d, Py_ssize_t groups) {
    Py_ssize_t g = 0;
#ifdef HAVE_SSSE3_PATH
    if (use_ssse3) {
        g = unpack_pairs_ssse3(s, d, groups);
        s += g * 5;
        d += g * 4;
    }
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; g + 1 < groups; g++, s += 5, d += 4) { /* the next group's bytes are in the row */
        uint64_t x;
        memcpy(&x, s, 8);
        x = unpack_word(x);
        memcpy(d, &x, 8);
    }
#endif
    for (; g + 1 < groups; g++, s += 5, d += 4) unpack_bytes(s, d);
    unpack_bytes(s, d); /* the row's last group: byte by byte, never past its 5 bytes */
}

static void unpack_rows(job_t *j) {
    Py_ssize_t row0, row1;
    while (take_rows(j, &row0, &row1))
        for (Py_ssize_t r = row0; r < row1; r++)
            unpack_row(j->src + r * j->stride, j->dst + r * j->width, j->width / 4);
}

static void pack_rows(job_t *j) {
    const Py_ssize_t groups = j->width / 4;
    const Py_ssize_t row_bytes = groups * 5;
    unsigned any = 0;
    Py_ssize_t row0, row1;
    while (take_rows(j, &row0, &row1)) for (Py_ssize_t r = row0; r < row1; r++) {
        const uint16_t *s = j->dst + r * j->width; /* dst is the uint16 side for both directions */
        uint8_t *d = (uint8_t *)j->src + r * j->stride;
        for (Py_ssize_t g = 0; g < groups; g++, s += 4, d += 5) {
            const unsigned p0 = s[0], p1 = s[1], p2 = s[2], p3 = s[3];
            any |= p0 | p1 | p2 | p3;
            d[0] = (uint8_t)(p0 >> 2);
            d[1] = (uint8_t)(p1 >> 2);
            d[2] = (uint8_t)(p2 >> 2);
            d[3] = (uint8_t)(p3 >> 2);
            d[4] = (uint8_t)((p0 & 3) | ((p1 & 3) << 2) | ((p2 & 3) << 4) | ((p3 & 3) << 6));
        }
        memset(d, 0, (size_t)(j->stride - row_bytes));
    }
    j->bad = (any & ~1023u) != 0;
}

static void *run_unpack(void *arg) { unpack_rows((job_t *)arg); return NULL; }
static void *run_pack(void *arg) { pack_rows((job_t *)arg); return NULL; }

/* Run `fn` on `threads` jobs sharing one row counter over [0, height); returns 1 if any job set bad. */
static int run_jobs(void *(*fn)(void *), const uint8_t *bytes, uint16_t *pixels, Py_ssize_t width,
                    Py_ssize_t stride, Py_ssize_t height, int threads) {
    job_t jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    Py_ssize_t next_row = 0;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > height) threads = (int)height;
    for (int t = 0; t < threads; t++) {
        jobs[t].src = bytes;
        jobs[t].dst = pixels;
        jobs[t].width = width;
        jobs[t].stride = stride;
        jobs[t].height = height;
        jobs[t].next_row = &next_row;
        jobs[t].bad = 0;
    }
    Py_BEGIN_ALLOW_THREADS
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, fn, &jobs[t]) == 0;
    fn(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tids[t], NULL);
        else fn(&jobs[t]); /* no thread to be had: the rows are taken already, or taken here */
    }
    Py_END_ALLOW_THREADS
    int bad = 0;
    for (int t = 0; t < threads; t++) bad |= jobs[t].bad;
    return bad;
}

/* unpack(src, dst, width, height, stride, threads): src bytes-like, dst writable uint16 C buffer.
 * The last row needs only width*5/4 bytes (Android plane buffers end at the last pixel). */
static PyObject *unpack(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    Py_ssize_t width, height, stride;
    int threads;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*nnni", &src, &dst, &width, &height, &stride, &threads)) return NULL;
    PyObject *result = NULL;
    if (width < 4 || width % 4 || height < 1 || stride < width / 4 * 5
        || src.len < (height - 1) * stride + width / 4 * 5 || dst.len < height * width * 2) {
        PyErr_SetString(PyExc_ValueError, "raw10 unpack: buffer sizes do not match the frame");
    } else {
        run_jobs(run_unpack, (const uint8_t *)src.buf, (uint16_t *)dst.buf, width, stride, height, threads);
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

/* pack(src, width, height, stride, threads) -> bytes of height*stride (padding zeroed), or None when a
 * code is above 1023. src: uint16 C buffer of height*width codes. */
static PyObject *pack(PyObject *self, PyObject *args) {
    Py_buffer src;
    Py_ssize_t width, height, stride;
    int threads;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnni", &src, &width, &height, &stride, &threads)) return NULL;
    PyObject *result = NULL;
    if (width < 4 || width % 4 || height < 1 || stride < width / 4 * 5 || src.len < height * width * 2) {
        PyErr_SetString(PyExc_ValueError, "raw10 pack: buffer sizes do not match the frame");
    } else if ((result = PyBytes_FromStringAndSize(NULL, height * stride)) != NULL) {
        int bad = run_jobs(run_pack, (const uint8_t *)PyBytes_AS_STRING(result), (uint16_t *)src.buf, width,
                           stride, height, threads);
        if (bad) Py_SETREF(result, Py_NewRef(Py_None));
    }
    PyBuffer_Release(&src);
    return result;
}

static PyMethodDef methods[] = {
    {"unpack", unpack, METH_VARARGS, "unpack(src, dst, width, height, stride, threads): RAW10 -> uint16"},
    {"pack", pack, METH_VARARGS, "pack(src, width, height, stride, threads) -> bytes, or None if a code > 1023"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_raw10", "RAW10 kernels (C)", -1, methods};

PyMODINIT_FUNC PyInit__raw10(void) {
#ifdef HAVE_SSSE3_PATH
    __builtin_cpu_init();
    use_ssse3 = __builtin_cpu_supports("ssse3");
#endif
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "SIMD", use_ssse3 ? "ssse3" : "none") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
