/* deltagrad._native: CPU kernels that each do the work of several NumPy calls.
 *
 * A small network's training step is bound by the cost of calls, not by arithmetic: NumPy spends about
 * 0.3-1 µs on each call whatever its size, and a softmax cross-entropy, a ReLU or a momentum
 * update of many small parameters are 3 to 16 calls each. These kernels do each in one. They are optional:
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
        sum_e.shape[0] != x.shape[0] || (loss.buf && (kind_of(&loss) != xk || loss.len != sum_e.len))) {
        PyErr_SetString(PyExc_TypeError, "softmax_xent_forward: shapes or dtypes do not match");
        goto done;
    }
    Py_ssize_t n = x.shape[0], c = x.shape[1];
    for (Py_ssize_t i = 0; i < n; i++) {
        long long k = target_at(&t, tk, i);
        if (k < 0 || k >= c) {
            result = Py_NewRef(Py_None);
            goto done;
        }
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
        out.len != e.len || sum_e.shape[0] != e.shape[0] || (tk != I32 && tk != I64) ||
        t.shape[0] != e.shape[0]) {
        PyErr_SetString(PyExc_TypeError, "softmax_xent_backward: shapes or dtypes do not match");
        goto done;
    }
    Py_ssize_t n = e.shape[0], c = e.shape[1];
    for (Py_ssize_t i = 0; i < n; i++) {
        long long k = target_at(&t, tk, i);
        if (k < 0 || k >= c) {
            PyErr_SetString(PyExc_IndexError, "softmax_xent_backward: a target is out of range");
            goto done;
        }
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

/* ---- ReLU backward ----------------------------------------------------------------------------------- */

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

/* ---- SGD with momentum on many parameters at once ------------------------------------------------------ */

#define SGD_LOOP(T)                                                                                          \
    {                                                                                                        \
        T lr_ = (T)lr, m_ = (T)momentum, u_ = (T)(1 - dampening);                                           \
        for (Py_ssize_t a = 0; a < count; a++) {                                                             \
            T *restrict p = views[3 * a].buf, *restrict b = views[3 * a + 2].buf;                           \
            const T *restrict g = views[3 * a + 1].buf;                                                      \
            Py_ssize_t n = views[3 * a].len / (Py_ssize_t)sizeof(T);                                         \
            for (Py_ssize_t i = 0; i < n; i++) {                                                             \
                T bi = m_ * b[i];                                                                            \
                bi = bi + u_ * g[i];                                                                         \
                b[i] = bi;                                                                                   \
                T d = nesterov ? g[i] + m_ * bi : bi;                                                        \
                p[i] = p[i] - lr_ * d;                                                                       \
            }                                                                                                \
        }                                                                                                    \
    }

/* sgd_momentum(params, grads, bufs, lr, momentum, dampening, nesterov): for each triple of arrays,
 *   b ← momentum·b + (1 − dampening)·g;  p ← p − lr·(g + momentum·b if nesterov else b)
 * All arrays are checked before any is written. */
static PyObject *sgd_momentum(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyList_Check(args[0]) || !PyList_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "sgd_momentum(params: list, grads: list, bufs: list, lr, momentum, "
                                         "dampening, nesterov)");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(args[0]);
    if (PyList_GET_SIZE(args[1]) != count || PyList_GET_SIZE(args[2]) != count) {
        PyErr_SetString(PyExc_ValueError, "sgd_momentum: params, grads and bufs differ in length");
        return NULL;
    }
    double lr = PyFloat_AsDouble(args[3]), momentum = PyFloat_AsDouble(args[4]),
           dampening = PyFloat_AsDouble(args[5]);
    int nesterov = PyObject_IsTrue(args[6]);
    if (PyErr_Occurred() || nesterov < 0)
        return NULL;
    Py_buffer *views = PyMem_Calloc(3 * (size_t)(count ? count : 1), sizeof(Py_buffer));
    if (!views)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t got = 0;
    enum kind k = OTHER;
    static const char *what[3] = {"a parameter", "a gradient", "a momentum buffer"};
    for (Py_ssize_t a = 0; a < count; a++) {
        for (int r = 0; r < 3; r++, got++) {
            if (get_buffer(PyList_GET_ITEM(args[r], a), &views[got], r != 1, what[r]) < 0)
                goto done;
        }
        if (a == 0)
            k = kind_of(&views[0]);
        for (int r = 0; r < 3; r++) {
            if (kind_of(&views[3 * a + r]) != k || (k != F32 && k != F64) ||
                views[3 * a + r].len != views[3 * a].len) {
                PyErr_SetString(PyExc_TypeError, "sgd_momentum: every array must be float32 (or every one "
                                                 "float64), each gradient and buffer the size of its parameter");
                goto done;
            }
        }
    }
    if (k == F32)
        SGD_LOOP(float)
    else if (k == F64)
        SGD_LOOP(double)
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    return result;
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
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "deltagrad._native",
                                    "CPU kernels that each replace several NumPy calls (see backend.py).", -1,
                                    methods};

/* backend.py checks this against the version it was written for: raise it whenever a kernel changes, so
 * that a module built from older source (an editable install not rebuilt) is set aside, not called */
#define KERNELS_VERSION 1

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "KERNELS_VERSION", KERNELS_VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
