/* calibration._sfrk: the e-SFR kernels (sfrk_edge.c, sfrk_fit.c, sfrk_esf.c, sfrk_pipe.c) bound to Python.
 *
 * Every buffer is taken with the buffer protocol (C-contiguous float64, int64 counts, uint8 masks); the sizes are
 * checked against the dimensions given, a mismatch is a ValueError. prep, locate, esf_lsf, measure and mtf_lsf
 * release the GIL while they compute (they touch only the buffers they hold), so edges measured on threads run in
 * parallel. calibration/sfr.py calls ``measure`` (one edge from the ROI to its MTF) for the common options, and
 * ``prep``, ``locate`` (steps 2-3), ``esf_lsf`` (steps 5-6) and ``mtf``/``mtf_lsf`` (steps 7-8) or the single-step
 * kernels otherwise. Built by setup.py as an optional extension: without a C compiler calibration.sfr runs its numpy
 * path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

#include "sfrk.h"

#define F8 ((Py_ssize_t)sizeof(double))

static PyObject *bad_size(const char *what) {
    PyErr_Format(PyExc_ValueError, "sfr %s: buffer sizes do not match", what);
    return NULL;
}

/* Releases n buffers (those with an owner) and passes result through. */
static PyObject *release(PyObject *result, Py_buffer *b[], int n) {
    for (int i = 0; i < n; i++)
        if (b[i]->obj != NULL) PyBuffer_Release(b[i]);
    return result;
}

/* prep(src, h, w, dst, row_sums) -> (transposed, negated, left, right, noise, scale), None when not finite. */
static PyObject *py_prep(PyObject *self, PyObject *args) {
    Py_buffer src = {0}, dst = {0}, rsb = {0};
    Py_buffer *all[] = {&src, &dst, &rsb};
    Py_ssize_t h, w;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnw*w*", &src, &h, &w, &dst, &rsb)) return release(NULL, all, 3);
    if (h < 2 || w < 2 || src.len < h * w * F8 || dst.len < h * w * F8 || rsb.len < (h > w ? h : w) * F8)
        return release(bad_size("prep"), all, 3);
    int transposed, negated;
    double levels[2], noise, scale;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    const double *turned;
    rc = sfrk_prep(src.buf, h, w, dst.buf, rsb.buf, &transposed, &negated, levels, &noise, &scale, 1, &turned);
    Py_END_ALLOW_THREADS
    if (rc < 0) return release(PyErr_NoMemory(), all, 3);
    if (rc > 0) return release(Py_NewRef(Py_None), all, 3);
    return release(Py_BuildValue("(iidddd)", transposed, negated, levels[0], levels[1], noise, scale), all, 3);
}

/* centroids(a, nlin, npix, centre_x, half_width, kind, alpha, loc): windowed per-row centroids. */
static PyObject *py_centroids(PyObject *self, PyObject *args) {
    Py_buffer src = {0}, cx = {0}, dst = {0};
    Py_buffer *all[] = {&src, &cx, &dst};
    Py_ssize_t nlin, npix;
    double half_width, alpha;
    int kind;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*didw*", &src, &nlin, &npix, &cx, &half_width, &kind, &alpha, &dst))
        return release(NULL, all, 3);
    if (nlin < 1 || npix < 2 || src.len < nlin * npix * F8 || cx.len < nlin * F8 || dst.len < nlin * F8
        || !(half_width > 0.0))
        return release(bad_size("centroids"), all, 3);
    sfrk_centroids(src.buf, nlin, npix, cx.buf, half_width, kind, alpha, dst.buf);
    return release(Py_NewRef(Py_None), all, 3);
}

