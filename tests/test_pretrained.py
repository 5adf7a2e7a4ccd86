"""The pretrained model that ships with the package: it loads, it is the tutorial's model, it is small, and its
stored judge figures are reproduced from its weights."""
import json

import pytest
import torch

from vae_utils import pretrained
from vae_utils.checkpoint import read_checkpoint
from vae_utils.tutorial_config import model_config


def test_it_loads_as_the_tutorial_model_from_a_small_weights_only_file():
    model, summary = pretrained.load_pretrained()
    assert model.config == model_config()  # the tutorial's model, so notebooks 06 and 07 explain it
    assert not model.training and next(model.parameters()).dtype == torch.float32
    size = pretrained.WEIGHTS.stat().st_size
    assert size < 8.5e6, f"{size / 1e6:.1f} MB"  # fp16: about 8 MB
    ckpt = read_checkpoint(pretrained.WEIGHTS)
    assert ckpt["dtype"] == "float16" and "optimizer" not in ckpt
    torch.load(pretrained.WEIGHTS, weights_only=True)  # data, not a program
    assert summary["command"] == "make pretrained" and summary["images_seen"] > 0 and summary["minutes"] > 0
    history = json.loads(pretrained.HISTORY.read_text())
    assert history["epoch"][-1]["images"] == summary["images_seen"]


@pytest.mark.slow
def test_its_stored_judge_figures_are_reproduced_from_the_weights():
    model, summary = pretrained.load_pretrained()
    now = pretrained.judge_figures(model)
    # the same weights, data, seeds and judge: only the CPU's arithmetic may differ (another vector unit, BLAS or
    # thread count), which moves a figure by far less than these margins
    assert now["recon_accuracy"] == pytest.approx(summary["recon_accuracy"], abs=0.01)
    assert now["psnr"] == pytest.approx(summary["psnr"], abs=0.05)
    assert now["neg_elbo"] == pytest.approx(summary["neg_elbo"], rel=0.005)
    assert now["probe"] == pytest.approx(summary["probe"], abs=0.01)
    for key in ("inception_score", "gmm_inception_score"):
        assert now[key] == pytest.approx(summary[key], rel=0.02)
    for key in ("frechet", "gmm_frechet"):
        assert now[key] == pytest.approx(summary[key], rel=0.05, abs=1.0)
    for key in ("r_scale", "r_x", "r_y"):
        assert now[key] == pytest.approx(summary[key], abs=0.02)
