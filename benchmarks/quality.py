"""What a training budget buys: every lever of the recipe, the skip study, and a plain MLP VAE, on several seeds.

    python benchmarks/quality.py levers          # each lever against the tutorial's default, 3 seeds
    python benchmarks/quality.py skips           # the skip configurations of notebook 07, 3 seeds
    python benchmarks/quality.py mlp             # the tutorial's model against the MLP VAE of pytorch/examples
    python benchmarks/quality.py levers --seconds 30 --seeds 0   # a quick look

Equal time, measured fairly: every configuration first runs a few timed steps back to back with the others, and
then trains for the number of steps that fits `--seconds` at its own measured rate (with the tutorial's schedules
stretched over those steps). Everything runs on one thread and the rate is measured in CPU time, which equals
wall-clock time on an idle core but is not inflated when other programs share the machine; the runs themselves
are step counts, so a busy machine changes neither the budgets nor the results. The tables give the mean and the
spread (sd) over seeds, and the judge's real-versus-real figures first. Output: a table on stdout and
benchmarks/results/<table>.json, or vae_utils/pretrained/skip_study.json for the skip study, which notebook 07
shows and the wheel ships; the committed copies are what the README and the docs cite.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import sys

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines import MLPVAE  # noqa: E402
from vae_utils import SkipVAE  # noqa: E402
from vae_utils.config import SKIP_STUDY, TRAIN, loader_kwargs, model_config, skip_study_config, train_config  # noqa: E402
from vae_utils.data import make_loaders  # noqa: E402
from vae_utils.metrics import METRICS, evaluate_all, load_judge, real_baseline  # noqa: E402
from vae_utils.pretrained import SKIP_STUDY as SKIP_STUDY_FILE  # noqa: E402
from vae_utils.runtime import cpu_summary, seed_everything  # noqa: E402
from vae_utils.schedule import kl_weight, lr_factor  # noqa: E402
from vae_utils.train import make_optimizer, prepare, to_device, train_step  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# each lever changes one thing of the tutorial's default: (data overrides, model overrides, training overrides)
LEVERS = {
    "default (vae_utils.config)": ({}, {}, {}),
    "data: shapes-small (dSprites sizes)": ({"name": "shapes-small"}, {}, {}),
    "lr: constant, no warm-up": ({}, {}, {"lr_schedule": "constant", "lr_warmup": 0.0}),
    "KL warm-up: 33% of the run": ({}, {}, {"kl_warmup": 0.33}),
    "batch 32": ({"batch_size": 32}, {}, {"batch_size": 32}),
    "lr 3e-3 (3x)": ({}, {}, {"lr": 3e-3}),
    "GroupNorm(8)": ({}, {"norm": "group"}, {}),
    "precision: fp32": ({}, {}, {"precision": "fp32"}),
}
FIGURES = {k: (METRICS[k].short, METRICS[k].fmt, METRICS[k].better) for k in  # the columns, from the one registry
           ("recon_accuracy", "psnr", "inception_score", "frechet", "z_reliance", "probe", "r_scale", "r_x", "r_y",
            "neg_elbo")}


def seconds_per_step(build, loader, cfg, steps: int = 6) -> float:
    """Median CPU seconds of one training step on one thread (after two untimed ones), on a throwaway model."""
    model, device = prepare(build(), cfg)
    opt = make_optimizer(model, cfg, device)
    x = to_device(next(iter(loader))[0], device, cfg)
    times = []
    for i in range(steps + 2):
        t = time.process_time()
        train_step(model, opt, x, cfg, beta=cfg.beta)
        if i >= 2:
            times.append(time.process_time() - t)
    return statistics.median(times)


def train_steps(model, loader, cfg, steps: int) -> None:
    """What train() does per step, for exactly `steps` steps: the tutorial's LR and KL schedules over them."""
    model, device = prepare(model, cfg)
    opt = make_optimizer(model, cfg, device)
    model.train()
    step = 0
    while step < steps:
        for x, _ in loader:
            if step >= steps:
                break
            p = step / steps
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(p, cfg.lr_warmup, cfg.lr_schedule)
            train_step(model, opt, to_device(x, device, cfg), cfg, cfg.beta * kl_weight(p, cfg.kl_warmup))
            step += 1


def run_table(configs: dict, seconds: float, seeds: list, sizes: dict | None = None,
              fixed_steps: int | None = None) -> dict:
    """{name: {"steps": n, "rows": [figures per seed]}} for {name: (data kw, build(), TrainConfig)}; `sizes`
    ({"n_train": .., "n_test": ..}) overrides the tutorial's data sizes."""
    sizes = sizes or {}
    timing = {}
    for name, (data, build, cfg) in configs.items():  # back to back, so the rates are comparable
        loader, _ = make_loaders(**loader_kwargs(n_train=512, n_test=64, **data))
        timing[name] = seconds_per_step(build, loader, cfg)
    out = {}
    for name, (data, build, cfg) in configs.items():
        steps = fixed_steps or max(1, round(seconds / timing[name]))
        rows = []
        for seed in seeds:
            train_loader, test_loader = make_loaders(**loader_kwargs(seed=seed, **{**sizes, **data}))
            judge = load_judge(train_loader.dataset)
            seed_everything(seed)
            model = build()
            train_steps(model, train_loader, train_config(**{**vars(cfg), "seed": seed}), steps)
            rows.append(evaluate_all(model.cpu().float(), test_loader, judge, seed=seed,
                                     train_set=train_loader.dataset))
        out[name] = {"seconds_per_step": timing[name], "steps": steps, "batch_size": cfg.batch_size, "rows": rows}
        print(f"{name}: {steps} steps of {cfg.batch_size} ({timing[name] * 1000:.0f} ms each), "
              f"{len(seeds)} seed(s)", flush=True)
    return out