/* project(a, nlin, npix, row0, row_step, rows, edge_x, oversample, nbin, counts, sums, where_or_None). */
static PyObject *py_project(PyObject *self, PyObject *args) {
    Py_buffer src = {0}, ex = {0}, cnt = {0}, sm = {0}, wh = {0};
    Py_buffer *all[] = {&src, &ex, &cnt, &sm, &wh};
    PyObject *where_obj;
    Py_ssize_t nlin, npix, row0, row_step, rows, oversample, nbin;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnnnny*nnw*w*O", &src, &nlin, &npix, &row0, &row_step, &rows, &ex, &oversample,
                          &nbin, &cnt, &sm, &where_obj))
        return release(NULL, all, 5);
    if (where_obj != Py_None && PyObject_GetBuffer(where_obj, &wh, PyBUF_WRITABLE) < 0) return release(NULL, all, 5);
    if (rows < 1 || row_step < 1 || row0 < 0 || row0 + (rows - 1) * row_step >= nlin || oversample < 1 || nbin < 1
        || src.len < nlin * npix * F8 || ex.len < nlin * F8 || cnt.len < nbin * 8 || sm.len < nbin * F8
        || (wh.obj != NULL && wh.len < nbin * F8))
        return release(bad_size("project"), all, 5);
    sfrk_project(src.buf, npix, row0, row_step, rows, ex.buf, oversample, nbin, cnt.buf, sm.buf,
                 wh.obj != NULL ? wh.buf : NULL);
    return release(Py_NewRef(Py_None), all, 5);
}

/* fit(y, x, n, max_order, select, rounds, ftab, fcols, coef, keep, fitted) -> (order, centre, scale, slope_t,
 * bend, rms), None when too few rows are left (FitError). */
static PyObject *py_fit(PyObject *self, PyObject *args) {
    Py_buffer yb = {0}, xb = {0}, fb = {0}, cb = {0}, kb = {0}, vb = {0};
    Py_buffer *all[] = {&yb, &xb, &fb, &cb, &kb, &vb};
    Py_ssize_t n, fcols;
    int max_order, select, rounds;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*niiiy*nw*w*w*", &yb, &xb, &n, &max_order, &select, &rounds, &fb, &fcols, &cb,
                          &kb, &vb))
        return release(NULL, all, 6);
    if (n < 1 || max_order < 1 || max_order > SFRK_MAX_ORDER || fcols < 2 || yb.len < n * F8 || xb.len < n * F8
        || fb.len < SFRK_MAX_ORDER * fcols * F8 || cb.len < 6 * F8 || kb.len < n || vb.len < n * F8)
        return release(bad_size("fit"), all, 6);
    fcrit_t f = {fb.buf, fcols};
    fit_out_t o;
    int rc = sfrk_fit(yb.buf, xb.buf, n, max_order, select, rounds, &f, cb.buf, kb.buf, vb.buf, &o, NULL);
    if (rc < 0) return release(PyErr_NoMemory(), all, 6);
    if (rc > 0) return release(Py_NewRef(Py_None), all, 6);
    return release(Py_BuildValue("(iddddd)", o.order, o.centre, o.scale, o.slope_t, o.bend, o.rms), all, 6);
}

/* rise(a, nlin, npix, edge_x) -> 10-90% rise, px. */
static PyObject *py_rise(PyObject *self, PyObject *args) {
    Py_buffer src = {0}, ex = {0};
    Py_buffer *all[] = {&src, &ex};
    Py_ssize_t nlin, npix;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*", &src, &nlin, &npix, &ex)) return release(NULL, all, 2);
    if (nlin < 1 || npix < 2 || src.len < nlin * npix * F8 || ex.len < nlin * F8) return release(bad_size("rise"), all, 2);
    double rise_px;
    if (sfrk_rise(src.buf, nlin, npix, ex.buf, &rise_px) < 0) return release(PyErr_NoMemory(), all, 2);
    return release(PyFloat_FromDouble(rise_px), all, 2);
}

/* esf(counts, sums, nbin, esf) -> inner empty bins (-1: none filled). */
static PyObject *py_esf(PyObject *self, PyObject *args) {
    Py_buffer cb = {0}, sb = {0}, eb = {0};
    Py_buffer *all[] = {&cb, &sb, &eb};
    Py_ssize_t nbin;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nw*", &cb, &sb, &nbin, &eb)) return release(NULL, all, 3);
    if (nbin < 1 || cb.len < nbin * 8 || sb.len < nbin * F8 || eb.len < nbin * F8) return release(bad_size("esf"), all, 3);
    return release(PyLong_FromSsize_t(sfrk_esf(cb.buf, sb.buf, nbin, eb.buf)), all, 3);
}

