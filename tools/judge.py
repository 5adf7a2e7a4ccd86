"""`python -m tools.judge`: train the judge of the built-in shapes and ship it as vae_utils/pretrained/judge_shapes.pt.

The judge is a small CNN (vae_utils.metrics.SmallCNN) trained on the 20,000 training shapes' labels; its scores on
the 2,000 test shapes (real_baseline) are stored beside its weights and give every model's numbers their scale.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from vae_utils.data import BatchLoader, make_dataset
from vae_utils.metrics import JUDGE_FILE, real_baseline, train_classifier


def save_judge(path=JUDGE_FILE, seed: int = 0) -> dict:
    """Train the judge on the shapes' training split and save it; returns its real_baseline on the test split."""
    train, test = make_dataset("shapes", "train", seed=seed), make_dataset("shapes", "test", seed=seed)
    net = train_classifier(BatchLoader(train, 64, shuffle=True, seed=seed, drop_last=True), len(train.label_names),
                           seed=seed)
    base = real_baseline(net, test.images, test.labels)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weights": net.state_dict(), "label_names": train.label_names, "real_baseline": base}, path)
    return base


if __name__ == "__main__":
    print(save_judge())
    sys.exit(0)
