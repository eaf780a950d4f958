"""pinncore: a fast, dependency-light CPU engine for physics-informed neural networks.

The public names (docs/design.md §4) live here; everything else is an implementation module,
one file per idea:

    network      pc.MLP, jets, and the narrow boundary to the compiled kernel (pinncore._core)
    embedding    pc.FourierFeatures, pc.Periodic (input embeddings), the architecture spec/layout
    reference    the NumPy twin of the kernel (backend="numpy"), the test oracle
    residual     the residual language: expressions, symbolic derivatives, the function registry
    fields       the symbols a residual receives (x, u, u.t, ...) and tracing a residual function
    table        a traced residual lowered at points into a term table, and its evaluation
    problem      pc.Problem / pc.Term: per-term losses, gradients, NTK traces, errors
    problems     the problem library (harmonic, burgers, heat1d, wave1d, poisson1d, helmholtz2d,
                 klein_gordon, advection)
    optim        Adam (fused, compiled) and L-BFGS (strong Wolfe)
    jacobian     the residual Jacobian r, J = ∂r/∂θ (dense, Gram, matrix-free) for Gauss–Newton
    lm           pc.LevenbergMarquardt on that Jacobian (optimizer="lm")
    weighting    loss-weighting schemes: Fixed, GradNorm, NTK, SelfAdaptive, ReLoBRaLo, Balanced
    trainer      pc.train, History, TrainResult
    diagnostics  pc.diagnose, LossBalanceWarning
    io           versioned, checksummed, atomic files (no pickle)
    cli          the `pinncore` command (demo, train, diagnose, problems, bench)
    plotting     figures (the only module that imports matplotlib, and only when called)
    sweep        pc.sweep: fits over grids of weights, seeds, schemes, optimizers (local cores or Dask)
    geometry     domains: Box, Disk, Polygon, CSG (| - &), sampling, normals, grids
    conditions   Dirichlet, Neumann, Robin, initial, periodic and data terms
    resampling   adaptive collocation points (RAD, RAR-G) as run observers
    unknown      pc.Unknown: unknown coefficients of residuals, trained with the network (inverse problems)

The compiled kernel is ``pinncore._core`` (csrc/: simd.hpp, kernel.hpp, embedding.hpp, adam.hpp, bindings.cpp).
"""
from . import problems
from .embedding import FourierFeatures, Periodic
from .diagnostics import Diagnosis, LossBalanceWarning, diagnose
from .network import MLP, Jet, get_num_threads, set_num_threads
from .optim import Adam
from .problem import Problem, Term
from . import residual as _residual
from .history import History
from .observers import Observer
from .optim import LBFGS
from .lm import LevenbergMarquardt
from .run import Run, TrainResult
from .state import load_state
from .unknown import Unknown
from .trainer import train
from .weighting import NTK, Balanced, Fixed, GradNorm, ReLoBRaLo, SelfAdaptive, Weighting
from .sweep import SweepResult, sweep  # noqa: E402 - after the names it uses; shadows the module name

__version__ = "0.1.0"

__all__ = [
    "MLP", "Jet", "Problem", "Term", "problems", "train", "Run", "Observer", "TrainResult", "History", "load_state",
    "LBFGS", "LevenbergMarquardt",
    "Fixed", "GradNorm", "NTK", "SelfAdaptive", "ReLoBRaLo", "Balanced", "Weighting", "Adam",
    "diagnose", "Diagnosis", "LossBalanceWarning",
    "set_num_threads", "get_num_threads",
    "FourierFeatures", "Periodic",
    "sweep", "SweepResult", "Unknown",
]

# The residual language's elementwise functions (pc.sin, pc.exp, pc.abs, ...): one registry
# entry each in residual.py; a builtin's name (abs) is not star-exported.
globals().update(_residual.FUNCTIONS)
__all__ += [name for name in _residual.__all__ if name in _residual.FUNCTIONS]
