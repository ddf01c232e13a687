"""The loss of a language model on the learnt tokens only, and its streaming metrics (loss, perplexity, share of
learnt tokens predicted exactly).

The vocabulary projection is applied only where a token is learnt: the model's body runs as usual (adapters
included), a hook keeps its last hidden states, and the model's own forward is asked for the logits of one
position only. A batch of 8 × 1024 tokens over a 50 000-word vocabulary would otherwise hold 1.6 GB of logits (and
as much again for their gradient) when most positions are prompt or padding."""
from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F

from studio.engine.distributed import unwrap
from studio.tasks.instruction.tokens import IGNORE


def _base(model):
    model = unwrap(model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class TokenLoss:
    """The loop's compute for language models: (mean loss over the batch's learnt tokens, [loss sum, learnt
    tokens, exactly predicted tokens]). Models whose logits are more than a projection of the last hidden state
    (soft-capped or scaled logits), or whose forward cannot skip the logits, take the plain path."""

    def __init__(self, model):
        base = _base(model)
        self.head = base.get_output_embeddings()
        config = base.config
        plain = getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None)
        self.selective = (not plain and self.head is not None
                          and "logits_to_keep" in inspect.signature(base.forward).parameters)
        self.hidden = None
        if self.selective:
            base.base_model.register_forward_hook(self._keep)

    def _keep(self, module, args, output) -> None:
        self.hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state

    def learnt_logits(self, model, inputs: dict, labels: torch.Tensor):
        """(fp32 logits of the learnt positions, their target tokens, the (rows, length - 1) mask of them)."""
        length = labels.shape[1]
        targets = labels[:, 1:]
        learnt = targets != IGNORE
        if self.selective:
            model(**inputs, logits_to_keep=1, use_cache=False)
            # Prompt tuning puts virtual tokens in front: the last `length` positions are the text's.
            hidden, self.hidden = self.hidden[:, -length:], None
            logits = self.head(hidden[:, :-1][learnt]).float()
        else:
            logits = model(**inputs, use_cache=False).logits[:, -length:][:, :-1][learnt].float()
        return logits, targets[learnt], learnt

    def __call__(self, model, inputs: dict, labels: torch.Tensor):
        logits, chosen, learnt = self.learnt_logits(model, inputs, labels)
        loss_sum = F.cross_entropy(logits, chosen, reduction="sum")
        count = learnt.sum()
        correct = (logits.detach().argmax(-1) == chosen).sum()
        stats = torch.stack([loss_sum.detach(), count.to(loss_sum.dtype), correct.to(loss_sum.dtype)])
        return loss_sum / count.clamp(min=1), stats


class TokenMetrics:
    """Sums over batches (and ranks), never all logits: loss and accuracy per learnt token, and perplexity."""

    def __init__(self):
        self.sums = torch.zeros(3, dtype=torch.float64)

    def update(self, stats: torch.Tensor, labels) -> None:
        self.sums += stats.detach().double().cpu()

    def result(self, dist) -> dict[str, float]:
        loss_sum, count, correct = dist.sum(self.sums).tolist()
        loss = loss_sum / max(count, 1.0)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "accuracy": correct / max(count, 1.0),
                "tokens": int(count)}


@torch.no_grad()
def packing_works(model, device) -> bool:
    """Whether this model keeps packed examples apart (position ids restarting at each, no attention mask): the
    logits of two short sequences packed into one row must equal their logits apart."""
    was_training = model.training
    model.eval()
    vocab = model.config.vocab_size
    a = torch.arange(5, device=device) % vocab + 1
    b = torch.arange(4, device=device) % vocab + 7
    apart = [model(input_ids=x[None], use_cache=False).logits[0].float() for x in (a, b)]
    packed = model(input_ids=torch.cat([a, b])[None],
                   position_ids=torch.cat([torch.arange(5), torch.arange(4)]).to(device)[None],
                   use_cache=False).logits[0].float()  # a cache would turn the packed-sequence check off
    model.train(was_training)
    return bool(torch.allclose(torch.cat(apart), packed, atol=1e-3, rtol=1e-3))
