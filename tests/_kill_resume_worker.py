"""Subprocess worker for test_robustness.test_sigkill_then_resume_matches_uninterrupted_run.

Trains with a checkpoint every 100 steps and SIGKILLs itself from the callback at the first
log step >= 350 (so the last checkpoint on disk is the one of step 300). Never returns normally.
usage: python _kill_resume_worker.py <checkpoint path>
"""
import os
import signal
import sys

import pinncore as pc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_robustness import kill_resume_setup  # noqa: E402


def main(path):
    problem, net = kill_resume_setup()

    def cb(step, row):
        if step >= 350:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return False

    pc.train(problem, net, steps=600, checkpoint=path, checkpoint_every=100, weighting=pc.NTK(every=50),
             log_every=50, callback=cb, warn=False)
    print("not killed")  # pragma: no cover


if __name__ == "__main__":
    main(sys.argv[1])
