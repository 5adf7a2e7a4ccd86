"""A readable training loop: seeded, resumable, with a validation pass and a NaN guard.

The recipe (AdamW with learning-rate warm-up and cosine decay, linear KL warm-up, optional free bits, gradient
clipping) follows Bowman et al. (2016) and Kingma et al. (2016); units are nats per image throughout. A run lasts
`epochs`, or `minutes` of wall-clock time; the schedules (`schedule.py`) follow its progress either way. `train_step` is exactly what `train` runs per batch,
so benchmarks time the real thing.
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from .identity import describe_data, identity_diff, run_identity
from .losses import LIKELIHOODS, negative_elbo
from .model import SkipVAE, VAEConfig
from .runtime import get_device, resolve_precision, seed_everything
from .schedule import LR_SCHEDULES, Budget, kl_weight, lr_factor

@dataclass
class TrainConfig:
    """How to train; stored in every checkpoint beside the model config."""

    epochs: int = 3  # passes over the training set (exactly reproducible)
    minutes: Optional[float] = None  # if set, train for this much wall-clock time instead of `epochs`
    batch_size: int = 64  # images per step
    lr: float = 1e-3  # AdamW's peak learning rate, as in the original
    lr_schedule: str = "cosine"  # "cosine": decay to 5% of lr by the end of the run; "constant"
    lr_warmup: float = 0.02  # linear learning-rate warm-up over this fraction of the run
    weight_decay: float = 1e-4  # AdamW weight decay (optax's default, which the original used)
    beta: float = 1.0  # weight on KL after warm-up; 1 is the true ELBO
    kl_warmup: float = 0.1  # linear KL warm-up from 0 to beta over this fraction of the run; 0 turns it off
    free_bits: float = 0.0  # minimum KL per latent channel in the objective (nats); 0 turns it off
    likelihood: str = "bernoulli"  # "bernoulli" (binary cross-entropy) or "gaussian" (MSE with fixed sigma)
    sigma: float = 0.1  # the Gaussian likelihood's standard deviation
    grad_clip: float = 100.0  # clip the gradient's global norm to this; 0 turns it off
    seed: int = 0  # seeds torch, and the loader's shuffling when the loader is built with it
    device: str = "auto"  # "auto": CUDA, then MPS, then CPU
    precision: str = "auto"  # "auto": bf16 where native, else fp32 (runtime.resolve_precision); "fp32"; "bf16"; "fp16": CUDA
    channels_last: bool = True  # NHWC memory format: oneDNN's fast convolution path on CPU
    log_every: int = 10  # steps between step-level history entries
    progress: bool = True  # tqdm progress bars

    def __post_init__(self):
        _positive_int("epochs", self.epochs)
        if self.minutes is not None and (not _number(self.minutes) or self.minutes <= 0):
            raise ValueError(f"minutes must be a positive number or None (train for `epochs`), got {self.minutes!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        for name in ("lr_warmup", "kl_warmup"):
            if not _number(getattr(self, name)) or not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be a fraction of the run in [0, 1), got {getattr(self, name)!r}")
        _positive_int("batch_size", self.batch_size)
        _positive_int("log_every", self.log_every)
        for name in ("lr", "sigma"):
            if not _number(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        for name in ("beta", "free_bits", "grad_clip", "weight_decay"):
            if not _number(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {list(LIKELIHOODS)}, got {self.likelihood!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be 'auto', 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


def autocast(cfg: TrainConfig, device: torch.device):
    """The mixed-precision context for this config on this device ("auto" resolved): bf16 on CPU or GPU, fp16 on
    CUDA only."""
    precision = resolve_precision(cfg.precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA GPU (it relies on a GradScaler); use 'bf16' on a CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def prepare(model: SkipVAE, cfg: TrainConfig):
    """Move the model to the config's device and memory format; returns (model, device)."""
    device = get_device(cfg.device)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, device


