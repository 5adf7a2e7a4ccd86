"""The training loop: it learns, it is deterministic, it resumes exactly, and it stops on NaN."""
import json

import pytest
import torch

from vae_utils import SkipVAE
from vae_utils.data import make_loaders
from vae_utils.train import TrainConfig, TrainingDiverged, evaluate, train, train_step

FAST = dict(progress=False, log_every=1, device="cpu", precision="fp32")  # fp32: the same numerics on every CPU


def _loaders(n=48, batch=16, seed=0):
    return make_loaders(batch_size=batch, n_train=n, n_test=16, seed=seed)


def _model(**kw):
    torch.manual_seed(0)  # the initial weights come from the global RNG
    return SkipVAE(in_channels=1, **kw)


def _strip(history):
    """The history as JSON would store it, without the wall-clock seconds of each epoch, which differ between runs."""
    history = json.loads(json.dumps(history))
    for row in history["epoch"]:
        assert row.pop("seconds") >= 0
    return history


def test_overfitting_one_batch_drives_the_reconstruction_down():
    torch.manual_seed(0)
    x = make_loaders(n_train=16, n_test=16, batch_size=16)[0].dataset.images
    model = SkipVAE(in_channels=1, skips="none")
    cfg = TrainConfig(lr=2e-3, kl_warmup=0, beta=0.0, **FAST)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    first = train_step(model, opt, x, cfg, beta=0.0).recon.item()
    for _ in range(40):
        last = train_step(model, opt, x, cfg, beta=0.0).recon.item()
    assert last < 0.6 * first


@pytest.mark.slow
def test_same_seed_same_metrics():
    runs = []
    for _ in range(2):
        tr, te = _loaders()
        runs.append(train(_model(skip_dropout=0.5), tr, te, TrainConfig(epochs=2, **FAST)))
    assert _strip(runs[0]) == _strip(runs[1])


class Killed(Exception):
    """The process dying mid-run, as a killed kernel does: no handler runs, the last checkpoint stays."""


class DiesAfter:
    """A training loader that dies when asked for batch `n` + 1 (counted over all epochs)."""

    def __init__(self, loader, n):
        self.loader, self.n, self.seen = loader, n, 0

    def __iter__(self):
        for batch in self.loader:
            if self.seen == self.n:
                raise Killed
            self.seen += 1
            yield batch

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):  # dataset, batch_size, generator: the wrapped loader's
        return getattr(self.loader, name)


@pytest.mark.slow
def test_resume_equals_one_run(tmp_path):
    cfg = TrainConfig(epochs=2, **FAST)
    tr, te = _loaders()
    whole = _model()
    h_whole = train(whole, tr, te, cfg)

    tr, te = _loaders()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(Killed):  # the same run, killed in its second epoch: the checkpoint of epoch 1 remains
        train(_model(), DiesAfter(tr, len(tr) + 1), te, cfg, checkpoint=ckpt)
    tr, te = _loaders()  # a fresh process would rebuild its loaders too
    resumed = SkipVAE(in_channels=1)  # weights come from the checkpoint
    h_resumed = train(resumed, tr, te, cfg, checkpoint=ckpt, resume=True)
    assert [r["step"] for r in h_resumed["step"]] == list(range(1, 7))
    assert _strip(h_resumed) == _strip(h_whole)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert _strip(json.loads(ckpt.with_suffix(".history.json").read_text())) == _strip(h_resumed)


def test_injected_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    tr, te = _loaders(n=32)
    ckpt = tmp_path / "run.pt"
    train(_model(), tr, te, TrainConfig(epochs=1, **FAST), checkpoint=ckpt)
    good = ckpt.read_bytes()
    tr.dataset.images[5] = float("nan")  # one poisoned image: its batch's loss becomes NaN
    with pytest.raises(TrainingDiverged, match=r"loss became nan.*last good checkpoint \(epoch 1\)"):
        train(_model(), tr, te, TrainConfig(epochs=2, **FAST), checkpoint=ckpt, resume=True)
    assert ckpt.read_bytes() == good
    with pytest.raises(TrainingDiverged, match=r"run.pt was not overwritten"):  # a fresh run over an old file
        train(_model(), tr, te, TrainConfig(epochs=2, **FAST), checkpoint=ckpt)
    assert ckpt.read_bytes() == good


def test_evaluate_reports_rate_and_distortion_and_leaves_the_rng_alone():
    tr, te = _loaders()
    cfg = TrainConfig(**FAST)
    model = SkipVAE(in_channels=1)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    a = evaluate(model, te, cfg)
    assert torch.equal(torch.get_rng_state(), before)
    assert set(a) >= {"neg_elbo", "recon", "kl", "kl_per_channel"}
    assert sum(a["kl_per_channel"]) == pytest.approx(a["kl"], rel=1e-4)
    assert abs(a["neg_elbo"] - (a["recon"] + a["kl"])) < 1e-3 * a["neg_elbo"]


def test_bf16_and_channels_last_paths_run():
    x = torch.rand(4, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    model = SkipVAE(in_channels=1).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters())
    parts = train_step(model, opt, x, TrainConfig(**{**FAST, "precision": "bf16"}), beta=1.0)
    assert torch.isfinite(parts.total)


def test_channels_last_agrees_with_the_default_layout():
    torch.manual_seed(0)
    model, x = SkipVAE(in_channels=3).eval(), torch.rand(2, 3, 128, 64)
    with torch.no_grad():
        mu_ref = model.encode(x)[0]
        ref = model.decode(mu_ref, model.encode(x)[2])
        cl = model.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        mu_cl, _, skips = cl.encode(xc)
        out = cl.decode(mu_cl, skips)
    assert torch.allclose(out, ref, atol=1e-5) and torch.allclose(mu_cl, mu_ref, atol=1e-5)


@pytest.mark.parametrize("field,value,match", [
    ("epochs", "abc", r"epochs must be a positive integer, got 'abc'"),
    ("epochs", 0, r"epochs must be a positive integer, got 0"),
    ("lr", -1.0, r"lr must be a positive number"),
    ("beta", float("nan"), r"beta must be a number >= 0"),
    ("precision", "fp8", r"precision must be 'auto', 'fp32', 'bf16' or 'fp16'"),
    ("likelihood", "laplace", r"likelihood must be one of"),
])
def test_bad_train_config(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_fp16_needs_cuda():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: fp16 is valid here")
    tr, te = _loaders(n=16)
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        train(SkipVAE(in_channels=1), tr, te, TrainConfig(**{**FAST, "precision": "fp16"}))


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    class Interrupting:
        """A loader whose third batch of the second epoch is a Ctrl-C."""

        def __init__(self, loader):
            self.loader, self.epoch = loader, 0
            self.generator, self.dataset = loader.generator, loader.dataset

        def __len__(self):
            return len(self.loader)

        def __iter__(self):
            self.epoch += 1
            for i, batch in enumerate(self.loader):
                if self.epoch == 2 and i == 2:
                    raise KeyboardInterrupt
                yield batch

    tr, te = _loaders()
    ckpt = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_model(), Interrupting(tr), te, TrainConfig(epochs=3, **FAST), checkpoint=ckpt)
    from vae_utils.checkpoint import read_checkpoint
    assert read_checkpoint(ckpt)["epoch"] == 1  # epoch 2 was interrupted: it restarts on resume
    history = train(SkipVAE(in_channels=1), tr, te, TrainConfig(epochs=3, **FAST), checkpoint=ckpt, resume=True)
    assert [e["epoch"] for e in history["epoch"]] == [1, 2, 3]
