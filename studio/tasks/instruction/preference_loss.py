"""The preference losses as trl computes them (DPO and IPO as DPOTrainer, SimPO as CPOTrainer, ORPO as
ORPOTrainer, KTO as KTOTrainer), on each answer's summed log-probability under the tuned model and under the
reference (the start model, measured once before training), and their streaming figures: loss, reward accuracy,
reward margin, and how often the tuned and the start model give the better answer the higher log-probability.

Only an answer's own tokens (with its end-of-turn token) count: prompt tokens never enter a loss."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from studio.tasks.instruction.loss import TokenLoss
from studio.tasks.instruction.tokens import IGNORE

LOSSES = ("dpo", "ipo", "orpo", "simpo", "kto")
WITHOUT_REFERENCE = ("orpo", "simpo")  # they compare the tuned model's answers with each other only
# The sums a batch adds to the figures: loss × units, units (pairs, or answers for KTO), rewards that rank right,
# the chosen (good) answers' rewards and count, the rejected (bad) ones', pairs the tuned and the start model rank
# right by summed log-probability, and those pairs; then the start model's rewards as the loss defines them (zero
# where it is the reference itself; ORPO's and SimPO's rank its answers), for the Evaluate tab's side by side.
STATS = ("loss", "units", "reward_correct", "chosen_reward", "chosen", "rejected_reward", "rejected",
         "preferred", "base_preferred", "pairs", "base_reward_correct", "base_chosen_reward", "base_rejected_reward")


@dataclass(frozen=True)
class Settings:
    """A run's loss and its options, by trl's names."""
    loss: str = "dpo"
    beta: float = 0.1
    simpo_gamma: float = 0.5
    cpo_alpha: float = 0.0
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0

    @classmethod
    def of(cls, options: dict) -> "Settings":
        return cls(**{k: options[k] for k in cls.__dataclass_fields__ if k in options})

    @property
    def needs_reference(self) -> bool:
        return self.loss not in WITHOUT_REFERENCE


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, without cancellation on either side of -ln 2."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def pair_loss(s: Settings, chosen, rejected, chosen_n, rejected_n, ref_chosen, ref_rejected, nll):
    """(the batch's loss, chosen rewards, rejected rewards) of summed log-probabilities (per pair; `*_n` their token
    counts) and nll, the chosen answers' mean token loss (ORPO's and CPO's added term)."""
    if s.loss in ("dpo", "ipo"):
        chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
        if s.loss == "dpo":
            losses = -F.logsigmoid(s.beta * (chosen_ratio - rejected_ratio))
        else:  # trl's IPO: log-ratios averaged over each answer's tokens
            losses = (chosen_ratio / chosen_n - rejected_ratio / rejected_n - 1 / (2 * s.beta)) ** 2
        return losses.mean(), s.beta * chosen_ratio.detach(), s.beta * rejected_ratio.detach()
    chosen_mean, rejected_mean = chosen / chosen_n, rejected / rejected_n  # per-token averages
    if s.loss == "simpo":
        losses = -F.logsigmoid(s.beta * (chosen_mean - rejected_mean - s.simpo_gamma / s.beta))
        loss = losses.mean() + s.cpo_alpha * nll
    else:  # orpo: the odds of the chosen answer against the rejected one's, beside the chosen answer's loss
        log_odds = (chosen_mean - rejected_mean) - (log1mexp(chosen_mean) - log1mexp(rejected_mean))
        loss = nll - s.beta * F.logsigmoid(log_odds).mean()
    return loss, s.beta * chosen_mean.detach(), s.beta * rejected_mean.detach()


def kto_loss(s: Settings, logps, reference, kl_logps, kl_reference, desirable):
    """(the batch's loss, rewards) of KTO on answers marked good (desirable) or bad; the KL term is estimated from
    mismatched prompt-answer pairs of the same batch, as KTOTrainer does."""
    kl = (kl_logps - kl_reference).mean().detach().clamp(min=0)
    ratio = logps - reference
    losses = torch.where(desirable, 1 - torch.sigmoid(s.beta * (ratio - kl)),
                         1 - torch.sigmoid(s.beta * (kl - ratio)))
    weights = torch.where(desirable, s.desirable_weight, s.undesirable_weight)
    return (weights * losses).mean(), s.beta * ratio.detach()


class SequenceLogps:
    """Each row's summed log-probability of its learnt tokens, and their count; the vocabulary projection only
    where a token is learnt (the chat task's TokenLoss)."""

    def __init__(self, model):
        self.tokens = TokenLoss(model)

    def __call__(self, model, inputs: dict, labels: torch.Tensor):
        logits, targets, learnt = self.tokens.learnt_logits(model, inputs, labels)
        per_token = -F.cross_entropy(logits, targets, reduction="none")
        rows = learnt.nonzero()[:, 0]
        sums = torch.zeros(learnt.shape[0], dtype=per_token.dtype, device=per_token.device)
        return sums.index_add(0, rows, per_token), learnt.sum(1).to(per_token.dtype)


