"""The schedules against their closed forms, and the time budget against a fake clock: it stops training within a
step of the budget, and validation and saving do not count against it."""
import math

import pytest
import torch

from vae_utils import SkipVAE, schedule
from vae_utils import train as train_mod
from vae_utils.data import make_loaders
from vae_utils.schedule import FINAL_LR, Budget, kl_weight, lr_factor
from vae_utils.train import TrainConfig, train


@pytest.mark.parametrize("p,warmup,expected", [(0.0, 0.1, 0.0), (0.025, 0.1, 0.25), (0.1, 0.1, 1.0),
                                               (0.7, 0.1, 1.0), (0.3, 0.0, 1.0)])
def test_kl_weight_rises_linearly_then_stays_at_one(p, warmup, expected):
    assert kl_weight(p, warmup) == pytest.approx(expected)


def test_lr_warms_up_linearly_then_follows_a_cosine_to_its_floor():
    assert lr_factor(0.0, 0.1) == pytest.approx(1e-3 / 0.101)  # small but not zero: the first step moves
    assert lr_factor(0.05, 0.1) == pytest.approx(0.051 / 0.101)
    assert lr_factor(0.1, 0.1) == pytest.approx(1.0)
    half = 0.1 + 0.9 / 2  # halfway through the decay, cos = 0
    assert lr_factor(half, 0.1) == pytest.approx(FINAL_LR + (1 - FINAL_LR) / 2)
    assert lr_factor(1.0, 0.1) == pytest.approx(FINAL_LR)
    q = torch.linspace(0.1, 1, 50).tolist()
    assert all(lr_factor(a, 0.1) >= lr_factor(b, 0.1) for a, b in zip(q, q[1:]))  # never rises after warm-up
    assert lr_factor(0.8, 0.1, "constant") == 1.0


def test_a_budget_counts_steps_or_seconds():
    b = Budget(total_steps=200)
    assert b.progress(50) == 0.25 and b.progress(199) < 1.0 and b.progress(200) == 1.0
    with pytest.raises(ValueError, match="either total_steps or minutes"):
        Budget(total_steps=10, minutes=1.0)


class FakeClock:
    """perf_counter that advances one second per call; `advance` moves it on as time spent elsewhere would."""

    def __init__(self, step=1.0):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t

    def advance(self, seconds):
        self.t += seconds


def test_time_inside_paused_does_not_count(monkeypatch):
    clock = FakeClock(step=0.0)  # a still clock, moved by hand
    monkeypatch.setattr(schedule.time, "perf_counter", clock)
    budget = Budget(minutes=1.0, spent=5.0)  # 5 s before a resume
    clock.advance(10)
    with budget.paused():
        clock.advance(1000)  # validation, saving
    clock.advance(20)
    assert budget.elapsed() == 35.0 and budget.progress(0) == pytest.approx(35 / 60)
    with pytest.raises(RuntimeError), budget.paused():  # an error inside still resumes the clock correctly
        clock.advance(7)
        raise RuntimeError
    assert budget.elapsed() == 35.0


def _tiny_run(minutes=0.5):
    train_loader, val_loader = make_loaders(n_train=64, n_test=16, batch_size=4)
    cfg = TrainConfig(minutes=minutes, batch_size=4, progress=False, channels_last=False, precision="fp32",
                      log_every=1)
    return train_loader, val_loader, cfg


def test_training_stops_within_one_step_of_its_time_budget(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(schedule.time, "perf_counter", clock)
    train_loader, val_loader, cfg = _tiny_run()
    history = train(SkipVAE(in_channels=1, skips="none"), train_loader, val_loader, cfg)
    last = history["epoch"][-1]
    # the budget is 30 s; it is checked before every step, so the run may pass it only by the step under way
    per_step = 2.0  # the loop reads the clock about twice per step
    assert 30 <= last["seconds"] <= 30 + 2 * per_step + 2
    assert last["step"] == history["step"][-1]["step"]
    assert math.isclose(history["step"][-1]["lr"] / cfg.lr, lr_factor(1.0, 0.0), abs_tol=0.2)  # decayed near the floor
    assert len(history["epoch"]) >= 2  # a full epoch (16 steps) ended before the budget, then the partial one


def test_validation_time_does_not_count_against_the_budget(monkeypatch):
    """Each validation takes 1,000 fake seconds: were it counted, the 30 s run would end at its first epoch."""
    clock = FakeClock()
    monkeypatch.setattr(schedule.time, "perf_counter", clock)
    real_evaluate = train_mod.evaluate

    def slow_evaluate(*args, **kwargs):
        clock.advance(1000)
        return real_evaluate(*args, **kwargs)
    monkeypatch.setattr(train_mod, "evaluate", slow_evaluate)
    train_loader, val_loader, cfg = _tiny_run()
    history = train(SkipVAE(in_channels=1, skips="none"), train_loader, val_loader, cfg)
    seconds = [e["seconds"] for e in history["epoch"]]
    assert len(seconds) >= 2 and seconds[-1] < 60  # the run went on past its first validation, and counted none
    assert seconds == sorted(seconds) and seconds[1] - seconds[0] < 1000


def test_a_time_budget_must_be_positive():
    with pytest.raises(ValueError, match="minutes must be a positive number or None"):
        TrainConfig(minutes=0)
