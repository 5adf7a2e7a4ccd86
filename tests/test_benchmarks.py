"""The benchmark scripts run end to end on tiny settings and print their tables, and the MLP baseline fits the
package's training step and metrics. No timing is asserted."""
import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vae_utils.data import make_loaders
from vae_utils.metrics import evaluate_all
from vae_utils.runtime import native_bf16
from vae_utils.train import TrainConfig, train_step

ROOT = Path(__file__).resolve().parents[1]


def _module(script):
    name = f"benchmarks_{script}"
    if name not in sys.modules:  # registered before it runs: its dataclasses look their module up
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{script}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def _run(script, *args):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_throughput_prints_every_mode_against_the_roofline():
    text = _run("throughput.py", "--channels", "1", "--batch-size", "8", "--repeats", "1", "--steps", "1",
                "--warmup", "1", "--epoch-images", "16", "--profile")
    for mode in ("naive", "default", "channels_last=False", "out-of-place", "bf16", "1 thread"):
        assert re.search(rf"^\| [^|]*{re.escape(mode)}[^|]* \| 1 \| [\d.]+ \|", text, re.M), mode
    fractions = [float(f) for f in re.findall(r"\*\*(\d\.\d\d)\*\* \|", text)]
    native = native_bf16("cpu")
    assert len(fractions) == (6 if native else 5)  # emulated bf16: no fraction (the values are the machine's)
    assert ("bf16: not supported (emulated)" in text) is not native
    assert not re.search(r"bf16.*: met", text) or native
    assert re.search(r"convolutions \(forward and backward\): \d+% of the step", text)
    assert "data-pipeline + logging overhead" in text


@pytest.mark.slow
def test_quality_prints_the_comparison_with_the_mlp_baseline(tmp_path):
    out = tmp_path / "mlp.json"
    text = _run("quality.py", "mlp", "--seconds", "1", "--seeds", "0", "1", "--n-train", "256", "--n-test", "64",
                "--out", str(out))
    assert re.search(r"^MLP VAE 4096-400-20: \d+ steps of 64", text, re.M)
    assert re.search(r"^\| SkipVAE \(vae_utils\.config\) \| \d+ \| [\d.]+ ± [\d.]+ \|", text, re.M)  # mean ± sd
    assert re.search(r"SkipVAE \(vae_utils\.config\): \d+ of 10 \(", text)
    saved = json.loads(out.read_text())
    assert saved["seeds"] == [0, 1] and len(saved["results"]["SkipVAE (vae_utils.config)"]["rows"]) == 2
    assert saved["table"] in text


@pytest.mark.slow
def test_quick_spread_trains_notebook_05s_defaults_once_per_seed(tmp_path, monkeypatch):
    monkeypatch.delenv("VAE_SMOKE_TEST", raising=False)  # make test sets it; here --minutes alone keeps the run small
    out = tmp_path / "spread.json"
    text = _run("quick_spread.py", "--minutes", "0.01", "--seeds", "0", "1", "--n-train", "256", "--n-test", "64",
                "--out", str(out))
    assert re.search(r"^seed 1: \d+ steps, judge accuracy [\d.]+, Fréchet \d+, \d of 9 goals$", text, re.M)
    saved = json.loads(out.read_text())
    assert saved["seeds"] == [0, 1] and [r["seed"] for r in saved["runs"]] == [0, 1] and saved["minutes"] == 0.01
    accuracy = [r["recon_accuracy"] for r in saved["runs"]]
    assert saved["summary"]["recon_accuracy"] == pytest.approx([sum(accuracy) / 2, abs(accuracy[0] - accuracy[1]) / 2 ** 0.5])


def test_quality_names_the_rows_it_knows_when_asked_for_another():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "skips", "--configs", "wide skips"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2 and "unknown configuration(s) ['wide skips']; the skips table has" in out.stderr