/* tail(esf, counts, nbin, oversample, noise, contrast, fraction, smooth_px) -> the tails' reach, bins. */
static PyObject *py_tail(PyObject *self, PyObject *args) {
    Py_buffer eb = {0}, cb = {0};
    Py_buffer *all[] = {&eb, &cb};
    Py_ssize_t n, oversample, smooth_px, reach;
    double noise, contrast, fraction;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nndddn", &eb, &cb, &n, &oversample, &noise, &contrast, &fraction, &smooth_px))
        return release(NULL, all, 2);
    if (n < 2 || oversample < 1 || smooth_px < 1 || eb.len < n * F8 || cb.len < n * 8)
        return release(bad_size("tail"), all, 2);
    if (sfrk_tail(eb.buf, cb.buf, n, oversample, noise, contrast, fraction, smooth_px, &reach) < 0)
        return release(PyErr_NoMemory(), all, 2);
    return release(PyLong_FromSsize_t(reach), all, 2);
}

/* lsf(esf, nbin, centre, half, kind, alpha, lsf): the windowed derivative. */
static PyObject *py_lsf(PyObject *self, PyObject *args) {
    Py_buffer eb = {0}, lb = {0};
    Py_buffer *all[] = {&eb, &lb};
    Py_ssize_t nbin, centre;
    double half, alpha;
    int kind;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nndidw*", &eb, &nbin, &centre, &half, &kind, &alpha, &lb)) return release(NULL, all, 2);
    if (nbin < 2 || eb.len < nbin * F8 || lb.len < nbin * F8 || !(half > 0.0)) return release(bad_size("lsf"), all, 2);
    sfrk_lsf(eb.buf, nbin, centre, half, kind, alpha, lb.buf);
    return release(Py_NewRef(Py_None), all, 2);
}

/* crossing(freq, mtf, n, level) -> the first crossing of level (cubic), nan if none. */
static PyObject *py_crossing(PyObject *self, PyObject *args) {
    Py_buffer fb = {0}, mb = {0};
    Py_buffer *all[] = {&fb, &mb};
    Py_ssize_t n;
    double level;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nd", &fb, &mb, &n, &level)) return release(NULL, all, 2);
    if (n < 1 || fb.len < n * F8 || mb.len < n * F8) return release(bad_size("crossing"), all, 2);
    return release(PyFloat_FromDouble(sfrk_crossing(fb.buf, mb.buf, n, level)), all, 2);
}

/* locate(a, nlin, npix, row_sums, left, contrast, max_order, select, kind, alpha, passes, ftab, fcols, coef, keep,
 * edge_x) -> (order, centre, scale, slope_t, bend, rms, nkept, rise_px), None when a fit has too few rows.
 * Steps 2-3 of calibration.sfr in one call: the rows' area estimate, its line, the coarse rise, and `passes`
 * windowed centroid passes each fitted (sfr._locate_edge without the plateau shading). edge_x: the final fit at
 * every row (nlin out); coef (6), keep (nlin): the final fit's. */
