"""Generated sentences and tables say what their numbers say."""
import torch

from vae_utils import findings


def test_the_rate_sentence_counts_the_channels_that_carry_most_of_it():
    rate = torch.zeros(256)
    rate[:3] = torch.tensor([50.0, 30.0, 15.0])  # 95 of 100 nats in three channels
    rate[3:8] = 1.0
    active = torch.zeros(256, dtype=torch.bool)
    active[:5] = True
    text = findings.rate_sentence(rate, active)
    assert text.startswith("3 of 256 channels carry 90% of the rate of 100.0 nats per image; 5 are active")
    assert "the other 251 sit near the prior" in text


def test_factor_sentences_name_the_best_channel_and_the_verdict():
    corr = torch.tensor([[0.1, 0.8, 0.2], [0.3, 0.2, 0.45]])
    lines = findings.factor_sentences(torch.cat([corr, corr[:1]]), ["x", "y", "shape"]).splitlines()
    assert lines[0].split() == ["x", "best", "channel", "z[1],", "|r|", "=", "0.80:", "a", "channel", "follows", "it"]
    assert "z[2], |r| = 0.45: no single channel reaches |r| 0.5" in lines[1]
    assert lines[2].split()[:2] == ["shape", "categorical:"]


def test_the_sample_sentence_compares_the_mixture_with_the_prior():
    real = {"frechet": 10.0, "inception_score": 3.9}
    better = {"frechet": 300.0, "gmm_frechet": 120.0, "inception_score": 2.1, "gmm_inception_score": 2.9}
    assert findings.sample_sentence(better, real).startswith("Samples from the mixture are closer to the real")
    assert "Fréchet distance 120 against 300 (two halves of the real test set: 10)" in findings.sample_sentence(better, real)
    worse = {**better, "gmm_frechet": 400.0}
    assert "no closer to" in findings.sample_sentence(worse, real)
    assert "no comparison" in findings.sample_sentence({"frechet": None, "gmm_frechet": None}, real)


def _row(**kw):
    base = {"z_reliance": 0.9, "rate": 30.0, "psnr": 20.0, "frechet": 400.0}
    return {**base, **kw}


def test_skip_sentences_follow_the_table():
    results = {"all skips (spec)": _row(z_reliance=0.001, rate=0.2, psnr=35.0, frechet=None),
               "no skips": _row(frechet=300.0), "skips from z": _row(frechet=350.0, psnr=19.0)}
    text = findings.skip_sentences(results, {"frechet": 5.0})
    assert "z reliance is 0.001 and the rate 0.2 nats: the decoder ignores z." in text
    assert "Of the 2 configurations that can sample, 'no skips' has the lowest Fréchet distance (300;" in text
    assert "The sharpest reconstructions come from 'all skips (spec)' (35.0 dB)" in text


def test_the_recommendation_needs_sampling_and_z():
    results = {"all skips (spec)": _row(z_reliance=0.0, frechet=None), "skip dropout 0.5": _row(z_reliance=0.0, frechet=100.0),
               "no skips": _row(frechet=300.0), "skips from z": _row(frechet=320.0)}
    text = findings.recommendation(results, {"images_seen": 960000, "frechet": 40.0, "recon_accuracy": 0.98})
    assert "'no skips'" in text.splitlines()[1] and "skip dropout" not in text  # it samples but ignores z
    assert "The pretrained model (no skips, 960,000 images) reaches Fréchet 40" in text
    assert findings.recommendation({"a": _row(z_reliance=0.0)}).startswith("No configuration")
