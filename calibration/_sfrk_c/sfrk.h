/* e-SFR per-edge kernels (ISO 12233:2023 e-SFR; the maths is calibration/sfr.py's and sfr_fit.py's numpy
 * reference, step for step). Plain C on C-order float64 buffers, no Python: calibration/_sfrk_c/module.c binds
 * them as calibration._sfrk. Callers check every size; here the buffers are taken as given. */
#ifndef SFRK_H
#define SFRK_H

#include <math.h>
#include <stddef.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

typedef ptrdiff_t idx_t;

#define SFRK_MAX_ORDER 5

/* F critical values at sfr_fit.ALPHA: ftab[dnum * fcols + dden], dnum 0..4, dden 0..fcols-1. */
typedef struct {
    const double *ftab;
    idx_t fcols;
} fcrit_t;

/* What sfr_fit.fit_edge returns besides the coefficients, the rows kept and the fitted values. */
typedef struct {
    int order;
    double centre, scale, slope_t, bend, rms;
    idx_t nkept;
} fit_out_t;

/* The window of calibration.sfr._window at normalised offset u: kind 0 tukey, 1 hamming, 2 none. */
static inline double sfrk_window(double u, int kind, double alpha) {
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

/* sfrk_edge.c */
double sfrk_select(double *x, idx_t n, idx_t k);
int sfrk_prep(const double *a, idx_t h, idx_t w, double *out, double *row_sums, int *transposed, int *negated,
              double levels[2], double *noise, double *scale);
void sfrk_centroids(const double *a, idx_t nlin, idx_t npix, const double *centre, double half_width, int kind,
                    double alpha, double *loc);
int sfrk_rise(const double *a, idx_t nlin, idx_t npix, const double *edge, double *rise_px);

/* sfrk_fit.c */
int sfrk_fit(const double *y, const double *x, idx_t n, int max_order, int select, int rounds, const fcrit_t *f,
             double *coef, unsigned char *keep, double *fitted, fit_out_t *out);

/* sfrk_esf.c */
void sfrk_project(const double *a, idx_t npix, idx_t row0, idx_t row_step, idx_t rows, const double *edge,
                  idx_t oversample, idx_t nbin, long long *counts, double *sums, double *where);
idx_t sfrk_esf(const long long *counts, const double *sums, idx_t nbin, double *esf);
int sfrk_tail(const double *e, const long long *counts, idx_t n, idx_t oversample, double noise, double contrast,
              double fraction, idx_t smooth_px, idx_t *reach);
void sfrk_lsf(const double *e, idx_t nbin, idx_t centre, double half, int kind, double alpha, double *out);
double sfrk_crossing(const double *freq, const double *mtf, idx_t n, double level);

#endif