static PyObject *py_locate(PyObject *self, PyObject *args) {
    Py_buffer src = {0}, rsb = {0}, fb = {0}, cb = {0}, kb = {0}, eb = {0};
    Py_buffer *all[] = {&src, &rsb, &fb, &cb, &kb, &eb};
    Py_ssize_t nlin, npix, fcols;
    double left, contrast, alpha;
    int max_order, select, kind, passes;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*ddiiidiy*nw*w*w*", &src, &nlin, &npix, &rsb, &left, &contrast, &max_order,
                          &select, &kind, &alpha, &passes, &fb, &fcols, &cb, &kb, &eb))
        return release(NULL, all, 6);
    if (nlin < 2 || npix < 2 || max_order < 1 || max_order > SFRK_MAX_ORDER || fcols < 2 || passes < 1
        || src.len < nlin * npix * F8 || rsb.len < nlin * F8 || fb.len < SFRK_MAX_ORDER * fcols * F8
        || cb.len < 6 * F8 || kb.len < nlin || eb.len < nlin * F8)
        return release(bad_size("locate"), all, 6);
    const fcrit_t f = {fb.buf, fcols};
    fit_out_t o;
    double rise_px = 0.0;
    int rc;
    Py_BEGIN_ALLOW_THREADS /* plain C on buffers this call holds: other threads (an analysis pool) run meanwhile */
    rc = sfrk_locate(src.buf, nlin, npix, rsb.buf, left, contrast, max_order, select, kind, alpha, passes, &f, cb.buf,
                     kb.buf, eb.buf, &o, &rise_px);
    Py_END_ALLOW_THREADS
    if (rc < 0) return release(PyErr_NoMemory(), all, 6);
    if (rc > 0) return release(Py_NewRef(Py_None), all, 6);
    return release(Py_BuildValue("(idddddnd)", o.order, o.centre, o.scale, o.slope_t, o.bend, o.rms,
                                 (Py_ssize_t)o.nkept, rise_px),
                   all, 6);
}

/* esf_lsf(a, nlin, npix, edge_x, row0, rows, oversample, nbin, noise, contrast, rise_px, span_auto, rises,
 * min_half_px, fraction, smooth_px, kind, alpha, counts, esf, lsf) -> (inner_empty, half): steps 5-6 of
 * calibration.sfr in one call (no bin phases): the projection, the ESF, and -- unless the empty bins refuse the
 * edge (inner_empty < 0 or > nbin / 8: esf and lsf are then not filled) -- the LSF under its window of half-width
 * half bins (span_auto: narrowed to three rises or twice the tails' reach, sfr._windowed_lsf). */
static PyObject *py_esf_lsf(PyObject *self, PyObject *args) {
    Py_buffer src = {0}, ex = {0}, cb = {0}, eb = {0}, lb = {0};
    Py_buffer *all[] = {&src, &ex, &cb, &eb, &lb};
    Py_ssize_t nlin, npix, row0, rows, oversample, nbin, smooth_px;
    double noise, contrast, rise_px, rises, min_half_px, fraction, alpha;
    int span_auto, kind;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*nnnndddidddnidw*w*w*", &src, &nlin, &npix, &ex, &row0, &rows, &oversample,
                          &nbin, &noise, &contrast, &rise_px, &span_auto, &rises, &min_half_px, &fraction, &smooth_px,
                          &kind, &alpha, &cb, &eb, &lb))
        return release(NULL, all, 5);
    if (rows < 1 || row0 < 0 || row0 + rows > nlin || oversample < 1 || nbin < 2 || smooth_px < 1
        || src.len < nlin * npix * F8 || ex.len < nlin * F8 || cb.len < nbin * 8 || eb.len < nbin * F8
        || lb.len < nbin * F8)
        return release(bad_size("esf_lsf"), all, 5);
    if (nbin != oversample * npix) return release(bad_size("esf_lsf"), all, 5);
    const lsf_opts_t p = {oversample, smooth_px, span_auto, kind, rises, min_half_px, fraction, alpha};
    Py_ssize_t inner;
    double half;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = sfrk_esf_lsf(src.buf, npix, ex.buf, row0, rows, &p, noise, contrast, rise_px, cb.buf, eb.buf, lb.buf, &inner,
                      &half);
    Py_END_ALLOW_THREADS
    if (rc < 0) return release(PyErr_NoMemory(), all, 5);
    return release(Py_BuildValue("(nd)", inner, half), all, 5);
}

/* The MTF (steps 7-8) of a measured edge from its LSF, when the caller gave the tables of its length (tab: cos,
 * then sin, of 2 pi k / nbin for k < nbin / 2, the frequencies kk and the divisors, nbin / 2 + 1 each; nbin a power
 * of two): mtf50, the MTF at at_freq, the frequencies reported; *nreport -1 when not computed (no table, or the LSF
 * integrates to zero: calibration.sfr's own call says so). 0, or -1 out of memory. */
