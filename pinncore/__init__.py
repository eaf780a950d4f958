"""pinncore: a fast, dependency-light CPU engine for physics-informed neural networks.

The public names (DESIGN.md §4) live here; everything else is an implementation module:

    network     pc.MLP, jets and the boundary to the compiled kernel (pinncore._core)
    reference   the NumPy twin of the kernel (backend="numpy"), the test oracle
    residual    the residual tracer: Python functions -> polynomial tables over jets
    problem     pc.Problem / pc.Term: per-term losses, gradients, NTK traces, errors
    problems    the problem library (harmonic, burgers, heat1d, wave1d, poisson1d, helmholtz2d)
"""
try:
    from . import problems
except ImportError:  # TEMP during development
    pass
from .network import MLP, Jet, get_num_threads, set_num_threads
from .problem import Problem, Term
from .residual import cos, exp, log, sin, sqrt, tanh

__version__ = "0.1.0"

__all__ = [
    "MLP", "Jet", "Problem", "Term", "problems",
    "set_num_threads", "get_num_threads",
    "sin", "cos", "exp", "tanh", "log", "sqrt",
]
