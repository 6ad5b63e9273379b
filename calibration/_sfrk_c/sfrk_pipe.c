/* e-SFR kernels, one edge from the ROI to the windowed LSF in one call (calibration.sfr's default path, ISO
 * 12233:2023 e-SFR): prep, the edge's location and fit (steps 2-3), the checks that refuse an edge, the rows of
 * whole phase cycles, the projection to the windowed LSF (steps 5-6); and the MTF from the LSF's spectrum (steps
 * 7-8). Any refusal returns 1 without a reason: calibration.sfr then runs its step-by-step path, which names it. */
#include <stdlib.h>
#include <string.h>

#include "sfrk.h"

/* Steps 2-3 (sfr._locate_edge without the plateau shading): the rows' area estimate, its line, the coarse rise,
 * `passes` windowed centroid passes each fitted. edge_x: the final fit at every row; coef (6), keep (nlin): the
 * final fit's. 0, 1 when a fit has too few rows, -1 out of memory. */
int sfrk_locate(const double *a, idx_t nlin, idx_t npix, const double *row_sums, double left, double contrast,
                int max_order, int select, int kind, double alpha, int passes, const fcrit_t *f, double *coef,
                unsigned char *keep, double *edge_x, fit_out_t *o, double *rise_out) {
    double *rows = (double *)malloc((size_t)nlin * (3 + SFRK_MAX_ORDER) * sizeof(double));
    if (rows == NULL) return -1;
    double *loc = rows + nlin, rise_px = 0.0;
    qr_cache_t qr = {rows + 2 * nlin, {0}, 0, 0, 0}; /* the passes fit the same rows: one QR while all are kept */
    for (idx_t r = 0; r < nlin; r++) {
        rows[r] = (double)r;
        /* the row's area: a step at x0 over [-0.5, W - 0.5] integrates to W - 0.5 - x0 */
        loc[r] = ((double)npix - 0.5) - (row_sums[r] - (double)npix * left) / contrast;
    }
    int rc = sfrk_fit(rows, loc, nlin, 1, 1, 3, f, coef, keep, edge_x, o, NULL);
    if (rc == 0) rc = sfrk_rise(a, nlin, npix, edge_x, &rise_px);
    /* min(max(3 rise + 4, 6), npix / 2) with Python's min/max (a nan passes as there) */
    double half_width = 3.0 * rise_px + 4.0;
    half_width = 6.0 > half_width ? 6.0 : half_width;
    half_width = (double)npix / 2.0 < half_width ? (double)npix / 2.0 : half_width;
    for (int pass = 0; pass < passes && rc == 0; pass++) {
        sfrk_centroids(a, nlin, npix, edge_x, half_width, kind, alpha, loc);
        rc = sfrk_fit(rows, loc, nlin, max_order, select, 3, f, coef, keep, edge_x, o, &qr);
    }
    free(rows);
    *rise_out = rise_px;
    return rc;
}

/* Steps 5-6 (sfr._esf_lsf without bin phases): the projection of rows row0 .. row0 + rows, the ESF, and -- unless
 * the empty bins refuse the edge (*inner < 0 or > nbin / 8: esf and lsf are then not filled) -- the LSF under its
 * window of half-width *half bins (span_auto: narrowed to `rises` rises or twice the tails' reach,
 * sfr._windowed_lsf). 0, or -1 out of memory. */
int sfrk_esf_lsf(const double *a, idx_t npix, const double *edge_x, idx_t row0, idx_t rows, const lsf_opts_t *p,
                 double noise, double contrast, double rise_px, long long *counts, double *esf, double *lsf,
                 idx_t *inner_out, double *half_out) {
    const idx_t nbin = p->oversample * npix, centre = nbin / 2 - 1;
    double *sums = (double *)malloc((size_t)nbin * sizeof(double));
    if (sums == NULL) return -1;
    double half = (double)(centre > nbin - 1 - centre ? centre : nbin - 1 - centre);
    idx_t reach = 0;
    int rc = 0;
    sfrk_project(a, npix, row0, 1, rows, edge_x, p->oversample, nbin, counts, sums, NULL);
    const idx_t inner = sfrk_esf(counts, sums, nbin, esf);
    if (inner >= 0 && inner <= nbin / 8) {
        if (p->span_auto) {
            rc = sfrk_tail(esf, counts, nbin, p->oversample, noise, contrast, p->fraction, p->smooth_px, &reach);
            /* min(half, max(max(rises * rise, min_half) * oversample, 2 reach)) with Python's min/max */
            double rise_bins = (p->min_half_px > p->rises * rise_px ? p->min_half_px : p->rises * rise_px)
                               * (double)p->oversample;
            double want = 2.0 * (double)reach > rise_bins ? 2.0 * (double)reach : rise_bins;
            half = want < half ? want : half;
        }
        if (rc == 0) sfrk_lsf(esf, nbin, centre, half, p->kind, p->alpha, lsf);
    }
    free(sums);
    *inner_out = inner;
    *half_out = half;
    return rc;
}