def summarise(results: dict) -> str:
    """A Markdown table: each figure as mean ± sd over seeds (just the value for one seed)."""
    head = ["configuration", "steps"] + [h for h, _, _ in FIGURES.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, str(r["steps"])]
        for key, (_, fmt, _) in FIGURES.items():
            vals = [row[key] for row in r["rows"] if row.get(key) is not None]
            if not vals:
                cells.append("n/a")
            elif len(vals) == 1:
                cells.append(fmt.format(vals[0]))
            else:
                cells.append(f"{fmt.format(statistics.mean(vals))} ± {fmt.format(statistics.stdev(vals))}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wins(results: dict, reference: str) -> dict:
    """{name: [figures where its seed mean beats the reference's by more than the two spreads together]}."""
    def mean_sd(name, key):
        vals = [row[key] for row in results[name]["rows"] if row.get(key) is not None]
        if not vals:
            return None, None
        return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)

    out = {}
    for name in results:
        if name == reference:
            continue
        better = []
        for key, (_, _, direction) in FIGURES.items():
            (m, s), (m0, s0) = mean_sd(name, key), mean_sd(reference, key)
            if m is None or m0 is None:
                continue
            gap = (m - m0) if direction == "higher" else (m0 - m)
            if gap > s + s0:
                better.append(key)
        out[name] = better
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=["levers", "skips", "mlp"])
    parser.add_argument("--steps", type=int, help="train every configuration for exactly this many steps instead of "
                        "--seconds of CPU time: compares recipes at equal steps, whatever their cost or the load")
    parser.add_argument("--seconds", type=float, default=TRAIN.minutes * 60,
                        help="training time per model (default: the tutorial's quick budget)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", help="run only these rows of the table (by name)")
    parser.add_argument("--n-train", type=int, help="training images (default: the tutorial's)")
    parser.add_argument("--n-test", type=int, help="test images (default: the tutorial's)")
    parser.add_argument("--out", type=Path, help="where to write the JSON (default: benchmarks/results/TABLE.json)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                        help="train nothing: join the rows of runs split with --configs (e.g. over two cores), "
                             "the first file's first row the reference, into one table")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out or default_out(args.table))
    torch.set_num_threads(1)  # CPU time per step is then the time an idle core would take

    if args.table == "levers":
        configs = {name: (data, (lambda m=m: SkipVAE(model_config(**m))), train_config(**t))
                   for name, (data, m, t) in LEVERS.items()}
    elif args.table == "skips":
        configs = {name: ({}, (lambda o=o: SkipVAE(skip_study_config(**o))), train_config())
                   for name, o in SKIP_STUDY.items()}
    else:
        configs = {"MLP VAE 4096-400-20": ({}, lambda: MLPVAE(in_channels=1), train_config(channels_last=False)),
                   "SkipVAE (vae_utils.config)": ({}, lambda: SkipVAE(model_config()), train_config())}

    if args.configs:
        unknown = sorted(set(args.configs) - set(configs))
        if unknown:
            parser.error(f"unknown configuration(s) {unknown}; the {args.table} table has {list(configs)}")
        configs = {name: c for name, c in configs.items() if name in args.configs}
    sizes = {k: v for k, v in (("n_train", args.n_train), ("n_test", args.n_test)) if v is not None}
    _, test_loader = make_loaders(**loader_kwargs(**sizes))
    base = real_baseline(load_judge(), test_loader.dataset.images, test_loader.dataset.labels)
    print(f"{cpu_summary()}; {torch.get_num_threads()} threads; {args.seconds:.0f} s per model; seeds {args.seeds}")
    print(f"judge on real test images: accuracy {base['accuracy']:.3f}, IS {base['inception_score']:.2f}, "
          f"Fréchet (half vs half) {base['frechet']:.1f}\n")
    results = run_table(configs, args.seconds, args.seeds, sizes, args.steps)
    table = summarise(results)
    reference = next(iter(results))
    verdict = wins(results, reference)
    print("\n" + table + "\n")
    print(f"figures where a configuration beats '{reference}' by more than both spreads together:")
    if not verdict:
        print("  (no other configuration)")
    for name, better in verdict.items():
        print(f"  {name}: {len(better)} of {len(FIGURES)} ({', '.join(FIGURES[k][0] for k in better) or 'none'})")
    out = args.out or default_out(args.table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(
        {"command": "python benchmarks/quality.py " + " ".join(f'"{a}"' if " " in a else a for a in sys.argv[1:]),
         "cpu": cpu_summary(), "threads": torch.get_num_threads(), "seconds": args.seconds, "steps": args.steps,
         "seeds": args.seeds,
         "real_baseline": base, "results": results, "table": table, "wins": verdict}, indent=1))


def default_out(table: str) -> Path:
    """The skip study ships in the package (notebook 07 cites it, in Colab too); the others stay here."""
    return SKIP_STUDY_FILE if table == "skips" else RESULTS / f"{table}.json"


def merge(paths: list, out: Path) -> None:
    """One result file from several runs of the same table on the same settings (seeds, seconds, CPU)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    for key in ("seconds", "seeds", "cpu", "threads"):
        if len({json.dumps(p[key]) for p in parts}) > 1:
            raise SystemExit(f"cannot merge: the runs differ in {key}: {[p[key] for p in parts]}")
    results = {name: r for p in parts for name, r in p["results"].items()}
    table, verdict = summarise(results), wins(results, next(iter(results)))
    out.write_text(json.dumps({**parts[0], "results": results, "table": table, "wins": verdict}, indent=1))
    print(table)


if __name__ == "__main__":
    main()
