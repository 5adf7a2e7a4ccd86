"""The tutorial's defaults live in one place, vae_utils/tutorial_config.py: notebooks, params/ and the benchmarks
read them from there and restate none of them."""
import ast
import re
from dataclasses import asdict
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import yaml

from vae_utils import tutorial_config as tc
from vae_utils.params import train_run, tutorial_defaults

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TUTORIAL_NOTEBOOKS = [p for p in NOTEBOOKS if p.name[:2] in ("04", "05", "06", "07")]  # train or load its model


def test_notebook_05_without_parameters_is_the_tutorial_config():
    run = train_run()
    assert run.model == tc.MODEL and run.train == tc.TRAIN
    data = dict(run.data)
    assert (data.pop("root"), data.pop("download")) == ("data", False)  # where the data lives, not which data
    assert data == {**tc.loader_kwargs(), "image_size": (tc.IMAGE_SIZE, tc.IMAGE_SIZE)}


def test_a_papermill_value_overrides_only_its_own_default():
    run = train_run(epochs=5, skip_source="z", lr=2e-3)
    assert run.train == tc.train_config(epochs=5, minutes=None, lr=2e-3)  # epochs alone: trains by epochs
    assert run.model == tc.model_config(skip_source="z")
    assert run.data["n_train"] == tc.N_TRAIN
    assert train_run(minutes=0.5).train == tc.train_config(minutes=0.5)
    with pytest.raises(ValueError, match="give minutes .* or epochs .*, not both"):
        train_run(minutes=1.0, epochs=2)


def test_epochs_alone_trains_by_epochs():
    assert tc.train_config(epochs=1).minutes is None and tc.train_config(epochs=1).epochs == 1
    assert tc.train_config(epochs=1, minutes=0.5).minutes == 0.5  # both given: as given
    assert tc.train_config(lr=2e-3).minutes == tc.TRAIN.minutes  # neither: the tutorial's time budget


def test_all_and_native_are_spelled_out_because_none_means_the_default():
    run = train_run(n_train="all", n_test="all", channels="native", dataset="cifar10")
    assert run.data["n_train"] is None and run.data["n_test"] is None  # make_loaders: the whole split
    assert run.data["channels"] is None and run.model.in_channels == 3  # the dataset's own
    with pytest.raises(ValueError, match=r"n_train must be a positive integer, 'all' \(the whole split\) or None"):
        train_run(n_train="most")


def test_tutorial_defaults_fills_in_only_what_is_none():
    assert tutorial_defaults("07", minutes=None, n_test=7, seed=None) == (tc.BUDGETS["07"]["minutes"], 7, tc.TRAIN.seed)
    assert tutorial_defaults("06", seed=None) == tc.TRAIN.seed
    with pytest.raises(ValueError, match=r"notebook must be one of \['01', '04', '05', '06', '07'\], got '09'"):
        tutorial_defaults("09", seed=None)


def test_the_skip_study_starts_from_the_specs_skips():
    assert tc.skip_study_config().skip_source == "encoder" and tc.skip_study_config().skips == "all"
    assert tc.skip_study_config(skip_source="z") == tc.model_config(skips="all", skip_source="z")
    assert tc.skip_study_config(skips="none").init == tc.MODEL.init  # everything else: the tutorial's model


def test_the_parameter_tables_show_the_effective_defaults():
    docs = (ROOT / "docs" / "parameters.md").read_text()
    block = docs.split("**05_train.ipynb**", 1)[1].split("**", 1)[0]
    assert f"| `n_train` | `{tc.N_TRAIN}` *(tutorial)* |" in block
    assert f"| `skip_source` | `\"{tc.MODEL.skip_source}\"` *(tutorial)* |" in block
    rows = docs.split("<!-- params:start -->")[1].split("<!-- params:end -->")[0].splitlines()
    # only epochs means something by None (train by minutes); every other None stands for a tutorial value
    assert [r for r in rows if "| `None` |" in r and not r.startswith("| `epochs` |")] == []


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] in ("01", "04", "05", "06", "07")],
                         ids=lambda p: p.name)
def test_tutorial_knobs_default_to_none_in_the_notebook(path):
    """Each parameter that tutorial_config defines is None in the notebook, so that its value lives in one place."""
    knobs = tc.notebook_defaults(path.name[:2])
    params = pm.inspect_notebook(str(path))
    assert knobs.keys() <= params.keys(), f"{path.name} lacks parameters {sorted(knobs.keys() - params.keys())}"
    for name in knobs:
        assert params[name]["default"] == "None", f"{path.name}: {name} = {params[name]['default']} restates a default"
        assert params[name]["help"].endswith("; None: the tutorial default"), f"{path.name}: {name}'s comment"


# every knob of the tutorial, by the names code uses for it (papermill, TrainConfig and argparse spellings)
KNOBS = {**tc.notebook_defaults("05"), "kl_warmup": tc.TRAIN.kl_warmup, "name": tc.DATASET,
         "in_channels": tc.CHANNELS, **{k: v for k, v in asdict(tc.TRAIN).items() if k not in ("device", "progress")}}


def _sources():
    """(where, text) of the code that must take its defaults from tutorial_config."""
    for path in TUTORIAL_NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                yield f"{path.name} cell {i}", cell.source
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        yield path.name, path.read_text()


def _restated(text, literal_eval):
    """(name, value) pairs in `text` that set a tutorial knob to its tutorial value: `name=value`, `name: value`
    or argparse's `"--name", ..., default=value`."""
    found, text = [], re.sub(r"#[^\n]*", "", text)  # comments may name values: "kaiming" (He et al.)
    pattern = r"""(?:(?<![\w'".])(\w+)\s*[=:]\s*|"--([\w-]+)"[^\n]*?default=)("[^"\n]*"|[^\s,)#]+)"""
    for match in re.finditer(pattern, text):
        name = (match.group(1) or match.group(2) or "").replace("-", "_")
        if name not in KNOBS:
            continue
        try:
            value = literal_eval(match.group(3))
        except (ValueError, SyntaxError, yaml.YAMLError):
            continue  # a name, not a literal: it comes from somewhere else
        if value == KNOBS[name] and type(value) is not bool:
            found.append((name, value))
    return found


def test_no_second_definition_of_the_defaults_in_notebooks_and_benchmarks():
    for where, text in _sources():
        assert not re.search(r"\b(VAEConfig|TrainConfig)\(", text), f"{where} builds a config: use tutorial_config"
        assert "SkipVAE(in_channels" not in text, f"{where} builds a model from literals: use model_config()"
        assert _restated(text, ast.literal_eval) == [], f"{where} restates a tutorial default"


def test_no_second_definition_of_the_defaults_in_params():
    for path in sorted((ROOT / "params").glob("*.yaml")):
        assert _restated(path.read_text(), yaml.safe_load) == [], f"{path.name} restates a tutorial default"


def test_the_grep_would_catch_a_restated_default():
    text = f"n_train = {tc.N_TRAIN}  # images\nlr={tc.TRAIN.lr!r}, seed=seed"
    assert _restated(text, ast.literal_eval) == [("n_train", tc.N_TRAIN), ("lr", tc.TRAIN.lr)]
    assert _restated(f'p.add_argument("--batch-size", type=int, default={tc.TRAIN.batch_size})',
                     ast.literal_eval) == [("batch_size", tc.TRAIN.batch_size)]
    assert _restated(f"epochs: {tc.TRAIN.epochs}\n", yaml.safe_load) == [("epochs", tc.TRAIN.epochs)]
