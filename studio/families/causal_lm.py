"""Language models that write text (transformers' AutoModelForCausalLM): where a recipe's model comes from (the
catalog's GGUF package, a hub id, a local folder), whether it can chat at all, whether training it fits this
machine (decided from its config before any weight is read), and its tokenizer with a chat template."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio import catalog
from studio.families import hf
from studio.families.base import ModelError
from studio.families.gguf import converted
from studio.words import said

# Models that read text but cannot write it: encoders made for classification and search.
ENCODERS = {"bert", "roberta", "distilbert", "albert", "electra", "deberta", "deberta-v2", "xlm-roberta", "mpnet",
            "camembert", "modernbert"}
CLASSIFIER_SUFFIXES = ("ForSequenceClassification", "ForTokenClassification", "ForImageClassification",
                       "ForAudioClassification", "ForQuestionAnswering", "ForMaskedLM")
# For a base model without a chat template: plain turns the model can learn, ending in its end-of-text token.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### User:\n' + message['content'] + '\n\n' }}"
    "{% else %}{{ '### Assistant:\n' + message['content'] + eos_token + '\n\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '### Assistant:\n' }}{% endif %}")
FALLBACK_NOTE = said("This model has no chat template (a base model), so the studio uses a plain one ('### User:' / "
                 "'### Assistant:' turns, each answer ending in its end-of-text token). Use the tuned model with "
                 "the same template: the exported tokenizer carries it.")


@dataclass
class Source:
    """Where a recipe's model is loaded from."""
    name: str  # what the recipe says
    path: str  # a hub id or a local folder transformers loads
    offline: bool  # a catalog model shipped in a package


def resolve(model: str, task: str, models_dir: Path, log=lambda message: None) -> Source:
    entry = catalog.find(model)
    if entry is not None and not catalog.made_for(entry, task):
        raise ModelError(f"'{model}' is made for {entry.task}, but the recipe's task is {task}. "
                         f"Pick one of: {', '.join(e.name for e in catalog.for_task(task))}.")
    if entry is not None and entry.family == "gguf":
        return Source(model, str(converted(entry, models_dir, log)), True)
    return Source(model, entry.ref if entry is not None else model, False)


def load_config(ref: str, task: str, trust_remote_code: bool = False):
    """The config of a model that can write answers; ModelError in words for anything else."""
    config = hf.load_config(ref, task, "text", trust_remote_code)
    kind = getattr(config, "model_type", "")
    heads = [a for a in (getattr(config, "architectures", None) or []) if a.endswith(CLASSIFIER_SUFFIXES)]
    if kind in ENCODERS or heads or not _writes_text(config):
        what = f"a {heads[0]} model" if heads else f"a {kind or 'transformers'} model"
        offline = ", ".join(catalog.offline_names(task))
        raise ModelError(f"'{ref}' is {what}: it reads texts (to classify or search them) but cannot write "
                         f"answers, so it cannot be taught to chat. Choose a chat model, such as {offline} "
                         "(offline), Qwen2.5 or Llama 3.2 Instruct; for labelling texts use the text task.")
    return config


def _writes_text(config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    return config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or bool(getattr(config, "auto_map", None))


def parameter_count(config, trust_remote_code: bool = False) -> int:
    """The model's size from its config alone: built on the meta device, which holds no memory."""
    import torch
    from transformers import AutoModelForCausalLM
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    return sum(p.numel() for p in model.parameters())


def load_tokenizer(ref: str, task: str, trust_remote_code: bool = False):
    """(tokenizer with a chat template and a padding token, a note in words when the template is the studio's)."""
    tokenizer = hf.load_tokenizer(ref, task, trust_remote_code)
    note = None
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template, note = FALLBACK_TEMPLATE, FALLBACK_NOTE
    if tokenizer.eos_token is None:
        raise ModelError(f"The tokenizer of '{ref}' has no end-of-text token, so a tuned model could not say when "
                         "an answer ends. Choose another model.")
    if tokenizer.pad_token is None:  # padding is masked out everywhere; any token will do
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, note


def load_model(ref: str, task: str, dtype, quantize_4bit: bool = False, trust_remote_code: bool = False):
    """The causal LM's weights (dtype: fp32 on a CPU, bf16 for a frozen base on a GPU; 4-bit NF4 for QLoRA)."""
    from transformers import AutoModelForCausalLM
    extra = {}
    if quantize_4bit:
        from transformers import BitsAndBytesConfig
        extra["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        extra["device_map"] = {"": 0}
    try:
        with hf.quiet_loading():
            return AutoModelForCausalLM.from_pretrained(ref, dtype=dtype, trust_remote_code=trust_remote_code,
                                                        weights_only=True, **extra)
    except ImportError as exc:
        raise ModelError(f"Loading '{ref}' needs a package that is not installed: {exc}") from None
    except Exception as exc:  # transformers and the hub raise many types; each one is explained in words
        raise hf.explain(ref, exc, task) from None
