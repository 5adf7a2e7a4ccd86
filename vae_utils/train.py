"""A readable training loop: seeded, resumable, with a validation pass, a NaN guard and atomic checkpoints.

References: Bowman et al. (2016), KL warm-up; Kingma et al. (2016), free bits; nanoGPT, whose `model_args` in the
checkpoint is the model for the run identity: a run is resumed or reused only when its stored configs match.
"""
import contextlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from tqdm.auto import tqdm

from .checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from .losses import LIKELIHOODS, negative_elbo
from .model import SkipVAE, VAEConfig
from .runtime import (AUTOCAST_DTYPE, PRECISIONS, describe_machine, get_device, needs_grad_scaler, resolve_precision,
                      seed_everything)
from .schedule import LR_SCHEDULES, Budget, kl_weight, lr_factor


@dataclass
class TrainConfig:
    """How to train; stored in every checkpoint beside the model config."""

    epochs: int = 3  # passes over the training set (exactly reproducible)
    minutes: Optional[float] = None  # if set, train for this much training time instead of `epochs`
    batch_size: int = 64  # images per step
    lr: float = 1e-3  # AdamW's peak learning rate, as in the original
    lr_schedule: str = "cosine"  # "cosine": decay to 5% of lr by the end of the run; "constant"
    lr_warmup: float = 0.02  # linear learning-rate warm-up over this fraction of the run
    weight_decay: float = 1e-4  # AdamW weight decay (optax's default, which the original used)
    beta: float = 1.0  # weight on the rate after warm-up; 1 is the true ELBO
    kl_warmup: float = 0.1  # linear KL warm-up from 0 to beta over this fraction of the run; 0 turns it off
    free_bits: float = 0.0  # minimum rate per latent channel in the objective (nats); 0 turns it off
    likelihood: str = "bernoulli"  # "bernoulli" (binary cross-entropy) or "gaussian" (MSE with fixed sigma)
    sigma: float = 0.1  # the Gaussian likelihood's standard deviation
    grad_clip: float = 100.0  # clip the gradient's global norm to this; 0 turns it off
    seed: int = 0  # seeds torch: the noise in z, and the weights when load_or_train builds the model
    device: str = "auto"  # "auto": CUDA, then MPS, then CPU
    precision: str = "auto"  # "auto": bf16 where native (runtime.resolve_precision), else fp32; "fp32"; "bf16"; "fp16": CUDA
    channels_last: bool = True  # NHWC memory format: oneDNN's fast convolution path on CPU, tensor cores on GPU
    log_every: int = 10  # steps between step-level history entries (and host syncs on a GPU)
    progress: bool = True  # tqdm progress bars

    def __post_init__(self):
        _check(self.minutes, "minutes", "a positive number or None (train for `epochs`)",
               lambda v: v is None or (_number(v) and v > 0))
        for name, options in (("lr_schedule", LR_SCHEDULES), ("likelihood", LIKELIHOODS), ("precision", PRECISIONS)):
            _check(getattr(self, name), name, f"one of {list(options)}", lambda v: v in options)
        for name in ("lr_warmup", "kl_warmup"):
            _check(getattr(self, name), name, "a fraction of the run in [0, 1)", lambda v: _number(v) and 0 <= v < 1)
        for name in ("epochs", "batch_size", "log_every"):
            _check(getattr(self, name), name, "a positive integer", lambda v: _int(v) and v >= 1)
        for name in ("lr", "sigma"):
            _check(getattr(self, name), name, "a positive number", lambda v: _number(v) and v > 0)
        for name in ("beta", "free_bits", "grad_clip", "weight_decay"):
            _check(getattr(self, name), name, "a number >= 0", lambda v: _number(v) and v >= 0)
        _check(self.seed, "seed", "an integer >= 0", lambda v: _int(v) and v >= 0)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(value, name: str, expected: str, ok) -> None:
    if not ok(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


def autocast(cfg: TrainConfig, device: torch.device):
    """The mixed-precision context of this config on this device ("auto" resolved)."""
    dtype = AUTOCAST_DTYPE[resolve_precision(cfg.precision, device)]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def prepare(model: SkipVAE, cfg: TrainConfig) -> tuple:
    """Move the model, in place, to the config's device and memory format; returns (model, device)."""
    device = get_device(cfg.device)
    model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.preserve_format)
    return model, device


