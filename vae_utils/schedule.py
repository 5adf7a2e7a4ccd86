"""How far a run has got (p from 0 to 1, in steps or in seconds), and the learning rate and KL weight as functions of p.

References: Goyal et al. (2017), learning-rate warm-up; Loshchilov & Hutter (2017), cosine decay; Bowman et al.
(2016), KL warm-up. A faster machine takes more steps with the same warm-up and decay.
"""
import contextlib
import math
import time
from typing import Optional

LR_SCHEDULES = ("cosine", "constant")
FINAL_LR = 0.05  # cosine decay ends at this fraction of the peak learning rate


def lr_factor(p: float, warmup: float, kind: str = "cosine") -> float:
    """The learning rate as a fraction of its peak at progress p: linear warm-up over the first `warmup` of the
    run, then constant or a cosine decay to FINAL_LR."""
    if p < warmup:
        return (p + 1e-3) / (warmup + 1e-3)  # never exactly 0: the first step moves the weights
    if kind == "constant":
        return 1.0
    q = min(1.0, (p - warmup) / max(1e-9, 1.0 - warmup))
    return FINAL_LR + (1 - FINAL_LR) * 0.5 * (1 + math.cos(math.pi * q))


def kl_weight(p: float, warmup: float) -> float:
    """KL warm-up: the weight on the KL term grows linearly from 0 to 1 over the first `warmup` of the run."""
    return 1.0 if warmup <= 0 else min(1.0, p / warmup)


class Budget:
    """Progress through a run of `total_steps` steps, or of `minutes` of training time (validation not counted)."""

    def __init__(self, total_steps: Optional[int] = None, minutes: Optional[float] = None, spent: float = 0.0):
        if (total_steps is None) == (minutes is None):
            raise ValueError("give a Budget either total_steps or minutes")
        self.total_steps, self.seconds = total_steps, None if minutes is None else 60.0 * minutes
        self.spent = spent  # seconds of training before this process (a resumed run)
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds of training so far, including those before a resume."""
        return self.spent + time.perf_counter() - self.started

    @contextlib.contextmanager
    def paused(self):
        """Time spent inside does not count against the budget: validation and saving are not training."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.started += time.perf_counter() - t

    def progress(self, step: int) -> float:
        """p in [0, 1] before step number `step` (0-based)."""
        done = self.elapsed() / self.seconds if self.seconds is not None else step / max(1, self.total_steps)
        return min(1.0, done)
