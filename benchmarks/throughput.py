"""Training throughput of SkipVAE against the CPU's roofline, every mode side by side.

    python benchmarks/throughput.py            # 64x64, batch 64, channels 1 and 3: a few minutes
    python benchmarks/throughput.py --quick    # channels 1 only, fewer repeats: under a minute and a half on 2 cores
    python benchmarks/throughput.py --compile  # also torch.compile (slow to compile)
    python benchmarks/throughput.py --profile  # also where the default step's time goes, operator by operator

What it measures, in one run:
- the machine's fp32 and bf16 matmul rate (GFLOP/s), the roofline's height; where bf16 is emulated (no AVX512-BF16
  or AMX that oneDNN may use: runtime.native_bf16) it is reported as "not supported (emulated)" with its measured
  rates, and no roofline fraction or goal is claimed for it;
- the FLOPs of one training step per image (torch.utils.flop_counter, forward and backward);
- images/s of each training mode, and the fraction of the matching roofline (matmul rate / FLOPs per image).
  Modes are timed interleaved, with the matmul rate measured again beside every sample, so a change in the
  load of a shared machine moves both sides of each ratio; the table shows medians over the repeats;
- one whole epoch of the real `train()` on shapes, against the sum of its step times: the data-pipeline and
  logging overhead; and the same epoch in bf16, to show what bf16 does to the loss;
- the peak resident memory of each mode.
Absolute numbers move with the load of the machine; compare the ratios. Everything runs on the CPU (a GPU,
if present, is not used here: its roofline needs other tools, such as torch.cuda.Event timing).
"""
from __future__ import annotations

import argparse
import copy
import itertools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf  # noqa: E402
from perf import set_inplace_activations  # noqa: E402
from vae_utils import train as train_mod  # noqa: E402
from vae_utils.config import DATASET, IMAGE_SIZE, TRAIN, model_config, train_config  # noqa: E402
from vae_utils.data import make_loaders  # noqa: E402
from vae_utils.model import SkipVAE  # noqa: E402
from vae_utils.runtime import cpu_summary, native_bf16, resolve_precision  # noqa: E402
from vae_utils.train import make_optimizer, prepare, to_device, train_step  # noqa: E402

GOALS = {"fp32": 0.9, "bf16": 0.6, "overhead": 0.05}


def naive_step(model, opt, x):
    """The baseline: a plain hand-written eager step, NCHW fp32, Adam, Bernoulli -ELBO; no clipping."""
    logits, mu, logvar = model(x)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
    opt.zero_grad()
    (recon + kl).backward()
    opt.step()


def default_step(base: SkipVAE, out_of_place: bool = False, compile: bool = False, **overrides):
    """step(x): exactly what train() builds and runs per batch, on a copy of `base` with the tutorial's training
    config in fp32; the options change one thing."""
    cfg = train_config(device="cpu", **{"precision": "fp32", **overrides})
    model = set_inplace_activations(copy.deepcopy(base), not out_of_place)
    model, device = prepare(model, cfg)
    opt = make_optimizer(model, cfg, device)
    net = torch.compile(model) if compile else model
    return lambda x: train_step(net, opt, to_device(x, device, cfg), cfg, beta=cfg.beta)  # warm-up done


def build_modes(base: SkipVAE, args) -> list:
    """[(name, precision of its roofline, threads or None, step factory)]; each factory returns step(x)."""

    def naive():
        model = copy.deepcopy(base)
        opt = torch.optim.Adam(model.parameters(), lr=TRAIN.lr)
        return lambda x: naive_step(model, opt, x)

    def real(**options):  # built when its turn comes, so that peak memory is measured per mode
        return lambda: default_step(base, **options)

    modes = [
        ("naive: eager NCHW fp32, hand-written step", "fp32", None, naive),
        ("default: train_step, channels-last fp32", "fp32", None, real()),
        ("option: channels_last=False", "fp32", None, real(channels_last=False)),
        ("option: out-of-place activations", "fp32", None, real(out_of_place=True)),
        ("option: precision='bf16'", "bf16", None, real(precision="bf16")),
        ("default on 1 thread", "fp32", 1, real()),
    ]
    if args.compile:
        modes.append(("option: torch.compile(model)", "fp32", None, real(compile=True)))
    return modes


def matmul_rate(precision: str) -> float:
    """The matmul rate in this precision, GFLOP/s; emulated bf16 at 256x256 (at 1024, one matmul takes seconds)."""
    if precision == "bf16" and not native_bf16("cpu"):
        return perf.matmul_gflops(torch.bfloat16, n=256, repeats=3)
    return perf.matmul_gflops(torch.bfloat16 if precision == "bf16" else torch.float32, repeats=3)


