"""Each objective's loss on one micro-batch as primer builds it (primer-objectives), as a sum
over its targets: the trainer divides the sums of a step's micro-batches by their targets
together.

A batch is a line of `pretrain --record-batches`' steps.jsonl (see trainer/src/record.rs):
input ids, the flat positions predicted (all when absent), the targets, the attention
("causal", "bidirectional" or "prefix" with a length per row) and ELECTRA's uniform draws.

- clm (causal.rs): cross-entropy of every next token, causal attention.
- mlm (mlm.rs): cross-entropy at the selected positions only, bidirectional attention; the
  masking itself (80/10/10; token, whole-word or span) is primer's, recorded in the inputs.
- prefix (prefix.rs): cross-entropy of the tokens after each row's prefix, the prefix read both
  ways.
- electra (electra.rs, after google-research/electra's run_pretraining.py): the generator's
  masked-LM cross-entropy at the masked positions; a token sampled from the generator's softmax
  (without gradient) at each masked position, by inverting its cumulative sum at the batch's
  uniform draw; labels 1 where the sample differs from the original token; the discriminator's
  binary cross-entropy at every position. Loss = generator mean + weight x discriminator mean,
  as a sum over all positions: generator sum x positions / masked + weight x BCE sum.
"""

import torch
import torch.nn.functional as F


def tensors(batch):
    """The batch's tensors: inputs [rows, seq], predicted positions (or None), targets."""
    rows, seq = batch["shape"]
    inputs = torch.tensor(batch["inputs"], dtype=torch.long).view(rows, seq)
    predict_at = batch.get("predict_at")
    predict_at = None if predict_at is None else torch.tensor(predict_at, dtype=torch.long)
    return inputs, predict_at, torch.tensor(batch["targets"], dtype=torch.long)


def attention(batch):
    """The batch's attention mode as model.py takes it."""
    if batch["attention"] == "prefix":
        return list(batch["prefix"])
    return batch["attention"]


def n_targets(objective, batch):
    """The targets a batch's loss sums over: every position for ELECTRA."""
    if objective["name"] == "electra":
        rows, seq = batch["shape"]
        return rows * seq
    return len(batch["targets"])


def language_model_sum(networks, batch):
    """clm, mlm and prefix: summed cross-entropy at the predicted positions."""
    inputs, predict_at, targets = tensors(batch)
    hidden = networks.model.hidden(inputs, attention(batch)).flatten(0, 1)
    if predict_at is not None:
        hidden = hidden[predict_at]
    logits = networks.model.logits(hidden)
    return F.cross_entropy(logits, targets, reduction="sum")


def sample(logits, uniform):
    """One token per row of `logits` from their softmax: the first whose cumulative probability
    reaches the row's uniform draw (primer's `sample`)."""
    cumulative = logits.softmax(dim=1).cumsum(dim=1)
    below = (cumulative < uniform[:, None]).sum(dim=1)
    return below.clamp_max(logits.shape[1] - 1)


def electra_sum(networks, batch, settings, details=None):
    """ELECTRA's loss, summed over every position; fills `details` (a dict) with the
    discriminator's scores and labels, the generator's mean cross-entropy, and the masked
    positions' original and sampled tokens when given."""
    model, companion = networks.model, networks.companion
    inputs, predict_at, targets = tensors(batch)
    rows, seq = inputs.shape
    positions = rows * seq
    corrupted = inputs.flatten().clone()
    labels = torch.zeros(positions)
    total = torch.zeros(())
    if len(targets) > 0:
        logits = companion.generator_logits(model, inputs, predict_at)
        generator = F.cross_entropy(logits, targets, reduction="sum")
        total = generator * (positions / len(targets))
        uniform = torch.tensor(batch["noise"], dtype=torch.float32)
        sampled = sample(logits.detach(), uniform)
        corrupted[predict_at] = sampled
        labels[predict_at] = (sampled != targets).float()
    hidden = model.hidden(corrupted.view(rows, seq), "bidirectional")
    scores = companion.head_logits(hidden)
    bce = F.binary_cross_entropy_with_logits(scores, labels, reduction="sum")
    if details is not None:
        details["scores"], details["labels"] = scores.detach(), labels
        if len(targets) > 0:
            details["generator_nll"] = generator.item() / len(targets)
            details["targets"], details["sampled"] = targets, sampled
    return total + settings["discriminator_weight"] * bce


def loss_sum(networks, objective, batch, details=None):
    """The objective's summed loss of one micro-batch (`details`: see electra_sum)."""
    if objective["name"] == "electra":
        return electra_sum(networks, batch, objective, details)
    return language_model_sum(networks, batch)
