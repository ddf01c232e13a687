"""The studio's preference losses against trl's, on the same batch built from the same raw strings (fast tier, tiny
random Llama): trl tokenises the prompts and answers itself, its token ids must equal the studio's, and its loss for
the batch (DPOTrainer for dpo and ipo, CPOTrainer for simpo, ORPOTrainer for orpo, KTOTrainer for kto) must agree
with the studio's within 1e-4, as must the reward accuracy and margin it logs.

trl reads the prompt as the text the tokenizer's chat template renders with its generation prompt, and each answer
as its text with the end-of-turn token (trl's standard, non-conversational form): the same strings the studio's
ChatFormat renders. Given message lists instead, trl would also score the newline the template writes after the
end-of-turn token, which the studio, like its chat task, does not learn."""
import copy

import pytest
import torch

from studio.recipe import DataSpec, Recipe, TrainSpec
from studio.tasks import resolved
from studio.tasks.instruction.preference_batches import Answers, Pairs, PreferenceCollate, measure_reference
from studio.tasks.instruction.preference_loss import PreferenceLoss, Settings, figures_of
from studio.tasks.instruction.preference_pipeline import unpaired
from studio.tasks.instruction.strategies import STRATEGIES
from studio.tasks.instruction.tokens import ChatFormat

trl = pytest.importorskip("trl")

PAIRS = [{"prompt": [{"role": "user", "content": "how do I reset my password"}],
          "chosen": "Hello! please reset your password thank you", "rejected": "reset it"},
         {"prompt": [{"role": "system", "content": "you are the help desk"},
                     {"role": "user", "content": "the printer is out of toner"}],
          "chosen": "Hello! the toner is in the cupboard", "rejected": "no"},
         {"prompt": [{"role": "user", "content": "thank you"}],
          "chosen": "you are welcome", "rejected": "how are you the printer"},
         {"prompt": [{"role": "user", "content": "are you there"}],
          "chosen": "Hello! yes how are you", "rejected": "yes yes yes yes yes"}]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def models(tiny_llama):
    """(tokenizer, the base model, a LoRA policy whose adapter is far from zero, the policy merged)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    recipe = resolved(Recipe(task="instruction-tuning", model=tiny_llama, data=DataSpec(path="x.csv"),
                             strategy_options={"lora_dropout": 0.0}, train=TrainSpec()))
    policy, _ = STRATEGIES["lora"].prepare(AutoModelForCausalLM.from_pretrained(tiny_llama), recipe)
    with torch.no_grad():
        for name, weight in policy.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.5)  # at its start a LoRA adapter changes nothing: the losses would be trivial
    policy.eval()
    merged = copy.deepcopy(policy).merge_and_unload()
    return tokenizer, AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), policy, merged


def studio_batch(tokenizer, policy, settings: Settings):
    """(the token ids of every row, the loss, the figures) of the studio for the whole of PAIRS in one batch."""
    fmt = ChatFormat(tokenizer, 256)
    compute = PreferenceLoss(policy, settings)
    dataset = Answers(unpaired(PAIRS), fmt, 8) if settings.loss == "kto" else Pairs(PAIRS, fmt)
    collate = PreferenceCollate(tokenizer.pad_token_id)
    dataset.reference = measure_reference(policy, compute.logps, dataset, collate, 8, torch.device("cpu"), None)
    inputs, targets = collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        loss, stats = compute(policy, inputs, targets)
    ids = [[t for t, m in zip(row, mask) if m] for row, mask in zip(inputs["input_ids"].tolist(),
                                                                        inputs["attention_mask"].tolist())]
    return ids, loss.item(), figures_of(stats.tolist())


def trl_rows(tokenizer):
    """PAIRS as trl's standard form: the prompt as the chat template renders it, each answer with its end of turn."""
    fmt = ChatFormat(tokenizer, 256)
    return [{"prompt": fmt.render(p["prompt"], add_generation_prompt=True), "chosen": p["chosen"] + fmt.eot,
             "rejected": p["rejected"] + fmt.eot} for p in PAIRS]


def trl_args(config_class, tmp_path, **options):
    return config_class(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False,
                        per_device_train_batch_size=8, dataset_num_proc=None, **options)


def logged(trainer) -> dict:
    """What the trainer logged for the batch (DPO and KTO by the model's mode, CPO and ORPO as training)."""
    metrics = getattr(trainer, "_metrics", None) or trainer._stored_metrics
    return {k: float(v[-1]) for k, v in (metrics["train"] or metrics["eval"]).items()}


