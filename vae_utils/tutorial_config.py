"""The tutorial's defaults, defined once: its data, its model and its training recipe.

Notebooks 01 and 04-07, `params.train_run` (notebook 05 and params/), the benchmarks and notebook 06's fallback
all read them from here, so changing a default is changing one line. A notebook parameter that takes one of these
defaults is `None` in the notebook ("None: the tutorial default"); `params.tutorial_defaults` puts the value in,
and the README's parameter tables show it.
"""
from __future__ import annotations

from dataclasses import replace

from .model import VAEConfig
from .train import TrainConfig

# the data: the built-in shapes, grey, 64x64; notebook 05 trains on N_TRAIN images and validates on N_TEST
DATASET = "shapes"
IMAGE_SIZE = 64  # height and width in pixels, a multiple of 64
CHANNELS = 1  # 1 (grey) or 3 (colour: shapes gain a hue factor)
N_TRAIN = 20_000
N_TEST = 2_000

# the model: the spec's encoder and decoder without the skips, so that everything reaches the decoder through z
# and the model can sample (notebook 07 measures the alternatives)
MODEL = VAEConfig(
    in_channels=CHANNELS,
    image_size=IMAGE_SIZE,
    latent="learned",  # 1x1-conv heads: mu and log var per latent position
    skips="none",
    skip_source="encoder",
    skip_dropout=0.0,
    norm="none",  # as in the spec
    init="kaiming",  # He et al. 2015
)

# the training recipe
TRAIN = TrainConfig(
    minutes=3.0,  # a time budget: a faster machine trains more steps in the same wait
    epochs=3,  # used instead of minutes when a run asks for exact reproducibility
    batch_size=64,
    lr=1e-3,  # AdamW's peak
    lr_schedule="cosine",
    lr_warmup=0.02,
    beta=1.0,  # the true ELBO after warm-up
    kl_warmup=0.1,  # linear KL warm-up over the first tenth of the run
    free_bits=0.0,
    likelihood="bernoulli",
    seed=0,
    precision="auto",  # bf16 where it is native, else fp32
)

# the smaller budgets of the notebooks that train their own models on the same data
BUDGETS = {
    "04": dict(n_train=3000, n_test=500, minutes=0.67),  # the KL warm-up comparison: two runs of about 40 s
    "07": dict(minutes=0.3, n_test=500, n_samples=500),  # the skip study: six runs of the same time each
}


def model_config(**overrides) -> VAEConfig:
    """The tutorial's model config, with any field overridden (a new object: MODEL itself never changes)."""
    return replace(MODEL, **overrides)


def skip_study_config(**options) -> VAEConfig:
    """A configuration of notebook 07's skip study (metrics.SKIP_STUDY): the tutorial's model with the spec's
    skips (all of them, from the encoder), then `options` on top."""
    return model_config(**{"skips": "all", "skip_source": "encoder", "skip_dropout": 0.0, **options})


def train_config(**overrides) -> TrainConfig:
    """The tutorial's training config, with any field overridden (a new object). `epochs` without `minutes`
    trains by epochs: the tutorial's time budget would otherwise take precedence."""
    if "epochs" in overrides and "minutes" not in overrides:
        overrides["minutes"] = None
    return replace(TRAIN, **overrides)


def loader_kwargs(**overrides) -> dict:
    """Keyword arguments of data.make_loaders for the tutorial's data, e.g. make_loaders(**loader_kwargs(n_train=3000))."""
    return {"name": DATASET, "image_size": IMAGE_SIZE, "channels": CHANNELS, "batch_size": TRAIN.batch_size,
            "seed": TRAIN.seed, "n_train": N_TRAIN, "n_test": N_TEST, **overrides}


def notebook_defaults(notebook: str) -> dict:
    """{parameter: value} of notebook "01", "04", "05", "06" or "07": what its `None` parameters stand for."""
    data = dict(dataset=DATASET, image_size=IMAGE_SIZE, channels=CHANNELS)
    seed = dict(seed=TRAIN.seed)
    recipe = dict(minutes=TRAIN.minutes, batch_size=TRAIN.batch_size, lr=TRAIN.lr,
                  beta=TRAIN.beta, kl_warmup=TRAIN.kl_warmup, free_bits=TRAIN.free_bits, likelihood=TRAIN.likelihood,
                  latent=MODEL.latent, skips=MODEL.skips, skip_source=MODEL.skip_source,
                  skip_dropout=MODEL.skip_dropout, norm=MODEL.norm, init=MODEL.init, seed=TRAIN.seed,
                  precision=TRAIN.precision)
    table = {"01": data, "04": {**BUDGETS["04"], **seed}, "05": {**data, "n_train": N_TRAIN, "n_test": N_TEST, **recipe},
             "06": seed, "07": {**BUDGETS["07"], **seed}}
    if notebook not in table:
        raise ValueError(f"notebook must be one of {sorted(table)}, got {notebook!r}")
    return table[notebook]
