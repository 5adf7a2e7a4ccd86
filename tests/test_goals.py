"""The README's goal table (tools/goals.py): goals met at the threshold, one row per goal, and a summary that counts
what the numbers say."""
import pytest

from tools.goals import GOALS, format_goal_table, goal_summary, goals_met
from vae_utils.metrics import METRICS

QUICK = {"recon_accuracy": 0.41, "psnr": 19.5, "inception_score": 2.6, "frechet": 620.0, "z_reliance": 0.9,
         "probe": 0.7, "r_scale": 0.42, "r_x": 0.87, "r_y": None, "minutes": 3.0, "images_seen": 41600,
         "machine": "a test CPU"}


def test_every_goal_is_a_registered_metric_with_a_direction():
    assert set(GOALS) <= set(METRICS) and all(METRICS[k].better in ("higher", "lower") for k in GOALS)


def test_goals_are_met_at_the_threshold_and_a_missing_number_fails():
    met = goals_met(QUICK, "quick")
    assert met == {"recon_accuracy": False, "psnr": False, "inception_score": True, "frechet": False,
                   "z_reliance": True, "probe": True, "r_scale": False, "r_x": True, "r_y": False}
    assert goals_met({**QUICK, "frechet": 300}, "quick")["frechet"]  # "<= 300" includes 300
    assert goals_met({**QUICK, "psnr": 23}, "quick")["psnr"]  # ">= 23" includes 23
    assert not goals_met(QUICK, "pretrained")["probe"]  # 0.7 < 0.95
    with pytest.raises(ValueError, match="level must be one of"):
        goals_met(QUICK, "slow")


def test_the_goal_table_has_one_row_per_goal_and_the_training_facts():
    pre = {**QUICK, "recon_accuracy": 0.985, "minutes": 45.0, "images_seen": 960000, "machine": "another CPU"}
    text = format_goal_table({"quick": QUICK, "pretrained": pre},
                             real={"accuracy": 1.0, "inception_score": 3.99, "frechet": 5.1})
    lines = text.splitlines()
    assert lines[0].split() == ["quick", "pretrained", "real", "images", "quick", "goal", "pretrained", "goal"]
    assert len(lines) == 2 + len(GOALS) + 2 + 2  # head, rule, goals, time and images, two machines
    first = next(line for line in lines if line.startswith(METRICS["recon_accuracy"].label))
    assert first.split()[-7:] == ["0.410", "0.985", "1.000", "≥", "0.7", "≥", "0.97"]
    assert "n/a" in next(line for line in lines if line.startswith(METRICS["r_y"].label))
    assert lines[-4].split()[-2:] == ["3.0", "45.0"] and lines[-3].split()[-2:] == ["41,600", "960,000"]
    assert lines[-2:] == ["machine, quick: a test CPU", "machine, pretrained: another CPU"]


def test_the_goal_summary_counts_what_the_numbers_say():
    text = goal_summary("The quick model", QUICK, "quick")
    assert text.startswith("The quick model reaches 4 of the 9 goals of the quick model (")
    assert f"misses {METRICS['recon_accuracy'].label} (0.410, goal ≥ 0.7)" in text
    assert f"{METRICS['frechet'].label} (620, goal ≤ 300)" in text and "(n/a, goal ≥ 0.5)" in text
    perfect = {k: (0.0 if k == "frechet" else 99.0) for k in GOALS}
    assert goal_summary("It", perfect, "pretrained").startswith("It reaches 9 of the 9 goals")