/* sfr.sfr's default path from the turned ROI a (nlin, npix; sfrk_prep's out) to the windowed LSF: the same checks,
 * in the same order, as calibration.sfr (contrast against noise, the fit's rows and scatter, the edge inside the
 * ROI, the angle, one phase cycle at least, the empty bins), each refusal 1. 0 when measured, -1 out of memory. */
int sfrk_measure(const double *a, idx_t nlin, idx_t npix, const measure_opts_t *m, const fcrit_t *f, double *coef,
                 unsigned char *keep, double *edge_x, long long *counts, double *esf, double *lsf,
                 measure_out_t *o) {
    const double contrast = o->right - o->left;
    double floor_c = m->min_cnr * o->noise, tiny = 1e-9 * o->scale;
    if (!(contrast > (floor_c > tiny ? floor_c : tiny)) || o->scale == 0.0) return 1;
    int rc = sfrk_locate(a, nlin, npix, o->row_sums, o->left, contrast, m->max_order, m->select, m->lsf.kind,
                         m->lsf.alpha, m->passes, f, coef, keep, edge_x, &o->fit, &o->rise_px);
    if (rc != 0) return rc;
    const double x_first = edge_x[0], x_last = edge_x[nlin - 1];
    const double lo = x_first < x_last ? x_first : x_last, hi = x_first < x_last ? x_last : x_first;
    if (!(o->fit.rms <= m->max_rms_px) || !((double)o->fit.nkept >= 0.5 * (double)nlin) || !(lo >= 0.0)
        || !(hi <= (double)npix - 1.0))
        return 1;
    const double slope = o->fit.slope_t / o->fit.scale, angle = atan(slope) * (180.0 / M_PI);
    if (!(fabs(angle) < 45.0)) return 1;
    const double cycles = floor((double)nlin * fabs(slope));
    if (!(cycles >= 1.0)) return 1;
    idx_t nkeep = nlin;
    if (m->integer_cycles) { /* min(nlin, max(MIN_ROI_PX, round(cycles / |slope|))), round half to even */
        const double want = nearbyint(cycles / fabs(slope));
        nkeep = want < (double)m->min_roi_px ? m->min_roi_px : (want > (double)nlin ? nlin : (idx_t)want);
        if (nkeep > nlin) nkeep = nlin;
    }
    o->nkeep = nkeep;
    rc = sfrk_esf_lsf(a, npix, edge_x, (nlin - nkeep) / 2, nkeep, &m->lsf, o->noise, contrast, o->rise_px, counts,
                      esf, lsf, &o->inner_empty, &o->half);
    if (rc != 0) return rc;
    const idx_t nbin = m->lsf.oversample * npix;
    return (o->inner_empty < 0 || o->inner_empty > nbin / 8) ? 1 : 0;
}

/* Steps 7-8 from the LSF's rfft spec (n complex values, interleaved): mtf = |spec| / |spec[0]| / divisor and freq
 * = kk / pitch (sfr._mtf), the MTF50 crossing (sfrk_crossing) and the MTF at at_freq by linear interpolation (nan
 * outside freq, sfr.mtf_at); *nreport: how many freq are <= max_freq (a prefix: freq rises). 1 when |spec[0]| is
 * not above 0 (nothing filled), else 0. */
