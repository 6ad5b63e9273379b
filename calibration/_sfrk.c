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
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Element k of x in sorted order (as np.partition(x, k)[k]); reorders x. Hoare quickselect, middle pivot. */
static double quickselect(double *x, Py_ssize_t n, Py_ssize_t k) {
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

static int cmp_double(const void *p, const void *q) {
    double a = *(const double *)p, b = *(const double *)q;
    return (a > b) - (a < b);
}

/* select_kth: the same element, for large n mostly in one branch-free pass (Floyd-Rivest's idea): two
 * bounds from a sorted sample bracket rank k, the values between them are gathered and only they are
 * selected among; when the bracket misses (rare), the full quickselect (which reorders x). */
static double select_kth(double *x, Py_ssize_t n, Py_ssize_t k) {
    enum { SAMPLE = 63 };
    if (n < 512) return quickselect(x, n, k);
    double sample[SAMPLE];
    for (int s = 0; s < SAMPLE; s++) sample[s] = x[(Py_ssize_t)((2 * (long long)s + 1) * n / (2 * SAMPLE))];
    qsort(sample, SAMPLE, sizeof(double), cmp_double);
    int at = (int)((double)k / (double)n * SAMPLE);
    int margin = 4;
    double lo = sample[at - margin < 0 ? 0 : at - margin], hi = sample[at + margin >= SAMPLE ? SAMPLE - 1 : at + margin];
    Py_ssize_t below = 0, mid = 0;
    double *buf = (double *)malloc((size_t)n * sizeof(double));
    if (buf == NULL) return quickselect(x, n, k);
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = x[i];
        below += v < lo;
        buf[mid] = v;
        mid += (v >= lo) & (v <= hi);
    }
    double out;
    if (k >= below && k < below + mid) out = quickselect(buf, mid, k - below);
    else out = quickselect(x, n, k);
    free(buf);
    return out;
}

/* prep(src, h, w, dst, row_sums) -> (transposed, negated, left, right, noise, scale), None when a value is not
 * finite. src: (h, w) C float64. dst: h*w float64, receives the ROI turned so the edge runs down the rows and
 * negated when its left side is the lighter (dark-to-light), C order (nlin, npix); row_sums: the nlin sums of
 * dst's rows. left/right are the plateau levels after that (sfr.py: median over rows of the mean of the outer
 * eighth of columns). One pass over src gathers the outer bands of both orientations. */
