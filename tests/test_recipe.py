import pytest

from studio import recipe as recipes
from studio import tasks
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
    resolved = tasks.resolved(recipes.from_yaml(GOOD))
    assert resolved.train.epochs == 2 and resolved.train.learning_rate == 0.001
    strategies = tasks.get("text-classification").strategies
    assert resolved.train.batch_size == strategies["lora"].defaults["batch_size"]
    assert resolved.strategy_options == {"lora_r": 4, "lora_alpha": 16.0, "lora_dropout": 0.05, "lr_finder": "auto"}
    fe = tasks.resolved(recipes.from_dict({"data": {"path": "x"}}))  # no strategy: the task's default
    assert fe.strategy == "feature-extraction"
    assert fe.train.epochs == strategies["feature-extraction"].defaults["epochs"]


@pytest.mark.parametrize("text, key", [
    ("data: {path: x}\ntrain: {devices: many}", "'train.devices'"),
    ("data: {path: x}\ntrain: {devices: 0}", "'train.devices'"),
    ("data: {path: x}\ntrain: {distributed: zero3}", "'train.distributed'"),
    ("data: {path: x}\ntrain: {gradient_accumulation_steps: 0}", "'train.gradient_accumulation_steps'"),
    ("data: {path: x}\ntrain: {gradient_checkpointing: maybe}", "'train.gradient_checkpointing'"),
    ("data: {path: x}\nstrategy: feature-extraction\ntrain: {distributed: fsdp}", "'train.distributed'"),
    ("data: {path: x, max_length: 64}", "'data.max_length'"),  # images read no tokens
    ("data: {path: x.csv, text_column: t}\ntask: image-classification", "'data.text_column'"),
    ("data: {path: x.csv, label_column: l}", "'data.path_column'"),  # a table of images needs its path column
])
def test_new_train_keys_and_keys_a_task_does_not_read_are_refused_by_name(text, key):
    with pytest.raises(RecipeError, match=key):
        tasks.checked(recipes.from_yaml(text))


def test_devices_take_a_number_or_all():
    assert recipes.from_yaml("data: {path: x}\ntrain: {devices: all}").train.devices == "all"
    assert recipes.from_yaml("data: {path: x}\ntrain: {devices: 2}").train.devices == 2


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
        tasks.checked(recipes.from_yaml(text))
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
        recipe = tasks.load(path)
        assert (root / recipe.data.path).exists(), path.name