int sfrk_mtf(const double *spec, idx_t n, const double *kk, const double *divisor, double pitch, double max_freq,
             double at_freq, double *freq, double *mtf, double *mtf50, double *mtf_at_freq, idx_t *nreport) {
    const double s0 = sqrt(spec[0] * spec[0] + spec[1] * spec[1]);
    if (!(s0 > 0.0)) return 1;
    idx_t report = 0;
    for (idx_t k = 0; k < n; k++) {
        mtf[k] = sqrt(spec[2 * k] * spec[2 * k] + spec[2 * k + 1] * spec[2 * k + 1]) / s0 / divisor[k];
        freq[k] = kk[k] / pitch;
        report += freq[k] <= max_freq;
    }
    *nreport = report;
    *mtf50 = sfrk_crossing(freq, mtf, n, 0.5);
    if (at_freq < freq[0] || at_freq > freq[n - 1]) {
        *mtf_at_freq = NAN;
    } else {
        idx_t j = 0; /* searchsorted(freq, at_freq, side="right") - 1 */
        while (j < n && freq[j] <= at_freq) j++;
        j -= 1;
        if (j >= n - 1) {
            *mtf_at_freq = mtf[n - 1];
        } else {
            const double x0 = freq[j], x1 = freq[j + 1], y0 = mtf[j], y1 = mtf[j + 1];
            *mtf_at_freq = (y1 - y0) / (x1 - x0) * (at_freq - x0) + y0;
        }
    }
    return 0;
}

/* rfft: the DFT X[k] = sum_j x[j] e^{-2 pi i j k / n}, k = 0 .. n/2, of n real x (n a power of two, >= 4) into
 * spec (n/2 + 1 complex, interleaved), as np.fft.rfft: the n/2-point complex FFT of z[j] = x[2j] + i x[2j+1]
 * (iterative radix-2, decimation in time; Cooley & Tukey 1965) split into the even and odd halves' spectra.
 * tw: cos(2 pi k / n) for k < n/2, then sin(2 pi k / n) for k < n/2. work: n doubles. */
void sfrk_rfft(const double *x, idx_t n, const double *tw, double *spec, double *work) {
    const idx_t m = n / 2;
    const double *tw_cos = tw, *tw_sin = tw + m;
    int bits = 0;
    while (((idx_t)1 << bits) < m) bits++;
    for (idx_t k = 0; k < m; k++) { /* bit-reversed order */
        idx_t r = 0;
        for (int b = 0; b < bits; b++) r |= ((k >> b) & 1) << (bits - 1 - b);
        work[2 * r] = x[2 * k];
        work[2 * r + 1] = x[2 * k + 1];
    }
    for (idx_t len = 2; len <= m; len <<= 1) {
        const idx_t half = len / 2, stride = n / len;
        for (idx_t s = 0; s < m; s += len)
            for (idx_t j = 0; j < half; j++) {
                const double wr = tw_cos[j * stride], wi = -tw_sin[j * stride];
                double *a = work + 2 * (s + j), *b = work + 2 * (s + j + half);
                const double tr = wr * b[0] - wi * b[1], ti = wr * b[1] + wi * b[0];
                b[0] = a[0] - tr;
                b[1] = a[1] - ti;
                a[0] += tr;
                a[1] += ti;
            }
    }
    /* X[k] = E[k] + e^{-2 pi i k / n} O[k]: E = (Z[k] + conj Z[m-k]) / 2, O = (Z[k] - conj Z[m-k]) / 2i */
    spec[0] = work[0] + work[1];
    spec[1] = 0.0;
    spec[2 * m] = work[0] - work[1];
    spec[2 * m + 1] = 0.0;
    for (idx_t k = 1; k < m; k++) {
        const double zr = work[2 * k], zi = work[2 * k + 1], cr = work[2 * (m - k)], ci = -work[2 * (m - k) + 1];
        const double er = 0.5 * (zr + cr), ei = 0.5 * (zi + ci);
        const double dr = 0.5 * (zr - cr), di = 0.5 * (zi - ci); /* O = (dr + i di) / i = di - i dr */
        const double orr = di, oi = -dr, wr = tw_cos[k], wi = -tw_sin[k];
        spec[2 * k] = er + (wr * orr - wi * oi);
        spec[2 * k + 1] = ei + (wr * oi + wi * orr);
    }
}
