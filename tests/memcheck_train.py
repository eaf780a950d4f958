"""A small training run for `valgrind --tool=memcheck` (.ci/sanitize): every kernel entry point once."""
import numpy as np

import pinncore as pc

p = pc.problems.harmonic(n_collocation=20)
net = pc.MLP([1, 12, 12, 1], seed=0)
r = pc.train(p, net, weighting=pc.NTK(every=5), steps=20, lbfgs_steps=5, warn=False)
jet = net.derivatives(np.linspace(0, 1, 7)[:, None], order=2)
g, n = net.jets_vjp(np.linspace(0, 1, 7)[:, None], [(), (0,), (0, 0)], np.ones((3, 7, 1)), norms=True)
net32 = pc.MLP([2, 9, 2], seed=1, dtype=np.float32)
net32.derivatives(np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32), order=2)
print(f"ok rel_l2={r.rel_l2:.3e} steps={r.step}")
