/* deltagrad._native: CPU kernels that each do the work of several NumPy calls.
 *
 * A small network's training step is bound by the cost of calls, not by arithmetic: NumPy spends about
 * 0.3-1 µs on each call whatever its size, and a softmax cross-entropy, a ReLU, a momentum or an Adam
 * update of many parameters are 3 to 50 calls each. These kernels do each in one. They are optional:
 * backend.py uses them when this module was built (pip builds it where a C compiler is found) and
 * DELTAGRAD_NATIVE is not 0, and does the same in NumPy otherwise. No derivative lives here: the ops and
 * optimizers that call backend.py keep their rules, and each kernel rounds as its NumPy twin does, step by
 * step (built with -ffp-contract=off, so no multiply-add is fused), except for exp and log, which come
 * from the C library instead of NumPy's (within an ulp of each other).
 *
 * Arrays are read through the buffer protocol: C-contiguous float32 or float64 (targets int32 or int64).
 * A kernel that is given anything else raises TypeError, before it writes anything.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

enum kind { OTHER = 0, F32, F64, I32, I64 };

static enum kind kind_of(const Py_buffer *v)
{
    const char *f = v->format ? v->format : "B";
    if (*f == '<' || *f == '=' || *f == '@')
        f++;
    if (f[0] == 0 || f[1] != 0)
        return OTHER;
    if (f[0] == 'f' && v->itemsize == 4)
        return F32;
    if (f[0] == 'd' && v->itemsize == 8)
        return F64;
    if ((f[0] == 'i' || f[0] == 'l') && v->itemsize == 4)
        return I32;
    if ((f[0] == 'l' || f[0] == 'q') && v->itemsize == 8)
        return I64;
    return OTHER;
}

/* a C-contiguous buffer of obj (writable if asked); -1 with TypeError set otherwise */
static int get_buffer(PyObject *obj, Py_buffer *v, int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s array", what, writable ? " writable" : "");
        return -1;
    }
    return 0;
}

static long long target_at(const Py_buffer *t, enum kind k, Py_ssize_t i)
{
    return k == I64 ? ((const long long *)t->buf)[i] : ((const int *)t->buf)[i];
}

/* ---- softmax cross-entropy ------------------------------------------------------------------------- */

/* whether every one of the n targets is a class index in [0, c) */
static int targets_in_range(const Py_buffer *t, enum kind tk, Py_ssize_t n, Py_ssize_t c)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        long long k = target_at(t, tk, i);
        if (k < 0 || k >= c)
            return 0;
    }
    return 1;
}

#define XENT_FORWARD(T, EXP, LOG)                                                                            \
    for (Py_ssize_t i = 0; i < n; i++) {                                                                     \
        const T *row = (const T *)x.buf + i * c;                                                             \
        T *erow = (T *)e.buf + i * c;                                                                        \
        T m = row[0];                                                                                        \
        for (Py_ssize_t j = 1; j < c; j++)                                                                   \
            if (row[j] > m || row[j] != row[j]) /* a NaN wins and stays, as in NumPy's maximum */           \
                m = m != m ? m : row[j];                                                                     \
        double s = 0; /* summed in double, then rounded to the dtype */                                      \
        for (Py_ssize_t j = 0; j < c; j++) {                                                                 \
            erow[j] = EXP(row[j] - m);                                                                       \
            s += erow[j];                                                                                    \
        }                                                                                                    \
        T sum = (T)s;                                                                                        \
        ((T *)sum_e.buf)[i] = sum;                                                                           \
        T li = LOG(sum) - (row[target_at(&t, tk, i)] - m);                                                   \
        if (loss.buf)                                                                                        \
            ((T *)loss.buf)[i] = li;                                                                         \
        total += li;                                                                                         \
    }

/* softmax_xent_forward(x (N, C), t (N,), e (N, C), sum_e (N,), loss (N,) or None) -> Σ loss, or None
 * when a target is outside [0, C) (the caller then takes its general path). With z = x − max x:
 * e = exp z, sum_e = Σ_c e, loss = log sum_e − z[t]. (With no classes, no target is in range.) */
