"""GGUF export of chat runs (llama.cpp, Ollama): on a tiny random Llama LoRA run (fast) the file is read back by
gguf's reader (every tensor the architecture needs, right shape and type) and by transformers, whose logits match
the merged model's for f32 and f16 (q8_0: loads, finite); the Modelfile beside it points at the file and stops at
the template's tokens; runs that cannot be written are refused in words. On the shared SmolLM2 run
(integration): q8_0 picks the merged model's next token ≥ 95% of the time and f16's logits match."""
import csv
import json
import re

import pytest

from studio import cli
from studio.engine.export import ExportError
from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.run.export import export, offered, sizes
from studio.run.jobs import JobManager
from studio.runfolder import GGUF_CHECK, RunFolder
from studio.tasks.instruction import gguf_export, modelfile
from studio.workspace import Workspace

SYSTEM = "You answer help-desk questions briefly."


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("gguf-ws")


@pytest.fixture(scope="module")
def chat_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf-data") / "qa.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["system", "prompt", "response"])
        writer.writerows([SYSTEM, f"how do I reset my password {i}", f"Open settings {i % 3}"] for i in range(16))
    return str(path)


def run_of(workspace, model, data, strategy="lora"):
    job = JobManager(Workspace(workspace), in_process=True).start(Recipe(
        task="instruction-tuning", model=model, strategy=strategy,
        data=DataSpec(path=data, max_length=64), train=TrainSpec(epochs=1, batch_size=4)))
    assert job.wait(300)
    assert job.status["status"] == "completed", job.status.get("error")
    return job.run_dir


@pytest.fixture(scope="module")
def lora_run(workspace, tiny_llama, chat_csv):
    return run_of(workspace, tiny_llama, chat_csv)


def parsed_modelfile(path):
    """(FROM, stop tokens, SYSTEM, TEMPLATE) as Ollama reads them: one instruction a line, \"\"\"-quoted text."""
    text = path.read_text()
    found = dict(re.findall(r'^(FROM|SYSTEM|TEMPLATE) ("""(?s:.*?)"""|.*)$', text, re.M))
    unquote = lambda value: value[3:-3] if value and value.startswith('"""') else value  # noqa: E731
    stops = re.findall(r'^PARAMETER stop "(.*)"$', text, re.M)
    return found["FROM"], stops, unquote(found.get("SYSTEM")), unquote(found.get("TEMPLATE"))


@pytest.mark.parametrize("gguf_type", ["f32", "f16", "q8_0"])
def test_gguf_reads_back_with_the_merged_models_logits(lora_run, tiny_llama, gguf_type):
    import gguf
    from transformers import AutoConfig
    folder = export(lora_run, "gguf", gguf_type=gguf_type)
    check = json.loads((folder / GGUF_CHECK).read_text())
    path = folder / check["file"]
    assert path.name.endswith(f"-{gguf_type}.gguf") and check["bytes"] == path.stat().st_size
    tolerance = gguf_export.TYPES[gguf_type].tolerance
    if tolerance is not None:
        assert check["max_rel_diff"] <= tolerance and check["top1_agreement"] == 1.0
    else:
        assert check["max_rel_diff"] < 1.0  # random weights: q8_0 only has to load and stay finite
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    assert set(gguf_export.required_tensors(AutoConfig.from_pretrained(tiny_llama))) <= set(tensors)
    assert tensors["blk.0.attn_q.weight"].tensor_type.name == {"f32": "F32", "f16": "F16", "q8_0": "Q8_0"}[gguf_type]
    assert tensors["blk.0.attn_norm.weight"].tensor_type.name == "F32"
    assert [int(n) for n in tensors["blk.0.attn_k.weight"].shape] == [32, 16]  # 2 kv heads of 8, ggml's order
    assert reader.fields["tokenizer.chat_template"].contents().startswith("{% for message in messages %}")
    assert reader.fields["general.architecture"].contents() == "llama"


