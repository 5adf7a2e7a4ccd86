"""The goals this project set for its two trained models, and the README's table of them (`python -m tools.readme`).

The quick model is notebook 05's three minutes on a 2-core CPU; the pretrained one is `make pretrained`. The goals
are the project's own yardstick, not a property of VAEs, so they live with the tooling, not in the package.
"""
from __future__ import annotations

from vae_utils.metrics import METRICS

REAL = {"recon_accuracy": "accuracy", "inception_score": "inception_score", "frechet": "frechet",
        "gmm_inception_score": "inception_score", "gmm_frechet": "frechet"}  # the judge on real images: the scale

GOALS = {  # metric -> (goal of the quick model, goal of the pretrained model)
    "recon_accuracy": (0.70, 0.97),
    "psnr": (23, 28),
    "inception_score": (2.5, 3.6),
    "frechet": (300, 50),
    "z_reliance": (0.7, 0.7),
    "probe": (0.70, 0.95),
    "r_scale": (0.5, 0.5),
    "r_x": (0.5, 0.5),
    "r_y": (0.5, 0.5),
}
LEVELS = ("quick", "pretrained")


def _target(key: str, level: str):
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return GOALS[key][LEVELS.index(level)]


def _goal(key: str, level: str) -> str:
    return ("≥ " if METRICS[key].better == "higher" else "≤ ") + f"{_target(key, level):g}"


def goals_met(metrics: dict, level: str = "quick") -> dict:
    """{metric: True/False} for each goal of `level` ("quick" or "pretrained"); a missing number (None) fails."""
    met = {}
    for key in GOALS:
        value, target = metrics.get(key), _target(key, level)
        met[key] = value is not None and (value >= target if METRICS[key].better == "higher" else value <= target)
    return met


def format_goal_table(rows: dict, real: dict | None = None) -> str:
    """A fixed-width table: one row per goal, one column per model ({name: metrics with "minutes" and
    "images_seen"}), the judge on real images where the metric has such a value, and both goals; each model's
    machine follows the table."""
    head = ["", *rows, *(["real images"] if real else []), "quick goal", "pretrained goal"]
    body = []
    for key in GOALS:
        m = METRICS[key]
        cells = [m.fmt.format(r[key]) if r.get(key) is not None else "n/a" for r in rows.values()]
        if real:
            cells.append(m.fmt.format(real[REAL[key]]) if key in REAL else "")
        body.append([m.label, *cells, _goal(key, "quick"), _goal(key, "pretrained")])
    for key, label, fmt in (("minutes", "training time (min)", "{:.1f}"), ("images_seen", "images seen", "{:,}")):
        cells = [fmt.format(r[key]) if r.get(key) is not None else "n/a" for r in rows.values()]
        body.append([label, *cells, *([""] if real else []), "", ""])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip()
             for r in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + [f"machine, {name}: {r.get('machine') or r.get('cpu') or 'not recorded'}"
                              for name, r in rows.items()])


def goal_summary(name: str, metrics: dict, level: str = "quick") -> str:
    """How many of `level`'s goals a model reaches, and by how much it misses the others."""
    met = goals_met(metrics, level)
    reached = [METRICS[k].label for k, ok in met.items() if ok]
    missed = [f"{METRICS[k].label} ({METRICS[k].fmt.format(metrics[k]) if metrics.get(k) is not None else 'n/a'}, "
              f"goal {_goal(k, level)})" for k, ok in met.items() if not ok]
    text = f"{name} reaches {len(reached)} of the {len(met)} goals of the {level} model"
    if not missed:
        return text + ": all of them."
    return text + (f" ({'; '.join(reached)})" if reached else "") + f" and misses {'; '.join(missed)}."
