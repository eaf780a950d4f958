"""pinncore: a fast, dependency-light CPU engine for physics-informed neural networks.

The public names (docs/design.md §4) live here; everything else is an implementation module,
one file per idea (tests/test_module_map.py checks this map against the files):

    backend         the one boundary to the compiled kernel (pinncore._core): threads, compiled terms, adam_step
    network         pc.MLP: layers, the flat parameter layout, jets, save/load
    embedding       pc.FourierFeatures, pc.Periodic (input embeddings), the architecture spec
    layout          the flat parameter layout: block offsets and shapes, weight mask, views
    reference       the NumPy twin of the kernel (backend="numpy"), the test oracle
    residual        the residual language: expressions, symbolic derivatives, the function registry
    fields          the symbols a residual receives (x, u, u.t, ...) and tracing a residual function
    table           a traced residual lowered at points into a term table, and its evaluation
    unknown         pc.Unknown: unknown coefficients of residuals, trained with the network
    lowering        a problem's lowering: traced tables, kernel data, fused and fallback evaluations
    problem         pc.Problem / pc.Term: the declarative problem and its public evaluation calls
    metrics         predictions at any points, exact values, rel-L2
    problems        the problem library (each problem registers in registry.problems)
    problems_common     what library problems share: points, registration with origin, argument checks
    problems_classic    the papers' benchmarks on boxes (harmonic, Burgers, heat, wave, ...)
    problems_domains    problems on non-rectangular domains and systems (L-shape, holes, disk, Kovasznay)
    problems_reference  reference solutions: Cole–Hopf quadrature, L-shape finite differences
    geometry        domains: Box, Disk, Polygon, CSG, sampling, normals, grids
    geometry_shapes     the Geometry interface and the primitives Box, Disk, Polygon
    geometry_csg        boolean combinations: Union, Intersection, Difference
    geometry_sampling   seeded point streams (uniform, Sobol, Halton, LHS), unit grids, Grid
    conditions      Dirichlet, Neumann, Robin, initial, periodic and data terms
    inverse         the library's inverse problems (burgers_inverse: λ1, λ2 from data)
    registry        the registries of optimizers, weighting schemes and library problems
    objective       what an optimizer sees: Σ λ_a L_a, residuals and Jacobian at given parameters
    optim           the optimizer interface; Adam (fused, compiled) and L-BFGS (strong Wolfe)
    jacobian        the residual Jacobian r, J = ∂r/∂θ (dense, Gram, matrix-free) for Gauss–Newton
    lm              pc.LevenbergMarquardt on that Jacobian (optimizer="lm")
    bfgs            pc.BFGS: dense self-scaled BFGS / SSBroyden (optimizer="bfgs")
    phases          training schedules [(optimizer, iterations)]: built and run by one rule
    weighting       loss-weighting schemes by name: get, default, restore (and every scheme re-exported)
    weighting_base  the Weighting interface, the Context an update sees, argument checks, Fixed
    weighting_gradient  GradNorm and NTK: weights from gradient statistics
    weighting_adaptive  SelfAdaptive: per-point weights by gradient ascent
    weighting_balance   ReLoBRaLo and Balanced (the default scheme)
    observers       the observer interface (every hook a run calls); callbacks, checkpoints, tolerances
    history         the history table
    state           the saved-state format and its validation
    run             pc.Run: the training loop, stop conditions, save/resume
    result          TrainResult: what a run returns (net, history, rel-L2, status, unknowns)
    trainer         pc.train: builds a Run and runs its phases
    solve           pc.solve: network, second-order method and resampling chosen for a time limit
    progress        tqdm progress bars for long phases (an observer)
    verdict         the one verdict on a fit (clean / partial / wrong steady state) and its thresholds
    diagnostics     pc.diagnose, LossBalanceWarning, gradient statistics
    audit           every other scheme's shadow weights beside the driving one
    resampling      adaptive collocation points (RAD, RAR-G) as run observers
    sweep           pc.sweep: plans the fits of a grid × seeds and runs them
    sweep_grid      the grammar of a sweep grid's keys and of --grid items
    sweep_problems  shipping a sweep's problem to its workers
    sweep_fit       one fit of a sweep, from plain job data to a record
    sweep_exec      executors: a crash-recovering local pool, inline, Dask; the progress bar
    sweep_results   the results table (SweepResult) and its Goldilocks analysis
    io              versioned, checksummed, atomic files (no pickle)
    io_format       the file format's constants, FormatError and shared checks
    io_write        writing a tree: dumps, atomic save
    io_read         reading a file: loads, load, every check before allocation
    plotting        figures (the only module that imports matplotlib, and only when called)
    demo            the demo experiment: the loss-balance crisis and its cures
    cli             the `pinncore` command's argument parsing
    commands        the bodies of the `pinncore` subcommands (train, sweep, solve, serve, ...)
    web/            `pinncore serve`: the Loss Weight Tuner page and its JSON API

The compiled kernel is ``pinncore._core`` (csrc/: simd.hpp, kernel.hpp, embedding.hpp, adam.hpp, jacobian.hpp,
bindings.cpp).
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
from .bfgs import BFGS
from .run import Run, TrainResult
from .state import load_state
from .unknown import Unknown
from .trainer import train
from .solve import solve
from .weighting import NTK, Balanced, Fixed, GradNorm, ReLoBRaLo, SelfAdaptive, Weighting
from .sweep import SweepResult, sweep  # noqa: E402 - after the names it uses; shadows the module name

__version__ = "0.1.0"

__all__ = [
    "MLP", "Jet", "Problem", "Term", "problems", "train", "solve", "Run", "Observer", "TrainResult", "History", "load_state",
    "LBFGS", "LevenbergMarquardt", "BFGS",
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
