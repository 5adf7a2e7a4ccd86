"""The benchmark scripts run end to end on tiny settings and print their tables. No timing is asserted."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
    assert len(fractions) == 6 and all(0 < f for f in fractions)
    assert re.search(r"convolutions \(forward and backward\): \d+% of the step", text)
    assert "data-pipeline + logging overhead" in text


@pytest.mark.slow
def test_quality_prints_the_comparison_with_the_mlp_baseline():
    text = _run("quality.py", "--seconds", "1", "--n-train", "256", "--n-test", "64", "--configs", "skips from z")
    assert re.search(r"^MLP VAE 784-400-20 \(baseline\) +[\d.]+", text, re.M)
    assert re.search(r"^SkipVAE: skips from z +[\d.]+", text, re.M)
    assert re.search(r"SkipVAE: skips from z: [0-5]/5", text)