ROWS = [dict(mode="default: train_step, channels-last fp32", channels=1, precision="fp32", fraction=0.95, ips=212.0),
        dict(mode="option: precision='bf16'", channels=1, precision="bf16", fraction=6.97, ips=18.0)]


def test_emulated_bf16_gets_no_roofline_fraction_and_no_goal(monkeypatch):
    throughput = _module("throughput")
    monkeypatch.setattr(throughput, "native_bf16", lambda device: False)
    verdict = throughput.bf16_verdict(fp32_rate=53.9, bf16_rate=1.04)
    assert verdict.startswith("bf16: not supported (emulated): its matmul runs at 1.0 GFLOP/s against 54 for fp32")
    lines = throughput.goal_lines(ROWS, [1], verdict)
    assert "- C=1, bf16: not supported (emulated), 18.0 images/s against 212.0 in fp32; no goal claimed" in lines
    assert not any("bf16" in line and "met" in line for line in lines)  # the false pass of an emulated roofline
    assert any(line.startswith("- C=1, fp32 default: 0.95 of its roofline") for line in lines)


def test_native_bf16_is_judged_against_its_goal(monkeypatch):
    throughput = _module("throughput")
    monkeypatch.setattr(throughput, "native_bf16", lambda device: True)
    assert throughput.bf16_verdict(fp32_rate=380, bf16_rate=1419) is None
    lines = throughput.goal_lines(ROWS, [1], None)
    assert "- C=1, bf16 option: 6.97 of its roofline, goal >= 0.6: met" in lines


def test_quality_merges_a_table_split_over_processes(tmp_path):
    quality = _module("quality")
    row = lambda v: {"steps": 10, "batch_size": 64, "seconds_per_step": 0.1,  # noqa: E731
                     "rows": [{key: v + s for key in quality.FIGURES} for s in (0.0, 0.01, 0.02)]}
    common = {"cpu": "Some CPU", "threads": 1, "seconds": 60.0, "seeds": [0, 1, 2], "real_baseline": {}}
    (tmp_path / "a.json").write_text(json.dumps({**common, "results": {"default": row(1.0)}}))
    (tmp_path / "b.json").write_text(json.dumps({**common, "results": {"lever": row(5.0)}}))
    quality.main(["levers", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                  "--out", str(tmp_path / "levers.json")])
    saved = json.loads((tmp_path / "levers.json").read_text())
    assert list(saved["results"]) == ["default", "lever"]
    assert "lever" in saved["table"] and "1.01 ± 0.01" in saved["table"]  # judge acc of 'default': mean ± sd
    lower = {k for k, (_, _, better) in quality.FIGURES.items() if better == "lower"}
    assert sorted(saved["wins"]["lever"]) == sorted(set(quality.FIGURES) - lower)  # higher is better, except these
    (tmp_path / "b.json").write_text(json.dumps({**common, "seconds": 30.0, "results": {"lever": row(5.0)}}))
    with pytest.raises(SystemExit, match="the runs differ in seconds"):
        quality.main(["levers", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json")])


def test_mlp_baseline_fits_the_same_training_step_and_metrics():
    baselines = _module("baselines")
    torch.manual_seed(0)
    train, test = make_loaders(n_train=256, n_test=64, batch_size=32)
    model = baselines.MLPVAE(in_channels=1, image_size=(64, 64))
    assert sum(p.numel() for p in model.fc1.parameters()) == 64 * 64 * 400 + 400  # 4096-400-20, pytorch/examples style
    cfg = TrainConfig(progress=False, channels_last=False, precision="fp32")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, _ = next(iter(train))
    first = train_step(model, opt, x, cfg, beta=1.0).total.item()
    for _ in range(20):
        last = train_step(model, opt, x, cfg, beta=1.0).total.item()
    assert last < first
    out = evaluate_all(model, test, None, cfg)
    assert out["active_units"] <= 20 and math.isfinite(out["psnr"])