static int measure_mtf(const double *lsf, idx_t nbin, const Py_buffer *tab, double slope, idx_t oversample,
                       double max_freq, double at_freq, const Py_buffer *fb, const Py_buffer *mb, double *mtf50,
                       double *at, Py_ssize_t *nreport) {
    const idx_t nf = nbin / 2 + 1;
    *nreport = -1;
    if (tab->obj == NULL || nbin < 4 || (nbin & (nbin - 1)) != 0 || tab->len < (nbin + 2 * nf) * F8
        || fb->len < nf * F8 || mb->len < nf * F8)
        return 0;
    double *spec = (double *)malloc((size_t)(2 * nf + nbin) * sizeof(double));
    if (spec == NULL) return -1;
    const double *t = tab->buf;
    sfrk_rfft(lsf, nbin, t, spec, spec + 2 * nf);
    const double pitch = cos(atan(slope)) / (double)oversample; /* sfr._result's, from the same libm */
    if (sfrk_mtf(spec, nf, t + nbin, t + nbin + nf, pitch, max_freq, at_freq, fb->buf, mb->buf, mtf50, at, nreport))
        *nreport = -1;
    free(spec);
    return 0;
}

/* measure(src, h, w, opts, ftab, fcols, a, row_sums, coef, keep, edge_x, counts, esf, lsf, tab_v, tab_h, freq, mtf)
 * -> (turned, negated, left, right, noise, scale, order, centre, scale_t, slope_t, bend, rms, rise_px, nkeep,
 * inner_empty, half, mtf50, mtf_at, nreport), None when the edge is refused (calibration.sfr's step path then says
 * why). sfr.sfr's default path in one call: prep (src (h, w) turned into a), sfrk_measure, and the MTF with the
 * tables of the LSF's length (tab_v: oversample * w, the edge found vertical; tab_h: oversample * h; either None:
 * nreport -1, the caller computes the MTF). opts: 17 float64, calibration.sfr_steps.measure_options's order. a:
 * h * w; row_sums, keep, edge_x: max(h, w); counts, esf, lsf: oversample * max(h, w) (the first oversample * npix
 * used); freq, mtf: oversample * max(h, w) / 2 + 1. */