static PyObject *prep(PyObject *self, PyObject *args) {
    Py_buffer src, dst, rsb;
    Py_ssize_t h, w;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnw*w*", &src, &h, &w, &dst, &rsb)) return NULL;
    PyObject *result = NULL;
    double *tmp = NULL;
    if (h < 2 || w < 2 || src.len < h * w * 8 || dst.len < h * w * 8 || rsb.len < (h > w ? h : w) * 8) {
        PyErr_SetString(PyExc_ValueError, "sfr prep: buffer sizes do not match the ROI");
        goto done;
    }
    const double *a = (const double *)src.buf;
    double *out = (double *)dst.buf, *row_sums = (double *)rsb.buf;
    const Py_ssize_t kx = w / 8 > 1 ? w / 8 : 1, ky = h / 8 > 1 ? h / 8 : 1;
    /* band sums: per row over the first/last kx columns, per column over the first/last ky rows */
    tmp = (double *)calloc((size_t)(2 * h + 2 * w + h * w / 2 + 8), sizeof(double));
    if (tmp == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *row_l = tmp, *row_r = tmp + h, *col_t = tmp + 2 * h, *col_b = tmp + 2 * h + w, *work = tmp + 2 * h + 2 * w;
    double smax[4] = {0.0, 0.0, 0.0, 0.0};
    int bad = 0;
    for (Py_ssize_t r = 0; r < h; r++) {
        const double *row = a + r * w;
        double sl = 0.0, sr = 0.0;
        for (Py_ssize_t c = 0; c < kx; c++) sl += row[c];
        for (Py_ssize_t c = w - kx; c < w; c++) sr += row[c];
        row_l[r] = sl;
        row_r[r] = sr;
        if (r < ky)
            for (Py_ssize_t c = 0; c < w; c++) col_t[c] += row[c];
        if (r >= h - ky)
            for (Py_ssize_t c = 0; c < w; c++) col_b[c] += row[c];
        Py_ssize_t c = 0;
#ifdef __SSE2__
        /* |v| max two lanes at a time; v - v is 0 for a finite v, nan otherwise: summed, it flags any */
        __m128d m0 = _mm_setzero_pd(), m1 = _mm_setzero_pd(), nan0 = _mm_setzero_pd();
        const __m128d abs_mask = _mm_castsi128_pd(_mm_set1_epi64x(0x7fffffffffffffffLL));
        for (; c + 4 <= w; c += 4) {
            __m128d v0 = _mm_loadu_pd(row + c), v1 = _mm_loadu_pd(row + c + 2);
            nan0 = _mm_add_pd(nan0, _mm_add_pd(_mm_sub_pd(v0, v0), _mm_sub_pd(v1, v1)));
            m0 = _mm_max_pd(m0, _mm_and_pd(v0, abs_mask));
            m1 = _mm_max_pd(m1, _mm_and_pd(v1, abs_mask));
        }
        double lanes[6];
        _mm_storeu_pd(lanes, m0);
        _mm_storeu_pd(lanes + 2, m1);
        _mm_storeu_pd(lanes + 4, nan0);
        for (int l = 0; l < 4; l++) smax[l] = lanes[l] > smax[l] ? lanes[l] : smax[l];
        bad |= !(lanes[4] == 0.0 && lanes[5] == 0.0);
#endif
        for (; c < w; c++) {
            double av = fabs(row[c]);
            bad |= !(av <= DBL_MAX);
            smax[0] = av > smax[0] ? av : smax[0];
        }
    }
    if (bad) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    double scale = smax[0];
    for (int l = 1; l < 4; l++) scale = smax[l] > scale ? smax[l] : scale;
    double sxl = 0.0, sxr = 0.0, syt = 0.0, syb = 0.0;
    for (Py_ssize_t r = 0; r < h; r++) {
        sxl += row_l[r];
        sxr += row_r[r];
    }
    for (Py_ssize_t c = 0; c < w; c++) {
        syt += col_t[c];
        syb += col_b[c];
    }
    double step_x = fabs(sxr / (double)(h * kx) - sxl / (double)(h * kx));
    double step_y = fabs(syb / (double)(w * ky) - syt / (double)(w * ky));
    const int transposed = step_y > step_x;
    const Py_ssize_t nlin = transposed ? w : h, npix = transposed ? h : w, k = transposed ? ky : kx;
    const double *lsum = transposed ? col_t : row_l, *rsum = transposed ? col_b : row_r;
    for (Py_ssize_t r = 0; r < nlin; r++) work[r] = lsum[r] / (double)k;
    double left = select_kth(work, nlin, nlin / 2);
    for (Py_ssize_t r = 0; r < nlin; r++) work[r] = rsum[r] / (double)k;
    double right = select_kth(work, nlin, nlin / 2);
    const double sign = left > right ? -1.0 : 1.0;
    if (sign < 0.0) {
        left = -left;
        right = -right;
    }
    if (!transposed) {
        for (Py_ssize_t i = 0; i < h * w; i++) out[i] = sign * a[i];
    } else {
        const Py_ssize_t B = 16; /* blocked transpose: both sides stay in cache lines */
        for (Py_ssize_t r0 = 0; r0 < h; r0 += B)
            for (Py_ssize_t c0 = 0; c0 < w; c0 += B) {
                Py_ssize_t r1 = r0 + B < h ? r0 + B : h, c1 = c0 + B < w ? c0 + B : w;
                for (Py_ssize_t c = c0; c < c1; c++)
                    for (Py_ssize_t r = r0; r < r1; r++) out[c * h + r] = sign * a[r * w + c];
            }
    }
    for (Py_ssize_t r = 0; r < nlin; r++) { /* four partial sums: not one long chain of dependent adds */
        const double *row = out + r * npix;
        double s4[4] = {0.0, 0.0, 0.0, 0.0};
        Py_ssize_t c = 0;
        for (; c + 4 <= npix; c += 4)
            for (int l = 0; l < 4; l++) s4[l] += row[c + l];
        for (; c < npix; c++) s4[0] += row[c];
        row_sums[r] = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    }
    /* noise: a[1::2, ::4] - a[:-1:2, ::4], MAD -> sigma */
    Py_ssize_t nd = 0;
    for (Py_ssize_t r = 0; r + 1 < nlin; r += 2)
        for (Py_ssize_t c = 0; c < npix; c += 4) work[nd++] = fabs(out[(r + 1) * npix + c] - out[r * npix + c]);
    double noise = nd ? 1.4826 * select_kth(work, nd, nd / 2) / sqrt(2.0) : 0.0;
    result = Py_BuildValue("(iidddd)", transposed, sign < 0.0, left, right, noise, scale);
done:
    free(tmp);
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&rsb);
    return result;
}

