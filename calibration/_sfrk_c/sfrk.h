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

/* The QR of one Vandermonde (m columns of n rows of t), kept between fits on the same y with every row kept
 * (sfrk_locate's centroid passes): q holds SFRK_MAX_ORDER + 1 columns of n. */
typedef struct {
    double *q;
    double R[36];
    idx_t n;
    int m, valid;
} qr_cache_t;

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

/* The LSF's options (sfr._esf_lsf, sfr._windowed_lsf). */
typedef struct {
    idx_t oversample, smooth_px;
    int span_auto, kind;
    double rises, min_half_px, fraction, alpha;
} lsf_opts_t;

/* sfr.sfr's options and limits for sfrk_measure. */
typedef struct {
    lsf_opts_t lsf;
    int max_order, select, passes, integer_cycles;
    idx_t min_roi_px;
    double min_cnr, max_rms_px;
} measure_opts_t;

/* sfrk_measure's in (prep's results: levels, noise, scale, row sums) and out (the fit, rise, rows, bins). */
typedef struct {
    double left, right, noise, scale;
    const double *row_sums;
    fit_out_t fit;
    double rise_px, half;
    idx_t nkeep, inner_empty;
} measure_out_t;

/* sfrk_edge.c */
double sfrk_select(double *x, idx_t n, idx_t k);
int sfrk_prep(const double *a, idx_t h, idx_t w, double *out, double *row_sums, int *transposed, int *negated,
              double levels[2], double *noise, double *scale, int always_copy, const double **turned);
void sfrk_centroids(const double *a, idx_t nlin, idx_t npix, const double *centre, double half_width, int kind,
                    double alpha, double *loc);
int sfrk_rise(const double *a, idx_t nlin, idx_t npix, const double *edge, double *rise_px);

/* sfrk_fit.c */
int sfrk_fit(const double *y, const double *x, idx_t n, int max_order, int select, int rounds, const fcrit_t *f,
             double *coef, unsigned char *keep, double *fitted, fit_out_t *out, qr_cache_t *cache);

/* sfrk_esf.c */
void sfrk_project(const double *a, idx_t npix, idx_t row0, idx_t row_step, idx_t rows, const double *edge,
                  idx_t oversample, idx_t nbin, long long *counts, double *sums, double *where);
idx_t sfrk_esf(const long long *counts, const double *sums, idx_t nbin, double *esf);
int sfrk_tail(const double *e, const long long *counts, idx_t n, idx_t oversample, double noise, double contrast,
              double fraction, idx_t smooth_px, idx_t *reach);
void sfrk_lsf(const double *e, idx_t nbin, idx_t centre, double half, int kind, double alpha, double *out);
double sfrk_crossing(const double *freq, const double *mtf, idx_t n, double level);

/* sfrk_pipe.c */
int sfrk_locate(const double *a, idx_t nlin, idx_t npix, const double *row_sums, double left, double contrast,
                int max_order, int select, int kind, double alpha, int passes, const fcrit_t *f, double *coef,
                unsigned char *keep, double *edge_x, fit_out_t *o, double *rise_out);
int sfrk_esf_lsf(const double *a, idx_t npix, const double *edge_x, idx_t row0, idx_t rows, const lsf_opts_t *p,
                 double noise, double contrast, double rise_px, long long *counts, double *esf, double *lsf,
                 idx_t *inner_out, double *half_out);
int sfrk_measure(const double *a, idx_t nlin, idx_t npix, const measure_opts_t *m, const fcrit_t *f, double *coef,
                 unsigned char *keep, double *edge_x, long long *counts, double *esf, double *lsf,
                 measure_out_t *o);
void sfrk_rfft(const double *x, idx_t n, const double *tw, double *spec, double *work);
int sfrk_mtf(const double *spec, idx_t n, const double *kk, const double *divisor, double pitch, double max_freq,
             double at_freq, double *freq, double *mtf, double *mtf50, double *mtf_at_freq, idx_t *nreport);

#endif
