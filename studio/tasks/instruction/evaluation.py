"""How good a tuned chat model is, on the validation conversations it never trained on: loss, perplexity and the
share of answer tokens predicted exactly, for the tuned model and for the base model on the same data; and a few
held-out prompts answered by both (greedy, bounded length) beside the reference answer, scored by ROUGE-L."""
from __future__ import annotations

import re

from studio.tasks.instruction.data import prompt_and_reference
from studio.words import said

SAMPLES = 4  # held-out prompts answered by both models
SAMPLE_TOKENS = 64  # at most this many new tokens per answer (a CPU writes ~18 a second for a 135M model)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on lower-cased words: the longest common subsequence against both lengths."""
    a, b = _words(candidate), _words(reference)
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    common = previous[-1]
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def samples(chat, conversations: list, form: str, base_answers: list[str] | None = None, cancel=None) -> list[dict]:
    """[{prompt, reference, base_answer, tuned_answer, similarity (tuned), base_similarity}] for the first
    validation conversations; base_answers: the base model's, when they were written before training changed its
    weights. Continued pretraining: the first half of a text is the prompt, the rest the reference."""
    out = []
    for n, item in enumerate(conversations[:SAMPLES]):
        if cancel is not None and cancel.is_set():
            break
        if form == "text":
            words = item.split()
            prompt_text, reference = " ".join(words[:len(words) // 2]), " ".join(words[len(words) // 2:])
            messages = [{"role": "user", "content": prompt_text}]
        else:
            messages, reference = prompt_and_reference(item)
            prompt_text = messages[-1]["content"]
        tuned = chat.answer(messages, tuned=True, max_new_tokens=SAMPLE_TOKENS)
        if base_answers is not None:
            base = base_answers[n] if n < len(base_answers) else ""
        else:
            base = chat.answer(messages, tuned=False, max_new_tokens=SAMPLE_TOKENS) if chat.has_base else ""
        out.append({"prompt": prompt_text, "reference": reference, "base_answer": base, "tuned_answer": tuned,
                    "similarity": round(rouge_l(tuned, reference), 4),
                    "base_similarity": round(rouge_l(base, reference), 4)})
    return out


def overfitting_note(history: list[dict], best_epoch: int) -> str | None:
    """In words, when validation loss rose while training loss kept falling."""
    if len(history) < 2:
        return None
    last, best = history[-1], next((h for h in history if h["epoch"] == best_epoch), history[-1])
    if last["val_loss"] > best["val_loss"] * 1.05 and last["train_loss"] < best["train_loss"]:
        return said("Validation loss was lowest after epoch {epoch} ({best}) and rose to {last} while training "
                    "loss kept falling: the model began memorising its training answers. The saved model is the "
                    "one from epoch {epoch}; fewer epochs, a lower learning rate or more data would help.",
                    epoch=best_epoch, best=f"{best['val_loss']:.3f}", last=f"{last['val_loss']:.3f}")
    if last["train_loss"] < 0.3 * last["val_loss"]:
        return said("Training loss ({train}) is far below validation loss ({val}): the model knows its training "
                    "answers much better than new ones. More varied examples help.",
                    train=f"{last['train_loss']:.3f}", val=f"{last['val_loss']:.3f}")
    return None


def comparison_words(report: dict) -> str:
    """One sentence: the tuned model against the base model on the validation answers."""
    tuned, base = report["perplexity"], report.get("base_perplexity")
    if base is None:
        return said("Validation perplexity {perplexity}.", perplexity=f"{tuned:.2f}")
    change = (report["base_loss"] - report["loss"]) / max(report["base_loss"], 1e-9)
    values = dict(change=f"{abs(change):.0%}", tuned=f"{tuned:.2f}", base=f"{base:.2f}",
                  accuracy=f"{report['accuracy']:.0%}", base_accuracy=f"{report['base_accuracy']:.0%}")
    if change >= 0:
        return said("On the validation answers the tuned model's loss is {change} lower than the base model's "
                    "(perplexity {tuned} vs {base}); it predicts {accuracy} of the answer tokens exactly (base "
                    "model {base_accuracy}).", **values)
    return said("On the validation answers the tuned model's loss is {change} higher than the base model's "
                "(perplexity {tuned} vs {base}); it predicts {accuracy} of the answer tokens exactly (base model "
                "{base_accuracy}).", **values)