static PyObject *softmax_xent_forward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer x = {0}, t = {0}, e = {0}, sum_e = {0}, loss = {0};
    PyObject *result = NULL;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "softmax_xent_forward(x, t, e, sum_e, loss)");
        return NULL;
    }
    if (get_buffer(args[0], &x, 0, "x") < 0 || get_buffer(args[1], &t, 0, "t") < 0 ||
        get_buffer(args[2], &e, 1, "e") < 0 || get_buffer(args[3], &sum_e, 1, "sum_e") < 0 ||
        (args[4] != Py_None && get_buffer(args[4], &loss, 1, "loss") < 0))
        goto done;
    enum kind xk = kind_of(&x), tk = kind_of(&t);
    if (xk != F32 && xk != F64) {
        PyErr_SetString(PyExc_TypeError, "x must be float32 or float64");
        goto done;
    }
    if (x.ndim != 2 || x.shape[0] < 1 || (tk != I32 && tk != I64) || t.ndim != 1 ||
        t.shape[0] != x.shape[0] || kind_of(&e) != xk || e.len != x.len || kind_of(&sum_e) != xk ||
        sum_e.ndim != 1 || sum_e.shape[0] != x.shape[0] ||
        (loss.buf && (kind_of(&loss) != xk || loss.len != sum_e.len))) {
        PyErr_SetString(PyExc_TypeError, "softmax_xent_forward: shapes or dtypes do not match");
        goto done;
    }
    Py_ssize_t n = x.shape[0], c = x.shape[1];
    if (!targets_in_range(&t, tk, n, c)) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    double total = 0;
    if (xk == F32)
        XENT_FORWARD(float, expf, logf)
    else
        XENT_FORWARD(double, exp, log)
    result = PyFloat_FromDouble(total);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&t);
    PyBuffer_Release(&e);
    PyBuffer_Release(&sum_e);
    PyBuffer_Release(&loss);
    return result;
}

#define XENT_BACKWARD(T)                                                                                    \
    {                                                                                                        \
        T scale = (T)s;                                                                                      \
        for (Py_ssize_t i = 0; i < n; i++) {                                                                 \
            const T *restrict erow = (const T *)e.buf + i * c;                                               \
            T *restrict drow = (T *)out.buf + i * c;                                                         \
            T f = scale / ((const T *)sum_e.buf)[i];                                                         \
            for (Py_ssize_t j = 0; j < c; j++)                                                               \
                drow[j] = erow[j] * f;                                                                       \
            drow[target_at(&t, tk, i)] -= scale;                                                             \
        }                                                                                                    \
    }

/* softmax_xent_backward(e, sum_e, t, s, out): out = e · (s / sum_e) − s · onehot(t), all targets in range */
static PyObject *softmax_xent_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer e = {0}, sum_e = {0}, t = {0}, out = {0};
    PyObject *result = NULL;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "softmax_xent_backward(e, sum_e, t, s, out)");
        return NULL;
    }
    double s = PyFloat_AsDouble(args[3]);
    if (s == -1.0 && PyErr_Occurred())
        return NULL;
    if (get_buffer(args[0], &e, 0, "e") < 0 || get_buffer(args[1], &sum_e, 0, "sum_e") < 0 ||
        get_buffer(args[2], &t, 0, "t") < 0 || get_buffer(args[4], &out, 1, "out") < 0)
        goto done;
    enum kind ek = kind_of(&e), tk = kind_of(&t);
    if ((ek != F32 && ek != F64) || e.ndim != 2 || kind_of(&sum_e) != ek || kind_of(&out) != ek ||
        out.len != e.len || sum_e.ndim != 1 || sum_e.shape[0] != e.shape[0] || (tk != I32 && tk != I64) ||
        t.ndim != 1 || t.shape[0] != e.shape[0]) {
        PyErr_SetString(PyExc_TypeError, "softmax_xent_backward: shapes or dtypes do not match");
        goto done;
    }
    Py_ssize_t n = e.shape[0], c = e.shape[1];
    if (!targets_in_range(&t, tk, n, c)) {
        PyErr_SetString(PyExc_IndexError, "softmax_xent_backward: a target is out of range");
        goto done;
    }
    if (ek == F32)
        XENT_BACKWARD(float)
    else
        XENT_BACKWARD(double)
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&e);
    PyBuffer_Release(&sum_e);
    PyBuffer_Release(&t);
    PyBuffer_Release(&out);
    return result;
}

/* ---- ReLU ------------------------------------------------------------------------------------------------ */