static PyObject *py_measure(PyObject *self, PyObject *args) {
    Py_buffer src = {0}, ob = {0}, fb = {0}, ab = {0}, rsb = {0}, cb = {0}, kb = {0}, eb = {0}, nb = {0}, sb = {0},
              lb = {0}, tvb = {0}, thb = {0}, frb = {0}, mtb = {0};
    Py_buffer *all[] = {&src, &ob, &fb, &ab, &rsb, &cb, &kb, &eb, &nb, &sb, &lb, &tvb, &thb, &frb, &mtb};
    enum { NB = 15 };
    PyObject *tv_obj, *th_obj;
    Py_ssize_t h, w, fcols;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nny*y*nw*w*w*w*w*w*w*w*OOw*w*", &src, &h, &w, &ob, &fb, &fcols, &ab, &rsb, &cb,
                          &kb, &eb, &nb, &sb, &lb, &tv_obj, &th_obj, &frb, &mtb))
        return release(NULL, all, NB);
    if ((tv_obj != Py_None && PyObject_GetBuffer(tv_obj, &tvb, PyBUF_SIMPLE) < 0)
        || (th_obj != Py_None && PyObject_GetBuffer(th_obj, &thb, PyBUF_SIMPLE) < 0))
        return release(NULL, all, NB);
    const double *op = ob.buf;
    const Py_ssize_t big = h > w ? h : w, oversample = ob.len >= 17 * F8 ? (Py_ssize_t)op[5] : 0;
    if (h < 2 || w < 2 || ob.len < 17 * F8 || oversample < 1 || fcols < 2 || src.len < h * w * F8
        || ab.len < h * w * F8 || rsb.len < big * F8 || fb.len < SFRK_MAX_ORDER * fcols * F8 || cb.len < 6 * F8
        || kb.len < big || eb.len < big * F8 || nb.len < oversample * big * 8 || sb.len < oversample * big * F8
        || lb.len < oversample * big * F8 || !(op[0] >= 1 && op[0] <= SFRK_MAX_ORDER) || !(op[4] >= 1)
        || !(op[10] >= 1))
        return release(bad_size("measure"), all, NB);
    const measure_opts_t m = {
        {oversample, (idx_t)op[10], op[6] != 0.0, (int)op[2], op[7], op[8], op[9], op[3]},
        (int)op[0], op[1] != 0.0, (int)op[4], op[11] != 0.0, (idx_t)op[12], op[13], op[14]};
    const fcrit_t f = {fb.buf, fcols};
    measure_out_t o = {0};
    int turned = 0, negated = 0, rc;
    double levels[2], mtf50 = NAN, at = NAN;
    Py_ssize_t nreport = -1;
    Py_BEGIN_ALLOW_THREADS
    const double *a = NULL; /* the ROI turned: in ab, or src itself when it needs no turning */
    rc = sfrk_prep(src.buf, h, w, ab.buf, rsb.buf, &turned, &negated, levels, &o.noise, &o.scale, 0, &a);
    if (rc == 0) {
        o.left = levels[0];
        o.right = levels[1];
        o.row_sums = rsb.buf;
        rc = sfrk_measure(a, turned ? w : h, turned ? h : w, &m, &f, cb.buf, kb.buf, eb.buf, nb.buf, sb.buf, lb.buf,
                          &o);
    }
    if (rc == 0)
        rc = measure_mtf(lb.buf, oversample * (turned ? h : w), turned ? &thb : &tvb, o.fit.slope_t / o.fit.scale,
                         oversample, op[15], op[16], &frb, &mtb, &mtf50, &at, &nreport);
    Py_END_ALLOW_THREADS
    if (rc < 0) return release(PyErr_NoMemory(), all, NB);
    if (rc > 0) return release(Py_NewRef(Py_None), all, NB);
    return release(Py_BuildValue("(iiddddiddddddnndddn)", turned, negated, o.left, o.right, o.noise, o.scale,
                                 o.fit.order, o.fit.centre, o.fit.scale, o.fit.slope_t, o.fit.bend, o.fit.rms,
                                 o.rise_px, (Py_ssize_t)o.nkeep, (Py_ssize_t)o.inner_empty, o.half, mtf50, at,
                                 nreport),
                   all, NB);
}

/* mtf(spec, n, kk, divisor, pitch, max_freq, at_freq, freq, mtf) -> (mtf50, mtf_at_freq, nreport), None when
 * |spec[0]| is not above 0: steps 7-8 from the LSF's rfft (n complex128 values). */
static PyObject *py_mtf(PyObject *self, PyObject *args) {
    Py_buffer sb = {0}, kb = {0}, db = {0}, fb = {0}, mb = {0};
    Py_buffer *all[] = {&sb, &kb, &db, &fb, &mb};
    Py_ssize_t n, nreport;
    double pitch, max_freq, at_freq, mtf50, at;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*y*dddw*w*", &sb, &n, &kb, &db, &pitch, &max_freq, &at_freq, &fb, &mb))
        return release(NULL, all, 5);
    if (n < 1 || sb.len < 2 * n * F8 || kb.len < n * F8 || db.len < n * F8 || fb.len < n * F8 || mb.len < n * F8)
        return release(bad_size("mtf"), all, 5);
    if (sfrk_mtf(sb.buf, n, kb.buf, db.buf, pitch, max_freq, at_freq, fb.buf, mb.buf, &mtf50, &at, &nreport))
        return release(Py_NewRef(Py_None), all, 5);
    return release(Py_BuildValue("(ddn)", mtf50, at, nreport), all, 5);
}

/* mtf_lsf(lsf, n, tw, kk, divisor, pitch, max_freq, at_freq, freq, mtf) -> as mtf, from the LSF itself (n real
 * values, n a power of two >= 4; its rfft by sfrk_rfft with the twiddles tw: cos, then sin, of 2 pi k / n for
 * k < n / 2): freq and mtf get n / 2 + 1 values. */