def make_optimizer(model, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW as the original used it; the fused kernel (one pass over all parameters) where torch has one."""
    kwargs = dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    if device.type in ("cpu", "cuda"):  # fused: about 8x faster than the per-tensor loop on a CPU
        try:
            return torch.optim.AdamW(model.parameters(), fused=True, **kwargs)
        except RuntimeError:  # torch < 2.4 has no fused CPU kernel
            pass
    return torch.optim.AdamW(model.parameters(), **kwargs)


def to_device(x: torch.Tensor, device: torch.device, cfg: TrainConfig) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x


def train_step(model, optimizer, x, cfg: TrainConfig, beta: float, scaler=None):
    """One optimiser step on batch x; returns LossParts. Raises TrainingDiverged before stepping on NaN or inf."""
    with autocast(cfg, x.device):
        logits, mu, logvar = model(x)  # (B, C, H, W), (B, 256, H/64, W/64) x 2
    parts = negative_elbo(logits, x, mu, logvar, beta, cfg.likelihood, cfg.sigma, cfg.free_bits)
    if not torch.isfinite(parts.total):
        raise TrainingDiverged(f"the loss became {parts.total.item()} (recon {parts.recon.item():.4g}, "
                               f"KL {parts.kl.item():.4g})")
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:  # fp16 on CUDA: scale the loss so small gradients survive
        scaler.scale(parts.total).backward()
        scaler.unscale_(optimizer)
    else:
        parts.total.backward()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return parts


@torch.no_grad()
def evaluate(model, loader, cfg: TrainConfig, seed: int = 0) -> dict:
    """Mean -ELBO (beta = 1, no free bits), its distortion (recon) and rate (KL) terms, and the rate of each
    latent channel, over a loader, in nats per image.

    The posterior noise comes from its own seed, so the numbers are reproducible and training's RNG is untouched.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals, n = {"neg_elbo": 0.0, "recon": 0.0, "kl": 0.0}, 0
    kl_c = 0.0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for x, _ in loader:
            x = to_device(x, device, cfg)
            with autocast(cfg, device):
                logits, mu, logvar = model(x)
            parts = negative_elbo(logits, x, mu, logvar, 1.0, cfg.likelihood, cfg.sigma)
            b = x.shape[0]
            for k, v in (("neg_elbo", parts.total), ("recon", parts.recon), ("kl", parts.kl)):
                totals[k] += v.item() * b
            kl_c = kl_c + parts.kl_per_channel * b
            n += b
    model.train(was_training)
    kl_per_channel = (kl_c / n).cpu()
    out = {k: v / n for k, v in totals.items()}
    out["kl_per_channel"] = kl_per_channel.tolist()
    return out


def _rng_state(loader) -> dict:
    state = {"torch": torch.get_rng_state()}
    if getattr(loader, "generator", None) is not None:
        state["loader"] = loader.generator.get_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(loader, state: dict):
    torch.set_rng_state(state["torch"])
    if "loader" in state and getattr(loader, "generator", None) is not None:
        loader.generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(model: SkipVAE, train_loader, val_loader, cfg: TrainConfig, checkpoint: Optional[str] = None,
          resume: bool = False, data: Optional[dict] = None) -> dict:
    """Train `model` in place and return its history {"step": [...], "epoch": [...]}.

    The run lasts cfg.epochs, or cfg.minutes of training time (it then stops within one step of the budget, and
    validates and saves once more). checkpoint: where to save after every epoch (atomically), with the history as
    JSON beside it (<name>.history.json). resume=True continues from that checkpoint when it exists, and refuses
    (CheckpointError) one whose run identity differs in anything but the length of the run. Ctrl-C saves a
    resumable checkpoint (the interrupted epoch restarts) and re-raises; a NaN loss stops with TrainingDiverged and
    leaves the last good checkpoint in place. data: data settings beyond what the loader shows, for the identity.
    """
    model, device = prepare(model, cfg)
    optimizer = make_optimizer(model, cfg, device)
    scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" and device.type == "cuda" else None
    identity = run_identity(model.config, cfg, describe_data(train_loader, data))
    history, start, saved, spent = {"step": [], "epoch": []}, 0, None, 0.0
    path = Path(checkpoint) if checkpoint else None
    if resume and path is not None and path.exists():
        _, ckpt = load_checkpoint(path, device)
        diff = identity_diff(ckpt.get("identity"), identity)
        if diff:
            raise CheckpointError(f"cannot resume {path}: it was trained with other settings ({'; '.join(diff)}). "
                                  f"Resume only continues the same run for longer: start over with "
                                  f"resume=False, or give this run its own checkpoint (out_dir)")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        history, start, spent = ckpt["history"], ckpt["epoch"], ckpt.get("seconds", 0.0)
        saved = start
        _set_rng_state(train_loader, ckpt["rng"])
        print(f"resuming {path.name} after epoch {start}" + (f" of {cfg.epochs}" if cfg.minutes is None else
                                                              f", {spent / 60:.1f} of {cfg.minutes} minutes"))
    else:
        seed_everything(cfg.seed)
    steps_per_epoch = len(train_loader)
    step = history["epoch"][-1]["step"] if history["epoch"] else 0
    budget = (Budget(minutes=cfg.minutes, spent=spent) if cfg.minutes is not None
              else Budget(total_steps=cfg.epochs * steps_per_epoch))
    n_epochs = "?" if cfg.minutes is not None else cfg.epochs

    def save(epoch):
        nonlocal saved
        if path is not None:
            saved = epoch
            save_checkpoint(path, model, optimizer, epoch, history, cfg, _rng_state(train_loader), identity=identity,
                            seconds=budget.elapsed())
            path.with_suffix(".history.json").write_text(json.dumps(history))

    def validate(epoch):
        val = evaluate(model, val_loader, cfg)
        history["epoch"].append({"epoch": epoch, "step": step, "images": step * cfg.batch_size,
                                 "seconds": round(budget.elapsed(), 2), **{f"val_{k}": v for k, v in val.items()}})

    epoch = start
    try:
        while not budget.done(step):
            model.train()
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{n_epochs}", disable=not cfg.progress, leave=False)
            for x, _ in bar:
                p = budget.progress(step)
                if p >= 1.0:
                    break  # the time budget ran out mid-epoch
                beta = cfg.beta * kl_weight(p, cfg.kl_warmup)
                lr = cfg.lr * lr_factor(p, cfg.lr_warmup, cfg.lr_schedule)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                try:
                    parts = train_step(model, optimizer, to_device(x, device, cfg), cfg, beta, scaler)
                except TrainingDiverged as err:
                    kept = ("no checkpoint was asked for" if path is None else
                            f"the last good checkpoint (epoch {saved}) is kept at {path}" if saved is not None else
                            f"{path} was not overwritten")
                    raise TrainingDiverged(f"stopped at step {step} (epoch {epoch + 1}): {err}; {kept}. "
                                           f"Lower lr (now {cfg.lr}) or keep grad_clip on.") from None
                step += 1
                if step % cfg.log_every == 0 or step == 1:
                    row = {"step": step, "epoch": step / steps_per_epoch, "loss": parts.total.item(),
                           "recon": parts.recon.item(), "kl": parts.kl.item(), "beta": beta, "lr": lr}
                    history["step"].append(row)
                    bar.set_postfix(loss=f"{row['loss']:.1f}", kl=f"{row['kl']:.1f}")
            else:
                epoch += 1
                validate(epoch)
                save(epoch)
                continue
            validate(round(step / steps_per_epoch, 3))  # the budget ended mid-epoch: one last validation and save
            save(epoch)
    except KeyboardInterrupt:
        save(epoch)  # resumable: weights so far, the interrupted epoch restarts
        print(f"interrupted: saved a resumable checkpoint at {path} (epoch {epoch})" if path else "interrupted")
        raise
    return history


def load_or_train(checkpoint, model_config: VAEConfig, train_config: TrainConfig, train_loader, val_loader,
                  device: str = "cpu", data: Optional[dict] = None):
    """(model, history): load `checkpoint` if it holds this very run (the same run identity: model, training
    settings, data and seed) trained for at least this many epochs (or minutes). Otherwise train and save it there: on from a
    matching, unfinished checkpoint, or from scratch when anything differs (printed, old -> new); the old file
    stays until the new run's first epoch replaces it. data: as for `train`."""
    path, resume = Path(checkpoint), False
    if path.exists():
        try:
            ckpt = read_checkpoint(path)
            diff = identity_diff(ckpt.get("identity"),
                                 run_identity(model_config, train_config, describe_data(train_loader, data)))
            done = (ckpt["epoch"] >= train_config.epochs if train_config.minutes is None else
                    ckpt.get("seconds", 0.0) >= 60 * train_config.minutes)
            if not diff and done:
                model, ckpt = load_checkpoint(path, device)
                last = ckpt["history"]["epoch"][-1]  # a time budget usually ends inside an epoch
                print(f"loaded {path.name}: trained {last['step']} steps ({last['epoch']:g} epochs), "
                      f"{ckpt.get('seconds', 0) / 60:.1f} min")
                return model, ckpt["history"]
            resume = not diff
            print(f"{path.name} holds a shorter run of these settings: training on" if resume else
                  f"{path.name} was trained with other settings ({'; '.join(diff)}): training from scratch")
        except (ValueError, KeyError) as err:
            print(f"{path.name} is unusable ({err}): training a new one")
    seed_everything(train_config.seed)  # the initial weights are part of what the seed fixes
    model = SkipVAE(model_config)
    history = train(model, train_loader, val_loader, train_config, checkpoint=path, resume=resume, data=data)
    return model.to(device), history


def summary(history: dict) -> dict:
    """The last epoch's validation metrics, without the per-channel list."""
    last = dict(history["epoch"][-1]) if history.get("epoch") else {}
    last.pop("val_kl_per_channel", None)
    return last