/* relu_forward(x, out): out = max(x, 0) as NumPy's maximum against zeros (a NaN stays, −0 gives +0) */
static PyObject *relu_forward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer x = {0}, out = {0};
    PyObject *result = NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "relu_forward(x, out)");
        return NULL;
    }
    if (get_buffer(args[0], &x, 0, "x") < 0 || get_buffer(args[1], &out, 1, "out") < 0)
        goto done;
    enum kind k = kind_of(&x);
    if ((k != F32 && k != F64) || kind_of(&out) != k || out.len != x.len) {
        PyErr_SetString(PyExc_TypeError, "relu_forward: shapes or dtypes do not match");
        goto done;
    }
    Py_ssize_t n = x.len / x.itemsize;
    if (k == F32) {
        const float *restrict xp = x.buf;
        float *restrict op = out.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            float v = xp[i];
            op[i] = (v > 0 || v != v) ? v : 0.0f;
        }
    } else {
        const double *restrict xp = x.buf;
        double *restrict op = out.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            double v = xp[i];
            op[i] = (v > 0 || v != v) ? v : 0.0;
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&x);
    PyBuffer_Release(&out);
    return result;
}

/* relu_backward(g, y, out): out = g · [y > 0] (a product, as in NumPy: a NaN in g stays NaN) */
static PyObject *relu_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer g = {0}, y = {0}, out = {0};
    PyObject *result = NULL;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "relu_backward(g, y, out)");
        return NULL;
    }
    if (get_buffer(args[0], &g, 0, "g") < 0 || get_buffer(args[1], &y, 0, "y") < 0 ||
        get_buffer(args[2], &out, 1, "out") < 0)
        goto done;
    enum kind k = kind_of(&g);
    if ((k != F32 && k != F64) || kind_of(&y) != k || kind_of(&out) != k || y.len != g.len ||
        out.len != g.len) {
        PyErr_SetString(PyExc_TypeError, "relu_backward: shapes or dtypes do not match");
        goto done;
    }
    Py_ssize_t n = g.len / g.itemsize;
    if (k == F32) {
        const float *restrict gp = g.buf, *restrict yp = y.buf;
        float *restrict op = out.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            float mask = yp[i] > 0 ? 1.0f : 0.0f; /* a product, so a NaN in g stays */
            op[i] = gp[i] * mask;
        }
    } else {
        const double *restrict gp = g.buf, *restrict yp = y.buf;
        double *restrict op = out.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            double mask = yp[i] > 0 ? 1.0 : 0.0;
            op[i] = gp[i] * mask;
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&g);
    PyBuffer_Release(&y);
    PyBuffer_Release(&out);
    return result;
}

/* ---- optimizers: one update of many parameters at once ------------------------------------------------ */

/* The arrays of `nlists` parallel lists (a parameter, its gradient, its buffers...), all float32 or all
 * float64, each the size of its parameter; list r is written to if writable[r]. Fills views (count · nlists
 * buffers, parameter by parameter), *kind and *count; on failure sets TypeError and releases what it took.
 * Nothing is written before every array has been checked. */
typedef struct {
    Py_buffer *views;
    Py_ssize_t count, got;
    enum kind kind;
} gathered;

static void release_all(gathered *g)
{
    for (Py_ssize_t i = 0; i < g->got; i++)
        PyBuffer_Release(&g->views[i]);
    PyMem_Free(g->views);
    g->views = NULL;
}

static int gather(PyObject *const *lists, int nlists, const int *writable, const char *const *what,
                  const char *name, gathered *g)
{
    g->views = NULL;
    g->got = 0;
    g->kind = OTHER;
    for (int r = 0; r < nlists; r++) {
        if (!PyList_Check(lists[r])) {
            PyErr_Format(PyExc_TypeError, "%s: %s arguments must be lists", name, what[r]);
            return -1;
        }
    }
    g->count = PyList_GET_SIZE(lists[0]);
    for (int r = 1; r < nlists; r++) {
        if (PyList_GET_SIZE(lists[r]) != g->count) {
            PyErr_Format(PyExc_ValueError, "%s: the lists differ in length", name);
            return -1;
        }
    }
    g->views = PyMem_Calloc((size_t)(g->count ? g->count : 1) * (size_t)nlists, sizeof(Py_buffer));
    if (!g->views) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t a = 0; a < g->count; a++) {
        Py_buffer *row = &g->views[a * nlists];
        for (int r = 0; r < nlists; r++, g->got++) {
            if (get_buffer(PyList_GET_ITEM(lists[r], a), &row[r], writable[r], what[r]) < 0) {
                release_all(g);
                return -1;
            }
        }
        if (a == 0)
            g->kind = kind_of(&row[0]);
        for (int r = 0; r < nlists; r++) {
            if (kind_of(&row[r]) != g->kind || (g->kind != F32 && g->kind != F64) || row[r].len != row[0].len) {
                PyErr_Format(PyExc_TypeError, "%s: every array must be float32 (or every one float64), each "
                             "the size of its parameter", name);
                release_all(g);
                return -1;
            }
        }
    }
    return 0;
}

