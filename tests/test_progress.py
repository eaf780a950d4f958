"""pinncore.progress: the tqdm bar of long phases."""
import pinncore as pc
from pinncore.progress import Progress


def _run(**kw):
    return pc.Run(pc.problems.harmonic(), pc.MLP([1, 8, 1], seed=0), weighting=pc.Fixed(), warn=False,
                  log_every=10, **kw)


def test_bar_shows_iterations_loss_and_error(capsys):
    run = _run(observers=[Progress(delay=0.0, refresh=0.0)])
    run.step(30)
    run.step(5, optimizer="bfgs")
    err = capsys.readouterr().err
    assert "adam" in err and "bfgs" in err and "30/30" in err and "loss=" in err and "rel_l2=" in err


def test_no_bar_for_short_phases_or_when_disabled(capsys):
    _run(observers=[Progress(delay=60.0)]).step(20)
    run = _run(progress=False)
    run.step(20)
    assert capsys.readouterr().err == ""
    assert not any(isinstance(o, Progress) for o in run._observers)  # noqa: SLF001 - the test inspects it


def test_progress_true_attaches_one_bar():
    run = _run(progress=True, observers=[Progress(delay=60.0)])
    assert sum(isinstance(o, Progress) for o in run._observers) == 1  # noqa: SLF001


def test_the_bar_shows_unknown_coefficients():
    from pinncore.progress import Progress

    class Bar:
        def set_postfix(self, post, refresh):
            self.post = post

    p = Progress()
    p._bar = Bar()
    p.on_log(None, {"total_loss": 1.0, "unknown:D": 0.1234567})
    assert p._bar.post == {"loss": "1.000e+00", "D": "0.123457"}
