/* e-SFR kernels, from the edge to the LSF: the projection of the pixels into the super-sampled ESF bins, the ESF,
 * the reach of its tails, the windowed LSF, and the MTF50 crossing (calibration/sfr.py's numpy reference, step
 * for step; ISO 12233:2023 e-SFR, sfrmat's project2 and fir2fix). */
#include <stdlib.h>
#include <string.h>

#include "sfrk.h"

/* project: rows row0, row0 + row_step, ... (rows of them) of a (.., npix) into bins of 1/oversample px of
 * x-distance to the edge (edge: every row's x); bin j holds [(j - nbin/2), (j + 1 - nbin/2)) / oversample
 * (calibration.sfr._project). counts, sums and where (NULL: not wanted) have nbin values, zeroed here. */
void sfrk_project(const double *a, idx_t npix, idx_t row0, idx_t row_step, idx_t rows, const double *edge,
                  idx_t oversample, idx_t nbin, long long *counts, double *sums, double *where) {
    /* counts through a difference array per residue class: a row adds one to every oversample-th bin of a run,
     * +1 at the run's first bin and -1 one step past its last, summed with stride oversample at the end (the
     * same integers, one pass over the bins instead of one increment per pixel) */
    memset(counts, 0, (size_t)nbin * sizeof(long long));
    memset(sums, 0, (size_t)nbin * sizeof(double));
    if (where) memset(where, 0, (size_t)nbin * sizeof(double));
    const double os = (double)oversample;
    const idx_t half = nbin / 2;
    /* sums per residue class of the bin (acc[res][k] is bin os k + res): each row's samples land on consecutive
     * places there, the same adds in the same order as into sums directly (NULL: out of memory, directly) */
    const idx_t nq = nbin / oversample + 2;
    double *acc = (double *)calloc((size_t)(oversample * nq), sizeof(double));
    for (idx_t i = 0; i < rows; i++) {
        const idx_t r = row0 + i * row_step;
        const double scaled = (-edge[r]) * os;
        const double fl = floor(scaled);
        if (!(fabs(fl) < 1e15)) continue; /* a nan or far-off edge puts no pixel of this row in a bin */
        const double frac = scaled - fl;
        const idx_t j0 = (idx_t)fl + half;
        const double *row = a + r * npix;
        /* columns whose bin j0 + c * oversample lies in [0, nbin) */
        idx_t c0 = j0 >= 0 ? 0 : (-j0 + oversample - 1) / oversample;
        idx_t c1 = j0 >= nbin ? 0 : (nbin - 1 - j0) / oversample + 1;
        if (c1 > npix) c1 = npix;
        if (c1 <= c0) continue;
        counts[j0 + c0 * oversample] += 1;
        if (j0 + c1 * oversample < nbin) counts[j0 + c1 * oversample] -= 1;
        if (acc != NULL) { /* bin os q + res + os c is acc[res][q + c]: contiguous along the row */
            const idx_t res = ((j0 % oversample) + oversample) % oversample, q = (j0 - res) / oversample;
            double *dst = acc + res * nq; /* q + c >= 0 for every c from c0 (its bin is) */
            for (idx_t c = c0; c < c1; c++) dst[q + c] += row[c];
        } else {
            for (idx_t c = c0, j = j0 + c0 * oversample; c < c1; c++, j += oversample) sums[j] += row[c];
        }
        if (where)
            for (idx_t c = c0; c < c1; c++) where[j0 + c * oversample] += frac;
    }
    for (idx_t j = oversample; j < nbin; j++) counts[j] += counts[j - oversample];
    if (acc != NULL) {
        for (idx_t j = 0; j < nbin; j++) sums[j] = acc[(j % oversample) * nq + j / oversample];
        free(acc);
    }
}

/* esf: each filled bin's mean, empty bins on the line between their filled neighbours, the ends at the nearest
 * level (np.interp, sfrmat project2); returns the empty bins between the first and last filled one, -1 when
 * none is filled. */
