"""SkipVAE: a convolutional VAE whose decoder adds encoder features back, U-Net style.

References: the spec's step tables (`vae_utils.spec`), from which every stage is built; Kingma & Welling (2014);
Dieng, Kim, Rush & Blei (2019), generative skip models, for `skip_source="z"`. Tensors are (B, C, H, W).
"""
from dataclasses import asdict, dataclass, fields
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import spec
from .spec import check_image_size

LATENT_CHANNELS = spec.ENCODER[-1].channels  # 256, Step 17
N_LEVELS = 6  # skip levels 0..5: the input image (H) and the five stage pools (H/2 ... H/32)
SKIP_PRESETS = {
    "all": (0, 1, 2, 3, 4, 5),  # as in the spec
    "none": (),
    "coarse": (4, 5),  # H/16 and H/32 only
    "no-input": (1, 2, 3, 4, 5),  # all but Step 22's input image, the most direct leak
}
CHOICES = {"latent": ("learned", "spec"), "skip_source": ("encoder", "z"), "decoder_activation": ("leaky_relu", "relu"),
           "init": ("kaiming", "torch"), "norm": ("none", "group", "batch")}  # VAEConfig's string options


@dataclass
class VAEConfig:
    """Everything needed to rebuild a SkipVAE; stored in every checkpoint."""

    in_channels: int = 3  # C; the output has C channels too, because Step 22 adds the input image
    image_size: tuple = (64, 64)  # (H, W) that sample() draws; the network itself is fully convolutional
    latent: str = "learned"  # "learned": 1x1-conv heads, mu/logvar of shape (256, H/64, W/64); "spec": Step 16's per-image scalars
    skips: Union[str, tuple] = "all"  # "all" (spec), "none", "coarse", "no-input", or levels, e.g. (3, 4, 5); level k is at H/2**k
    skip_source: str = "encoder"  # "encoder" (spec); "z": a learned projection of z at each add point (Dieng et al. 2019)
    skip_dropout: float = 0.0  # training only: drop each skip tensor with this probability, so the decoder must use z
    decoder_activation: str = "leaky_relu"  # the table's LeakyReLU; "relu": ReLU, as the spec's diagram draws it
    negative_slope: float = 0.2  # LeakyReLU's slope for negative inputs (the table gives none)
    init: str = "kaiming"  # "kaiming": He-normal weights matched to each activation; "torch": PyTorch's default init
    norm: str = "none"  # "none" (the spec); "group": GroupNorm(8) between each 3x3 convolution and its activation; "batch": BatchNorm

    def __post_init__(self):
        self.image_size = check_image_size(self.image_size)
        if not isinstance(self.in_channels, int) or self.in_channels < 1:
            raise ValueError(f"in_channels must be a positive integer (1 for grey, 3 for RGB), got {self.in_channels!r}")
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {list(choices)}, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.skip_dropout) < 1.0:
            raise ValueError(f"skip_dropout must lie in [0, 1), got {self.skip_dropout!r}")
        self.skips = _normalise_skips(self.skips)

    @property
    def skip_levels(self) -> tuple:
        """The skip levels in use, e.g. (0, 1, 2, 3, 4, 5) for "all"."""
        return SKIP_PRESETS[self.skips] if isinstance(self.skips, str) else self.skips

    @property
    def needs_encoder(self) -> bool:
        """True when decoding needs encoder features, so prior samples are impossible."""
        return self.skip_source == "encoder" and bool(self.skip_levels) and self.skip_dropout == 0

    def to_dict(self) -> dict:
        """Plain types only, so that torch.load(weights_only=True) can read it back."""
        return {**asdict(self), "image_size": list(self.image_size),
                "skips": self.skips if isinstance(self.skips, str) else list(self.skips)}

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        """The config that `to_dict` wrote; a missing field takes its default, an unknown one is an error."""
        known = {f.name for f in fields(cls)}
        if set(d) - known:
            raise ValueError(f"unknown VAEConfig field(s) {sorted(set(d) - known)}; expected some of {sorted(known)}")
        return cls(**d)