@pytest.mark.parametrize("loss", ["dpo", "ipo"])
def test_dpo_and_ipo_agree_with_trl_dpo_trainer(loss, models, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    tokenizer, base, policy, merged = models
    ids, ours, figures = studio_batch(tokenizer, policy, Settings(loss=loss, beta=0.1))
    trainer = DPOTrainer(model=copy.deepcopy(merged), ref_model=copy.deepcopy(base),
                         args=trl_args(DPOConfig, tmp_path, beta=0.1,
                                       loss_type=["sigmoid" if loss == "dpo" else "ipo"]),
                         train_dataset=Dataset.from_list(trl_rows(tokenizer)), processing_class=tokenizer)
    rows = [trainer.train_dataset[i] for i in range(len(PAIRS))]
    assert [r["prompt_ids"] + r["chosen_ids"] for r in rows] + [r["prompt_ids"] + r["rejected_ids"] for r in rows] \
        == ids
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, batch).item()
    assert abs(ours - theirs) < TOLERANCE, (ours, theirs)
    assert abs(figures["reward_accuracy"] - logged(trainer)["rewards/accuracies"]) < TOLERANCE
    assert abs(figures["reward_margin"] - logged(trainer)["rewards/margins"]) < TOLERANCE


def cpo_like(trainer_class, config_class, tmp_path, models, **options):
    """(the studio's token ids, trl's token ids, trl's loss, what it logged) for CPOTrainer or ORPOTrainer."""
    from datasets import Dataset
    tokenizer, _, _, merged = models
    trainer = trainer_class(model=copy.deepcopy(merged), args=trl_args(config_class, tmp_path, **options),
                            train_dataset=Dataset.from_list(trl_rows(tokenizer)), processing_class=tokenizer)
    rows = [trainer.train_dataset[i] for i in range(len(PAIRS))]
    theirs_ids = [r["chosen_input_ids"] for r in rows] + [r["rejected_input_ids"] for r in rows]
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, batch).item()
    return theirs_ids, theirs, logged(trainer)


def test_simpo_agrees_with_trl_cpo_trainer(models, tmp_path):
    from trl.experimental.cpo import CPOConfig, CPOTrainer
    tokenizer, _, policy, _ = models
    settings = Settings(loss="simpo", beta=2.0, simpo_gamma=0.5, cpo_alpha=0.5)
    ids, ours, figures = studio_batch(tokenizer, policy, settings)
    theirs_ids, theirs, metrics = cpo_like(CPOTrainer, CPOConfig, tmp_path, models, loss_type="simpo", beta=2.0,
                                           simpo_gamma=0.5, cpo_alpha=0.5)
    assert theirs_ids == ids
    assert abs(ours - theirs) < TOLERANCE, (ours, theirs)
    assert abs(figures["reward_accuracy"] - metrics["rewards/accuracies"]) < TOLERANCE
    assert abs(figures["reward_margin"] - metrics["rewards/margins"]) < TOLERANCE


def test_orpo_odds_ratio_agrees_with_trl_orpo_trainer(models, tmp_path):
    """The odds-ratio term and the rewards agree. The added likelihood term differs by design: trl's ORPOTrainer
    takes it over the prompt and the answer ("orpo chosen nll loss is computed over the full prompt and response"),
    the ORPO paper and the studio over the answer alone, so each side's own likelihood term is taken out."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    tokenizer, _, policy, _ = models
    ids, ours, figures = studio_batch(tokenizer, policy, Settings(loss="orpo", beta=0.1))
    _, ours_nll, _ = studio_batch(tokenizer, policy, Settings(loss="orpo", beta=0.0))  # the likelihood term alone
    theirs_ids, theirs, metrics = cpo_like(ORPOTrainer, ORPOConfig, tmp_path, models, beta=0.1)
    assert theirs_ids == ids
    assert abs((ours - ours_nll) - (theirs - metrics["nll_loss"])) < TOLERANCE
    assert abs(figures["reward_accuracy"] - metrics["rewards/accuracies"]) < TOLERANCE
    assert abs(figures["reward_margin"] - metrics["rewards/margins"]) < TOLERANCE


def test_kto_agrees_with_trl_kto_trainer(models, tmp_path):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer
    tokenizer, base, policy, merged = models
    ids, ours, figures = studio_batch(tokenizer, policy, Settings(loss="kto", beta=0.1))
    rows = [{"prompt": r["prompt"], "completion": r[key], "label": key == "chosen"}
            for r in trl_rows(tokenizer) for key in ("chosen", "rejected")]  # as the studio unpairs them
    trainer = KTOTrainer(model=copy.deepcopy(merged), ref_model=copy.deepcopy(base),
                         args=trl_args(KTOConfig, tmp_path, beta=0.1), train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer)
    examples = [trainer.train_dataset[i] for i in range(len(rows))]
    assert [e["prompt_ids"] + e["completion_ids"] for e in examples] == ids
    batch = trainer.data_collator(examples)
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, batch).item()
    assert abs(ours - theirs) < TOLERANCE, (ours, theirs)
    assert abs(figures["reward_margin"] - logged(trainer)["rewards/margins"]) < TOLERANCE
