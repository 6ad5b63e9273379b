/* e-SFR per-edge kernels for calibration.sfr (ISO 12233:2023 e-SFR; the maths is calibration/sfr.py's).
 *
 * Each kernel does in one pass what calibration/sfr.py's numpy reference does in tens of array calls:
 * orientation, levels and noise of an ROI (prep), the windowed per-row derivative centroids (centroids),
 * the projection of the pixels into the super-sampled ESF bins (project). The Python side checks every
 * shape and dtype (C-contiguous float64 buffers) before calling in; here the buffers are taken as given.
 * Built by setup.py as an optional extension: without a C compiler calibration.sfr runs its numpy path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Upper median (element n/2 in sorted order, as np.partition(x, n // 2)[n // 2]); reorders x. */
static double select_kth(double *x, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1;
    while (hi > lo) {
        double pivot = x[lo + (hi - lo) / 2];
        Py_ssize_t i = lo, j = hi;
        while (i <= j) {
            while (x[i] < pivot) i++;
            while (x[j] > pivot) j--;
            if (i <= j) {
                double t = x[i];
                x[i] = x[j];
                x[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return x[k];
}

static double band_mean(const double *a, Py_ssize_t rs, Py_ssize_t cs, Py_ssize_t r0, Py_ssize_t r1,
                        Py_ssize_t c0, Py_ssize_t c1) {
    double s = 0.0;
    for (Py_ssize_t r = r0; r < r1; r++)
        for (Py_ssize_t c = c0; c < c1; c++) s += a[r * rs + c * cs];
    return s / (double)((r1 - r0) * (c1 - c0));
}

/* prep(src, h, w, dst) -> (transposed, negated, left, right, noise, scale), None when a value is not finite.
 * src: (h, w) C float64. dst: h*w float64, receives the ROI turned so the edge runs down the rows and
 * negated when its left side is the lighter (dark-to-light), C order (nlin, npix). left/right are the
 * plateau levels after that (sfr.py: median over rows of the mean of the outer eighth of columns). */
static PyObject *prep(PyObject *self, PyObject *args) {
    Py_buffer src, dst;
    Py_ssize_t h, w;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnw*", &src, &h, &w, &dst)) return NULL;
    PyObject *result = NULL;
    double *tmp = NULL;
    if (h < 2 || w < 2 || src.len < h * w * 8 || dst.len < h * w * 8) {
        PyErr_SetString(PyExc_ValueError, "sfr prep: buffer sizes do not match the ROI");
        goto done;
    }
    const double *a = (const double *)src.buf;
    double *out = (double *)dst.buf;
    double scale = 0.0;
    for (Py_ssize_t i = 0; i < h * w; i++) {
        double v = a[i];
        if (!isfinite(v)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        double av = fabs(v);
        if (av > scale) scale = av;
    }
    Py_ssize_t kx = w / 8 > 1 ? w / 8 : 1, ky = h / 8 > 1 ? h / 8 : 1;
    double step_x = fabs(band_mean(a, w, 1, 0, h, w - kx, w) - band_mean(a, w, 1, 0, h, 0, kx));
    double step_y = fabs(band_mean(a, w, 1, h - ky, h, 0, w) - band_mean(a, w, 1, 0, ky, 0, w));
    int transposed = step_y > step_x;
    /* the oriented view: element (r, c) at a[r * rs + c * cs] */
    Py_ssize_t nlin = transposed ? w : h, npix = transposed ? h : w;
    Py_ssize_t rs = transposed ? 1 : w, cs = transposed ? w : 1;
    Py_ssize_t nmax = nlin > (nlin / 2) * ((npix + 3) / 4) ? nlin : (nlin / 2) * ((npix + 3) / 4);
    tmp = (double *)malloc((size_t)(nmax > 1 ? nmax : 1) * sizeof(double));
    if (tmp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t k = npix / 8 > 1 ? npix / 8 : 1;
    for (Py_ssize_t r = 0; r < nlin; r++) tmp[r] = band_mean(a, rs, cs, r, r + 1, 0, k);
    double left = select_kth(tmp, nlin, nlin / 2);
    for (Py_ssize_t r = 0; r < nlin; r++) tmp[r] = band_mean(a, rs, cs, r, r + 1, npix - k, npix);
    double right = select_kth(tmp, nlin, nlin / 2);
    double sign = 1.0;
    if (left > right) {
        sign = -1.0;
        left = -left;
        right = -right;
    }
    for (Py_ssize_t r = 0; r < nlin; r++)
        for (Py_ssize_t c = 0; c < npix; c++) out[r * npix + c] = sign * a[r * rs + c * cs];
    /* noise: a[1::2, ::4] - a[:-1:2, ::4], MAD -> sigma */
    Py_ssize_t nd = 0;
    for (Py_ssize_t r = 0; r + 1 < nlin; r += 2)
        for (Py_ssize_t c = 0; c < npix; c += 4) tmp[nd++] = fabs(out[(r + 1) * npix + c] - out[r * npix + c]);
    double noise = nd ? 1.4826 * select_kth(tmp, nd, nd / 2) / sqrt(2.0) : 0.0;
    result = Py_BuildValue("(iidddd)", transposed, sign < 0.0, left, right, noise, scale);
done:
    free(tmp);
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

/* The window of calibration.sfr._window at normalised offset u: kind 0 tukey, 1 hamming, 2 none. */
static inline double window_at(double u, int kind, double alpha) {
    double au = fabs(u);
    if (au > 1.0) return 0.0;
    if (kind == 0) {
        double t = (au - (1.0 - alpha)) * (1.0 / (alpha > 1e-12 ? alpha : 1e-12));
        t = t < 0.0 ? 0.0 : (t > 1.0 ? 1.0 : t);
        return (cos(t * M_PI) + 1.0) * 0.5;
    }
    if (kind == 1) return 0.54 + 0.46 * cos(M_PI * au);
    return 1.0;
}

/* centroids(a, nlin, npix, centre_x, half_width, kind, alpha, loc): per-row centroid of the derivative
 * [-0.5, 0.5] under the window about centre_x (calibration.sfr._row_centroids); nan where the weights
 * do not sum above zero. a: (nlin, npix), centre_x and loc: nlin float64. */
static PyObject *centroids(PyObject *self, PyObject *args) {
    Py_buffer src, cx, dst;
    Py_ssize_t nlin, npix;
    double half_width, alpha;
    int kind;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*didw*", &src, &nlin, &npix, &cx, &half_width, &kind, &alpha, &dst))
        return NULL;
    PyObject *result = NULL;
    if (nlin < 1 || npix < 2 || src.len < nlin * npix * 8 || cx.len < nlin * 8 || dst.len < nlin * 8
        || !(half_width > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "sfr centroids: buffer sizes do not match the ROI");
    } else {
        const double *a = (const double *)src.buf, *centre = (const double *)cx.buf;
        double *loc = (double *)dst.buf;
        Py_ssize_t width = 2 * (Py_ssize_t)ceil(half_width) + 3;
        if (width > npix) width = npix;
        const double inv_hw = 1.0 / half_width;
        for (Py_ssize_t r = 0; r < nlin; r++) {
            Py_ssize_t start = (Py_ssize_t)nearbyint(centre[r]) - width / 2;
            if (start > npix - width) start = npix - width;
            if (start < 0) start = 0;
            const double *row = a + r * npix + start;
            double total = 0.0, moment = 0.0;
            for (Py_ssize_t j = 0; j + 1 < width; j++) {
                double x = ((double)start + 0.5) + (double)j;
                double u = (x - centre[r]) * inv_hw;
                double wt = window_at(u, kind, alpha);
                if (kind == 0) wt = wt <= 0.0 ? 0.0 : wt * 0.95 + 0.05; /* sfrmat5: keeps the location stable */
                double dw = (row[j + 1] - row[j]) * wt;
                total += dw;
                moment += dw * x;
            }
            loc[r] = total > 0.0 ? moment / total : NAN;
        }
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&cx);
    PyBuffer_Release(&dst);
    return result;
}

/* project(a, nlin, npix, row0, row_step, rows, edge_x, oversample, nbin, counts, sums, where_or_None):
 * rows row0, row0 + row_step, ... (`rows` of them) of a (nlin, npix) into bins of 1/oversample px of
 * x-distance to the edge; bin j holds [(j - nbin/2), (j + 1 - nbin/2)) / oversample (sfr._project).
 * edge_x holds the edge's x for every row of a (nlin values). counts int64, sums and where float64, nbin each, zeroed here. */
static PyObject *project(PyObject *self, PyObject *args) {
    Py_buffer src, ex, cnt, sm;
    PyObject *where_obj;
    Py_ssize_t nlin, npix, row0, row_step, rows, oversample, nbin;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnnny*nnw*w*O", &src, &nlin, &npix, &row0, &row_step, &rows, &ex,
                          &oversample, &nbin, &cnt, &sm, &where_obj))
        return NULL;
    PyObject *result = NULL;
    Py_buffer wh = {0};
    int have_where = where_obj != Py_None;
    if (have_where && PyObject_GetBuffer(where_obj, &wh, PyBUF_WRITABLE) < 0) goto done;
    if (rows < 1 || row_step < 1 || row0 < 0 || row0 + (rows - 1) * row_step >= nlin || oversample < 1
        || src.len < nlin * npix * 8 || ex.len < nlin * 8 || cnt.len < nbin * 8 || sm.len < nbin * 8
        || (have_where && wh.len < nbin * 8)) {
        PyErr_SetString(PyExc_ValueError, "sfr project: buffer sizes do not match the ROI");
        goto done;
    }
    const double *a = (const double *)src.buf, *edge = (const double *)ex.buf;
    long long *counts = (long long *)cnt.buf;
    double *sums = (double *)sm.buf, *where = have_where ? (double *)wh.buf : NULL;
    memset(counts, 0, (size_t)nbin * sizeof(long long));
    memset(sums, 0, (size_t)nbin * sizeof(double));
    if (where) memset(where, 0, (size_t)nbin * sizeof(double));
    const double os = (double)oversample;
    const Py_ssize_t half = nbin / 2;
    for (Py_ssize_t i = 0; i < rows; i++) {
        const Py_ssize_t r = row0 + i * row_step;
        const double scaled = (-edge[r]) * os;
        const double fl = floor(scaled);
        const double frac = scaled - fl;
        const Py_ssize_t j0 = (Py_ssize_t)fl + half;
        const double *row = a + r * npix;
        /* columns whose bin j0 + c * oversample lies in [0, nbin) */
        Py_ssize_t c0 = j0 >= 0 ? 0 : (-j0 + oversample - 1) / oversample;
        Py_ssize_t c1 = j0 >= nbin ? 0 : (nbin - 1 - j0) / oversample + 1;
        if (c1 > npix) c1 = npix;
        for (Py_ssize_t c = c0; c < c1; c++) {
            Py_ssize_t j = j0 + c * oversample;
            counts[j] += 1;
            sums[j] += row[c];
            if (where) where[j] += frac;
        }
    }
    result = Py_NewRef(Py_None);
done:
    if (have_where && wh.obj) PyBuffer_Release(&wh);
    PyBuffer_Release(&src);
    PyBuffer_Release(&ex);
    PyBuffer_Release(&cnt);
    PyBuffer_Release(&sm);
    return result;
}

static PyMethodDef methods[] = {
    {"prep", prep, METH_VARARGS, "prep(src, h, w, dst) -> (transposed, negated, left, right, noise, scale) or None"},
    {"centroids", centroids, METH_VARARGS,
     "centroids(a, nlin, npix, centre_x, half_width, kind, alpha, loc): windowed row centroids"},
    {"project", project, METH_VARARGS,
     "project(a, nlin, npix, row0, row_step, rows, edge_x, oversample, nbin, counts, sums, where): ESF bins"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sfrk", "e-SFR kernels (C)", -1, methods};

PyMODINIT_FUNC PyInit__sfrk(void) { return PyModule_Create(&module); }
