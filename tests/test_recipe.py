import pytest

from studio import recipe as recipes
from studio.recipe import RecipeError

GOOD = """
task: text-classification
model: all-minilm-l6-v2
data: {path: data.csv, text_column: message, label_column: intent}
strategy: lora
strategy_options: {lora_r: 4}
train: {epochs: 2, learning_rate: 0.001}
"""


def test_yaml_round_trip_keeps_every_value():
    recipe = recipes.from_yaml(GOOD)
    again = recipes.from_yaml(recipe.to_yaml())
    assert again == recipe
    assert again.data.text_column == "message" and again.strategy_options == {"lora_r": 4}


def test_resolved_fills_strategy_defaults_but_keeps_user_values():
    resolved = recipes.from_yaml(GOOD).resolved()
    assert resolved.train.epochs == 2 and resolved.train.learning_rate == 0.001
    assert resolved.train.batch_size == recipes.STRATEGY_DEFAULTS["lora"]["batch_size"]
    assert resolved.strategy_options == {"lora_r": 4, "lora_alpha": 16.0, "lora_dropout": 0.05}
    fe = recipes.from_dict({"data": {"path": "x"}, "strategy": "feature-extraction"}).resolved()
    assert fe.train.epochs == recipes.STRATEGY_DEFAULTS["feature-extraction"]["epochs"]


@pytest.mark.parametrize("text, key", [
    ("data: {path: x}\nepochs: 3", "'epochs'"),
    ("data: {path: x, colour: red}", "'data.colour'"),
    ("data: {path: x}\ntrain: {epochs: three}", "'train.epochs'"),
    ("data: {path: x}\ntrain: {epochs: 2.5}", "'train.epochs'"),
    ("data: {path: x}\ntrain: {epochs: true}", "'train.epochs'"),
    ("data: {path: x}\ntrain: {learning_rate: -1}", "'train.learning_rate'"),
    ("data: {path: x}\ntrain: {batch_size: 0}", "'train.batch_size'"),
    ("data: {path: x}\ntrain: {epochs: 100000}", "'train.epochs'"),
    ("data: {path: x, validation_split: 0.9}", "'data.validation_split'"),
    ("data: {path: x}\nstrategy: magic", "'strategy'"),
    ("data: {path: x}\ntask: translation", "'task'"),
    ("data: {path: x}\nstrategy: partial\nstrategy_options: {lora_r: 8}", "'strategy_options.lora_r'"),
    ("data: {path: x}\nstrategy: partial\nstrategy_options: {trainable_blocks: 0}",
     "'strategy_options.trainable_blocks'"),
    ("data: {path: x}\nstrategy: layerwise\nstrategy_options: {lr_decay: 1.5}", "'strategy_options.lr_decay'"),
    ("data: {path: x}\noutput_dir: ../../etc", "'output_dir'"),
    ("data: {path: x}\ntrain: {device: tpu}", "'train.device'"),
    ("data: [1, 2]", "'data'"),
    ("model: efficientnet-lite0", "'data.path'"),
])
def test_bad_recipes_name_the_key(text, key):
    with pytest.raises(RecipeError) as info:
        recipes.from_yaml(text)
    assert key in str(info.value)


def test_not_yaml_and_not_a_mapping():
    with pytest.raises(RecipeError, match="not valid YAML"):
        recipes.from_yaml("task: [unclosed")
    with pytest.raises(RecipeError, match="mapping"):
        recipes.from_yaml("- just\n- a list")


def test_load_reports_missing_file(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        recipes.load(tmp_path / "nope.yaml")


def test_bundled_example_recipes_are_valid_and_point_at_bundled_data():
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    found = sorted((root / "assets" / "recipes").glob("*.yaml"))
    assert found
    for path in found:
        recipe = recipes.load(path)
        assert (root / recipe.data.path).exists(), path.name
