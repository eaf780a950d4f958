// pinncore._core: the pybind11 boundary. No maths here: convert, check sizes once, release
// the GIL around the compute. Friendly, named errors are raised by the Python layer before
// it calls in; the checks here are the memory-safety guard (std::invalid_argument -> ValueError).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <string>

#include "adam.hpp"
#include "jacobian.hpp"
#include "kernel.hpp"

namespace py = pybind11;
using namespace pinncore;

namespace {

template <class T> using Arr = py::array_t<T, py::array::c_style>;
using IArr = py::array_t<int, py::array::c_style | py::array::forcecast>;

void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

template <class T> std::shared_ptr<Term<T>> make_term(Arr<T> x, Arr<T> scale, IArr first, IArr pairs,
                                                     int components, IArr comp, IArr fac_off, IArr fac_stream,
                                                     IArr fac_out, Arr<T> coef) {
    require(x.ndim() == 2, "x must be 2-D (N, d)");
    // x is the network input x_hat (already scaled); scale = dx_hat/dx seeds the first-order streams.
    require(scale.ndim() == 1, "scale must be 1-D of length d");
    const int d = static_cast<int>(scale.shape(0));
    require(d >= 1 && x.shape(1) == d, "x has " + std::to_string(x.shape(1)) + " columns, expected " + std::to_string(d));
    auto t = std::make_shared<Term<T>>();
    t->n = static_cast<int>(x.shape(0));
    t->d = d;
    require(x.shape(0) < (1L << 30), "too many points");
    t->scale.assign(scale.data(), scale.data() + d);
    t->xhat.resize(static_cast<std::size_t>(t->n) * d);
    const T* xp = x.data();
    for (std::size_t i = 0; i < static_cast<std::size_t>(t->n); ++i)
        for (int k = 0; k < d; ++k) t->xhat[i * d + k] = xp[i * d + k];
    require(first.ndim() == 1, "first must be 1-D");
    for (ssize_t f = 0; f < first.shape(0); ++f) {
        const int k = first.data()[f];
        require(k >= 0 && k < d, "first-order direction out of range");
        t->streams.first.push_back(k);
    }
    const int F = t->streams.F();
    require(pairs.ndim() == 2 && pairs.shape(1) == 2, "pairs must be (P, 2)");
    for (ssize_t p = 0; p < pairs.shape(0); ++p) {
        const int a = pairs.data()[2 * p], b = pairs.data()[2 * p + 1];
        require(a >= 0 && a < F && b >= 0 && b < F, "pair refers to a missing first-order stream");
        t->streams.pairs.push_back({a, b});
    }
    const int S = t->streams.S();
    require(components >= 0, "components must be >= 0");
    require(comp.ndim() == 1 && fac_off.ndim() == 1 && fac_stream.ndim() == 1 && fac_out.ndim() == 1, "table arrays must be 1-D");
    const int M = static_cast<int>(comp.shape(0));
    require(fac_off.shape(0) == M + 1, "fac_off must have M+1 entries");
    require(fac_stream.shape(0) == fac_out.shape(0), "fac_stream/fac_out lengths differ");
    require(coef.ndim() == 2 && coef.shape(0) == M && coef.shape(1) == t->n, "coef must be (M, N)");
    Table<T>& tb = t->table;
    tb.components = components;
    for (int m = 0; m < M; ++m) {
        require(comp.data()[m] >= 0 && comp.data()[m] < components, "monomial component out of range");
        require(fac_off.data()[m] <= fac_off.data()[m + 1], "fac_off must be non-decreasing");
    }
    require(M == 0 ? true : (fac_off.data()[0] == 0 && fac_off.data()[M] == fac_stream.shape(0)), "fac_off must span the factors");
    for (ssize_t f = 0; f < fac_stream.shape(0); ++f) {
        require(fac_stream.data()[f] >= 0 && fac_stream.data()[f] < S, "factor stream out of range");
        require(fac_out.data()[f] >= 0, "factor output out of range");
    }
    tb.comp.assign(comp.data(), comp.data() + M);
    tb.fac_off.assign(fac_off.data(), fac_off.data() + M + 1);
    tb.fac_stream.assign(fac_stream.data(), fac_stream.data() + fac_stream.shape(0));
    tb.fac_out.assign(fac_out.data(), fac_out.data() + fac_out.shape(0));
    tb.coef.assign(coef.data(), coef.data() + static_cast<std::size_t>(M) * t->n);
    return t;
}

// A model with the architecture of pinncore.embedding.NetSpec: B (M, d) the embedding's
// frequencies (None: no embedding), used as the initial/fixed values.
template <class T> std::unique_ptr<Model<T>> make_model(const std::vector<int>& widths, bool modified, py::object B,
                                                       bool trainable, std::vector<int> passthrough) {
    ArchSpec<T> ar;
    ar.modified = modified;
    if (!B.is_none()) {
        Arr<T> b = py::cast<Arr<T>>(B);
        require(!widths.empty() && b.ndim() == 2 && b.shape(1) == widths[0] && b.shape(0) >= 1,
                "B must be 2-D (features, inputs)");
        ar.features = static_cast<int>(b.shape(0));
        ar.B.assign(b.data(), b.data() + b.size());
        ar.trainable = trainable;
        ar.passthrough = std::move(passthrough);
    } else {
        require(!trainable && passthrough.empty(), "trainable/passthrough need an embedding B");
    }
    return std::make_unique<Model<T>>(widths, ar);
}

template <class T> void check_params(const Model<T>& m, const Arr<T>& params) {
    require(params.ndim() == 1 && static_cast<std::size_t>(params.shape(0)) == m.n_params(),
            "params must be 1-D of length " + std::to_string(m.n_params()));
}

template <class T> void check_term(const Model<T>& m, const Term<T>& t) {
    require(t.d == m.inputs(), "term input width " + std::to_string(t.d) + " != network input width " + std::to_string(m.inputs()));
    for (int o : t.table.fac_out) require(o < m.outputs(), "residual table refers to a missing network output");
}

template <class T> void bind(py::module_& mod, const char* model_name, const char* term_name) {
    py::class_<Term<T>, std::shared_ptr<Term<T>>>(mod, term_name)
        .def(py::init(&make_term<T>), py::arg("xhat"), py::arg("scale"), py::arg("first"),
             py::arg("pairs"), py::arg("components"), py::arg("comp"), py::arg("fac_off"), py::arg("fac_stream"),
             py::arg("fac_out"), py::arg("coef"))
        .def_property_readonly("n", [](const Term<T>& t) { return t.n; })
        .def_property_readonly("streams", [](const Term<T>& t) { return t.streams.S(); })
        .def_property_readonly("components", [](const Term<T>& t) { return t.table.components; });

    py::class_<Model<T>>(mod, model_name)
        .def(py::init(&make_model<T>), py::arg("widths"), py::arg("modified") = false, py::arg("B") = py::none(),
             py::arg("trainable") = false, py::arg("passthrough") = std::vector<int>())
        .def_property_readonly("n_params", &Model<T>::n_params)
        .def_readwrite("chunk_points", &Model<T>::chunk_points)
        .def("jets",
             [](Model<T>& m, Arr<T> params, const Term<T>& t, int nthreads) {
                 check_params(m, params);
                 check_term(m, t);
                 const int S = t.streams.S();
                 Arr<T> jets({static_cast<ssize_t>(S), static_cast<ssize_t>(t.n), static_cast<ssize_t>(m.outputs())});
                 std::vector<SweepOut<T>> outs(1);
                 outs[0].jets = jets.mutable_data();
                 std::vector<const Term<T>*> terms{&t};
                 {
                     py::gil_scoped_release release;
                     m.run(params.data(), Mode::Forward, terms, outs, nthreads);
                 }
                 return jets;
             },
             py::arg("params"), py::arg("term"), py::arg("nthreads") = 1)
        .def("vjp",
             [](Model<T>& m, Arr<T> params, const Term<T>& t, Arr<T> adjoint, bool want_norms, int nthreads) {
                 check_params(m, params);
                 check_term(m, t);
                 const int S = t.streams.S();
                 require(adjoint.ndim() == 3 && adjoint.shape(0) == S && adjoint.shape(1) == t.n && adjoint.shape(2) == m.outputs(),
                         "adjoint must have shape (streams, N, outputs) = (" + std::to_string(S) + ", " + std::to_string(t.n) + ", " +
                             std::to_string(m.outputs()) + ")");
                 Arr<T> grad(static_cast<ssize_t>(m.n_params()));
                 Arr<T> norms(static_cast<ssize_t>(want_norms ? t.n : 0));
                 std::vector<SweepOut<T>> outs(1);
                 outs[0].want_grad = true;
                 outs[0].want_norms = want_norms;
                 outs[0].grad = grad.mutable_data();
                 outs[0].norms = want_norms ? norms.mutable_data() : nullptr;
                 outs[0].adjoint = adjoint.data();
                 std::vector<const Term<T>*> terms{&t};
                 {
                     py::gil_scoped_release release;
                     m.run(params.data(), Mode::Adjoint, terms, outs, nthreads);
                 }
                 return py::make_tuple(grad, norms);
             },
             py::arg("params"), py::arg("term"), py::arg("adjoint"), py::arg("want_norms") = false, py::arg("nthreads") = 1)
        .def("losses_grads",
             [](Model<T>& m, Arr<T> params, std::vector<std::shared_ptr<Term<T>>> terms, py::list point_weights,
                bool want_residuals, int nthreads) {
                 check_params(m, params);
                 const std::size_t nt = terms.size();
                 require(static_cast<std::size_t>(py::len(point_weights)) == nt, "point_weights must have one entry per term");
                 py::array_t<double> losses(static_cast<ssize_t>(nt));
                 Arr<T> grads({static_cast<ssize_t>(nt), static_cast<ssize_t>(m.n_params())});
                 std::vector<SweepOut<T>> outs(nt);
                 std::vector<const Term<T>*> tp(nt);
                 std::vector<Arr<T>> keep;  // keep weight arrays alive while the GIL is released
                 py::list residuals;
                 for (std::size_t i = 0; i < nt; ++i) {
                     require(terms[i] != nullptr, "term is None");
                     check_term(m, *terms[i]);
                     require(terms[i]->table.components > 0, "term has no residual table");
                     tp[i] = terms[i].get();
                     outs[i].want_grad = true;
                     outs[i].grad = grads.mutable_data() + i * m.n_params();
                     outs[i].loss = losses.mutable_data() + i;
                     py::object w = point_weights[i];
                     if (!w.is_none()) {
                         Arr<T> wa = py::cast<Arr<T>>(w);
                         require(wa.ndim() == 1 && wa.shape(0) == terms[i]->n, "point weights must be 1-D with one entry per point");
                         keep.push_back(wa);
                         outs[i].point_weights = wa.data();
                     }
                     if (want_residuals) {
                         Arr<T> r({static_cast<ssize_t>(terms[i]->table.components), static_cast<ssize_t>(terms[i]->n)});
                         outs[i].residuals = r.mutable_data();
                         residuals.append(r);
                     }
                 }
                 {
                     py::gil_scoped_release release;
                     m.run(params.data(), Mode::Loss, tp, outs, nthreads);
                 }
                 return py::make_tuple(losses, grads, want_residuals ? py::object(residuals) : py::object(py::none()));
             },
             py::arg("params"), py::arg("terms"), py::arg("point_weights"), py::arg("want_residuals") = false,
             py::arg("nthreads") = 1)
        .def("ntk_norms",
             [](Model<T>& m, Arr<T> params, std::vector<std::shared_ptr<Term<T>>> terms, int nthreads) {
                 check_params(m, params);
                 const std::size_t nt = terms.size();
                 std::vector<SweepOut<T>> outs(nt);
                 std::vector<const Term<T>*> tp(nt);
                 py::list result;
                 for (std::size_t i = 0; i < nt; ++i) {
                     require(terms[i] != nullptr, "term is None");
                     check_term(m, *terms[i]);
                     tp[i] = terms[i].get();
                     Arr<T> norms(static_cast<ssize_t>(terms[i]->n));
                     outs[i].want_norms = true;
                     outs[i].norms = norms.mutable_data();
                     result.append(norms);
                 }
                 {
                     py::gil_scoped_release release;
                     m.run(params.data(), Mode::NtkTable, tp, outs, nthreads);
                 }
                 return result;
             },
             py::arg("params"), py::arg("terms"), py::arg("nthreads") = 1);

    mod.def("adam_step",
            [](Arr<T> params, Arr<T> grads, py::array_t<double, py::array::c_style> weights, Arr<T> m, Arr<T> v, double lr,
               double b1, double b2, double eps, long step) {
                const ssize_t n = params.size();
                require(params.ndim() == 1 && m.size() == n && v.size() == n, "params, m and v must have the same length");
                require(grads.ndim() == 2 && grads.shape(1) == n, "grads must be (terms, n_params)");
                require(weights.ndim() == 1 && weights.shape(0) == grads.shape(0), "one weight per gradient row");
                require(step >= 1, "step must be >= 1");
                require(params.writeable() && m.writeable() && v.writeable(), "params, m and v must be writeable");
                T* p = params.mutable_data();
                T* mp = m.mutable_data();
                T* vp = v.mutable_data();
                py::gil_scoped_release release;
                return adam_step<T>(p, grads.data(), weights.data(), static_cast<int>(grads.shape(0)), static_cast<std::size_t>(n), mp, vp, lr,
                             b1, b2, eps, step);
            },
            py::arg("params"), py::arg("grads"), py::arg("weights"), py::arg("m"), py::arg("v"), py::arg("lr"), py::arg("b1"),
            py::arg("b2"), py::arg("eps"), py::arg("step"));
}

// ---- residual Jacobian (csrc/jacobian.hpp): module functions taking the model first, so the
// bindings above stay untouched. Rows are (term, component, point); see the header.
template <class T> void check_out(Arr<T>& J, std::size_t rows, std::size_t cols, std::size_t& ldj) {
    require(J.ndim() == 2 && static_cast<std::size_t>(J.shape(0)) == rows && static_cast<std::size_t>(J.shape(1)) >= cols,
            "out must be a C-contiguous (" + std::to_string(rows) + ", >= " + std::to_string(cols) + ") array");
    require(J.writeable(), "out must be writeable");
    ldj = static_cast<std::size_t>(J.shape(1));
}

// The BLAS dsyrk that NumPy/SciPy use, from scipy.linalg.cython_blas's exported function
// table (fetched once, with the GIL held): the normal equations' rank-k update runs at the
// matmul rate without pinncore linking a BLAS of its own.
using SyrkFn = void (*)(const char*, const char*, const int*, const int*, const double*, const double*, const int*,
                        const double*, double*, const int*);
// An output buffer written in place: exactly dtype U, C-contiguous, writeable (never a converted copy).
template <class U> bool is_out(const py::array& a) {
    return a.dtype().is(py::dtype::of<U>()) && (a.flags() & py::array::c_style) && a.writeable();
}

SyrkFn blas_dsyrk() {
    static SyrkFn fn = nullptr;
    if (!fn) {
        py::object cap = py::module_::import("scipy.linalg.cython_blas").attr("__pyx_capi__")["dsyrk"];
        PyObject* c = cap.ptr();
        void* p = PyCapsule_GetPointer(c, PyCapsule_GetName(c));
        if (!p) throw py::error_already_set();
        fn = reinterpret_cast<SyrkFn>(p);
    }
    return fn;
}

template <class T> void bind_jacobian(py::module_& mod) {
    mod.def("residual_jacobian",
            [](Model<T>& m, Arr<T> params, std::vector<std::shared_ptr<Term<T>>> terms, std::vector<Arr<T>> scales,
               py::object out, bool want_jacobian, int nthreads) {
                check_params(m, params);
                require(scales.size() == terms.size(), "scales must have one entry per term");
                std::size_t rows = 0;
                std::vector<const Term<T>*> tp;
                std::vector<const T*> sp;
                for (std::size_t a = 0; a < terms.size(); ++a) {
                    require(terms[a] != nullptr, "term is None");
                    check_term(m, *terms[a]);
                    require(terms[a]->table.components > 0, "term has no residual table");
                    require(scales[a].ndim() == 1 && scales[a].shape(0) == terms[a]->n, "scales[a] must be (N_a,)");
                    tp.push_back(terms[a].get());
                    sp.push_back(scales[a].data());
                    rows += static_cast<std::size_t>(terms[a]->table.components) * terms[a]->n;
                }
                Arr<T> r(static_cast<ssize_t>(rows));
                T* rp = r.mutable_data();
                if (!want_jacobian) {
                    py::gil_scoped_release release;
                    Jacobian<T>::stacked(m, params.data(), tp, sp, rp, nullptr, 0, nthreads);
                }
                if (!want_jacobian) return py::object(py::make_tuple(r, py::none()));
                Arr<T> J = out.is_none() ? Arr<T>({static_cast<ssize_t>(rows), static_cast<ssize_t>(m.n_params())})
                                         : py::cast<Arr<T>>(out);
                std::size_t ldj = 0;
                check_out(J, rows, m.n_params(), ldj);
                T* Jp = J.mutable_data();
                {
                    py::gil_scoped_release release;
                    Jacobian<T>::stacked(m, params.data(), tp, sp, rp, Jp, ldj, nthreads);
                }
                return py::object(py::make_tuple(r, J));
            },
            py::arg("model"), py::arg("params"), py::arg("terms"), py::arg("scales"), py::arg("out") = py::none(),
            py::arg("want_jacobian") = true, py::arg("nthreads") = 1);
    mod.def("jacobian_rows",
            [](Model<T>& m, Arr<T> params, const Term<T>& t, py::object scale, py::object adjoint, int begin, int end,
               int nthreads) {
                check_params(m, params);
                check_term(m, t);
                require(0 <= begin && begin <= end && end <= t.n, "need 0 <= begin <= end <= N");
                const int S = t.streams.S();
                Arr<T> sc, adj;
                bool has_scale = false, has_adjoint = false;
                int K = t.table.components;
                if (adjoint.is_none()) {
                    require(K > 0, "term has no residual table: pass adjoint");
                    if (!scale.is_none()) {
                        sc = py::cast<Arr<T>>(scale);
                        has_scale = true;
                        require(sc.ndim() == 1 && sc.shape(0) == t.n, "scale must be (N,)");
                    }
                } else {
                    adj = py::cast<Arr<T>>(adjoint);
                    has_adjoint = true;
                    require(adj.ndim() == 4 && adj.shape(1) == S && adj.shape(2) == t.n && adj.shape(3) == m.outputs(),
                            "adjoint must be (K, streams, N, outputs)");
                    K = static_cast<int>(adj.shape(0));
                }
                const std::size_t nb = static_cast<std::size_t>(end - begin);
                Arr<T> r(static_cast<ssize_t>(K * nb));
                Arr<T> J({static_cast<ssize_t>(K * nb), static_cast<ssize_t>(m.n_params())});
                const T* scp = has_scale ? sc.data() : nullptr;
                const T* adp = has_adjoint ? adj.data() : nullptr;
                T* rp = r.mutable_data();
                T* Jp = J.mutable_data();
                {
                    py::gil_scoped_release release;
                    Jacobian<T>::rows(m, params.data(), t, begin, end, scp, adp, K, rp, Jp, m.n_params(), nthreads);
                }
                return py::make_tuple(r, J);
            },
            py::arg("model"), py::arg("params"), py::arg("term"), py::arg("scale") = py::none(),
            py::arg("adjoint") = py::none(), py::arg("begin") = 0, py::arg("end") = 0, py::arg("nthreads") = 1);
    mod.def("normal_equations",
            [](Model<T>& m, Arr<T> params, std::vector<std::shared_ptr<Term<T>>> terms, py::list scales, py::list adjoints,
               std::vector<int> paired, py::list rvals, py::list extras, int n_extra, int chunk_rows, py::array A,
               py::array g, py::object r_out, int nthreads) {
                check_params(m, params);
                const std::size_t nt = terms.size();
                require(py::len(scales) == nt && py::len(adjoints) == nt && paired.size() == nt && py::len(rvals) == nt &&
                            py::len(extras) == nt,
                        "scales, adjoints, paired, rvals and extras must have one entry per term");
                require(n_extra >= 0, "n_extra must be >= 0");
                require(chunk_rows >= 1, "chunk_rows must be >= 1");
                const std::size_t Pt = m.n_params() + static_cast<std::size_t>(n_extra);
                require(is_out<double>(A) && A.ndim() == 2 && static_cast<std::size_t>(A.shape(0)) == Pt &&
                            static_cast<std::size_t>(A.shape(1)) == Pt,
                        "A must be a writeable C-contiguous float64 array of shape (" + std::to_string(Pt) + ", " +
                            std::to_string(Pt) + ")");
                require(is_out<double>(g) && g.ndim() == 1 && static_cast<std::size_t>(g.shape(0)) == Pt,
                        "g must be a writeable C-contiguous float64 array of shape (" + std::to_string(Pt) + ",)");
                std::vector<typename Jacobian<T>::Source> src(nt);
                std::vector<py::object> keep;  // arrays stay alive while the GIL is released
                std::size_t rows = 0;
                for (std::size_t a = 0; a < nt; ++a) {
                    const std::string at = "[" + std::to_string(a) + "]";
                    require(terms[a] != nullptr, "term" + at + " is None");
                    const Term<T>& t = *terms[a];
                    check_term(m, t);
                    auto& s = src[a];
                    s.term = &t;
                    s.paired = paired[a];
                    require(s.paired >= 0 && 2 * static_cast<long>(s.paired) <= t.n && (s.paired == 0 || 2 * s.paired == t.n),
                            "paired" + at + " must be 0 or half the term's points");
                    const int n = s.paired ? s.paired : t.n;
                    if (adjoints[a].is_none()) {
                        require(t.table.components > 0, "term" + at + " has no residual table: pass an adjoint");
                        s.K = t.table.components;
                        if (!scales[a].is_none()) {
                            Arr<T> sc = py::cast<Arr<T>>(scales[a]);
                            require(sc.ndim() == 1 && sc.shape(0) == t.n, "scales" + at + " must be (N,) = (" + std::to_string(t.n) + ",)");
                            s.scale = sc.data();
                            keep.push_back(sc);
                        }
                        require(rvals[a].is_none(), "rvals" + at + " must be None in table mode (the table gives r)");
                    } else {
                        Arr<T> adj = py::cast<Arr<T>>(adjoints[a]);
                        require(adj.ndim() == 4 && adj.shape(1) == t.streams.S() && adj.shape(2) == t.n && adj.shape(3) == m.outputs(),
                                "adjoints" + at + " must be (K, streams, N, outputs) = (K, " + std::to_string(t.streams.S()) + ", " +
                                    std::to_string(t.n) + ", " + std::to_string(m.outputs()) + ")");
                        s.K = static_cast<int>(adj.shape(0));
                        s.adjoint = adj.data();
                        keep.push_back(adj);
                        require(!rvals[a].is_none(), "rvals" + at + " is required with an adjoint");
                        py::array_t<double, py::array::c_style> rv = py::cast<py::array_t<double, py::array::c_style>>(rvals[a]);
                        require(rv.ndim() == 2 && rv.shape(0) == s.K && rv.shape(1) == n,
                                "rvals" + at + " must be (K, rows per component) = (" + std::to_string(s.K) + ", " + std::to_string(n) + ")");
                        s.r = rv.data();
                        keep.push_back(rv);
                    }
                    if (!extras[a].is_none()) {
                        py::array_t<double, py::array::c_style> ex = py::cast<py::array_t<double, py::array::c_style>>(extras[a]);
                        require(ex.ndim() == 2 && ex.shape(0) == static_cast<ssize_t>(s.K) * n && ex.shape(1) == n_extra,
                                "extras" + at + " must be (rows, n_extra) = (" + std::to_string(static_cast<long>(s.K) * n) + ", " +
                                    std::to_string(n_extra) + ")");
                        s.extra = ex.data();
                        keep.push_back(ex);
                    }
                    rows += static_cast<std::size_t>(s.K) * n;
                }
                T* rp = nullptr;
                if (!r_out.is_none()) {
                    py::array rarr = py::cast<py::array>(r_out);
                    require(is_out<T>(rarr) && rarr.ndim() == 1 && static_cast<std::size_t>(rarr.shape(0)) == rows,
                            "r_out must be a writeable C-contiguous (" + std::to_string(rows) + ",) array of the network's dtype");
                    rp = static_cast<T*>(rarr.mutable_data());
                    keep.push_back(rarr);
                }
                auto syrk = blas_dsyrk();
                double* Ap = static_cast<double*>(A.mutable_data());
                double* gp = static_cast<double*>(g.mutable_data());
                double rr;
                {
                    py::gil_scoped_release release;
                    rr = Jacobian<T>::normal(m, params.data(), src, n_extra, chunk_rows, syrk, Ap, gp, rp, nthreads);
                }
                return rr;
            },
            py::arg("model"), py::arg("params"), py::arg("terms"), py::arg("scales"), py::arg("adjoints"), py::arg("paired"),
            py::arg("rvals"), py::arg("extras"), py::arg("n_extra"), py::arg("chunk_rows"), py::arg("A"), py::arg("g"),
            py::arg("r_out") = py::none(), py::arg("nthreads") = 1);
    mod.def("jets_tangent",
            [](Model<T>& m, Arr<T> params, const Term<T>& t, Arr<T> v, int nthreads) {
                check_params(m, params);
                check_params(m, v);
                check_term(m, t);
                const ssize_t S = t.streams.S();
                Arr<T> jets({S, static_cast<ssize_t>(t.n), static_cast<ssize_t>(m.outputs())});
                Arr<T> tan({S, static_cast<ssize_t>(t.n), static_cast<ssize_t>(m.outputs())});
                T* jp = jets.mutable_data();
                T* tp = tan.mutable_data();
                {
                    py::gil_scoped_release release;
                    Jacobian<T>::tangent(m, params.data(), v.data(), t, jp, tp, nthreads);
                }
                return py::make_tuple(jets, tan);
            },
            py::arg("model"), py::arg("params"), py::arg("term"), py::arg("v"), py::arg("nthreads") = 1);
}

}  // namespace

PYBIND11_MODULE(_core, mod) {
    mod.doc() = "pinncore compiled kernel: jets forward, adjoints backward, residual tables, Adam";
    bind<double>(mod, "Model64", "Term64");
    bind<float>(mod, "Model32", "Term32");
    bind_jacobian<double>(mod);
    bind_jacobian<float>(mod);
}
