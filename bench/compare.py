#!/usr/bin/env python
"""Side-by-side timing of one full PINN training step: pinncore (C++) vs the NumPy reference
vs PyTorch (CPU, nested autograd) vs JAX (jit of the whole step) — in ONE process, in
alternation, after checking that every implementation computes the same losses and gradients.

One "training step" = every per-term loss, every per-term parameter gradient, and an Adam
update (lr 1e-3, λ = 1 for every term) of the same network, points and initial parameters.

Cases (docs/design.md §6):
  a    harmonic IVP (the seed problem), pde N=50 + ic 1 point, [1,50,50,50,1], streams u,u_t,u_tt
  b    harmonic IVP, pde N=1000,        [1,50,50,50,50,1]
  c    harmonic IVP, pde N=4096,        [1,128,128,128,128,1]
  d    2-D Burgers, pde N=2048 (+256 ic, +256 bc), [2,64,64,64,64,1], streams u,u_t,u_x,u_xx
  c32, d32   the same as c, d in float32

The kernel's flop count per step is 3 × 2 · Σ_terms S_a·N_a · Σ_layers n_in·n_out (forward
jets, adjoint jets, weight gradients), reported as GFLOP/s and as a fraction of NumPy's
float64 matrix-product rate measured in the same run (2048³ and the case-shaped product
(S·N × w)·(w × w)).

Usage (from the repository root; unset the OpenBLAS overrides for this command only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py --cases a,c --threads 1 --repeats 21
    python bench/compare.py --quick          # a smoke run (few repeats)

PyTorch and JAX are optional (`pip install torch==2.13.0`, `pip install jax`); they are never
dependencies of pinncore. Thread counts: pc.set_num_threads and torch.set_num_threads per
row; NumPy's BLAS through threadpoolctl when installed. XLA's thread pool is fixed at import:
with a single --threads value the script sets XLA_FLAGS for it, otherwise JAX runs with its
default pool in every row (said in the output).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    "a": dict(kind="harmonic", N=50, layers=[1, 50, 50, 50, 1], dtype="float64"),
    "b": dict(kind="harmonic", N=1000, layers=[1, 50, 50, 50, 50, 1], dtype="float64"),
    "c": dict(kind="harmonic", N=4096, layers=[1, 128, 128, 128, 128, 1], dtype="float64"),
    "d": dict(kind="burgers", N=2048, layers=[2, 64, 64, 64, 64, 1], dtype="float64"),
    "c32": dict(kind="harmonic", N=4096, layers=[1, 128, 128, 128, 128, 1], dtype="float32"),
    "d32": dict(kind="burgers", N=2048, layers=[2, 64, 64, 64, 64, 1], dtype="float32"),
}
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8
OMEGA = 2 * math.pi
NU = 0.01 / math.pi


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="a,b,c,d,c32,d32", help="comma list of a,b,c,d,c32,d32 (default: all)")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    ap.add_argument("--repeats", type=int, default=None, help="alternation rounds per row (default 15, quick 5)")
    ap.add_argument("--impls", default="pinncore,numpy,torch,jax", help="implementations to time")
    ap.add_argument("--quick", action="store_true", help="few short rounds: a smoke run, not a measurement")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    ap.add_argument("--one-process", action="store_true",
                    help="run every thread count in this process (default: one child process per thread count, "
                         "so XLA's pool matches the count and no runtime's idle pool lingers into the next row)")
    a = ap.parse_args(argv)
    a.cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    for c in a.cases:
        if c not in CASES:
            ap.error(f"unknown case {c!r}; choose from {sorted(CASES)}")
    a.threads = [int(t) for t in a.threads.split(",") if t.strip()]
    if not a.threads or min(a.threads) < 1:
        ap.error("--threads must list positive integers")
    a.impls = [s.strip() for s in a.impls.split(",") if s.strip()]
    if a.repeats is None:
        a.repeats = 5 if a.quick else 15
    a.block = 0.01 if a.quick else 0.03   # seconds of work per timed block
    return a


ARGS = parse_args()


def _spawn_per_thread_count():
    """One child process per thread count (each child alternates all implementations)."""
    import subprocess
    import tempfile
    argv = sys.argv[1:]
    out = []
    i = 0
    while i < len(argv):                   # drop --threads/--json from the forwarded arguments
        a = argv[i]
        if a in ("--threads", "--json"):
            i += 2
            continue
        if a.startswith("--threads=") or a.startswith("--json="):
            i += 1
            continue
        out.append(a)
        i += 1
    merged = None
    for n in ARGS.threads:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            path = f.name
        print(f"\n===== threads = {n} (child process) =====", flush=True)
        rc = subprocess.call([sys.executable, os.path.abspath(__file__), *out, "--threads", str(n), "--json", path])
        if rc != 0:
            raise SystemExit(rc)
        with open(path) as f:
            part = json.load(f)
        os.unlink(path)
        if merged is None:
            merged = part
        else:
            merged["matmul"].update(part["matmul"])
            merged["rows"] += part["rows"]
            merged.setdefault("machine_by_threads", {})[str(n)] = part["machine"]
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(merged, f, indent=1, default=str)
        print(f"\nwrote {ARGS.json}")
    raise SystemExit(0)


if len(ARGS.threads) > 1 and not ARGS.one_process:
    _spawn_per_thread_count()
if len(ARGS.threads) == 1 and "jax" in ARGS.impls and "XLA_FLAGS" not in os.environ:
    n = ARGS.threads[0]
    os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'} intra_op_parallelism_threads={n}"
    JAX_THREADS = f"{n} (XLA_FLAGS)"
else:
    JAX_THREADS = "XLA default pool (fixed at import)"

try:
    import pinncore as pc
except ImportError:
    sys.path.insert(0, ROOT)
    import pinncore as pc
from pinncore.optim import Adam
from pinncore.reference import unpack  # (W_l, b_l) views of the flat parameter layout

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None
try:
    import torch
except ImportError:
    torch = None
try:
    if "jax" not in ARGS.impls:
        raise ImportError
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:
    jax = jnp = None


# ----------------------------------------------------------------------------- problems
def build_problem(case):
    if case["kind"] == "harmonic":
        return pc.problems.harmonic(n_collocation=case["N"])
    return pc.problems.burgers(n_collocation=case["N"])


def step_flops(problem, layers, dtype):
    """3 × 2 · Σ_terms S·N · Σ n_in·n_out (forward jets + adjoint jets + weight gradients)."""
    mac = sum(a * b for a, b in zip(layers[:-1], layers[1:]))
    return sum(3 * 2 * t.S * t.xhat.shape[0] * mac for t in problem.lowering.data(dtype))


def init_params(layers, dtype):
    return pc.MLP(layers, seed=0, dtype=dtype).params.copy()


# ----------------------------------------------------------------------------- implementations
class _Step:
    """One implementation of the training step: ``step() -> (losses, grads)``, ``params()`` as
    float64, ``sync()`` to wait for asynchronous work, ``set_threads(n)``."""
    name = "?"

    def sync(self):
        pass

    def params(self):
        return self.net.params.astype(np.float64)

    def set_threads(self, n):
        pass


class PinncoreStep(_Step):
    name = "pinncore"

    def __init__(self, case, problem, p0, dtype):
        self.net = pc.MLP(case["layers"], seed=0, dtype=dtype, backend="cpp")
        self.net.params[:] = p0
        self.evaluate = problem.step_function(self.net)
        self.adam = Adam(lr=LR, b1=B1, b2=B2, eps=EPS)
        self.state = self.adam.init(self.net.params)
        self.lam = np.ones(len(problem.term_names))

    def step(self):
        L, G, _ = self.evaluate(None, False)
        self.adam.update(self.net.params, G, self.lam, self.state)
        return L, G

    def set_threads(self, n):
        pc.set_num_threads(n)


class NumpyStep(_Step):
    """The NumPy reference backend (pinncore.reference) with a plain in-place NumPy Adam."""
    name = "numpy"

    def __init__(self, case, problem, p0, dtype):
        self.net = pc.MLP(case["layers"], seed=0, dtype=dtype, backend="numpy")
        self.net.params[:] = p0
        self.problem = problem
        self.m = np.zeros_like(self.net.params)
        self.v = np.zeros_like(self.net.params)
        self.tmp = np.zeros_like(self.net.params)
        self.t = 0
        self.lam = np.ones(len(problem.term_names))

    def step(self):
        L, G, _ = self.problem.value_and_grad(self.net)
        g = (self.lam.astype(G.dtype)[:, None] * G).sum(axis=0)
        self.t += 1
        m, v, tmp = self.m, self.v, self.tmp
        m *= B1
        m += (1 - B1) * g
        v *= B2
        v += (1 - B2) * g * g
        np.sqrt(v / (1 - B2 ** self.t), out=tmp)
        tmp += EPS
        self.net.params[...] -= (LR / (1 - B1 ** self.t)) * m / tmp
        return L, G

    # set_threads: BLAS threads are set by the caller through threadpoolctl


class TorchStep(_Step):
    """PyTorch CPU: the usual nested-autograd PINN (torch.autograd.grad, create_graph=True),
    one autograd.grad per term, torch.optim.Adam."""
    name = "torch"

    def __init__(self, case, problem, p0, dtype):
        tdt = torch.float64 if dtype == np.float64 else torch.float32
        self.kind = case["kind"]
        self.layers = case["layers"]
        self.params_ = []
        for W, b in unpack(np.asarray(p0, dtype=dtype), self.layers):
            self.params_.append(torch.tensor(W, dtype=tdt, requires_grad=True))
            self.params_.append(torch.tensor(b, dtype=tdt, requires_grad=True))
        self.scale = torch.tensor(problem.scale, dtype=tdt)
        self.shift = torch.tensor(problem.shift, dtype=tdt)
        self.pts = {k: torch.tensor(t.points, dtype=tdt, requires_grad=True) for k, t in problem.terms.items()}
        self.names = problem.term_names
        self.opt = torch.optim.Adam(self.params_, lr=LR, betas=(B1, B2), eps=EPS)
        self.tdt = tdt

    def net(self, X):
        h = X * self.scale + self.shift
        n = len(self.params_) // 2
        for l in range(n):
            h = torch.nn.functional.linear(h, self.params_[2 * l], self.params_[2 * l + 1])
            if l < n - 1:
                h = torch.tanh(h)
        return h

    def losses(self):
        grad = torch.autograd.grad
        if self.kind == "harmonic":
            t = self.pts["pde"]
            u = self.net(t)
            ut = grad(u, t, torch.ones_like(u), create_graph=True)[0]
            utt = grad(ut, t, torch.ones_like(ut), create_graph=True)[0]
            L_pde = ((utt + OMEGA ** 2 * u) ** 2).mean()
            t0 = self.pts["ic"]
            u0 = self.net(t0)
            u0t = grad(u0, t0, torch.ones_like(u0), create_graph=True)[0]
            L_ic = ((u0 - 1.0) ** 2).mean() + (u0t ** 2).mean()
            return {"pde": L_pde, "ic": L_ic}
        X = self.pts["pde"]
        u = self.net(X)
        g = grad(u, X, torch.ones_like(u), create_graph=True)[0]
        u_t, u_x = g[:, 0:1], g[:, 1:2]
        u_xx = grad(u_x, X, torch.ones_like(u_x), create_graph=True)[0][:, 1:2]
        L_pde = ((u_t + u * u_x - NU * u_xx) ** 2).mean()
        Xi = self.pts["ic"]
        L_ic = ((self.net(Xi) + torch.sin(math.pi * Xi[:, 1:2])) ** 2).mean()
        L_bc = (self.net(self.pts["bc"]) ** 2).mean()
        return {"pde": L_pde, "ic": L_ic, "bc": L_bc}

    def step(self):
        Ls = self.losses()
        Gs = [torch.autograd.grad(Ls[k], self.params_) for k in self.names]
        for i, p in enumerate(self.params_):
            p.grad = sum(G[i] for G in Gs)   # λ = 1 for every term
        self.opt.step()
        return Ls, Gs

    def flat(self, Ls, Gs):
        L = np.array([Ls[k].item() for k in self.names])
        G = np.array([np.concatenate([g.detach().numpy().ravel() for g in Gt]) for Gt in Gs])
        return L, G

    def params(self):
        return np.concatenate([p.detach().numpy().ravel() for p in self.params_]).astype(np.float64)

    def set_threads(self, n):
        torch.set_num_threads(n)


class JaxStep(_Step):
    """JAX CPU: the whole step (every term's value_and_grad + Adam) under one jax.jit; input
    derivatives by nested forward mode (jax.jvp)."""
    name = "jax"

    def __init__(self, case, problem, p0, dtype):
        jdt = jnp.float64 if dtype == np.float64 else jnp.float32
        self.kind = case["kind"]
        self.names = problem.term_names
        params = [(jnp.asarray(W, dtype=jdt), jnp.asarray(b, dtype=jdt))
                  for W, b in unpack(np.asarray(p0, dtype=dtype), case["layers"])]
        scale = jnp.asarray(problem.scale, dtype=jdt)
        shift = jnp.asarray(problem.shift, dtype=jdt)
        pts = {k: jnp.asarray(t.points, dtype=jdt) for k, t in problem.terms.items()}

        def net(params, X):
            h = X * scale + shift
            for W, b in params[:-1]:
                h = jnp.tanh(h @ W.T + b)
            W, b = params[-1]
            return h @ W.T + b

        def d12(f, X, k):
            E = jnp.zeros_like(X).at[:, k].set(1.0)
            g = lambda Y: jax.jvp(f, (Y,), (E,))[1]  # noqa: E731
            return jax.jvp(g, (X,), (E,))            # (∂_k f, ∂_kk f)

        def d1(f, X, k):
            E = jnp.zeros_like(X).at[:, k].set(1.0)
            return jax.jvp(f, (X,), (E,))            # (f, ∂_k f)

        if self.kind == "harmonic":
            def L_pde(params):
                f = lambda X: net(params, X)  # noqa: E731
                t = pts["pde"]
                u = f(t)
                _, utt = d12(f, t, 0)
                return jnp.mean((utt + OMEGA ** 2 * u) ** 2)

            def L_ic(params):
                f = lambda X: net(params, X)  # noqa: E731
                u, ut = d1(f, pts["ic"], 0)
                return jnp.mean((u - 1.0) ** 2) + jnp.mean(ut ** 2)
            fns = {"pde": L_pde, "ic": L_ic}
        else:
            def L_pde(params):
                f = lambda X: net(params, X)  # noqa: E731
                X = pts["pde"]
                u, ut = d1(f, X, 0)
                ux, uxx = d12(f, X, 1)
                return jnp.mean((ut + u * ux - NU * uxx) ** 2)

            def L_ic(params):
                X = pts["ic"]
                return jnp.mean((net(params, X) + jnp.sin(math.pi * X[:, 1:2])) ** 2)

            def L_bc(params):
                return jnp.mean(net(params, pts["bc"]) ** 2)
            fns = {"pde": L_pde, "ic": L_ic, "bc": L_bc}
        vgs = [jax.value_and_grad(fns[k]) for k in self.names]

        def step(params, m, v, t):
            out = [vg(params) for vg in vgs]
            Ls = [o[0] for o in out]
            Gs = [o[1] for o in out]
            g = jax.tree_util.tree_map(lambda *xs: sum(xs), *Gs)
            m = jax.tree_util.tree_map(lambda a, b: B1 * a + (1 - B1) * b, m, g)
            v = jax.tree_util.tree_map(lambda a, b: B2 * a + (1 - B2) * b * b, v, g)
            c1 = 1 - B1 ** t
            c2 = 1 - B2 ** t
            params = jax.tree_util.tree_map(lambda p, a, b: p - LR * (a / c1) / (jnp.sqrt(b / c2) + EPS), params, m, v)
            return params, m, v, Ls, Gs

        self._step = jax.jit(step)
        self.p = params
        self.m = jax.tree_util.tree_map(jnp.zeros_like, params)
        self.v = jax.tree_util.tree_map(jnp.zeros_like, params)
        self.t = 0
        self.last = None

    def step(self):
        self.t += 1
        self.p, self.m, self.v, Ls, Gs = self._step(self.p, self.m, self.v, float(self.t))
        self.last = Ls
        return Ls, Gs

    def sync(self):
        jax.block_until_ready(self.p)

    def flat(self, Ls, Gs):
        L = np.array([float(x) for x in Ls])
        G = np.array([np.concatenate([np.asarray(a).ravel() for Wb in Gt for a in Wb]) for Gt in Gs])
        return L, G

    def params(self):
        return np.concatenate([np.asarray(a).ravel() for Wb in self.p for a in Wb]).astype(np.float64)


def as_flat(impl, out):
    if hasattr(impl, "flat"):
        return impl.flat(*out)
    L, G = out
    return np.asarray(L, dtype=np.float64), np.asarray(G, dtype=np.float64)


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    s = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / (s if s > 0 else 1.0))


# ----------------------------------------------------------------------------- timing
class blas_threads:
    def __init__(self, n):
        self.n, self.ctx = n, None

    def __enter__(self):
        if threadpoolctl is not None:
            self.ctx = threadpoolctl.threadpool_limits(limits=self.n, user_api="blas")
            self.ctx.__enter__()
        return self

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


def calibrate(fn, sync, target):
    fn()
    sync()
    t0 = time.perf_counter()
    n = 0
    while True:
        fn()
        n += 1
        sync()
        el = time.perf_counter() - t0
        if el > target / 4 or n >= 1000:
            break
    return max(1, int(math.ceil(target / (el / n))))


def time_block(fn, sync, k):
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    sync()
    return (time.perf_counter() - t0) / k


def matmul_rate(m, k, n, dtype, target=0.05, rounds=5):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    C = np.empty((m, n), dtype=dtype)
    f = lambda: np.matmul(A, B, out=C)  # noqa: E731
    reps = calibrate(f, lambda: None, target)
    ts = [time_block(f, lambda: None, reps) for _ in range(rounds)]
    return 2.0 * m * k * n / min(ts) / 1e9


# ----------------------------------------------------------------------------- main
def machine_info():
    info = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "cpu": platform.processor() or "", "pinncore": pc.__version__,
            "torch": torch.__version__ if torch is not None else None,
            "jax": jax.__version__ if jax is not None else None, "jax_threads": JAX_THREADS if jax else None,
            "threadpoolctl": threadpoolctl.__version__ if threadpoolctl is not None else None,
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info["cores"] = os.cpu_count()
    info["loadavg_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if threadpoolctl is not None:
        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                        for d in threadpoolctl.threadpool_info() if d.get("user_api") == "blas"]
    return info


def make_impls(case, problem, p0, dtype):
    impls = []
    for name in ARGS.impls:
        if name == "pinncore":
            impls.append(PinncoreStep(case, problem, p0, dtype))
        elif name == "numpy":
            impls.append(NumpyStep(case, problem, p0, dtype))
        elif name == "torch" and torch is not None:
            impls.append(TorchStep(case, problem, p0, dtype))
        elif name == "jax" and jax is not None:
            impls.append(JaxStep(case, problem, p0, dtype))
    return impls


def check(case_id, case, problem, p0, dtype, impls):
    """Every implementation vs the float64 NumPy reference: losses, per-term gradients, and the
    parameters after one Adam step. Returns {impl: (err_L, err_G, err_p)}; raises on mismatch."""
    ref = NumpyStep(case, problem, p0.astype(np.float64), np.float64)
    Lr, Gr = as_flat(ref, ref.step())
    pr = ref.params()
    tol = 1e-10 if dtype == np.float64 else 2e-3
    ptol = 1e-9 if dtype == np.float64 else 1e-4
    errs = {}
    for impl in impls:
        L, G = as_flat(impl, impl.step())
        impl.sync()
        eL, eG = rel(L, Lr), max(rel(G[a], Gr[a]) for a in range(len(Lr)))
        eP = rel(impl.params() - p0.astype(np.float64), pr - p0.astype(np.float64))
        errs[impl.name] = (eL, eG, eP)
        ok = eL <= tol and eG <= tol and eP <= ptol * 1e3
        if not ok:
            raise SystemExit(f"case {case_id}: {impl.name} disagrees with the NumPy float64 reference: "
                             f"loss {eL:.2e}, gradient {eG:.2e}, Adam step {eP:.2e} (tol {tol:.0e})")
    return errs


def main():
    info = machine_info()
    print("pinncore training-step comparison (one process, alternating)")
    for k in ("cpu", "cores", "loadavg_start", "platform", "python", "numpy", "pinncore", "torch", "jax", "jax_threads", "threadpoolctl"):
        print(f"  {k:14s} {info.get(k)}")
    for b in info.get("blas", []):
        print(f"  blas           {b}")
    if info["OPENBLAS_CORETYPE"] or info["OPENBLAS_L2_SIZE"]:
        print(f"  WARNING: OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']} OPENBLAS_L2_SIZE={info['OPENBLAS_L2_SIZE']} are set; "
              "NumPy figures are then not the machine's. Run with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE.")
    if threadpoolctl is None:
        print("  NOTE: threadpoolctl not installed: NumPy's BLAS thread count is NOT controlled (process default).")
    results = {"machine": info, "matmul": {}, "rows": []}

    # NumPy's matmul rate, per thread count, at 2048³ and the case shapes.
    shapes = set()
    for cid in ARGS.cases:
        case = CASES[cid]
        w = case["layers"][1]
        S = 3 if case["kind"] == "harmonic" else 4
        shapes.add((S * case["N"], w, w, case["dtype"]))
    print("\nNumPy matmul rate (GFLOP/s, best of 5 blocks)")
    for nt in ARGS.threads:
        with blas_threads(nt):
            r = {"2048^3 float64": matmul_rate(2048, 2048, 2048, np.float64, target=0.3 if not ARGS.quick else 0.1, rounds=3)}
            if any(c.endswith("32") for c in ARGS.cases):
                r["2048^3 float32"] = matmul_rate(2048, 2048, 2048, np.float32, target=0.3 if not ARGS.quick else 0.1, rounds=3)
            for (m, k, n, dt) in sorted(shapes):
                r[f"({m}x{k})@({k}x{n}) {dt}"] = matmul_rate(m, k, n, np.dtype(dt))
        results["matmul"][nt] = r
        print(f"  threads={nt}: " + ", ".join(f"{k} {v:.1f}" for k, v in r.items()))

    for cid in ARGS.cases:
        case = CASES[cid]
        dtype = np.dtype(case["dtype"])
        problem = build_problem(case)
        p0 = init_params(case["layers"], dtype)
        flops = step_flops(problem, case["layers"], dtype)
        impls = make_impls(case, problem, p0, dtype)
        errs = check(cid, case, problem, p0, dtype, impls)
        print(f"\ncase {cid}: {case['kind']} N={case['N']} {case['layers']} {dtype.name}; "
              f"{flops / 1e6:.1f} Mflop per step (kernel count)")
        print("  agreement with the NumPy float64 reference (max rel. error): " +
              "; ".join(f"{k} loss {e[0]:.1e} grad {e[1]:.1e} adam {e[2]:.1e}" for k, e in errs.items()))
        w = case["layers"][1]
        S = 3 if case["kind"] == "harmonic" else 4
        shape_key = f"({S * case['N']}x{w})@({w}x{w}) {dtype.name}"
        for nt in ARGS.threads:
            for impl in impls:
                impl.set_threads(nt)
            with blas_threads(nt):
                reps = [calibrate(impl.step, impl.sync, ARGS.block) for impl in impls]
                times = {impl.name: [] for impl in impls}
                for r in range(ARGS.repeats):
                    order = impls if r % 2 == 0 else impls[::-1]
                    for impl in order:
                        k = reps[impls.index(impl)]
                        times[impl.name].append(time_block(impl.step, impl.sync, k))
            med = {k: statistics.median(v) for k, v in times.items()}
            base = med.get("pinncore")
            mm = results["matmul"][nt]
            print(f"  threads={nt} (median of {ARGS.repeats} rounds; ratio = time / pinncore time)")
            for name, v in times.items():
                m = med[name]
                q = sorted(v)
                line = f"    {name:9s} {m * 1e3:9.4f} ms  [{q[0] * 1e3:.4f} .. {q[-1] * 1e3:.4f}]"
                if base:
                    line += f"  x{m / base:6.2f}"
                gf = flops / m / 1e9
                line += f"  {gf:6.1f} GFLOP/s"
                if name == "pinncore":
                    f64 = mm["2048^3 float64"]
                    line += f"  = {100 * gf / f64:.0f}% of NumPy 2048^3 f64 ({f64:.1f})"
                    if shape_key in mm:
                        line += f", {100 * gf / mm[shape_key]:.0f}% of {shape_key} ({mm[shape_key]:.1f})"
                print(line)
                results["rows"].append({"case": cid, "threads": nt, "impl": name, "median_s": m, "min_s": q[0],
                                        "max_s": q[-1], "ratio": (m / base) if base else None, "gflops": gf,
                                        "flops": flops, "check": errs.get(name)})
    results["machine"]["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {results['machine']['loadavg_end']} (other processes on this machine skew every figure)")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
        print(f"\nwrote {ARGS.json}")


if __name__ == "__main__":
    main()
