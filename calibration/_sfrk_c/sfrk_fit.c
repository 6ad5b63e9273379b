/* e-SFR kernels, the edge fit of calibration/sfr_fit.py: ISO 12233:2023's polynomial x = p(y), its order chosen
 * per edge by an F-test (Draper & Smith, extra sum of squares), every order from one QR factorisation (modified
 * Gram-Schmidt here, Householder in numpy: the same fits, signs aside), rows beyond 4 sigma dropped. */
#include <stdlib.h>
#include <string.h>

#include "sfrk.h"

#define OUTLIER_SIGMAS 4.0
#define MIN_OUTLIER_LIMIT_PX 0.05
#define MIN_SAGITTA_PX 0.05

static inline double f_crit(const fcrit_t *f, idx_t dnum, idx_t dden) {
    if (dden >= f->fcols) dden = f->fcols - 1; /* the table covers every dof the ROI can give */
    return f->ftab[dnum * f->fcols + dden];
}

static int choose_order(const double *rss, idx_t n, int max_order, const fcrit_t *f) {
    for (int k = 1; k <= max_order; k++) {
        int better = 0;
        for (int j = k + 1; j <= max_order; j++) {
            idx_t dof = n - j - 1;
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
 * in t, the bend; returns the order, -1 on a singular system. work: 6 * n doubles. cache (or NULL): the Q and R of
 * these t from an earlier call on the same t, reused, or computed into it (sfrk_fit passes it when every row is kept). */
static int fit_kept(const double *t, const double *x, idx_t n, int max_order, int select,
                    const fcrit_t *f, double *coef, double *slope_t, double *bend, double *work, qr_cache_t *cache) {
    int order = max_order < n - 2 ? max_order : (int)(n - 2);
    double inv_n = 1.0 / (double)n, st = 0.0, sx = 0.0;
    for (idx_t i = 0; i < n; i++) {
        st += t[i];
        sx += x[i];
    }
    double tm = st * inv_n, xm = sx * inv_n, sxy = 0.0, sxx = 0.0;
    for (idx_t i = 0; i < n; i++) {
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
    const int reuse = cache != NULL && cache->valid && cache->m == m && cache->n == n;
    double *q = cache != NULL ? cache->q : work; /* (m, n): column c of the Vandermonde, then of Q */
    double R_own[36] = {0}, z[6];
    double *R = cache != NULL ? cache->R : R_own;
    if (!reuse) {
        if (cache != NULL) {
            cache->valid = 0;
            memset(cache->R, 0, sizeof(cache->R));
        }
        for (idx_t i = 0; i < n; i++) {
            double p = 1.0;
            for (int c = 0; c < m; c++) {
                q[c * n + i] = p;
                p *= t[i];
            }
        }
        /* QR by modified Gram-Schmidt (signs aside, numpy's reduced QR): q orthonormal columns, R upper */
        for (int c = 0; c < m; c++) {
            double *qc = q + c * n;
            for (int p = 0; p < c; p++) {
                const double *qp = q + p * n;
                double s = 0.0;
                for (idx_t i = 0; i < n; i++) s += qp[i] * qc[i];
                R[p * m + c] = s;
                for (idx_t i = 0; i < n; i++) qc[i] -= s * qp[i];
            }
            double s = 0.0;
            for (idx_t i = 0; i < n; i++) s += qc[i] * qc[i];
            s = sqrt(s);
            if (s == 0.0) return -1;
            R[c * m + c] = s;
            for (idx_t i = 0; i < n; i++) qc[i] /= s;
        }
        if (cache != NULL) {
            cache->valid = 1;
            cache->m = m;
            cache->n = n;
        }
    }
    for (int c = 0; c < m; c++) {
        double s = 0.0;
        for (idx_t i = 0; i < n; i++) s += q[c * n + i] * x[i];
        z[c] = s;
    }
    int k = order;
    if (select) { /* the highest order against the line first */
        double rss_line = 0.0, rss_full = 0.0;
        for (idx_t i = 0; i < n; i++) {
            double rl = x[i] - (line0 + line_slope * t[i]);
            double v = 0.0;
            for (int c = 0; c < m; c++) v += q[c * n + i] * z[c];
            double rf = x[i] - v;
            rss_line += rl * rl;
            rss_full += rf * rf;
        }
        idx_t dof = n - order - 1;
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
        for (idx_t i = 0; i < n; i++) {
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

/* sfr_fit.fit_edge: robust x = p(y) of order up to max_order (chosen by the F-test when select), rows more than
 * 4 sigma off dropped, up to rounds times. coef: 6 out (lowest power first, of t = (y - centre) / scale), keep:
 * n out, fitted: p at every y (n out). 0, 1 when too few rows are left (FitError), -1 out of memory. */
int sfrk_fit(const double *y, const double *x, idx_t n, int max_order, int select, int rounds, const fcrit_t *f,
             double *coef, unsigned char *keep, double *fitted, fit_out_t *out, qr_cache_t *cache) {
    double *work = (double *)malloc((size_t)n * 9 * sizeof(double));
    if (work == NULL) return -1;
    double *tk = work + 7 * n, *xk = work + 8 * n;
    double centre = 0.5 * (y[0] + y[n - 1]);
    double scale = 0.5 * fabs(y[n - 1] - y[0]);
    if (scale < 1.0) scale = 1.0;
    const double inv_scale = 1.0 / scale;
    for (idx_t i = 0; i < n; i++) keep[i] = isfinite(x[i]) != 0;
    int order = 1;
    double slope_t = 0.0, bend = 0.0;
    memset(coef, 0, 6 * sizeof(double));
    for (int round = 0; round < rounds; round++) {
        idx_t nk = 0;
        for (idx_t i = 0; i < n; i++)
            if (keep[i]) {
                tk[nk] = (y[i] - centre) / scale;
                xk[nk++] = x[i];
            }
        if (nk < max_order + 2) {
            free(work);
            return 1;
        }
        memset(coef, 0, 6 * sizeof(double));
        order = fit_kept(tk, xk, nk, max_order, select, f, coef, &slope_t, &bend, work, nk == n ? cache : NULL);
        if (order < 0) {
            free(work);
            return 1;
        }
        /* residuals of every row against this fit (EdgeFit.__call__'s Horner), the 4-sigma rule */
        double sum_res = 0.0;
        for (idx_t i = 0; i < n; i++) {
            double t = (y[i] - centre) * inv_scale, v = t * coef[order] + coef[order - 1];
            for (int c = order - 2; c >= 0; c--) v = v * t + coef[c];
            fitted[i] = v;
            work[i] = fabs(x[i] - v);
            if (keep[i]) sum_res += work[i];
        }
        double limit = OUTLIER_SIGMAS * 1.2533 * sum_res / (double)nk;
        if (limit < MIN_OUTLIER_LIMIT_PX) limit = MIN_OUTLIER_LIMIT_PX;
        int same = 1;
        for (idx_t i = 0; i < n; i++) {
            unsigned char nk_i = isfinite(x[i]) && work[i] <= limit;
            if (nk_i != keep[i]) same = 0;
            work[n + i] = nk_i; /* staged: keep changes only after the comparison */
        }
        if (same) break;
        for (idx_t i = 0; i < n; i++) keep[i] = (unsigned char)work[n + i];
    }
    /* RMS residual over the rows kept (work still holds |x - p(y)| of the final coefficients) */
    double ss = 0.0;
    idx_t nkept = 0;
    for (idx_t i = 0; i < n; i++)
        if (keep[i]) {
            ss += work[i] * work[i];
            nkept++;
        }
    out->order = order;
    out->centre = centre;
    out->scale = scale;
    out->slope_t = slope_t;
    out->bend = bend;
    out->rms = nkept ? sqrt(ss / (double)nkept) : NAN;
    out->nkept = nkept;
    free(work);
    return 0;
}
