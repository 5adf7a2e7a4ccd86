"""Checkpoints: exact round trips, atomic writes, safe loading, and clear errors for bad files."""
import pytest
import torch

from vae_utils import SkipVAE, VAEConfig
from vae_utils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = SkipVAE(in_channels=1, skips="coarse", latent="spec").eval()
    path = save_checkpoint(tmp_path / "m.pt", model, epoch=3, history={"epoch": [{"epoch": 3}]})
    loaded, ckpt = load_checkpoint(path)
    assert loaded.config == model.config and ckpt["epoch"] == 3
    x = torch.rand(2, 1, 64, 64)
    assert torch.equal(loaded.eval().reconstruct(x), model.reconstruct(x))


def test_write_is_atomic_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    model = SkipVAE(in_channels=1)
    save_checkpoint(path, model, epoch=1)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_loading_never_runs_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, ("open('%s', 'w').write('pwned')" % (tmp_path / "pwned"),))
    path = tmp_path / "evil.pt"
    torch.save({"format": "vae-skipnet/1", "payload": Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_corrupt_file(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, SkipVAE(in_channels=1))
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a crash mid-copy
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(SkipVAE(in_channels=1).state_dict(), path)  # bare weights, no config
    with pytest.raises(CheckpointError, match="not a VAE-SkipNet checkpoint"):
        load_checkpoint(path)


def test_mismatched_architecture(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", SkipVAE(in_channels=1, skips="all"))
    with pytest.raises(CheckpointError, match="different architecture.*skips"):
        load_checkpoint(path, expect=VAEConfig(in_channels=1, skips="none"))
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_config"]["skip_source"] = "z"  # config says generative skips, weights have none
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(path)


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebook 05"):
        load_checkpoint(tmp_path / "nothing.pt")
