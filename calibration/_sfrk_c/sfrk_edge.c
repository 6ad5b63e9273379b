/* e-SFR kernels, the edge's location: the ROI's orientation, levels and noise, the windowed per-row centroids,
 * the coarse 10-90% rise (calibration/sfr.py's numpy reference, step for step). */
#include <float.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "sfrk.h"

/* The k-th smallest of x[0..n) (x reordered): quickselect with a median-of-3 pivot and a branch-free Lomuto
 * partition (a conditional swap per element, no mispredicted branch on random data), insertion sort for the last
 * few. The value is the k-th order statistic whatever the method: the same as np.partition's. */
static double quickselect(double *x, idx_t n, idx_t k) {
    idx_t lo = 0, hi = n - 1;
    while (hi - lo > 16) {
        idx_t mid = lo + (hi - lo) / 2;
        /* median of x[lo], x[mid], x[hi] moved to x[hi] as the pivot */
        double a0 = x[lo], a1 = x[mid], a2 = x[hi];
        idx_t pm = (a0 < a1) ? ((a1 < a2) ? mid : ((a0 < a2) ? hi : lo)) : ((a0 < a2) ? lo : ((a1 < a2) ? hi : mid));
        double pivot = x[pm];
        x[pm] = x[hi];
        x[hi] = pivot;
        idx_t store = lo;
        for (idx_t i = lo; i < hi; i++) { /* x[store..i) all >= pivot: swapping an x[i] >= pivot in keeps it so */
            double v = x[i];
            x[i] = x[store];
            x[store] = v;
            store += v < pivot;
        }
        x[hi] = x[store];
        x[store] = pivot;
        if (k == store) return pivot;
        if (k < store) hi = store - 1;
        else lo = store + 1;
    }
    for (idx_t i = lo + 1; i <= hi; i++) { /* insertion sort of the last few */
        double v = x[i];
        idx_t j = i - 1;
        while (j >= lo && x[j] > v) {
            x[j + 1] = x[j];
            j--;
        }
        x[j + 1] = v;
    }
    return x[k];
}