def bf16_verdict(fp32_rate: float, bf16_rate: float) -> str | None:
    """None where bf16 is native; otherwise the line that replaces its roofline fraction and its goal."""
    if native_bf16("cpu"):
        return None
    return (f"bf16: not supported (emulated): its matmul runs at {bf16_rate:.1f} GFLOP/s against {fp32_rate:.0f} "
            f"for fp32 (no AVX512-BF16 or AMX that oneDNN may use); no roofline fraction and no goal for it")


def goal_lines(rows: list, channels: list, verdict: str | None) -> list:
    """The goals' verdicts, one line each; bf16 is judged only where it is native (else `verdict` stands for it)."""
    lines = []
    for c in channels:
        d = next(r for r in rows if r["channels"] == c and r["mode"].startswith("default"))
        h = next(r for r in rows if r["channels"] == c and r["precision"] == "bf16")
        judged = (("fp32 default", d, GOALS["fp32"]),) + ((("bf16 option", h, GOALS["bf16"]),) if verdict is None else ())
        for label, r, goal in judged:
            met = "met" if r["fraction"] >= goal else f"NOT met (short by {goal - r['fraction']:.2f})"
            lines.append(f"- C={c}, {label}: {r['fraction']:.2f} of its roofline, goal >= {goal}: {met}")
        if verdict is not None:
            lines.append(f"- C={c}, bf16: not supported (emulated), {h['ips']:.1f} images/s against {d['ips']:.1f} "
                         f"in fp32; no goal claimed")
    return lines


def bench_channels(channels: int, args, flops_rows: list) -> list:
    """Time every mode on `channels`-channel shapes; returns table rows."""
    b, size = args.batch_size, args.image_size
    loader, _ = make_loaders(DATASET, size, channels, b, n_train=8 * b, n_test=b)
    batches = itertools.cycle(list(loader))  # the real loader's batches, pre-drawn so modes see the same data
    torch.manual_seed(0)
    base = SkipVAE(model_config(in_channels=channels, image_size=size))  # the tutorial's model
    flops = perf.train_step_flops(base, next(batches)[0], train_config(channels_last=False, precision="fp32"))
    flops_rows.append((channels, flops))
    threads = torch.get_num_threads()
    modes, samples, memory = [], {}, {}
    for name, precision, n_threads, factory in build_modes(base, args):
        perf.reset_peak_memory()
        before = perf.memory_mb()
        if name.endswith("compile(model)"):
            print("  compiling ...", file=sys.stderr, flush=True)
        step = factory()
        torch.set_num_threads(n_threads or threads)
        t = time.perf_counter()
        for _ in range(args.warmup):
            step(next(batches)[0])
        torch.set_num_threads(threads)
        modes.append((name, precision, n_threads, step, time.perf_counter() - t))
        memory[name] = perf.peak_memory_mb() - before  # weights, optimiser state and the step's activations
    for r in range(args.repeats):
        print(f"  channels {channels}: repeat {r + 1}/{args.repeats}", file=sys.stderr, flush=True)
        for name, precision, n_threads, step, _ in modes:
            gflops = matmul_rate(precision)  # the roofline now, beside this sample
            torch.set_num_threads(n_threads or threads)
            xs = [next(batches)[0] for _ in range(args.steps)]
            t = time.perf_counter()
            for x in xs:
                step(x)
            seconds = (time.perf_counter() - t) / args.steps
            torch.set_num_threads(threads)
            ips = b / seconds
            samples.setdefault(name, []).append((ips, ips / (gflops * 1e9 / flops), gflops))
    rows = []
    naive_ips = statistics.median(s[0] for s in samples[modes[0][0]])
    for name, precision, n_threads, _, warm in modes:
        ips = statistics.median(s[0] for s in samples[name])
        frac = statistics.median(s[1] for s in samples[name])
        best = max(s[1] for s in samples[name])
        gflops = statistics.median(s[2] for s in samples[name])
        rows.append(dict(mode=name, channels=channels, precision=precision, ips=ips, speedup=ips / naive_ips,
                         roofline=gflops * 1e9 / flops, fraction=frac, best=best, memory=memory[name], warmup=warm))
    return rows