class PreferenceLoss:
    """The loop's compute: (the loss, the STATS sums of the batch). Training batches' sums also add up until the
    step's figures are taken (take_step_figures)."""

    def __init__(self, model, settings: Settings):
        self.logps, self.settings = SequenceLogps(model), settings
        self.running = torch.zeros(len(STATS), dtype=torch.float64)

    def __call__(self, model, inputs: dict, targets: dict):
        compute = self._unpaired if "kl_inputs" in targets else self._paired
        loss, stats = compute(model, inputs, targets)
        if torch.is_grad_enabled():
            self.running += stats.detach().double().cpu()
        return loss, stats

    def _paired(self, model, inputs, targets):
        sums, counts = self.logps(model, inputs, targets["labels"])
        chosen, rejected = sums.chunk(2)
        chosen_n, rejected_n = counts.chunk(2)
        ref_chosen, ref_rejected = targets["reference"].to(sums.dtype).unbind(1)
        nll = -chosen.sum() / chosen_n.sum().clamp(min=1)
        loss, chosen_reward, rejected_reward = pair_loss(self.settings, chosen, rejected, chosen_n, rejected_n,
                                                         ref_chosen, ref_rejected, nll)
        _, base_chosen, base_rejected = pair_loss(self.settings, ref_chosen, ref_rejected, chosen_n, rejected_n,
                                                  ref_chosen, ref_rejected, nll.detach())
        pairs = len(chosen)
        return loss, _stats(loss, pairs, (chosen_reward > rejected_reward).sum(), chosen_reward.sum(), pairs,
                            rejected_reward.sum(), pairs, (chosen > rejected).sum(), (ref_chosen > ref_rejected).sum(),
                            pairs, (base_chosen > base_rejected).sum(), base_chosen.sum(), base_rejected.sum())

    def _unpaired(self, model, inputs, targets):
        logps, _ = self.logps(model, inputs, targets["labels"])
        with torch.no_grad():
            kl_logps, _ = self.logps(model, targets["kl_inputs"], targets["kl_labels"])
        reference, kl_reference = targets["reference"].to(logps.dtype).unbind(1)
        desirable = targets["desirable"]
        loss, rewards = kto_loss(self.settings, logps, reference, kl_logps, kl_reference, desirable)
        # Answers of one pair (KTO on paired data) are ranked as pairs are.
        pair = targets["pair"]
        same = (pair[:, None] == pair[None, :]) & (pair[:, None] >= 0) & desirable[:, None] & ~desirable[None, :]
        good, bad = same.nonzero().unbind(1)
        # the start model is KTO's reference: its rewards are zero, which ranks only the bad answers right
        return loss, _stats(loss, len(logps), ((rewards > 0) == desirable).sum(), rewards[desirable].sum(),
                            desirable.sum(), rewards[~desirable].sum(), (~desirable).sum(),
                            (logps[good] > logps[bad]).sum(), (reference[good] > reference[bad]).sum(), len(good),
                            (~desirable).sum(), 0, 0)

    def take_step_figures(self) -> dict:
        """The reward accuracy and margin of the training batches since the last call."""
        figures = figures_of(self.running.tolist())
        self.running.zero_()
        return {k: figures[k] for k in ("reward_accuracy", "reward_margin") if k in figures}


def _stats(loss, units, *rest) -> torch.Tensor:
    values = [loss.detach() * units, units, *rest]
    return torch.tensor([float(v) for v in values], dtype=torch.float64)


def figures_of(sums: list[float]) -> dict:
    """loss, reward_accuracy, reward_margin (and the start model's: base_reward_accuracy, base_reward_margin),
    preference_accuracy and base_preference_accuracy (when pairs were ranked) of STATS sums."""
    s = dict(zip(STATS, sums))
    units, chosen, rejected = max(s["units"], 1.0), max(s["chosen"], 1.0), max(s["rejected"], 1.0)
    out = {"loss": s["loss"] / units, "reward_accuracy": s["reward_correct"] / units,
           "reward_margin": s["chosen_reward"] / chosen - s["rejected_reward"] / rejected,
           "base_reward_accuracy": s["base_reward_correct"] / units,
           "base_reward_margin": s["base_chosen_reward"] / chosen - s["base_rejected_reward"] / rejected}
    if s["pairs"]:
        out.update(preference_accuracy=s["preferred"] / s["pairs"], base_preference_accuracy=s["base_preferred"] /
                   s["pairs"])
    return out


class PreferenceMetrics:
    """Sums over batches (and ranks) of STATS."""

    def __init__(self):
        self.sums = torch.zeros(len(STATS), dtype=torch.float64)

    def update(self, stats: torch.Tensor, targets) -> None:
        self.sums += stats.detach().double().cpu()

    def result(self, dist) -> dict[str, float]:
        return figures_of(dist.sum(self.sums).tolist())


def learnt_tokens(inputs: dict, targets: dict) -> int:
    """Answer tokens of a batch (the loop's tokens/s)."""
    return int((targets["labels"] != IGNORE).sum())