static PyObject *py_mtf_lsf(PyObject *self, PyObject *args) {
    Py_buffer lb = {0}, tb = {0}, kb = {0}, db = {0}, fb = {0}, mb = {0};
    Py_buffer *all[] = {&lb, &tb, &kb, &db, &fb, &mb};
    Py_ssize_t n, nreport;
    double pitch, max_freq, at_freq, mtf50, at;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*dddw*w*", &lb, &n, &tb, &kb, &db, &pitch, &max_freq, &at_freq, &fb, &mb))
        return release(NULL, all, 6);
    const Py_ssize_t nf = n / 2 + 1;
    if (n < 4 || (n & (n - 1)) != 0 || lb.len < n * F8 || tb.len < n * F8 || kb.len < nf * F8 || db.len < nf * F8
        || fb.len < nf * F8 || mb.len < nf * F8)
        return release(bad_size("mtf_lsf"), all, 6);
    double *spec = (double *)malloc((size_t)(2 * nf + n) * sizeof(double));
    if (spec == NULL) return release(PyErr_NoMemory(), all, 6);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    sfrk_rfft(lb.buf, n, tb.buf, spec, spec + 2 * nf);
    rc = sfrk_mtf(spec, nf, kb.buf, db.buf, pitch, max_freq, at_freq, fb.buf, mb.buf, &mtf50, &at, &nreport);
    Py_END_ALLOW_THREADS
    free(spec);
    if (rc) return release(Py_NewRef(Py_None), all, 6);
    return release(Py_BuildValue("(ddn)", mtf50, at, nreport), all, 6);
}

static PyMethodDef methods[] = {
    {"prep", py_prep, METH_VARARGS, "prep(src, h, w, dst, row_sums) -> (transposed, negated, left, right, noise, scale)"},
    {"centroids", py_centroids, METH_VARARGS, "centroids(a, nlin, npix, centre_x, half_width, kind, alpha, loc)"},
    {"project", py_project, METH_VARARGS,
     "project(a, nlin, npix, row0, row_step, rows, edge_x, oversample, nbin, counts, sums, where): ESF bins"},
    {"fit", py_fit, METH_VARARGS,
     "fit(y, x, n, max_order, select, rounds, ftab, fcols, coef, keep, fitted) -> (order, centre, scale, slope_t, "
     "bend, rms)"},
    {"rise", py_rise, METH_VARARGS, "rise(a, nlin, npix, edge_x) -> 10-90% rise, px"},
    {"esf", py_esf, METH_VARARGS, "esf(counts, sums, nbin, esf) -> inner empty bins (-1: none filled)"},
    {"tail", py_tail, METH_VARARGS,
     "tail(esf, counts, nbin, oversample, noise, contrast, fraction, smooth_px) -> tail reach, bins"},
    {"lsf", py_lsf, METH_VARARGS, "lsf(esf, nbin, centre, half, kind, alpha, lsf): windowed derivative"},
    {"crossing", py_crossing, METH_VARARGS, "crossing(freq, mtf, n, level) -> first crossing of level (cubic)"},
    {"locate", py_locate, METH_VARARGS, "locate(...) -> the edge's fit, steps 2-3 (see module.c)"},
    {"esf_lsf", py_esf_lsf, METH_VARARGS, "esf_lsf(...) -> (inner_empty, half), steps 5-6 (see module.c)"},
    {"measure", py_measure, METH_VARARGS, "measure(...) -> one edge to its windowed LSF, or None (see module.c)"},
    {"mtf", py_mtf, METH_VARARGS, "mtf(...) -> (mtf50, mtf_at_freq, nreport): steps 7-8 (see module.c)"},
    {"mtf_lsf", py_mtf_lsf, METH_VARARGS, "mtf_lsf(...) -> (mtf50, mtf_at_freq, nreport): rfft and steps 7-8"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sfrk", "e-SFR kernels (C)", -1, methods};

PyMODINIT_FUNC PyInit__sfrk(void) { return PyModule_Create(&module); }
