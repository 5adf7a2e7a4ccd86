"""Checkpoints, resumable and weights-only: exact round trips, atomic writes, safe loading onto the CPU, clear errors
for bad files."""
import zipfile

import pytest
import torch

from vae_utils import SkipVAE
from vae_utils.checkpoint import (WEIGHTS_FORMAT, CheckpointError, export_weights, load_checkpoint, read_checkpoint,
                                  save_checkpoint)
from vae_utils.data import make_loaders
from vae_utils.train import TrainConfig, train


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
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_config"]["skip_source"] = "z"  # config says generative skips, weights have none
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(path)


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebook 05"):
        load_checkpoint(tmp_path / "nothing.pt")


# --- weights-only exports ---------------------------------------------------------------------------------

def _trained_a_step(**kw):
    torch.manual_seed(0)
    model = SkipVAE(in_channels=1, skip_source="z", **kw)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.rand(2, 1, 64, 64))[0].mean().backward()
    opt.step()  # the optimiser now holds two moments per weight, as after any training
    return model.eval(), opt


def test_a_weights_only_export_is_a_sixth_of_a_resumable_checkpoint(tmp_path):
    model, opt = _trained_a_step()
    n = sum(p.numel() for p in model.parameters())
    full = save_checkpoint(tmp_path / "full.pt", model, optimizer=opt.state_dict(), epoch=1).stat().st_size
    fp16 = export_weights(tmp_path / "w16.pt", model).stat().st_size
    assert 2 * n < fp16 < 2 * n * 1.03  # the weights in fp16, and little else
    assert full > 5.8 * fp16  # fp32 weights, Adam's two moments, history, RNG state
    assert 7e6 < fp16 < 9e6  # the tutorial's model: about 8 MB


def test_weights_only_round_trip_and_summary(tmp_path):
    model, _ = _trained_a_step()
    identity = {"model": model.config.to_dict(), "train": {"seed": 0}, "data": {"name": "shapes", "n_train": 8000}}
    summary = {"neg_elbo": 231.5, "images_seen": 24000, "minutes": 1.1}
    export_weights(tmp_path / "w16.pt", model, summary=summary, identity=identity)
    raw = torch.load(tmp_path / "w16.pt", weights_only=True)  # plain data: safe to load from anywhere
    assert raw["format"] == WEIGHTS_FORMAT and raw["dtype"] == "float16" and "optimizer" not in raw
    assert raw["identity"] == identity and raw["model_config"] == model.config.to_dict()
    assert raw["summary"] == summary
    assert all(v.dtype == torch.float16 for v in raw["model"].values() if v.is_floating_point())
    x = torch.rand(2, 1, 64, 64)
    half, ckpt = load_checkpoint(tmp_path / "w16.pt")
    assert all(p.dtype == torch.float32 for p in half.parameters())  # cast back on load
    assert ckpt["summary"]["neg_elbo"] == 231.5
    torch.testing.assert_close(half.eval().reconstruct(x), model.reconstruct(x), atol=2e-2, rtol=0)


def test_bad_weights_files_name_what_was_expected(tmp_path):
    model, _ = _trained_a_step()
    path = export_weights(tmp_path / "w.pt", model)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_config"]["skip_source"] = "encoder"  # config says encoder skips, weights are for skips from z
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="weights do not fit the stored config"):
        load_checkpoint(path)
    del ckpt["model"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"lacks \['model'\]: expected a vae-skipnet-weights/1 file"):
        load_checkpoint(path)
    path.write_bytes(export_weights(tmp_path / "w3.pt", model).read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


# --- onto the CPU, whatever wrote the file -------------------------------------------------------------------

def _as_if_saved_on_a_gpu(path):
    """Rewrite a torch.save file so that every tensor says it was saved from cuda:0, as a GPU run's file does."""
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i.filename) for i in z.infolist()}
    pkl = next(n for n in entries if n.endswith("/data.pkl"))
    cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"  # pickle protocol 2's location string
    assert entries[pkl].count(cpu) >= 1
    entries[pkl] = entries[pkl].replace(cpu, cuda)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    if not torch.cuda.is_available():  # the file really asks for a GPU: a plain torch.load refuses it here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    return path


def test_a_gpu_runs_checkpoint_opens_on_the_cpu_and_its_rng_state_is_usable(tmp_path):
    path = tmp_path / "run.pt"
    tr, te = make_loaders(n_train=8, n_test=8, batch_size=8)
    torch.manual_seed(0)
    train(SkipVAE(in_channels=1, skips="none"), tr, te,
          TrainConfig(epochs=1, progress=False, device="cpu", precision="fp32"), checkpoint=path)
    _as_if_saved_on_a_gpu(path)
    ckpt = read_checkpoint(path)
    tensors = [v for v in ckpt["model"].values()] + [ckpt["rng"]["torch"]]
    tensors += [v for s in ckpt["optimizer"]["state"].values() for v in s.values() if torch.is_tensor(v)]
    assert all(t.device.type == "cpu" for t in tensors)
    state = ckpt["rng"]["torch"]
    assert state.dtype == torch.uint8  # the ByteTensor that torch.set_rng_state takes
    torch.set_rng_state(state)
    a = torch.rand(3)
    torch.set_rng_state(state)
    assert torch.equal(a, torch.rand(3))
    model, _ = load_checkpoint(path)
    assert model.device.type == "cpu"


def test_a_weights_file_saved_on_a_gpu_loads_on_the_cpu(tmp_path):
    model, _ = _trained_a_step()
    path = _as_if_saved_on_a_gpu(save_checkpoint(tmp_path / "w.pt", model))
    loaded, _ = load_checkpoint(path, "cpu")
    x = torch.rand(1, 1, 64, 64)
    assert loaded.device.type == "cpu" and torch.equal(loaded.eval().reconstruct(x), model.reconstruct(x))


def test_the_grad_scaler_state_is_stored_and_read_back(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    path = save_checkpoint(tmp_path / "m.pt", SkipVAE(in_channels=1), epoch=1, scaler=scaler.state_dict())
    stored = read_checkpoint(path)["scaler"]
    assert stored == scaler.state_dict() and stored["scale"] == 1024.0
    fresh = torch.amp.GradScaler("cpu")
    fresh.load_state_dict(stored)
    assert fresh.get_scale() == 1024.0