def _normalise_skips(skips):
    if isinstance(skips, str) and skips in SKIP_PRESETS:
        return skips
    if isinstance(skips, str):  # "3,4,5" from a papermill parameter or a command line
        try:
            skips = [int(s) for s in skips.replace(" ", "").split(",") if s]
        except ValueError:
            raise ValueError(f"skips must be one of {list(SKIP_PRESETS)} or levels such as '3,4,5', got {skips!r}") from None
    levels = tuple(sorted(set(int(s) for s in skips)))
    if any(not 0 <= k < N_LEVELS for k in levels):
        raise ValueError(f"skip levels must lie in 0..{N_LEVELS - 1} (level k is at H/2**k), got {levels}")
    return levels


def check_input(x: torch.Tensor, channels: int) -> None:
    """Validate a batch at the model's boundary: (B, channels, H, W) with H and W multiples of 64."""
    expected = f"(B, {channels}, H, W) with H and W multiples of 64"
    if not torch.is_tensor(x):
        raise ValueError(f"expected a tensor of shape {expected}, got {type(x).__name__}")
    if x.dim() != 4:
        fix = "; add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else ""
        raise ValueError(f"expected a 4-D batch {expected}, got shape {tuple(x.shape)}{fix}")
    if x.shape[1] != channels:
        raise ValueError(f"expected {channels} channel(s), shape {expected}, got {x.shape[1]} in {tuple(x.shape)}; "
                         f"convert the images or build the model with VAEConfig(in_channels={x.shape[1]})")
    check_image_size(tuple(x.shape[2:]))


def _activation(kind: str, slope: float) -> nn.Module:
    # in place: no fresh 16 MB buffer per layer; about 1.1x the training step on a CPU (benchmarks/throughput.py)
    return nn.LeakyReLU(slope, inplace=True) if kind == "leaky_relu" else nn.ReLU(inplace=True)


def _tag(module: nn.Module, part: str, step: spec.Step) -> nn.Module:
    module.spec_step = (part, step.step)  # read by shape_report's hooks
    return module


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)  # 8 groups; statistics per image, so batch size is free
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


class ConvAct(nn.Sequential):
    """One table row "Conv(n filters, 3×3, act)": a 'same' 3x3 convolution, an optional norm, the activation."""

    def __init__(self, c_in: int, c_out: int, act: nn.Module, norm: str = "none"):
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1),  # (B, c_in, h, w) -> (B, c_out, h, w)
                         _norm(norm, c_out), act)  # shape unchanged


class EncoderStage(nn.Module):
    """Conv3x3 + LeakyReLU(0.2), twice, then MaxPool 2x2: three encoder rows."""

    def __init__(self, c_in: int, c_out: int, slope: float, steps: tuple, norm: str = "none"):
        super().__init__()
        self.conv1 = _tag(ConvAct(c_in, c_out, _activation("leaky_relu", slope), norm), "encoder", steps[0])  # (B, c_in, h, w) -> (B, c_out, h, w)
        self.conv2 = _tag(ConvAct(c_out, c_out, _activation("leaky_relu", slope), norm), "encoder", steps[1])  # (B, c_out, h, w) -> (B, c_out, h, w)
        self.pool = _tag(nn.MaxPool2d(2), "encoder", steps[2])  # (B, c_out, h, w) -> (B, c_out, h/2, w/2)

    def forward(self, x):
        return self.pool(self.conv2(self.conv1(x)))


class LearnedStats(nn.Module):
    """mu and log sigma^2 for every latent element, from two 1x1 convolutions (latent="learned")."""

    def __init__(self, channels: int):
        super().__init__()
        self.mu = nn.Conv2d(channels, channels, 1)  # (B, 256, H/64, W/64) -> (B, 256, H/64, W/64)
        self.logvar = nn.Conv2d(channels, channels, 1)  # (B, 256, H/64, W/64) -> (B, 256, H/64, W/64)

    def forward(self, h):
        return self.mu(h), self.logvar(h)


class SpecStats(nn.Module):
    """Step 16 as written: one mean and one log-variance per image, over all pooled features (latent="spec")."""

    def forward(self, h):
        mu = h.mean(dim=(1, 2, 3), keepdim=True)  # (B, 256, H/64, W/64) -> (B, 1, 1, 1)
        logvar = torch.log(h.var(dim=(1, 2, 3), keepdim=True) + 1e-6)  # log sigma^2: the log of the variance
        return mu, logvar