#define SGD_LOOP(T)                                                                                          \
    {                                                                                                        \
        T lr_ = (T)lr, m_ = (T)momentum, u_ = (T)(1 - dampening);                                           \
        for (Py_ssize_t a = 0; a < g.count; a++) {                                                           \
            T *restrict p = g.views[3 * a].buf, *restrict b = g.views[3 * a + 2].buf;                       \
            const T *restrict gr = g.views[3 * a + 1].buf;                                                   \
            Py_ssize_t n = g.views[3 * a].len / (Py_ssize_t)sizeof(T);                                       \
            for (Py_ssize_t i = 0; i < n; i++) {                                                             \
                T bi = m_ * b[i];                                                                            \
                bi = bi + u_ * gr[i];                                                                        \
                b[i] = bi;                                                                                   \
                T d = nesterov ? gr[i] + m_ * bi : bi;                                                       \
                p[i] = p[i] - lr_ * d;                                                                       \
            }                                                                                                \
        }                                                                                                    \
    }

/* sgd_momentum(params, grads, bufs, lr, momentum, dampening, nesterov): for each triple of arrays,
 *   b ← momentum·b + (1 − dampening)·g;  p ← p − lr·(g + momentum·b if nesterov else b) */
static PyObject *sgd_momentum(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const int writable[3] = {1, 0, 1};
    static const char *const what[3] = {"a parameter", "a gradient", "a momentum buffer"};
    gathered g;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "sgd_momentum(params, grads, bufs, lr, momentum, dampening, nesterov)");
        return NULL;
    }
    double lr = PyFloat_AsDouble(args[3]), momentum = PyFloat_AsDouble(args[4]),
           dampening = PyFloat_AsDouble(args[5]);
    int nesterov = PyObject_IsTrue(args[6]);
    if (PyErr_Occurred() || nesterov < 0 || gather(args, 3, writable, what, "sgd_momentum", &g) < 0)
        return NULL;
    if (g.kind == F32)
        SGD_LOOP(float)
    else if (g.kind == F64)
        SGD_LOOP(double)
    release_all(&g);
    Py_RETURN_NONE;
}

#define ADAM_LOOP(T, SQRT)                                                                                   \
    {                                                                                                        \
        T b1c = (T)(1 - beta1), b2 = (T)beta2, b2c = (T)(1 - beta2), e = (T)eps;                             \
        for (Py_ssize_t a = 0; a < g.count; a++) {                                                           \
            Py_buffer *row = &g.views[a * nlists];                                                           \
            T *restrict p = row[0].buf, *restrict m = row[2].buf, *restrict v = row[3].buf;                 \
            T *restrict vmax = amsgrad ? row[4].buf : NULL;                                                  \
            const T *restrict gr = row[1].buf;                                                               \
            T step_size = (T)sizes[a], bc2 = (T)bc2_sqrts[a];                                                \
            Py_ssize_t n = row[0].len / (Py_ssize_t)sizeof(T);                                               \
            for (Py_ssize_t i = 0; i < n; i++) {                                                             \
                T gi = gr[i];                                                                                \
                T mi = m[i] + b1c * (gi - m[i]);                                                             \
                T vi = v[i] * b2;                                                                            \
                vi = vi + b2c * (gi * gi);                                                                   \
                m[i] = mi;                                                                                   \
                v[i] = vi;                                                                                   \
                if (vmax) {                                                                                  \
                    T w = vmax[i];                                                                           \
                    w = (vi > w || vi != vi) ? vi : w; /* NaN from either side stays, as np.maximum */      \
                    vmax[i] = w;                                                                             \
                    vi = w;                                                                                  \
                }                                                                                            \
                T den = SQRT(vi) / bc2;                                                                      \
                den = den + e;                                                                               \
                p[i] = p[i] - step_size * (mi / den);                                                        \
            }                                                                                                \
        }                                                                                                    \
    }

