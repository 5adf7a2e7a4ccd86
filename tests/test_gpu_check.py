"""The GPU recipe on a CPU: benchmarks/gpu_check.py runs end to end with --device cpu (its own smoke test), and
params/gpu.yaml holds parameters that notebook 05 accepts and that run natively on each card it names."""
import re
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
import torch
import yaml

from vae_utils import config, runtime

ROOT = Path(__file__).resolve().parents[1]
GPU_YAML = ROOT / "params" / "gpu.yaml"


def _notebook(path: Path, body: str):
    """A notebook with a `parameters` cell like notebook 05's (minutes, device, out_dir), then `body`."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell("minutes = None\ndevice = None\nout_dir = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)
    return path


@pytest.mark.slow  # a subprocess that trains three models for a few steps and starts two kernels
def test_gpu_check_runs_on_the_cpu_and_prints_one_table(tmp_path):
    ok = _notebook(tmp_path / "05_like.ipynb", (
        "import json, pathlib\n"
        "assert (minutes, device) == (0.01, 'cpu'), (minutes, device)\n"
        "pathlib.Path(out_dir).mkdir(parents=True)\n"
        "pathlib.Path(out_dir, 'metrics.json').write_text(json.dumps({'neg_elbo': 123.4, 'precision': 'fp32',\n"
        "                                                             'machine': 'a test CPU'}))"))
    broken = _notebook(tmp_path / "broken.ipynb", "raise RuntimeError('this cell fails')")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--batch", "4",
                          "--steps", "2", "--rounds", "2", "--minutes", "0.01", "--notebooks", str(ok), str(broken),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert out.returncode == 1, out.stderr[-3000:]  # the broken notebook fails the check
    rows = {tuple(line.split()[:3]): line for line in out.stdout.splitlines() if line.startswith(("train", "notebook"))}
    emulated = "emulated" if not runtime.native_bf16("cpu") else ""
    for precision in ("fp32", "bf16"):
        line = rows[("train", "step", precision)]
        assert re.search(rf"{precision}\s+ok\s+[\d.,]+\s+[\d.,]+\s+-?[\d.]+", line), line  # images/s, ms, loss
        assert ("emulated" in line) == bool(emulated) or precision == "fp32"
    assert "skipped" in rows[("train", "step", "fp16")] and "needs CUDA" in rows[("train", "step", "fp16")]
    assert re.search(r"notebook 05_like\s+fp32\s+ok\s+\d+\s+123\.4\s+a test CPU", rows[("notebook", "05_like", "fp32")])
    (failed,) = [line for key, line in rows.items() if key[:2] == ("notebook", "broken")]
    assert "FAILED" in failed and "this cell fails" in failed
    assert out.stdout.startswith("gpu_check on cpu: ") and out.stdout.count("check  ") == 1  # one table


def _gpu_yaml() -> dict:
    """{card: notebook 05's parameters}: the file's active (T4) values, and the A100/H100 block applied on top."""
    text = GPU_YAML.read_text()
    t4 = yaml.safe_load(text)
    block = {k: yaml.safe_load(v) for k, v in re.findall(r"^#   (\w+): (\S+)$", text, re.M)}
    (command,) = re.findall(r"^#\s+python -m tools\.papermill .* -f params/gpu\.yaml( -p .*)$", text, re.M)
    override = {k: yaml.safe_load(v) for k, v in re.findall(r" -p (\w+) (\S+)", command)}
    assert block and override == block, "the commented A100 values and the -p command line must agree"
    return {"T4": t4, "A100": {**t4, **block}}


@pytest.mark.parametrize("card, capability", [("T4", (7, 5)), ("A100", (8, 0))])
def test_gpu_yaml_is_accepted_by_notebook_05_and_runs_natively_on_its_card(card, capability, monkeypatch):
    params = _gpu_yaml()[card]
    run = config.train_run(**{**params, "device": "cpu", "precision": "fp32"})  # this machine has no GPU
    assert run.train.batch_size == run.data["batch_size"] == params["batch_size"]
    assert params["device"] == "cuda" and run.out_dir.name == Path(params["out_dir"]).name
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    gpu = torch.device("cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error", runtime.EmulatedBF16Warning)  # no emulated bf16 on this card
        assert runtime.resolve_precision(params["precision"], gpu) == params["precision"]
    assert runtime.needs_grad_scaler(params["precision"], gpu) == (params["precision"] == "fp16")
    if runtime.resolve_precision("auto", gpu) != params["precision"]:  # T4: "auto" is fp32, fp16 is the faster choice
        assert card == "T4" and params["precision"] == "fp16"