idx_t sfrk_esf(const long long *counts, const double *sums, idx_t nbin, double *out) {
    idx_t first = -1, prev = -1, empty = 0;
    for (idx_t j = 0; j < nbin; j++) {
        if (counts[j] <= 0) continue;
        double v = sums[j] / (double)counts[j];
        out[j] = v;
        if (prev < 0) {
            first = j;
            for (idx_t i = 0; i < j; i++) out[i] = v;
        } else if (j > prev + 1) {
            double slope = (v - out[prev]) / (double)(j - prev);
            for (idx_t i = prev + 1; i < j; i++) out[i] = slope * (double)(i - prev) + out[prev];
            empty += j - prev - 1;
        }
        prev = j;
    }
    if (first < 0) {
        empty = -1;
    } else {
        for (idx_t i = prev + 1; i < nbin; i++) out[i] = out[prev];
    }
    return empty;
}

/* tail: the farthest distance (bins) from the centre where the ESF's moving average (smooth_px px) still leaves
 * its plateau (median of the outer eighth) by more than fraction of the contrast and 5 sigma of the noise of the
 * pixels averaged there (calibration.sfr._tail_extent_bins). 0, or -1 out of memory. */
int sfrk_tail(const double *e, const long long *counts, idx_t n, idx_t oversample, double noise, double contrast,
              double fraction, idx_t smooth_px, idx_t *reach) {
    double *csum;
    idx_t k = smooth_px * oversample, k8 = n / 8 > 1 ? n / 8 : 1;
    if (k > k8) k = k8;
    idx_t m = k > n / 8 ? k : n / 8;
    csum = (double *)malloc((size_t)(3 * (n + 1) + m) * sizeof(double));
    if (csum == NULL) return -1;
    double *nsum = csum + (n + 1), *psum = csum + 2 * (n + 1), *tmp = csum + 3 * (n + 1);
    csum[0] = nsum[0] = psum[0] = 0.0;
    for (idx_t j = 0; j < n; j++) {
        int f = counts[j] > 0;
        csum[j + 1] = csum[j] + e[j] * (double)f;
        nsum[j + 1] = nsum[j] + (double)f;
        psum[j + 1] = psum[j] + (double)counts[j];
    }
    memcpy(tmp, e, (size_t)m * sizeof(double));
    double lo = sfrk_select(tmp, m, m / 2);
    memcpy(tmp, e + n - m, (size_t)m * sizeof(double));
    double hi = sfrk_select(tmp, m, m / 2);
    const idx_t ns = n - k + 1, centre = n / 2 - k / 2;
    const double floor_thr = fraction * contrast;
    idx_t d_left = 0, d_right = 0;
    for (idx_t j = 0; j < ns; j++) {
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
    *reach = d_left > d_right ? d_left : d_right;
    free(csum);
    return 0;
}

/* lsf: the FIR [-0.5, 0.5] derivative of the ESF (out[j] at bin boundary j + 1, the last 0) under the window of
 * half-width half bins about bin centre. */
void sfrk_lsf(const double *e, idx_t nbin, idx_t centre, double half, int kind, double alpha, double *out) {
    for (idx_t j = 0; j + 1 < nbin; j++)
        out[j] = 0.5 * (e[j + 1] - e[j]) * sfrk_window((double)(j - centre) / half, kind, alpha);
    out[nbin - 1] = 0.0;
}

/* crossing: the first frequency where mtf falls below level, on the cubic through the two samples either side
 * (Newton from the linear root; sfr.mtf_crossing); nan if it never does. */
double sfrk_crossing(const double *freq, const double *mtf, idx_t n, double level) {
    idx_t i = 1;
    while (i < n && !(mtf[i] < level)) i++;
    if (i >= n) return NAN;
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
    return f0 + t * (f1 - f0);
}