class LatentHead(nn.Module):
    """Steps 16-17: the sixth max-pool to the latent grid, then mu and log sigma^2."""

    def __init__(self, channels: int, latent: str):
        super().__init__()
        self.pool = nn.MaxPool2d(2)  # (B, 256, H/32, W/32) -> (B, 256, H/64, W/64)
        self.stats = _tag(LearnedStats(channels) if latent == "learned" else SpecStats(), "encoder", spec.ENCODER[-2])

    def forward(self, h):
        h = self.pool(h)  # (B, 256, H/32, W/32) -> (B, 256, H/64, W/64)
        mu, logvar = self.stats(h)  # "spec": (B, 1, 1, 1) each, one scalar per image
        return mu.expand_as(h), logvar.expand_as(h)  # (B, 256, H/64, W/64): every element shares them under "spec"


class Encoder(nn.Module):
    """Encoder Steps 1-17: five EncoderStages, then the latent head; also returns the skip features."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        stages, c_in = [], cfg.in_channels
        for filters, steps in spec.encoder_stages():  # 16, 32, 64, 128, 256
            stages.append(EncoderStage(c_in, filters, cfg.negative_slope, steps, cfg.norm))
            c_in = filters
        self.stages = nn.ModuleList(stages)
        self.head = LatentHead(c_in, cfg.latent)

    def forward(self, x):
        features = [x]  # level 0: (B, C, H, W), the input image itself
        for stage in self.stages:
            features.append(stage(features[-1]))  # level k: (B, 16 * 2**(k-1), H/2**k, W/2**k)
        mu, logvar = self.head(features[-1])  # (B, 256, H/32, W/32) -> 2 x (B, 256, H/64, W/64)
        return mu, logvar, features


class AddSkip(nn.Module):
    """An "Add Skip Connection" row: h + skip, or h unchanged when that level has no skip."""

    def forward(self, h, skip: Optional[torch.Tensor] = None):
        return h if skip is None else h + skip  # (B, c, h, w) + (B, c, h, w)


class DecoderStage(nn.Module):
    """ConvTranspose 3x3 stride 2, add the skip, then Conv3x3 + activation twice: four decoder rows."""

    def __init__(self, c_in: int, c_out: int, acts: tuple, steps: tuple, norm: str = "none"):
        super().__init__()
        # stride 2, padding 1, output_padding 1: exactly doubles H and W, as the table's shapes require
        self.up = _tag(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
                       "decoder", steps[0])  # (B, c_in, h, w) -> (B, c_out, 2h, 2w)
        self.add = _tag(AddSkip(), "decoder", steps[1])  # (B, c_out, 2h, 2w) -> (B, c_out, 2h, 2w)
        self.conv1 = _tag(ConvAct(c_out, c_out, acts[0], norm), "decoder", steps[2])  # (B, c_out, 2h, 2w) -> same
        self.conv2 = _tag(ConvAct(c_out, c_out, acts[1], norm), "decoder", steps[3])  # (B, c_out, 2h, 2w) -> same

    def forward(self, h, skip=None):
        return self.conv2(self.conv1(self.add(self.up(h), skip)))


class Decoder(nn.Module):
    """Decoder Steps 1-24: six DecoderStages from the latent grid back to (H, W, C); returns logits."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        stages, c_in = [], LATENT_CHANNELS
        for filters, steps in spec.decoder_stages():  # 256, 128, 64, 32, 16, Output
            last = filters == spec.OUTPUT
            c_out = cfg.in_channels if last else filters
            # Steps 23-24 have no activation in the table; the sigmoid comes in SkipVAE.decode
            acts = [nn.Identity() if last else _activation(cfg.decoder_activation, cfg.negative_slope) for _ in range(2)]
            stages.append(DecoderStage(c_in, c_out, acts, steps, "none" if last else cfg.norm))  # no norm on the output
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.levels = tuple(spec.skip_level(steps[1]) for _, steps in spec.decoder_stages())  # 5, 4, 3, 2, 1, 0
        self.z_skips = None
        if cfg.skip_source == "z":  # one 1x1 projection of z per add point in use
            widths = {lvl: st.up.out_channels for lvl, st in zip(self.levels, self.stages)}
            self.z_skips = nn.ModuleDict({str(k): nn.Conv2d(LATENT_CHANNELS, widths[k], 1) for k in cfg.skip_levels})

    def skips_from_z(self, z) -> dict:
        """Generative skips: z projected to each level's width, upsampled (nearest) to its resolution."""
        return {int(k): F.interpolate(proj(z), scale_factor=2 ** (N_LEVELS - int(k)), mode="nearest")
                for k, proj in self.z_skips.items()}  # (B, 256, H/64, W/64) -> (B, c_k, H/2**k, W/2**k)

    def forward(self, z, skips: Optional[dict] = None):
        skips = self.skips_from_z(z) if self.z_skips is not None else skips or {}
        h = z  # (B, 256, H/64, W/64)
        for stage, level in zip(self.stages, self.levels):
            h = stage(h, skips.get(level))  # (B, c, h, w) -> (B, c', 2h, 2w)
        return h  # logits, (B, C, H, W)