/* The window of calibration.sfr._window at normalised offset u: kind 0 tukey, 1 hamming, 2 none. */
static inline double window_at(double u, int kind, double alpha) {
    double au = fabs(u);
    if (au > 1.0) return 0.0;
    if (kind == 0) {
        double t = (au - (1.0 - alpha)) * (1.0 / (alpha > 1e-12 ? alpha : 1e-12));
        if (t <= 0.0) return 1.0; /* (cos(0) + 1) / 2 */
        if (t >= 1.0) return 0.0; /* (cos(pi) + 1) / 2 */
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
        /* Tukey taper: cos(pi t) with t stepping by a constant along a row, so after the first sample of
         * each taper the cosine comes from a rotation (|error| ~1e-15 over a row), not a libm call */
        const double inv_alpha = 1.0 / (alpha > 1e-12 ? alpha : 1e-12), flat = 1.0 - alpha;
        const double step = M_PI * inv_hw * inv_alpha, cos_step = cos(step), sin_step = sin(step);
        for (Py_ssize_t r = 0; r < nlin; r++) {
            double cr = nearbyint(centre[r]); /* clamped before the cast: a nan or huge centre reads from 0 */
            if (!(cr > -1e15)) cr = -1e15;
            if (cr > 1e15) cr = 1e15;
            Py_ssize_t start = (Py_ssize_t)cr - width / 2;
            if (start > npix - width) start = npix - width;
            if (start < 0) start = 0;
            const double *row = a + r * npix + start;
            double total = 0.0, moment = 0.0, c_prev = 0.0, s_prev = 0.0;
            Py_ssize_t j_prev = -2;
            int side_prev = 0;
            for (Py_ssize_t j = 0; j + 1 < width; j++) {
                double x = ((double)start + 0.5) + (double)j;
                double u = (x - centre[r]) * inv_hw;
                double wt;
                if (kind != 0) {
                    wt = window_at(u, kind, alpha);
                } else {
                    double au = fabs(u), t = (au - flat) * inv_alpha;
                    if (au > 1.0 || t >= 1.0) {
                        wt = 0.0;
                    } else if (t <= 0.0) {
                        wt = 1.0;
                    } else {
                        int side = u > 0.0 ? 1 : -1; /* right: t grows with j; left: t falls */
                        double c, sn;
                        if (j_prev == j - 1 && side_prev == side) {
                            double ds = side > 0 ? sin_step : -sin_step;
                            c = c_prev * cos_step - s_prev * ds;
                            sn = s_prev * cos_step + c_prev * ds;
                        } else {
                            c = cos(t * M_PI);
                            sn = sin(t * M_PI);
                        }
                        c_prev = c;
                        s_prev = sn;
                        j_prev = j;
                        side_prev = side;
                        wt = (c + 1.0) * 0.5;
                    }
                    wt = wt <= 0.0 ? 0.0 : wt * 0.95 + 0.05; /* sfrmat5: keeps the location stable */
                }
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
        if (!(fabs(fl) < 1e15)) continue; /* a nan or far-off edge puts no pixel of this row in a bin */
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


/* ---- the edge fit of calibration/sfr_fit.py (ISO 12233:2023 polynomial, order chosen by F-test) ---- */

#define MAX_ORDER 5
#define OUTLIER_SIGMAS 4.0
#define MIN_OUTLIER_LIMIT_PX 0.05
#define MIN_SAGITTA_PX 0.05

typedef struct {
    const double *ftab; /* F critical values at ALPHA: ftab[dnum * fcols + dden] */
    Py_ssize_t fcols;
} fcrit_t;

static inline double f_crit(const fcrit_t *f, Py_ssize_t dnum, Py_ssize_t dden) {
    if (dden >= f->fcols) dden = f->fcols - 1; /* the table covers every dof the ROI can give */
    return f->ftab[dnum * f->fcols + dden];
}

/* sfr_fit._choose_order: the lowest order k that no higher order j beats by the F-test. */
static int choose_order(const double *rss, Py_ssize_t n, int max_order, const fcrit_t *f) {
    for (int k = 1; k <= max_order; k++) {
        int better = 0;
        for (int j = k + 1; j <= max_order; j++) {
            Py_ssize_t dof = n - j - 1;
            if (dof < 1 || rss[j] <= 0.0) continue;
            if ((rss[k] - rss[j]) / (j - k) > f_crit(f, j - k, dof) * rss[j] / (double)dof) {
                better = 1;
                break;
            }
        }
        if (!better) return k;
    }
    return max_order;
}

/* sfr_fit._fit_kept on the n points (t, x): coef (lowest power first, order+1 of them), the line's slope
 * in t, the bend; returns the order, -1 on a singular system. work: 6 * n doubles. */
static int fit_kept(const double *t, const double *x, Py_ssize_t n, int max_order, int select,
                    const fcrit_t *f, double *coef, double *slope_t, double *bend, double *work) {
    int order = max_order < n - 2 ? max_order : (int)(n - 2);
    double inv_n = 1.0 / (double)n, st = 0.0, sx = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        st += t[i];
        sx += x[i];
    }
    double tm = st * inv_n, xm = sx * inv_n, sxy = 0.0, sxx = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double dt = t[i] - tm;
        sxy += dt * (x[i] - xm);
        sxx += dt * dt;
    }
    double line_slope = sxy / sxx, line0 = xm - line_slope * tm;
    *bend = 0.0;
    if (order <= 1) {
        coef[0] = line0;
        coef[1] = line_slope;
        *slope_t = line_slope;
        return 1;
    }
    int m = order + 1;
    double *q = work; /* (m, n): column c of the Vandermonde, then of Q */
    for (Py_ssize_t i = 0; i < n; i++) {
        double p = 1.0;
        for (int c = 0; c < m; c++) {
            q[c * n + i] = p;
            p *= t[i];
        }
    }
    /* QR by modified Gram-Schmidt (signs aside, numpy's reduced QR): q orthonormal columns, R upper */
    double R[36] = {0}, z[6];
    for (int c = 0; c < m; c++) {
        double *qc = q + c * n;
        for (int p = 0; p < c; p++) {
            const double *qp = q + p * n;
            double s = 0.0;
            for (Py_ssize_t i = 0; i < n; i++) s += qp[i] * qc[i];
            R[p * m + c] = s;
            for (Py_ssize_t i = 0; i < n; i++) qc[i] -= s * qp[i];
        }
        double s = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) s += qc[i] * qc[i];
        s = sqrt(s);
        if (s == 0.0) return -1;
        R[c * m + c] = s;
        for (Py_ssize_t i = 0; i < n; i++) qc[i] /= s;
    }
    for (int c = 0; c < m; c++) {
        double s = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) s += q[c * n + i] * x[i];
        z[c] = s;
    }
    int k = order;
    if (select) { /* the highest order against the line first */
        double rss_line = 0.0, rss_full = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {
            double rl = x[i] - (line0 + line_slope * t[i]);
            double v = 0.0;
            for (int c = 0; c < m; c++) v += q[c * n + i] * z[c];
            double rf = x[i] - v;
            rss_line += rl * rl;
            rss_full += rf * rf;
        }
        Py_ssize_t dof = n - order - 1;
        if (rss_full <= 0.0
            || (rss_line - rss_full) / (order - 1) <= f_crit(f, order - 1, dof) * rss_full / (double)dof) {
            coef[0] = line0;
            coef[1] = line_slope;
            *slope_t = line_slope;
            return 1;
        }
        /* each order's residual sum: the full fit's plus the projections it leaves out */
        double rss[6], beyond = 0.0;
        for (int c = m - 1; c >= 0; c--) {
            rss[c] = rss_full + beyond;
            beyond += z[c] * z[c];
        }
        k = choose_order(rss, n, order, f);
    }
    double b_px = 0.0;
    if (k > 1) {
        for (Py_ssize_t i = 0; i < n; i++) {
            double v = 0.0;
            for (int c = 2; c <= k; c++) v += q[c * n + i] * z[c];
            if (fabs(v) > b_px) b_px = fabs(v);
        }
        if (select && b_px < MIN_SAGITTA_PX) {
            k = 1;
            b_px = 0.0;
        }
    }
    *bend = b_px;
    *slope_t = z[1] / R[1 * m + 1];
    for (int c = k; c >= 0; c--) { /* back substitution in R[:k+1, :k+1] */
        double s = z[c];
        for (int j = c + 1; j <= k; j++) s -= R[c * m + j] * coef[j];
        coef[c] = s / R[c * m + c];
    }
    return k;
}