double sfrk_select(double *x, idx_t n, idx_t k) {
    enum { SAMPLE = 63 };
    if (n < 32768) return quickselect(x, n, k); /* (the sampling below pays off on large arrays only) */
    /* bounds from a sample (its order statistics either side of k's place), the values between them selected */
    double sample[SAMPLE];
    for (int s = 0; s < SAMPLE; s++) sample[s] = x[(idx_t)((2 * (long long)s + 1) * n / (2 * SAMPLE))];
    int at = (int)((double)k / (double)n * SAMPLE);
    int margin = 4;
    const double lo = quickselect(sample, SAMPLE, at - margin < 0 ? 0 : at - margin);
    const double hi = quickselect(sample, SAMPLE, at + margin >= SAMPLE ? SAMPLE - 1 : at + margin);
    idx_t below = 0, mid = 0;
    double *buf = (double *)malloc((size_t)n * sizeof(double));
    if (buf == NULL) return quickselect(x, n, k);
    for (idx_t i = 0; i < n; i++) {
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

/* The sum of x[0..n): four partial sums, not one chain of dependent adds. */
static inline double sum4(const double *x, idx_t n) {
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    idx_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int l = 0; l < 4; l++) s[l] += x[i + l];
    for (; i < n; i++) s[i & 3] += x[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* prep: the ROI turned so the edge runs down the rows (transposed when the larger end-to-end step is across the
 * rows) and negated when its left side is the lighter (dark-to-light), into out (nlin, npix); the sums of out's
 * rows; the plateau levels after that (median over rows of the mean of the outer eighth of columns), the pixel
 * noise (MAD of a[1::2, ::4] - a[:-1:2, ::4]) and the largest |value| (calibration.sfr._prep_numpy). One pass
 * over a gathers the outer bands of both orientations. 0, 1 when a value is not finite, -1 out of memory. */
int sfrk_prep(const double *a, idx_t h, idx_t w, double *out, double *row_sums, int *transposed_out,
              int *negated, double levels[2], double *noise_out, double *scale_out, int always_copy,
              const double **turned_out) {
    double *tmp = NULL;
    const idx_t kx = w / 8 > 1 ? w / 8 : 1, ky = h / 8 > 1 ? h / 8 : 1;
    /* band sums: per row over the first/last kx columns, per column over the first/last ky rows */
    /* work: the larger of nlin row means and the (nlin / 2) * ceil(npix / 4) noise differences */
    const idx_t nwork = (h > w ? h : w) + (h / 2 + 1) * (w / 4 + 1) + (w / 2 + 1) * (h / 4 + 1);
    tmp = (double *)malloc((size_t)(3 * h + 2 * w + nwork) * sizeof(double));
    if (tmp == NULL) return -1;
    double *row_l = tmp, *row_r = tmp + h, *col_t = tmp + 2 * h, *col_b = tmp + 2 * h + w, *work = tmp + 2 * h + 2 * w;
    double *row_all = work + nwork; /* the sums of a's whole rows */
    memset(col_t, 0, (size_t)(2 * w) * sizeof(double)); /* col_t and col_b accumulate; the rest is written first */
    double smax[4] = {0.0, 0.0, 0.0, 0.0};
    int bad = 0;
    for (idx_t r = 0; r < h; r++) {
        const double *row = a + r * w;
        row_l[r] = sum4(row, kx);
        row_r[r] = sum4(row + w - kx, kx);
        if (r < ky)
            for (idx_t c = 0; c < w; c++) col_t[c] += row[c];
        if (r >= h - ky)
            for (idx_t c = 0; c < w; c++) col_b[c] += row[c];
        idx_t c = 0;
        double s4[4] = {0.0, 0.0, 0.0, 0.0}; /* the whole row's sum, four partial sums as sum4 */
#ifdef __SSE2__
        /* one pass: the sum, |v| max two lanes at a time, and v - v (0 for a finite v, nan otherwise: summed, it
         * flags any) */
        __m128d s0 = _mm_setzero_pd(), s1 = _mm_setzero_pd();
        __m128d m0 = _mm_setzero_pd(), m1 = _mm_setzero_pd(), nan0 = _mm_setzero_pd();
        const __m128d abs_mask = _mm_castsi128_pd(_mm_set1_epi64x(0x7fffffffffffffffLL));
        for (; c + 4 <= w; c += 4) {
            __m128d v0 = _mm_loadu_pd(row + c), v1 = _mm_loadu_pd(row + c + 2);
            s0 = _mm_add_pd(s0, v0);
            s1 = _mm_add_pd(s1, v1);
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
        _mm_storeu_pd(s4, s0);
        _mm_storeu_pd(s4 + 2, s1);
#endif
        for (; c < w; c++) {
            double av = fabs(row[c]);
            bad |= !(av <= DBL_MAX);
            smax[0] = av > smax[0] ? av : smax[0];
            s4[c & 3] += row[c];
        }
        row_all[r] = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    }
    if (bad) {
        free(tmp);
        return 1;
    }
    double scale = smax[0];
    for (int l = 1; l < 4; l++) scale = smax[l] > scale ? smax[l] : scale;
    double sxl = 0.0, sxr = 0.0, syt = 0.0, syb = 0.0;
    for (idx_t r = 0; r < h; r++) {
        sxl += row_l[r];
        sxr += row_r[r];
    }
    for (idx_t c = 0; c < w; c++) {
        syt += col_t[c];
        syb += col_b[c];
    }
    double step_x = fabs(sxr / (double)(h * kx) - sxl / (double)(h * kx));
    double step_y = fabs(syb / (double)(w * ky) - syt / (double)(w * ky));
    const int transposed = step_y > step_x;
    const idx_t nlin = transposed ? w : h, npix = transposed ? h : w, k = transposed ? ky : kx;
    const double *lsum = transposed ? col_t : row_l, *rsum = transposed ? col_b : row_r;
    for (idx_t r = 0; r < nlin; r++) work[r] = lsum[r] / (double)k;
    double left = sfrk_select(work, nlin, nlin / 2);
    for (idx_t r = 0; r < nlin; r++) work[r] = rsum[r] / (double)k;
    double right = sfrk_select(work, nlin, nlin / 2);
    const double sign = left > right ? -1.0 : 1.0;
    if (sign < 0.0) {
        left = -left;
        right = -right;
    }
    const double *turned = out;
    if (!transposed && sign > 0.0 && !always_copy) {
        turned = a; /* already vertical and dark-to-light: read in place */
    } else if (!transposed) {
        for (idx_t i = 0; i < h * w; i++) out[i] = sign * a[i];
    }
    if (!transposed) { /* the turned rows' sums: a's rows' (negation is exact) */
        for (idx_t r = 0; r < nlin; r++) row_sums[r] = sign * row_all[r];
    } else { /* a's columns', summed as they are turned */
        memset(row_sums, 0, (size_t)nlin * sizeof(double));
        const idx_t B = 16; /* blocked transpose: both sides stay in cache lines */
        for (idx_t r0 = 0; r0 < h; r0 += B)
            for (idx_t c0 = 0; c0 < w; c0 += B) {
                idx_t r1 = r0 + B < h ? r0 + B : h, c1 = c0 + B < w ? c0 + B : w;
                for (idx_t c = c0; c < c1; c++) {
                    double s = 0.0;
                    for (idx_t r = r0; r < r1; r++) {
                        const double v = sign * a[r * w + c];
                        out[c * h + r] = v;
                        s += v;
                    }
                    row_sums[c] += s;
                }
            }
    }
    /* noise: a[1::2, ::4] - a[:-1:2, ::4], MAD -> sigma */
    idx_t nd = 0;
    for (idx_t r = 0; r + 1 < nlin; r += 2)
        for (idx_t c = 0; c < npix; c += 4) work[nd++] = fabs(turned[(r + 1) * npix + c] - turned[r * npix + c]);
    double noise = nd ? 1.4826 * sfrk_select(work, nd, nd / 2) / sqrt(2.0) : 0.0;
    *transposed_out = transposed;
    *negated = sign < 0.0;
    levels[0] = left;
    levels[1] = right;
    *noise_out = noise;
    *scale_out = scale;
    *turned_out = turned;
    free(tmp);
    return 0;
}

/* The window region of sample x (sfrk_centroids, Tukey): 0 outside on the left, 1 left taper, 2 flat top, 3 right
 * taper, 4 outside on the right, decided on u and t computed exactly as the numpy reference computes them. The
 * computed u rises with x, |u| falls then rises, t follows |u|: the region never falls as x rises. */
static inline int tukey_region(double x, double c, double inv_hw, double flat, double inv_alpha) {
    const double u = (x - c) * inv_hw, au = fabs(u), t = (au - flat) * inv_alpha;
    if (!(au <= 1.0 && t < 1.0)) return u > 0.0 ? 4 : 0;
    if (t <= 0.0) return 2;
    return u > 0.0 ? 3 : 1;
}

/* The first of the nd samples (x0 + j) whose region is at least `region`, from the estimate at (a whole number,
 * clamped to 0 .. nd before the cast). */
static inline idx_t region_start(double at, idx_t nd, int region, double x0, double c, double inv_hw, double flat,
                                 double inv_alpha) {
    idx_t j = at <= 0.0 ? 0 : (at >= (double)nd ? nd : (idx_t)at);
    while (j > 0 && tukey_region(x0 + (double)(j - 1), c, inv_hw, flat, inv_alpha) >= region) j--;
    while (j < nd && tukey_region(x0 + (double)j, c, inv_hw, flat, inv_alpha) < region) j++;
    return j;
}

/* The angle (x0 - c) step of a row whose band starts width / 2 samples left of the sample nearest the centre c:
 * base = (0.5 - width / 2) step (its cos and sin once per call) plus the small (nearest - c) step. */
typedef struct {
    double step, cos_base, sin_base, x0_off;
    int small; /* |(nearest - c) step| <= 0.6: its cos and sin by their Taylor series */
} row_phase_t;

/* cos and sin of (x0 - c) step: the angle-sum rule on the base and a Taylor series to the 17th power for the small
 * part (|error| ~1e-16, no libm call) when the band is not clamped at the ROI's side, libm otherwise. */
static inline void row_phase(double x0, double c, double step, const row_phase_t *ph, double *cg, double *sg) {
    const double nearest = nearbyint(c);
    if (ph->small && x0 - nearest == ph->x0_off) {
        const double th = (nearest - c) * step, t2 = th * th;
        /* Horner in th^2 with the factorials' reciprocals (multiplications, no division chain) */
        const double s = th * (1.0 + t2 * (-1.0 / 6 + t2 * (1.0 / 120 + t2 * (-1.0 / 5040 + t2 * (1.0 / 362880
                         + t2 * (-1.0 / 39916800 + t2 * (1.0 / 6227020800.0 + t2 * (-1.0 / 1307674368000.0
                         + t2 * (1.0 / 355687428096000.0)))))))));
        const double co = 1.0 + t2 * (-1.0 / 2 + t2 * (1.0 / 24 + t2 * (-1.0 / 720 + t2 * (1.0 / 40320
                          + t2 * (-1.0 / 3628800 + t2 * (1.0 / 479001600 + t2 * (-1.0 / 87178291200.0
                          + t2 * (1.0 / 20922789888000.0))))))));
        *cg = ph->cos_base * co - ph->sin_base * s;
        *sg = ph->sin_base * co + ph->cos_base * s;
    } else {
        const double gs = (x0 - c) * step;
        *cg = cos(gs);
        *sg = sin(gs);
    }
}

/* One row's Tukey-windowed centroid sums (sfrk_centroids, kind 0). The regions' bounds from where the window's
 * edges fall, checked against tukey_region (the numpy reference's decision at every sample); then branch-free
 * loops: the flat top at weight 1, the tapers' cos(pi t) by the angle-sum rule from a table cos/sin(j step) and
 * one cos/sin per row (|error| ~1e-16), no libm call per sample. */
static void tukey_row(const double *row, idx_t width, double x0, double c, double hw, double flat, double alpha,
                      double step, const double *ctab, const double *stab, double cos_k, double sin_k,
                      const row_phase_t *ph, double *total_out, double *moment_out) {
    const double inv_hw = 1.0 / hw, inv_alpha = 1.0 / (alpha > 1e-12 ? alpha : 1e-12);
    const idx_t nd = width - 1;
    const double d0 = c - x0, fh = (flat > 0.0 ? flat : 0.0) * hw;
    const idx_t b0 = region_start(ceil(d0 - hw), nd, 1, x0, c, inv_hw, flat, inv_alpha);
    const idx_t b1 = region_start(ceil(d0 - fh), nd, 2, x0, c, inv_hw, flat, inv_alpha);
    const idx_t b2 = region_start(floor(d0 + fh) + 1.0, nd, 3, x0, c, inv_hw, flat, inv_alpha);
    const idx_t b3 = region_start(floor(d0 + hw) + 1.0, nd, 4, x0, c, inv_hw, flat, inv_alpha);
    /* right taper: pi t_j = step (x_j - c) - K = j step + (g step - K), g = x0 - c, K = pi flat / alpha;
     * left taper: pi t_j = step (c - x_j) - K, cos of it = cos(j step + (g step + K)) */
    double cg, sg; /* cos, sin of (x0 - c) step */
    row_phase(x0, c, step, ph, &cg, &sg);
    const double cr = cg * cos_k + sg * sin_k, sr = sg * cos_k - cg * sin_k; /* cos, sin (gs - K) */
    const double cl = cg * cos_k - sg * sin_k, sl = sg * cos_k + cg * sin_k; /* cos, sin (gs + K) */
    const double w_flat = 1.0 * 0.95 + 0.05; /* sfrmat5's 0.95 w + 0.05: keeps the location stable */
    double total[2] = {0.0, 0.0}, moment[2] = {0.0, 0.0};
    for (idx_t j = b0; j < b1; j++) {
        double w = ((ctab[j] * cl - stab[j] * sl) + 1.0) * 0.5;
        w = w <= 0.0 ? 0.0 : w * 0.95 + 0.05;
        const double dw = (row[j + 1] - row[j]) * w;
        total[0] += dw;
        moment[0] += dw * (x0 + (double)j);
    }
    for (idx_t j = b1; j < b2; j++) {
        const double dw = (row[j + 1] - row[j]) * w_flat;
        total[1] += dw;
        moment[1] += dw * (x0 + (double)j);
    }
    for (idx_t j = b2; j < b3; j++) {
        double w = ((ctab[j] * cr - stab[j] * sr) + 1.0) * 0.5;
        w = w <= 0.0 ? 0.0 : w * 0.95 + 0.05;
        const double dw = (row[j + 1] - row[j]) * w;
        total[0] += dw;
        moment[0] += dw * (x0 + (double)j);
    }
    *total_out = total[0] + total[1];
    *moment_out = moment[0] + moment[1];
}

/* centroids: per-row centroid of the derivative [-0.5, 0.5] of a (difference j at x = j + 0.5) under the
 * window of half-width half_width about centre[r]; nan where the weights do not sum above zero
 * (calibration.sfr._row_centroids; only the band about the centre is read). */
void sfrk_centroids(const double *a, idx_t nlin, idx_t npix, const double *centre, double half_width, int kind,
                    double alpha, double *loc) {
    enum { MAX_TABLE = 512 };
    idx_t width = 2 * (idx_t)ceil(half_width) + 3;
    if (width > npix) width = npix;
    const double inv_hw = 1.0 / half_width;
    const double inv_alpha = 1.0 / (alpha > 1e-12 ? alpha : 1e-12), flat = 1.0 - alpha;
    const double step = M_PI * inv_hw * inv_alpha, k_phase = M_PI * flat * inv_alpha;
    const int table = kind == 0 && width <= MAX_TABLE;
    double ctab[MAX_TABLE], stab[MAX_TABLE];
    if (table) { /* every 16th from libm, the ones between by the angle-sum rule (|error| < 1e-14) */
        const double c1 = cos(step), s1 = sin(step);
        for (idx_t j = 0; j < width; j++) {
            if (j % 16 == 0) {
                ctab[j] = cos((double)j * step);
                stab[j] = sin((double)j * step);
            } else {
                ctab[j] = ctab[j - 1] * c1 - stab[j - 1] * s1;
                stab[j] = stab[j - 1] * c1 + ctab[j - 1] * s1;
            }
        }
    }
    const double cos_k = cos(k_phase), sin_k = sin(k_phase);
    const double x0_off = 0.5 - (double)(width / 2); /* x0 - nearest of a band not clamped at a side */
    const row_phase_t ph = {step, cos(x0_off * step), sin(x0_off * step), x0_off, 0.5 * step <= 0.6};
    for (idx_t r = 0; r < nlin; r++) {
        double cr = nearbyint(centre[r]); /* clamped before the cast: a nan or huge centre reads from 0 */
        if (!(cr > -1e15)) cr = -1e15;
        if (cr > 1e15) cr = 1e15;
        idx_t start = (idx_t)cr - width / 2;
        if (start > npix - width) start = npix - width;
        if (start < 0) start = 0;
        const double *row = a + r * npix + start;
        const double x0 = (double)start + 0.5;
        double total = 0.0, moment = 0.0;
        if (table && isfinite(centre[r])) {
            tukey_row(row, width, x0, centre[r], half_width, flat, alpha, step, ctab, stab, cos_k, sin_k, &ph,
                      &total, &moment);
        } else {
            for (idx_t j = 0; j + 1 < width; j++) {
                double x = x0 + (double)j;
                double wt = sfrk_window((x - centre[r]) * inv_hw, kind, alpha);
                if (kind == 0) wt = wt <= 0.0 ? 0.0 : wt * 0.95 + 0.05;
                double dw = (row[j + 1] - row[j]) * wt;
                total += dw;
                moment += dw * x;
            }
        }
        loc[r] = total > 0.0 ? moment / total : NAN;
    }
}

/* rise: 10-90% rise distance (px along x) of the 1 px ESF of every 2nd row about edge (nlin values), npix / 2
 * when that ESF does not cross both levels (calibration.sfr._rise_10_90_px). 0, or -1 out of memory. */
int sfrk_rise(const double *a, idx_t nlin, idx_t npix, const double *edge, double *rise_px) {
    const idx_t nbin = 2 * npix, half = npix;
    long long *counts = (long long *)calloc((size_t)nbin, sizeof(long long));
    double *sums = (double *)calloc((size_t)nbin * 3, sizeof(double)), *pos, *e;
    if (counts == NULL || sums == NULL) {
        free(counts);
        free(sums);
        return -1;
    }
    pos = sums + nbin;
    e = sums + 2 * nbin;
    for (idx_t r = 0; r < nlin; r += 2) {
        const double fl = floor(-edge[r]);
        if (!(fabs(fl) < 1e15)) continue; /* a nan or far-off edge puts no pixel of this row in a bin */
        const idx_t j0 = (idx_t)fl + half;
        /* the columns whose bin j0 + c lies in [0, nbin); counts through a difference array (summed below) */
        const idx_t c0 = j0 >= 0 ? 0 : -j0, c1 = nbin - j0 < npix ? nbin - j0 : npix;
        if (c1 <= c0) continue;
        counts[j0 + c0] += 1;
        if (j0 + c1 < nbin) counts[j0 + c1] -= 1;
        const double *row = a + r * npix;
        for (idx_t c = c0; c < c1; c++) sums[j0 + c] += row[c];
    }
    for (idx_t j = 1; j < nbin; j++) counts[j] += counts[j - 1];
    idx_t m = 0;
    for (idx_t j = 0; j < nbin; j++)
        if (counts[j] > 0) {
            e[m] = sums[j] / (double)counts[j];
            pos[m++] = (double)j;
        }
    double out = (double)npix / 2.0;
    if (m > 0) {
        idx_t k = m / 8 > 1 ? m / 8 : 1;
        double lo = 0.0, hi = 0.0;
        for (idx_t i = 0; i < k; i++) {
            lo += e[i];
            hi += e[m - k + i];
        }
        lo /= (double)k;
        hi /= (double)k;
        for (idx_t i = 0; i < m; i++) e[i] = (e[i] - lo) / (hi - lo);
        idx_t centre = 0;
        for (idx_t i = 1; i < m; i++)
            if (fabs(e[i] - 0.5) < fabs(e[centre] - 0.5)) centre = i;
        idx_t i10 = -1, j90 = -1;
        for (idx_t i = centre; i >= 0; i--)
            if (e[i] < 0.1) {
                i10 = i;
                break;
            }
        for (idx_t j = centre; j < m; j++)
            if (e[j] > 0.9) {
                j90 = j;
                break;
            }
        if (i10 >= 0 && j90 >= 1 && i10 + 1 < m) {
            idx_t i = i10, j = j90;
            double x10 = pos[i] + (0.1 - e[i]) * (pos[i + 1] - pos[i]) / (e[i + 1] - e[i]);
            double x90 = pos[j - 1] + (0.9 - e[j - 1]) * (pos[j] - pos[j - 1]) / (e[j] - e[j - 1]);
            double d = x90 - x10;
            out = 0.5 > d ? 0.5 : d; /* Python's max(d, 0.5): a nan stays */
        }
    }
    *rise_px = out;
    free(counts);
    free(sums);
    return 0;
}