def init_weights(model: nn.Module) -> None:
    """He normal weights for the activation after each convolution, zero biases (He et al., 2015). PyTorch's default
    gives about a sixth of that variance: through 30 convolutions the signal fades (notebook 05 shows it)."""
    acts = {m[0]: m[-1] for m in model.modules() if isinstance(m, ConvAct)}  # each convolution's activation
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            act = acts.get(m)  # None for transposed convs and 1x1 heads: no activation
            rectified = isinstance(act, (nn.LeakyReLU, nn.ReLU))  # ReLU is LeakyReLU with slope 0
            nn.init.kaiming_normal_(m.weight, a=getattr(act, "negative_slope", 0.0),
                                    nonlinearity="leaky_relu" if rectified else "linear")
            nn.init.zeros_(m.bias)


class SkipVAE(nn.Module):
    """The VAE of the spec: Encoder, reparameterisation, and a Decoder that adds skips back."""

    def __init__(self, config: Optional[VAEConfig] = None, **overrides):
        super().__init__()
        self.config = config if config is not None else VAEConfig(**overrides)
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        if self.config.init == "kaiming":
            init_weights(self)

    def encode(self, x):
        """x (B, C, H, W) in [0, 1] -> mu, logvar (B, 256, H/64, W/64) and the skips the decoder will add."""
        check_input(x, self.config.in_channels)
        mu, logvar, features = self.encoder(x)
        return mu, logvar, self.select_skips(features)

    def select_skips(self, features: list) -> dict:
        """The configured levels of encoder features; while training, each is dropped with p = skip_dropout."""
        cfg = self.config
        if cfg.skip_source != "encoder":
            return {}
        skips = {k: features[k] for k in cfg.skip_levels}
        if self.training and cfg.skip_dropout > 0:
            for k, s in skips.items():  # one keep/drop decision per image and level
                keep = torch.rand(s.shape[0], 1, 1, 1, device=s.device) >= cfg.skip_dropout
                skips[k] = s * keep.to(s.dtype)
        return skips

    @staticmethod
    def reparameterize(mu, logvar):
        """z = mu + sigma * eps with eps ~ N(0, I): a sample whose gradient flows to mu and logvar."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def decode(self, z, skips: Optional[dict] = None):
        """z (B, 256, H/64, W/64) -> images (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decoder(z, skips))

    def forward(self, x):
        """Returns the decoder's logits (B, C, H, W), mu and logvar; the loss works on logits for stability."""
        mu, logvar, skips = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decoder(z, skips), mu, logvar

    @torch.no_grad()
    def reconstruct(self, x):
        """Deterministic reconstruction: decode the posterior mean with the encoder's skips."""
        mu, _, skips = self.encode(x)
        return self.decode(mu, skips)

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None):
        """n images decoded from prior draws z ~ N(0, I); impossible while the decoder needs encoder skips."""
        if self.config.needs_encoder:
            raise ValueError(
                f"sample() needs a decoder that works without encoder features, but skips={self.config.skips!r} "
                f"adds them at levels {self.config.skip_levels}; use skips='none', skip_source='z' or skip_dropout > 0")
        h, w = self.config.image_size
        z = torch.randn(n, *self.latent_shape(h, w), generator=generator)  # (n, 256, H/64, W/64), drawn on the CPU
        return self.decode(z.to(self.device))  # (n, C, H, W)

    @property
    def device(self) -> torch.device:
        """Where the weights live: put inputs here, `x.to(model.device)`."""
        return next(self.parameters()).device

    def latent_shape(self, height: int, width: int) -> tuple:
        """The shape of z for one image: (256, H/64, W/64)."""
        return (LATENT_CHANNELS, height // spec.DOWNSAMPLING, width // spec.DOWNSAMPLING)