/* fit(y, x, n, max_order, select, rounds, ftab, fcols, coef, keep, fitted) -> (order, centre, scale, slope_t,
 * bend, rms), or None when too few rows are left (sfr_fit.fit_edge's FitError). coef: 6 float64 out, keep: n
 * bytes out, fitted: the polynomial at every y (n float64 out). */
static PyObject *fit(PyObject *self, PyObject *args) {
    Py_buffer yb, xb, fb, cb, kb, vb;
    Py_ssize_t n, fcols;
    int max_order, select, rounds;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*niiiy*nw*w*w*", &yb, &xb, &n, &max_order, &select, &rounds, &fb, &fcols, &cb,
                          &kb, &vb))
        return NULL;
    PyObject *result = NULL;
    double *work = NULL;
    if (n < 1 || max_order < 1 || max_order > MAX_ORDER || fcols < 2 || yb.len < n * 8 || xb.len < n * 8
        || fb.len < (MAX_ORDER) * fcols * 8 || cb.len < 6 * 8 || kb.len < n || vb.len < n * 8) {
        PyErr_SetString(PyExc_ValueError, "sfr fit: buffer sizes do not match");
        goto done;
    }
    work = (double *)malloc((size_t)n * 9 * sizeof(double));
    if (work == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const double *y = (const double *)yb.buf, *x = (const double *)xb.buf;
    double *coef = (double *)cb.buf;
    unsigned char *keep = (unsigned char *)kb.buf;
    double *fitted = (double *)vb.buf;
    fcrit_t f = {(const double *)fb.buf, fcols};
    double *tk = work + 7 * n, *xk = work + 8 * n;
    double centre = 0.5 * (y[0] + y[n - 1]);
    double scale = 0.5 * fabs(y[n - 1] - y[0]);
    if (scale < 1.0) scale = 1.0;
    const double inv_scale = 1.0 / scale;
    for (Py_ssize_t i = 0; i < n; i++) keep[i] = isfinite(x[i]) != 0;
    int order = 1;
    double slope_t = 0.0, bend = 0.0;
    memset(coef, 0, 6 * sizeof(double));
    for (int round = 0; round < rounds; round++) {
        Py_ssize_t nk = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (keep[i]) {
                tk[nk] = (y[i] - centre) / scale;
                xk[nk++] = x[i];
            }
        if (nk < max_order + 2) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        memset(coef, 0, 6 * sizeof(double));
        order = fit_kept(tk, xk, nk, max_order, select, &f, coef, &slope_t, &bend, work);
        if (order < 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        /* residuals of every row against this fit (EdgeFit.__call__'s Horner), the 4-sigma rule */
        double sum_res = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {
            double t = (y[i] - centre) * inv_scale, v = t * coef[order] + coef[order - 1];
            for (int c = order - 2; c >= 0; c--) v = v * t + coef[c];
            fitted[i] = v;
            work[i] = fabs(x[i] - v);
            if (keep[i]) sum_res += work[i];
        }
        double limit = OUTLIER_SIGMAS * 1.2533 * sum_res / (double)nk;
        if (limit < MIN_OUTLIER_LIMIT_PX) limit = MIN_OUTLIER_LIMIT_PX;
        int same = 1;
        for (Py_ssize_t i = 0; i < n; i++) {
            unsigned char nk_i = isfinite(x[i]) && work[i] <= limit;
            if (nk_i != keep[i]) same = 0;
            work[n + i] = nk_i; /* staged: keep changes only after the comparison */
        }
        if (same) break;
        for (Py_ssize_t i = 0; i < n; i++) keep[i] = (unsigned char)work[n + i];
    }
    /* RMS residual over the rows kept (work still holds |x - p(y)| of the final coefficients) */
    double ss = 0.0;
    Py_ssize_t nkept = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (keep[i]) {
            ss += work[i] * work[i];
            nkept++;
        }
    result = Py_BuildValue("(iddddd)", order, centre, scale, slope_t, bend, nkept ? sqrt(ss / (double)nkept) : NAN);
done:
    free(work);
    PyBuffer_Release(&yb);
    PyBuffer_Release(&xb);
    PyBuffer_Release(&fb);
    PyBuffer_Release(&cb);
    PyBuffer_Release(&kb);
    PyBuffer_Release(&vb);
    return result;
}


/* ---- after the fit: the coarse rise, the ESF, its tails and the windowed LSF (calibration/sfr.py) ---- */

/* rise(a, nlin, npix, edge_x) -> 10-90% rise (px along x) of the 1 px ESF of every 2nd row, or npix/2 when
 * the ESF does not cross both levels (sfr._rise_10_90_px). */
static PyObject *rise(PyObject *self, PyObject *args) {
    Py_buffer src, ex;
    Py_ssize_t nlin, npix;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*", &src, &nlin, &npix, &ex)) return NULL;
    PyObject *result = NULL;
    long long *counts = NULL;
    double *sums = NULL, *pos = NULL, *e = NULL;
    const Py_ssize_t nbin = 2 * npix, half = npix;
    if (nlin < 1 || npix < 2 || src.len < nlin * npix * 8 || ex.len < nlin * 8) {
        PyErr_SetString(PyExc_ValueError, "sfr rise: buffer sizes do not match the ROI");
        goto done;
    }
    counts = (long long *)calloc((size_t)nbin, sizeof(long long));
    sums = (double *)calloc((size_t)nbin * 3, sizeof(double));
    if (counts == NULL || sums == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    pos = sums + nbin;
    e = sums + 2 * nbin;
    const double *a = (const double *)src.buf, *edge = (const double *)ex.buf;
    for (Py_ssize_t r = 0; r < nlin; r += 2) {
        const double fl = floor(-edge[r]);
        if (!(fabs(fl) < 1e15)) continue; /* a nan or far-off edge puts no pixel of this row in a bin */
        const Py_ssize_t j0 = (Py_ssize_t)fl + half;
        for (Py_ssize_t c = 0; c < npix; c++) {
            Py_ssize_t j = j0 + c;
            if (j < 0 || j >= nbin) continue;
            counts[j] += 1;
            sums[j] += a[r * npix + c];
        }
    }
    Py_ssize_t m = 0;
    for (Py_ssize_t j = 0; j < nbin; j++)
        if (counts[j] > 0) {
            e[m] = sums[j] / (double)counts[j];
            pos[m++] = (double)j;
        }
    double out = (double)npix / 2.0;
    if (m > 0) {
        Py_ssize_t k = m / 8 > 1 ? m / 8 : 1;
        double lo = 0.0, hi = 0.0;
        for (Py_ssize_t i = 0; i < k; i++) {
            lo += e[i];
            hi += e[m - k + i];
        }
        lo /= (double)k;
        hi /= (double)k;
        for (Py_ssize_t i = 0; i < m; i++) e[i] = (e[i] - lo) / (hi - lo);
        Py_ssize_t centre = 0;
        for (Py_ssize_t i = 1; i < m; i++)
            if (fabs(e[i] - 0.5) < fabs(e[centre] - 0.5)) centre = i;
        Py_ssize_t i10 = -1, j90 = -1;
        for (Py_ssize_t i = centre; i >= 0; i--)
            if (e[i] < 0.1) {
                i10 = i;
                break;
            }
        for (Py_ssize_t j = centre; j < m; j++)
            if (e[j] > 0.9) {
                j90 = j;
                break;
            }
        if (i10 >= 0 && j90 >= 1 && i10 + 1 < m) {
            Py_ssize_t i = i10, j = j90;
            double x10 = pos[i] + (0.1 - e[i]) * (pos[i + 1] - pos[i]) / (e[i + 1] - e[i]);
            double x90 = pos[j - 1] + (0.9 - e[j - 1]) * (pos[j] - pos[j - 1]) / (e[j] - e[j - 1]);
            out = x90 - x10 > 0.5 ? x90 - x10 : 0.5;
        }
    }
    result = PyFloat_FromDouble(out);
done:
    free(counts);
    free(sums);
    PyBuffer_Release(&src);
    PyBuffer_Release(&ex);
    return result;
}

/* esf(counts, sums, nbin, esf) -> empty bins between the first and the last filled one; esf gets each filled
 * bin's mean, empty bins the line between their filled neighbours, the ends the nearest level (np.interp).
 * -1 when no bin is filled. */
static PyObject *esf(PyObject *self, PyObject *args) {
    Py_buffer cb, sb, eb;
    Py_ssize_t nbin;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &cb, &sb, &nbin, &eb)) return NULL;
    PyObject *result = NULL;
    if (nbin < 1 || cb.len < nbin * 8 || sb.len < nbin * 8 || eb.len < nbin * 8) {
        PyErr_SetString(PyExc_ValueError, "sfr esf: buffer sizes do not match");
    } else {
        const long long *counts = (const long long *)cb.buf;
        const double *sums = (const double *)sb.buf;
        double *out = (double *)eb.buf;
        Py_ssize_t first = -1, prev = -1, empty = 0;
        for (Py_ssize_t j = 0; j < nbin; j++) {
            if (counts[j] <= 0) continue;
            double v = sums[j] / (double)counts[j];
            out[j] = v;
            if (prev < 0) {
                first = j;
                for (Py_ssize_t i = 0; i < j; i++) out[i] = v;
            } else if (j > prev + 1) {
                double slope = (v - out[prev]) / (double)(j - prev);
                for (Py_ssize_t i = prev + 1; i < j; i++) out[i] = slope * (double)(i - prev) + out[prev];
                empty += j - prev - 1;
            }
            prev = j;
        }
        if (first < 0) {
            empty = -1;
        } else {
            for (Py_ssize_t i = prev + 1; i < nbin; i++) out[i] = out[prev];
        }
        result = PyLong_FromSsize_t(empty);
    }
    PyBuffer_Release(&cb);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&eb);
    return result;
}