def bench_epoch(channels: int, precision: str, args) -> dict:
    """One epoch of the real train() on shapes, logging and progress bar on; step and validation time apart."""
    loaders = make_loaders(DATASET, args.image_size, channels, args.batch_size, n_train=args.epoch_images,
                           n_test=args.batch_size * 2)
    cfg = train_config(epochs=1, precision=precision, device="cpu")
    clock = {"step": 0.0, "eval": 0.0}
    real_step, real_eval = train_mod.train_step, train_mod.evaluate

    def timed(key, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                clock[key] += time.perf_counter() - t
        return wrapper

    train_mod.train_step, train_mod.evaluate = timed("step", real_step), timed("eval", real_eval)
    try:
        torch.manual_seed(0)
        model = SkipVAE(model_config(in_channels=channels, image_size=args.image_size))
        t = time.perf_counter()
        history = train_mod.train(model, *loaders, cfg)
        wall = time.perf_counter() - t
    finally:
        train_mod.train_step, train_mod.evaluate = real_step, real_eval
    epoch = wall - clock["eval"]  # the training part of the epoch; validation is compute, not overhead
    return dict(precision=precision, steps=len(loaders[0]), epoch=epoch, step_sum=clock["step"],
                overhead=(epoch - clock["step"]) / epoch, val=history["epoch"][-1]["val_neg_elbo"],
                loss=history["step"][-1]["loss"])


def profile_default(channels: int, args, fp32_rate: float, flops: float):
    """Where the default step's time goes: torch.profiler's top operators, and the convolutions' own GFLOP/s."""
    from torch.profiler import ProfilerActivity, profile

    loader, _ = make_loaders(DATASET, args.image_size, channels, args.batch_size, n_train=4 * args.batch_size,
                             n_test=args.batch_size)
    xs = [x for x, _ in loader]
    torch.manual_seed(0)
    step = default_step(SkipVAE(model_config(in_channels=channels, image_size=args.image_size)))
    for x in xs[:2]:
        step(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for x in xs[2:4]:
            step(x)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mkldnn_convolution",
                                                                  "aten::convolution_backward"))
    print(f"\nProfile of the default step (C={channels}, 2 steps), operators by share of the step's time:\n")
    print("| operator | share |\n|---|---:|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]:
        print(f"| {e.key} | {100 * e.self_cpu_time_total / total:.1f}% |")
    rate = flops * args.batch_size * 2 / (conv / 1e6) / 1e9  # profiler times are in microseconds
    print(f"\nconvolutions (forward and backward): {100 * conv / total:.0f}% of the step, at {rate:.0f} GFLOP/s, "
          f"{rate / fp32_rate:.2f} of the fp32 matmul rate; everything else: {100 - 100 * conv / total:.0f}%")


# the default step in a fresh process, so that OpenMP reads OMP_WAIT_POLICY as it starts (torch imported first)
WAIT_POLICY_SCRIPT = r"""
import sys, time, torch
sys.path.insert(0, sys.argv[1])
from vae_utils.model import SkipVAE
from vae_utils.train import make_optimizer, prepare, to_device, train_step
from vae_utils.config import model_config, train_config
c, size, b, steps = (int(a) for a in sys.argv[2:6])
torch.manual_seed(0)
cfg = train_config(device="cpu", precision="fp32")
model, device = prepare(SkipVAE(model_config(in_channels=c, image_size=size)), cfg)
opt = make_optimizer(model, cfg, device)
x = to_device(torch.rand(b, c, size, size), device, cfg)
train_step(model, opt, x, cfg, 1.0)
t = time.perf_counter()
for _ in range(steps):
    train_step(model, opt, x, cfg, 1.0)
print(b * steps / (time.perf_counter() - t))
"""


def bench_wait_policy(channels: int, args) -> dict:
    """images/s of the default step with OpenMP's own waiting (spin, then sleep) and with sleeping waits."""
    root = str(Path(__file__).resolve().parents[1])
    out = {}
    for r in range(min(args.repeats, 3)):
        print(f"  OpenMP wait policy: repeat {r + 1}/{args.repeats}", file=sys.stderr, flush=True)
        for policy in ("libgomp default (spin, then sleep)", "PASSIVE (sleep at once)"):
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy.startswith("PASSIVE"):
                env["OMP_WAIT_POLICY"] = "PASSIVE"
            run = subprocess.run([sys.executable, "-c", WAIT_POLICY_SCRIPT, root, str(channels), str(args.image_size),
                                  str(args.batch_size), str(args.steps)], env=env, capture_output=True, text=True,
                                 check=True)
            out.setdefault(policy, []).append(float(run.stdout.split()[-1]))
    return {k: statistics.median(v) for k, v in out.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="channels 1 only, 3 repeats, a short epoch")
    p.add_argument("--channels", type=int, nargs="+", default=None, help="default: 1 3 (--quick: 1)")
    p.add_argument("--batch-size", type=int, default=TRAIN.batch_size)
    p.add_argument("--image-size", type=int, default=IMAGE_SIZE)
    p.add_argument("--repeats", type=int, default=None, help="timed samples per mode (default 5, --quick 3)")
    p.add_argument("--steps", type=int, default=None, help="training steps per sample (default 3, --quick 2)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per mode before the first sample")
    p.add_argument("--epoch-images", type=int, default=None, help="images in the timed epoch (default 2048, --quick 512)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: every available CPU)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (compiles for a minute)")
    p.add_argument("--profile", action="store_true", help="also profile the default step, operator by operator")
    args = p.parse_args(argv)
    args.channels = args.channels or ([1] if args.quick else [1, 3])
    args.repeats = args.repeats or (3 if args.quick else 5)
    args.steps = args.steps or (2 if args.quick else 3)
    args.epoch_images = args.epoch_images or (512 if args.quick else 2048)
    threads = perf.set_threads(args.threads)
    load0 = os.getloadavg()[0]
    start = time.perf_counter()

    print(f"# SkipVAE training throughput: {args.image_size}x{args.image_size}, batch {args.batch_size}\n")
    print(f"machine: {cpu_summary()}; torch {torch.__version__}, {threads} threads, "
          f"load average {load0:.2f} at the start\n")
    flops_rows, rows = [], []
    for c in args.channels:
        rows += bench_channels(c, args, flops_rows)
    print("| channels | FLOPs per image, one training step |\n|---:|---:|")
    for c, f in flops_rows:
        print(f"| {c} | {f / 1e9:.3f} GFLOP |")
    fp32 = statistics.median(r["roofline"] * next(f for c, f in flops_rows if c == r["channels"]) / 1e9
                             for r in rows if r["precision"] == "fp32")
    bf16 = statistics.median(r["roofline"] * next(f for c, f in flops_rows if c == r["channels"]) / 1e9
                             for r in rows if r["precision"] == "bf16")
    verdict = bf16_verdict(fp32, bf16)
    print(f"\nmatmul rate (median): fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.1f} GFLOP/s (bf16/fp32 = {bf16 / fp32:.2f}x)")
    print(f"precision='auto' trains in {resolve_precision('auto', 'cpu')} here; {verdict or 'bf16: native'}\n")
    print(f"Median of {args.repeats} samples of {args.steps} steps each; roofline = matmul rate / FLOPs per image "
          f"in the mode's precision.\n")
    print("| mode | C | images/s | × naive | roofline img/s | fraction of roofline | best sample | memory MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        emulated = verdict is not None and r["precision"] == "bf16"  # a roofline of an emulated matmul means nothing
        fraction = "emulated" if emulated else f"**{r['fraction']:.2f}**"
        best = "-" if emulated else f"{r['best']:.2f}"
        print(f"| {r['mode']} | {r['channels']} | {r['ips']:.1f} | {r['speedup']:.2f} | "
              f"{'-' if emulated else format(r['roofline'], '.0f')} | {fraction} | {best} | {r['memory']:.0f} |")

    if args.profile:
        profile_default(args.channels[0], args, fp32, flops_rows[0][1])

    policies = bench_wait_policy(args.channels[0], args)
    spin = next(iter(policies.values()))
    print(f"\nOpenMP wait policy, default step, C={args.channels[0]}, {threads} threads, fresh process each "
          f"(median of {min(args.repeats, 3)}):\n")
    print("| OMP_WAIT_POLICY | images/s | × libgomp default |\n|---|---:|---:|")
    for policy, ips in policies.items():
        print(f"| {policy} | {ips:.1f} | {ips / spin:.2f} |")

    epochs = [bench_epoch(args.channels[0], prec, args) for prec in ("fp32", "bf16")[:2 if verdict is None else 1]]
    print(f"\nOne epoch of train() on shapes ({args.epoch_images} images, C={args.channels[0]}, "
          f"progress bar and logging on; validation excluded):\n")
    print("| precision | steps | epoch s | sum of step times s | overhead | last step loss | val -ELBO (nats) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for e in epochs:
        print(f"| {e['precision']} | {e['steps']} | {e['epoch']:.1f} | {e['step_sum']:.1f} | "
              f"**{100 * e['overhead']:.1f}%** | {e['loss']:.1f} | {e['val']:.1f} |")
    if len(epochs) == 2:
        f, b = epochs
        print(f"\nbf16 against fp32 after one epoch, same seed: val -ELBO {b['val'] - f['val']:+.1f} nats "
              f"({100 * (b['val'] - f['val']) / f['val']:+.1f}%)")
    else:
        print("\nno bf16 epoch: bf16 is emulated on this CPU")

    print("\nGoals:")
    print("\n".join(goal_lines(rows, args.channels, verdict)))
    worst = max(e["overhead"] for e in epochs)
    met = "met" if worst <= GOALS["overhead"] else "NOT met"
    print(f"- data-pipeline + logging overhead: {100 * worst:.1f}% of epoch time at most, goal <= 5%: {met}")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; the run took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