/* a list of `count` Python floats as doubles (PyMem), or NULL with an exception set */
static double *floats_of(PyObject *list, Py_ssize_t count, const char *name)
{
    if (!PyList_Check(list) || PyList_GET_SIZE(list) != count) {
        PyErr_Format(PyExc_TypeError, "%s must be a list of one float per parameter", name);
        return NULL;
    }
    double *out = PyMem_Malloc(sizeof(double) * (size_t)(count ? count : 1));
    if (!out)
        return (double *)PyErr_NoMemory();
    for (Py_ssize_t a = 0; a < count; a++) {
        out[a] = PyFloat_AsDouble(PyList_GET_ITEM(list, a));
        if (out[a] == -1.0 && PyErr_Occurred()) {
            PyMem_Free(out);
            return NULL;
        }
    }
    return out;
}

/* adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs or None, step_sizes, bc2_sqrts, beta1, beta2,
 * eps): for each parameter, with its own step size lr/(1 − β₁ᵗ) and √(1 − β₂ᵗ),
 *   m ← m + (1 − β₁)(g − m);  v ← β₂ v + (1 − β₂) g²;  v̂ ← max(v̂, v) (amsgrad) or v
 *   p ← p − step_size · m / (√v̂ / √(1 − β₂ᵗ) + eps) */
static PyObject *adam(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const int writable[5] = {1, 0, 1, 1, 1};
    static const char *const what[5] = {"a parameter", "a gradient", "an exp_avg", "an exp_avg_sq",
                                        "a max_exp_avg_sq"};
    gathered g;
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, "
                                         "step_sizes, bc2_sqrts, beta1, beta2, eps)");
        return NULL;
    }
    int amsgrad = args[4] != Py_None, nlists = amsgrad ? 5 : 4;
    double beta1 = PyFloat_AsDouble(args[7]), beta2 = PyFloat_AsDouble(args[8]), eps = PyFloat_AsDouble(args[9]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *lists[5] = {args[0], args[1], args[2], args[3], args[4]};
    if (gather(lists, nlists, writable, what, "adam", &g) < 0)
        return NULL;
    double *sizes = floats_of(args[5], g.count, "step_sizes");
    double *bc2_sqrts = sizes ? floats_of(args[6], g.count, "bc2_sqrts") : NULL;
    if (bc2_sqrts) {
        if (g.kind == F32)
            ADAM_LOOP(float, sqrtf)
        else if (g.kind == F64)
            ADAM_LOOP(double, sqrt)
    }
    PyMem_Free(sizes);
    PyMem_Free(bc2_sqrts);
    release_all(&g);
    if (!bc2_sqrts)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"softmax_xent_forward", (PyCFunction)(void (*)(void))softmax_xent_forward, METH_FASTCALL,
     "softmax_xent_forward(x, t, e, sum_e, loss) -> total loss, or None if a target is out of range"},
    {"softmax_xent_backward", (PyCFunction)(void (*)(void))softmax_xent_backward, METH_FASTCALL,
     "softmax_xent_backward(e, sum_e, t, s, out): out = e * (s / sum_e) - s * onehot(t)"},
    {"relu_forward", (PyCFunction)(void (*)(void))relu_forward, METH_FASTCALL,
     "relu_forward(x, out): out = max(x, 0), NaN kept"},
    {"relu_backward", (PyCFunction)(void (*)(void))relu_backward, METH_FASTCALL,
     "relu_backward(g, y, out): out = g * (y > 0)"},
    {"sgd_momentum", (PyCFunction)(void (*)(void))sgd_momentum, METH_FASTCALL,
     "sgd_momentum(params, grads, bufs, lr, momentum, dampening, nesterov): in place"},
    {"adam", (PyCFunction)(void (*)(void))adam, METH_FASTCALL,
     "adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step_sizes, bc2_sqrts, beta1, beta2, eps)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "deltagrad._native",
                                    "CPU kernels that each replace several NumPy calls (see backend.py).", -1,
                                    methods};

/* backend.py checks this against the version it was written for: raise it whenever a kernel changes, so
 * that a module built from older source (an editable install not rebuilt) is set aside, not called */
#define KERNELS_VERSION 2

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "KERNELS_VERSION", KERNELS_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