/* tail(esf, counts, nbin, oversample, noise, contrast, fraction, smooth_px) -> farthest distance (bins) from
 * the centre where the smoothed ESF still leaves its plateau by more than the threshold (sfr._tail_extent_bins). */
static PyObject *tail(PyObject *self, PyObject *args) {
    Py_buffer eb, cb;
    Py_ssize_t n, oversample, smooth_px;
    double noise, contrast, fraction;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nndddn", &eb, &cb, &n, &oversample, &noise, &contrast, &fraction, &smooth_px))
        return NULL;
    PyObject *result = NULL;
    double *csum = NULL;
    if (n < 2 || eb.len < n * 8 || cb.len < n * 8) {
        PyErr_SetString(PyExc_ValueError, "sfr tail: buffer sizes do not match");
        goto done;
    }
    const double *e = (const double *)eb.buf;
    const long long *counts = (const long long *)cb.buf;
    Py_ssize_t k = smooth_px * oversample, k8 = n / 8 > 1 ? n / 8 : 1;
    if (k > k8) k = k8;
    Py_ssize_t m = k > n / 8 ? k : n / 8;
    csum = (double *)malloc((size_t)(3 * (n + 1) + m) * sizeof(double));
    if (csum == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *nsum = csum + (n + 1), *psum = csum + 2 * (n + 1), *tmp = csum + 3 * (n + 1);
    csum[0] = nsum[0] = psum[0] = 0.0;
    for (Py_ssize_t j = 0; j < n; j++) {
        int f = counts[j] > 0;
        csum[j + 1] = csum[j] + e[j] * (double)f;
        nsum[j + 1] = nsum[j] + (double)f;
        psum[j + 1] = psum[j] + (double)counts[j];
    }
    memcpy(tmp, e, (size_t)m * sizeof(double));
    double lo = select_kth(tmp, m, m / 2);
    memcpy(tmp, e + n - m, (size_t)m * sizeof(double));
    double hi = select_kth(tmp, m, m / 2);
    const Py_ssize_t ns = n - k + 1, centre = n / 2 - k / 2;
    const double floor_thr = fraction * contrast;
    Py_ssize_t d_left = 0, d_right = 0;
    for (Py_ssize_t j = 0; j < ns; j++) {
        double filled = nsum[j + k] - nsum[j];
        double thr = INFINITY;
        if (!(filled < (double)(k / 2))) {
            double sigma = noise / sqrt(psum[j + k] - psum[j]);
            thr = 5.0 * sigma > floor_thr ? 5.0 * sigma : floor_thr;
            if (isnan(sigma)) thr = NAN;
        }
        double smooth = (csum[j + k] - csum[j]) / filled;
        if (j < centre) {
            if (d_left == 0 && fabs(smooth - lo) > thr) d_left = centre - j;
        } else if (fabs(smooth - hi) > thr) {
            d_right = j - centre;
        }
    }
    result = PyLong_FromSsize_t(d_left > d_right ? d_left : d_right);
done:
    free(csum);
    PyBuffer_Release(&eb);
    PyBuffer_Release(&cb);
    return result;
}

/* lsf(esf, nbin, centre, half, kind, alpha, lsf): the FIR [-0.5, 0.5] derivative of the ESF (lsf[j] at bin
 * boundary j + 1, the last 0) under the window of half-width half bins about bin centre. */
static PyObject *lsf(PyObject *self, PyObject *args) {
    Py_buffer eb, lb;
    Py_ssize_t nbin, centre;
    double half, alpha;
    int kind;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nndidw*", &eb, &nbin, &centre, &half, &kind, &alpha, &lb)) return NULL;
    PyObject *result = NULL;
    if (nbin < 2 || eb.len < nbin * 8 || lb.len < nbin * 8 || !(half > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "sfr lsf: buffer sizes do not match");
    } else {
        const double *e = (const double *)eb.buf;
        double *out = (double *)lb.buf;
        for (Py_ssize_t j = 0; j + 1 < nbin; j++)
            out[j] = 0.5 * (e[j + 1] - e[j]) * window_at((double)(j - centre) / half, kind, alpha);
        out[nbin - 1] = 0.0;
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&eb);
    PyBuffer_Release(&lb);
    return result;
}


/* crossing(freq, mtf, n, level) -> first frequency where mtf falls below level, on the cubic through the
 * two samples either side (sfr.mtf_crossing, the same Newton steps); nan if it never does. */
static PyObject *crossing(PyObject *self, PyObject *args) {
    Py_buffer fb, mb;
    Py_ssize_t n;
    double level;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nd", &fb, &mb, &n, &level)) return NULL;
    PyObject *result = NULL;
    if (n < 1 || fb.len < n * 8 || mb.len < n * 8) {
        PyErr_SetString(PyExc_ValueError, "sfr crossing: buffer sizes do not match");
        goto done;
    }
    const double *freq = (const double *)fb.buf, *mtf = (const double *)mb.buf;
    Py_ssize_t i = 1;
    while (i < n && !(mtf[i] < level)) i++;
    if (i >= n) {
        result = PyFloat_FromDouble(NAN);
        goto done;
    }
    double f0 = freq[i - 1], f1 = freq[i], m0 = mtf[i - 1], m1 = mtf[i];
    double t = (m0 - level) / (m0 - m1);
    if (i >= 2 && i + 1 < n) {
        const double p0 = mtf[i - 2] - level, p1 = m0 - level, p2 = m1 - level, p3 = mtf[i + 1] - level;
        for (int it = 0; it < 8; it++) {
            double b0 = -t * (t - 1) * (t - 2) / 6, b1 = (t + 1) * (t - 1) * (t - 2) / 2;
            double b2 = -(t + 1) * t * (t - 2) / 2, b3 = (t + 1) * t * (t - 1) / 6;
            double d0 = -(3 * t * t - 6 * t + 2) / 6, d1 = (3 * t * t - 4 * t - 1) / 2;
            double d2 = -(3 * t * t - 2 * t - 2) / 2, d3 = (3 * t * t - 1) / 6;
            double val = 0.0 + p0 * b0 + p1 * b1 + p2 * b2 + p3 * b3;
            double der = 0.0 + p0 * d0 + p1 * d1 + p2 * d2 + p3 * d3;
            if (der == 0) break;
            double st = val / der;
            t -= st;
            if (fabs(st) < 1e-12) break;
        }
        if (!(0.0 <= t && t <= 1.0)) t = (m0 - level) / (m0 - m1);
    }
    result = PyFloat_FromDouble(f0 + t * (f1 - f0));
done:
    PyBuffer_Release(&fb);
    PyBuffer_Release(&mb);
    return result;
}

static PyMethodDef methods[] = {
    {"prep", prep, METH_VARARGS, "prep(src, h, w, dst, row_sums) -> (transposed, negated, left, right, noise, scale) or None"},
    {"centroids", centroids, METH_VARARGS,
     "centroids(a, nlin, npix, centre_x, half_width, kind, alpha, loc): windowed row centroids"},
    {"project", project, METH_VARARGS,
     "project(a, nlin, npix, row0, row_step, rows, edge_x, oversample, nbin, counts, sums, where): ESF bins"},
    {"fit", fit, METH_VARARGS,
     "fit(y, x, n, max_order, select, rounds, ftab, fcols, coef, keep, fitted) -> (order, centre, scale, slope_t, "
     "bend, rms)"},
    {"rise", rise, METH_VARARGS, "rise(a, nlin, npix, edge_x) -> 10-90% rise, px"},
    {"esf", esf, METH_VARARGS, "esf(counts, sums, nbin, esf) -> inner empty bins (-1: none filled)"},
    {"tail", tail, METH_VARARGS,
     "tail(esf, counts, nbin, oversample, noise, contrast, fraction, smooth_px) -> tail reach, bins"},
    {"lsf", lsf, METH_VARARGS, "lsf(esf, nbin, centre, half, kind, alpha, lsf): windowed derivative"},
    {"crossing", crossing, METH_VARARGS, "crossing(freq, mtf, n, level) -> first crossing of level (cubic)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sfrk", "e-SFR kernels (C)", -1, methods};

PyMODINIT_FUNC PyInit__sfrk(void) { return PyModule_Create(&module); }
