"""Skip configurations of the SkipVAE against a plain MLP VAE, each trained for the same CPU wall-clock time.

    python benchmarks/quality.py                 # 90 s per model on shapes (about 12 minutes in all)
    python benchmarks/quality.py --seconds 20    # a quick look

Every model gets the same data, seed, optimiser (AdamW), KL warm-up (the first 30% of its time) and time budget,
on the tutorial's data and training config (vae_utils/tutorial_config.py);
the metrics are those of notebook 07 (vae_utils.metrics), with the real-versus-real baseline printed first.
"""
from __future__ import annotations

import argparse
import time

import torch

from vae_utils import SkipVAE
from vae_utils.baselines import MLPVAE
from vae_utils.data import make_loaders
from vae_utils.metrics import SKIP_STUDY, evaluate_all, format_table, real_baseline, train_classifier
from vae_utils.runtime import seed_everything
from vae_utils.train import TrainConfig, make_optimizer, train_step
from vae_utils.tutorial_config import CHANNELS, IMAGE_SIZE, N_TEST, TRAIN, loader_kwargs, skip_study_config, train_config


def train_for(model, loader, cfg: TrainConfig, seconds: float, warmup_fraction: float = 0.3) -> int:
    """Train until `seconds` of wall-clock time have passed; returns the number of steps."""
    model.train()
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    steps, t0 = 0, time.perf_counter()
    while True:
        for x, _ in loader:
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                return steps
            beta = cfg.beta * min(1.0, elapsed / (warmup_fraction * seconds))
            if cfg.channels_last and x.dim() == 4 and isinstance(model, SkipVAE):
                x = x.contiguous(memory_format=torch.channels_last)
            train_step(model, opt, x, cfg, beta)
            steps += 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90, help="training time per model")
    parser.add_argument("--n-train", type=int, default=20000, help="training images (the whole shapes split)")
    parser.add_argument("--n-test", type=int, default=N_TEST)
    parser.add_argument("--lr", type=float, default=TRAIN.lr)
    parser.add_argument("--configs", nargs="*", default=list(SKIP_STUDY), help="which SkipVAE configurations")
    parser.add_argument("--seed", type=int, default=TRAIN.seed)
    args = parser.parse_args(argv)

    train_loader, test_loader = make_loaders(**loader_kwargs(n_train=args.n_train, n_test=args.n_test, seed=args.seed))
    net = train_classifier(train_loader, n_classes=len(train_loader.dataset.label_names), seed=args.seed)
    base = real_baseline(net, test_loader.dataset.images, test_loader.dataset.labels)
    print(f"{train_loader.dataset.name} {IMAGE_SIZE}x{IMAGE_SIZE}x{CHANNELS}, {args.n_train} training images, "
          f"{args.seconds:.0f} s of training per model, "
          f"{torch.get_num_threads()} threads")
    print(f"real test images: classifier accuracy {base['accuracy']:.3f}, IS {base['inception_score']:.2f}, "
          f"Fréchet (half vs half) {base['frechet']:.2f}\n")

    cfg = train_config(lr=args.lr, seed=args.seed, progress=False)
    models = {"MLP VAE 784-400-20 (baseline)": lambda: MLPVAE(in_channels=CHANNELS, image_size=(IMAGE_SIZE, IMAGE_SIZE))}
    models.update({f"SkipVAE: {n}": (lambda o=o: SkipVAE(skip_study_config(**o)).to(
        memory_format=torch.channels_last)) for n, o in SKIP_STUDY.items() if n in args.configs})
    rows, steps = {}, {}
    for name, build in models.items():
        seed_everything(args.seed)
        model = build()
        steps[name] = train_for(model, train_loader, cfg, args.seconds)
        rows[name] = evaluate_all(model, test_loader, net, cfg, n_samples=args.n_test, seed=args.seed)
        print(f"{name}: {steps[name]} steps", flush=True)
    print("\n" + format_table(rows))
    mlp = rows["MLP VAE 784-400-20 (baseline)"]
    print("\nbeats the MLP baseline on every metric (-ELBO, PSNR, recon acc, IS, Fréchet):")
    for name, r in rows.items():
        if name.startswith("SkipVAE") and r["frechet"] is not None:
            wins = [r["neg_elbo"] < mlp["neg_elbo"], r["psnr"] > mlp["psnr"], r["recon_accuracy"] > mlp["recon_accuracy"],
                    r["inception_score"] > mlp["inception_score"], r["frechet"] < mlp["frechet"]]
            print(f"  {name}: {sum(wins)}/5 {'YES' if all(wins) else ''}")


if __name__ == "__main__":
    main()