@pytest.mark.parametrize("kind", ["qwen2", "mistral"])
def test_qwen2_and_mistral_models_round_trip(kind, tiny_llama, tmp_path):
    """The other two model types: Qwen2 (q/k/v biases, no permutation) and Mistral (llama.cpp's llama)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, MistralConfig, Qwen2Config
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    shape = {k: v for k, v in AutoConfig.from_pretrained(tiny_llama).to_dict().items() if k in (
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "max_position_embeddings", "tie_word_embeddings")}
    torch.manual_seed(0)
    config = (Qwen2Config if kind == "qwen2" else MistralConfig)(**shape)
    model = AutoModelForCausalLM.from_config(config).eval()
    path = tmp_path / f"{kind}.gguf"
    written = gguf_export.write(model, tokenizer, tiny_llama, path, "f32", f"tiny-{kind}", "<|im_end|>")
    assert ("blk.1.attn_q.bias" in written) == (kind == "qwen2")
    ids = tokenizer("how do I reset my password", add_special_tokens=False)["input_ids"]
    check = gguf_export.check(model, path, written, "f32", [ids])
    assert check["max_rel_diff"] <= 1e-4 and check["top1_agreement"] == 1.0


def test_modelfile_points_at_the_file_and_stops_at_the_templates_tokens(lora_run):
    folder = export(lora_run, "gguf", gguf_type="f16")
    source, stops, system, template = parsed_modelfile(folder / modelfile.FILE)
    assert (folder / source).resolve() == next(folder.glob("*.gguf")).resolve()
    assert stops == ["<|im_start|>", "<|im_end|>"]  # ChatML's; its end of turn among them
    assert system == SYSTEM
    assert template == modelfile.CHATML.template and "{{ .Content }}<|im_end|>" in template


def test_size_is_known_before_writing_and_the_command_line_writes_it(lora_run, workspace, capsys):
    estimate = sizes(RunFolder(lora_run))["gguf"]
    assert cli.main(["--workspace", str(workspace), "export", lora_run.name, "--format", "gguf",
                     "--gguf-type", "q8_0"]) == 0
    written = json.loads((lora_run / "model" / "gguf" / GGUF_CHECK).read_text())["bytes"]
    assert written > estimate > written / 4  # weights only; the vocabulary and metadata come on top
    assert cli.main(["--workspace", str(workspace), "export", lora_run.name, "--format", "zip",
                     "--gguf-type", "f16"]) == 2
    assert "--gguf-type goes with --format gguf" in capsys.readouterr().err


def test_a_file_that_fails_its_check_is_not_left_behind(lora_run, monkeypatch):
    import dataclasses
    import shutil
    strict = dataclasses.replace(gguf_export.TYPES["f16"], tolerance=0.0)  # f16's rounding always shows
    monkeypatch.setitem(gguf_export.TYPES, "f16", strict)
    shutil.rmtree(lora_run / "model" / "gguf", ignore_errors=True)
    with pytest.raises(ExportError, match="so it was not kept"):
        export(lora_run, "gguf", gguf_type="f16")
    assert not [p.name for p in (lora_run / "model").iterdir() if "gguf" in p.name]


def test_runs_tab_offers_gguf_with_its_size_before_writing(lora_run):
    from types import SimpleNamespace
    from studio.ui.runs_tab import RunsTab
    tab = SimpleNamespace(export_format="format", export_refused="refused")
    choices = dict(RunsTab.export_choices(tab, RunFolder(lora_run), "en")["format"]["choices"])
    words = {name: text for text, name in choices.items()}
    assert set(words) >= {"adapter", "hf", "zip", "gguf"}
    assert words["gguf"].startswith("GGUF for llama.cpp and Ollama (8-bit)") and words["gguf"].endswith(" MB)")


def test_other_templates_get_a_note_not_a_template():
    text = modelfile.text("m.gguf", "{{ '### User:\\n' + message['content'] }}", "</s>")
    assert "TEMPLATE \"\"\"" not in text and "# TEMPLATE: not written" in text and 'PARAMETER stop "</s>"' in text
    llama3 = modelfile.text("m.gguf", "<|start_header_id|>{{ role }}<|end_header_id|>", "<|eot_id|>")
    assert '"<|eot_id|>"' in llama3 and "<|start_header_id|>assistant<|end_header_id|>" in llama3


def test_prompt_tuning_and_classifier_runs_are_refused_in_words(workspace, tiny_llama, tiny_bert, chat_csv,
                                                                 text_csv, capsys):
    prompt_run = run_of(workspace, tiny_llama, chat_csv, "prompt-tuning")
    why = dict((e.name, why) for e, why in offered(RunFolder(prompt_run)))["gguf"]
    assert why and "virtual tokens" in why
    with pytest.raises(ExportError, match="cannot be merged"):
        export(prompt_run, "gguf")
    job = JobManager(Workspace(workspace), in_process=True).start(Recipe(
        task="text-classification", model=tiny_bert, data=DataSpec(path=text_csv),
        train=TrainSpec(epochs=1)))
    assert job.wait(300) and job.status["status"] == "completed", job.status.get("error")
    assert cli.main(["--workspace", str(workspace), "export", job.run_id, "--format", "gguf"]) == 2
    err = capsys.readouterr().err
    assert "'gguf' is not an export format for text-classification models" in err and "onnx" in err
    assert "Traceback" not in err


def test_other_architectures_are_refused_before_writing(tmp_path):
    from transformers import GPT2Config
    from studio.families.base import ModelInfo
    from studio.tasks.instruction.export import gguf_refused
    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    info = ModelInfo(model="gpt2", family="causal-lm", arch="", task="instruction-tuning",
                     preprocessing={"base": str(tmp_path)})
    why = gguf_refused(info)
    assert "Llama, Mistral and Qwen2" in why and "gpt2" in why and "hf" in why


@pytest.mark.integration
@pytest.mark.slow  # 60-90 s on 2 busy CPU cores: two exports of 135M weights, each read back twice
def test_smollm2_run_exports_q8_and_f16(chat_run):
    _, run_dir, _ = chat_run
    q8 = json.loads((export(run_dir, "gguf") / GGUF_CHECK).read_text())
    assert q8["top1_agreement"] >= 0.95, q8
    f16 = json.loads((export(run_dir, "gguf", gguf_type="f16") / GGUF_CHECK).read_text())
    assert f16["max_rel_diff"] <= 1e-2 and f16["top1_agreement"] >= 0.99, f16
    print("gguf SmolLM2:", json.dumps({"q8_0": q8, "f16": f16}))