def make_optimizer(model, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW as the original used it; the fused kernel (one pass over all parameters) where torch has one."""
    kwargs = dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    if device.type in ("cpu", "cuda"):
        with contextlib.suppress(RuntimeError):  # torch < 2.4 has no fused CPU kernel
            return torch.optim.AdamW(model.parameters(), fused=True, **kwargs)
    return torch.optim.AdamW(model.parameters(), **kwargs)


def to_device(x: torch.Tensor, device: torch.device, cfg: TrainConfig) -> torch.Tensor:
    """A batch on the model's device (asynchronously from pinned memory on a GPU), in the config's memory format."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x


def train_step(model, optimizer, x, cfg: TrainConfig, beta: float, scaler=None, check: bool = True):
    """One optimiser step on batch x; returns LossParts. With `check`, a NaN or infinite loss raises TrainingDiverged
    before the weights change (reading the loss costs a host sync on a GPU)."""
    with autocast(cfg, x.device):
        logits, mu, logvar = model(x)  # (B, C, H, W), (B, 256, H/64, W/64) x 2
    parts = negative_elbo(logits, x, mu, logvar, beta, cfg.likelihood, cfg.sigma, cfg.free_bits)
    if check and not torch.isfinite(parts.total):
        raise TrainingDiverged(f"the loss became {parts.total.item()} (distortion {parts.distortion.item():.4g}, "
                               f"rate {parts.rate.item():.4g})")
    scaler = scaler or torch.amp.GradScaler("cuda", enabled=False)  # disabled: each call below passes through
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(parts.total).backward()  # fp16 on CUDA: a scaled loss keeps small gradients from vanishing
    scaler.unscale_(optimizer)  # clip the true gradients
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return parts


@torch.no_grad()
def evaluate(model, loader, cfg: TrainConfig, seed: int = 0) -> dict:
    """Mean -ELBO (beta = 1, no free bits), distortion, rate and rate per channel over a loader, nats per image; the
    posterior noise has its own seed, so training's RNG is untouched."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums, per_channel, n = torch.zeros(3, device=device), 0.0, 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for x, _ in loader:
            x = to_device(x, device, cfg)
            with autocast(cfg, device):
                logits, mu, logvar = model(x)
            parts = negative_elbo(logits, x, mu, logvar, 1.0, cfg.likelihood, cfg.sigma)
            sums += torch.stack([parts.total, parts.distortion, parts.rate]) * len(x)
            per_channel = per_channel + parts.rate_per_channel * len(x)
            n += len(x)
    model.train(was_training)
    neg_elbo, distortion, rate = (sums / n).tolist()  # one host sync
    return {"neg_elbo": neg_elbo, "distortion": distortion, "rate": rate,
            "rate_per_channel": (per_channel / n).cpu().tolist()}


NOT_IDENTITY = ("epochs", "minutes", "progress", "log_every", "device")  # how long or visibly, not what, it trains
DATA_NOT_IDENTITY = ("root", "download", "n_test", "batch_size", "image_size", "channels")  # image shape is recorded


def run_identity(model_config: VAEConfig, train_config: TrainConfig, loader, data: Optional[dict] = None) -> dict:
    """{"model", "train", "data"} as plain dicts: what shaped the weights (not how long or how visibly it ran),
    with the precision really used and the data's name, size, image shape and shuffling seed."""
    ds = loader.dataset
    described = {k: v for k, v in (data or {}).items() if k not in DATA_NOT_IDENTITY}
    described.setdefault("name", getattr(ds, "name", type(ds).__name__))
    described.update(n_train=len(ds), image_shape=list(ds.images.shape[1:]) if hasattr(ds, "images") else None)
    if getattr(loader, "generator", None) is not None:
        described["seed"] = loader.generator.initial_seed()
    train = {k: v for k, v in asdict(train_config).items() if k not in NOT_IDENTITY}
    train["precision"] = resolve_precision(train_config.precision, get_device(train_config.device))
    return json.loads(json.dumps({"model": model_config.to_dict(), "train": train, "data": described}, default=str))


def identity_diff(stored, new: dict) -> list:
    """["section.field: old -> new", ...] wherever a stored identity differs from `new`; [] when they match."""
    if not isinstance(stored, dict) or not stored:
        return ["identity: none stored -> this run's"]
    rows = []
    for section, fields in new.items():
        old = stored.get(section) or {}
        for k in sorted(set(old) | set(fields)):
            if old.get(k, "(absent)") != fields.get(k, "(absent)"):
                rows.append(f"{section}.{k}: {old.get(k, '(absent)')!r} -> {fields.get(k, '(absent)')!r}")
    return rows


def _rng_state(loader) -> dict:
    """Every RNG a resumed run continues from, as CPU tensors: torch's, the loader's shuffling, each GPU's."""
    gen = getattr(loader, "generator", None)
    return {"torch": torch.get_rng_state(), "loader": None if gen is None else gen.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(loader, state: dict):
    torch.set_rng_state(state["torch"])
    if state.get("loader") is not None and getattr(loader, "generator", None) is not None:
        loader.generator.set_state(state["loader"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(model: SkipVAE, train_loader, val_loader, cfg: TrainConfig, checkpoint: Optional[str] = None,
          resume: bool = False, data: Optional[dict] = None) -> dict:
    """Train `model` in place (on cfg.device) for cfg.epochs or cfg.minutes of training time; returns its history
    {"step": [...], "epoch": [...]}. `checkpoint` is saved atomically every epoch and on Ctrl-C; resume=True goes on
    from it if it holds the same run. A NaN loss raises TrainingDiverged and keeps the last good checkpoint. `data`:
    make_loaders settings beyond what the loader shows, for the run identity."""
    model, device = prepare(model, cfg)
    optimizer = make_optimizer(model, cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=needs_grad_scaler(resolve_precision(cfg.precision, device), device))
    identity = run_identity(model.config, cfg, train_loader, data)
    history, epoch, spent, saved = {"step": [], "epoch": []}, 0, 0.0, None
    path = Path(checkpoint) if checkpoint else None
    if resume and path is not None and path.exists():
        ckpt = read_checkpoint(path)  # on the CPU; load_state_dict copies onto the model's device
        diff = identity_diff(ckpt.get("identity"), identity)
        if diff:
            raise CheckpointError(f"cannot resume {path}: it was trained with other settings ({'; '.join(diff)}). "
                                  f"Resume only continues the same run for longer: start over with resume=False, "
                                  f"or give this run its own checkpoint (out_dir)")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        history, epoch, spent, saved = ckpt["history"], ckpt["epoch"], ckpt.get("seconds", 0.0), ckpt["epoch"]
        _set_rng_state(train_loader, ckpt["rng"])
        print(f"resuming {path.name} after epoch {epoch}" + (f" of {cfg.epochs}" if cfg.minutes is None else
                                                              f", {spent / 60:.1f} of {cfg.minutes} minutes"))
    else:
        seed_everything(cfg.seed)
    steps_per_epoch = len(train_loader)
    step, images = (history["epoch"][-1]["step"], history["epoch"][-1]["images"]) if history["epoch"] else (0, 0)
    budget = (Budget(minutes=cfg.minutes, spent=spent) if cfg.minutes is not None
              else Budget(total_steps=cfg.epochs * steps_per_epoch))
    always_check = device.type != "cuda"  # the NaN guard reads the loss on the host: free on a CPU, a stall on a GPU

    def save(epoch, seconds):
        nonlocal saved
        saved = epoch
        save_checkpoint(path, model, optimizer=optimizer.state_dict(), epoch=int(epoch), history=history,
                        scaler=scaler.state_dict() if scaler.is_enabled() else None, rng=_rng_state(train_loader),
                        train_config=asdict(cfg), identity=identity, seconds=seconds, machine=describe_machine(device))
        path.with_suffix(".history.json").write_text(json.dumps(history))

    def end_of_epoch(label, epoch):
        seconds = budget.elapsed()
        with budget.paused():
            val = evaluate(model, val_loader, cfg)
            if not math.isfinite(val["neg_elbo"]):  # on a GPU unlogged steps go unchecked: never save NaN weights
                raise TrainingDiverged(f"the validation -ELBO became {val['neg_elbo']} at step {step}; "
                                       f"{path or 'no checkpoint'} keeps the last good epoch. Lower lr (now {cfg.lr}).")
            history["epoch"].append({"epoch": label, "step": step, "images": images,
                                     "seconds": round(seconds, 2), **{f"val_{k}": v for k, v in val.items()}})
            if path is not None:
                save(epoch, seconds)

    try:
        while budget.progress(step) < 1.0:  # checked before every step: a run stops within one step of its budget
            model.train()
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}", disable=not cfg.progress, leave=False)
            for x, _ in bar:
                p = budget.progress(step)
                if p >= 1.0:
                    break  # the time budget ran out mid-epoch
                beta = cfg.beta * kl_weight(p, cfg.kl_warmup)
                lr = cfg.lr * lr_factor(p, cfg.lr_warmup, cfg.lr_schedule)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                log = step == 0 or (step + 1) % cfg.log_every == 0
                try:
                    parts = train_step(model, optimizer, to_device(x, device, cfg), cfg, beta, scaler,
                                       check=always_check or log)
                except TrainingDiverged as err:
                    kept = ("no checkpoint was asked for" if path is None else
                            f"the last good checkpoint (epoch {saved}) is kept at {path}" if saved is not None else
                            f"{path} was not overwritten")
                    raise TrainingDiverged(f"stopped at step {step} (epoch {epoch + 1}): {err}; {kept}. "
                                           f"Lower lr (now {cfg.lr}) or keep grad_clip on.") from None
                step, images = step + 1, images + len(x)
                if log:
                    loss, distortion, rate = torch.stack([parts.total, parts.distortion, parts.rate]).tolist()
                    history["step"].append({"step": step, "epoch": step / steps_per_epoch, "loss": loss,
                                            "distortion": distortion, "rate": rate, "beta": beta, "lr": lr})
                    bar.set_postfix(loss=f"{loss:.1f}", rate=f"{rate:.1f}")
            else:
                epoch += 1
                end_of_epoch(epoch, epoch)
                continue
            end_of_epoch(round(step / steps_per_epoch, 3), epoch)  # the budget ended mid-epoch
    except KeyboardInterrupt:
        if path is not None:
            save(epoch, budget.elapsed())  # resumable: the weights so far; the interrupted epoch restarts
        print(f"interrupted: saved a resumable checkpoint at {path} (epoch {epoch})" if path else "interrupted")
        raise
    return history


def load_or_train(checkpoint, model_config: VAEConfig, train_config: TrainConfig, train_loader, val_loader,
                  data: Optional[dict] = None):
    """(model, history) on train_config's device: load `checkpoint` if it holds this very run trained at least this
    long; otherwise train it there, on from a shorter run of the same settings or from scratch (printing why)."""
    path, resume = Path(checkpoint), False
    if path.exists():
        try:
            model, ckpt = load_checkpoint(path)  # on the CPU until it is known to be this run
            diff = identity_diff(ckpt.get("identity"), run_identity(model_config, train_config, train_loader, data))
            done = (ckpt["epoch"] >= train_config.epochs if train_config.minutes is None else
                    ckpt.get("seconds", 0.0) >= 60 * train_config.minutes)
            if not diff and done:
                last = ckpt["history"]["epoch"][-1]  # a time budget usually ends inside an epoch
                print(f"loaded {path.name}: trained {last['step']} steps ({last['epoch']:g} epochs), "
                      f"{ckpt.get('seconds', 0) / 60:.1f} min")
                return model.to(get_device(train_config.device)), ckpt["history"]
            resume = not diff
            print(f"{path.name} holds a shorter run of these settings: training on" if resume else
                  f"{path.name} was trained with other settings ({'; '.join(diff)}): training from scratch")
        except (ValueError, KeyError) as err:
            print(f"{path.name} is unusable ({err}): training a new one")
    seed_everything(train_config.seed)  # the initial weights are part of what the seed fixes
    model = SkipVAE(model_config)
    history = train(model, train_loader, val_loader, train_config, checkpoint=path, resume=resume, data=data)
    return model, history
