"""primer's optimisation (primer-trainer's optim.rs and schedule.rs, the kernels' fused AdamW)
with PyTorch's own pieces.

- AdamW (torch.optim.AdamW): decoupled weight decay on tensors of two or more dimensions only
  (weight matrices and embeddings; none on norms and biases), eps 1e-8 (PyTorch's; Burn's
  default 1e-5 is not used), bias-corrected moments.
- Learning rate of step s (1-based) of S: linear warm-up s / warmup x peak for s <= warmup,
  then half a cosine from peak to min_lr at step S, min_lr after it.
- Global-norm clipping (torch.nn.utils.clip_grad_norm_: scale by max / (norm + 1e-6) when the
  norm is above max), after the step's micro-batches are accumulated.
"""

import math

import torch

EPSILON = 1e-8


def learning_rate(step, total, warmup, peak, minimum):
    """primer's schedule (trainer/src/schedule.rs)."""
    if step <= warmup:
        return peak * step / warmup
    if step >= total:
        return minimum
    progress = (step - warmup) / (total - warmup)
    return minimum + 0.5 * (peak - minimum) * (1 + math.cos(math.pi * progress))


def adamw(parameters, train):
    """AdamW with the run's betas and weight decay on matrices only (`train` is config.json's
    "train")."""
    parameters = list(parameters)
    decay = [p for p in parameters if p.dim() >= 2]
    no_decay = [p for p in parameters if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": train["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=train["lr"], betas=(train["beta1"], train["beta2"]), eps=EPSILON)


def clip(parameters, max_norm):
    """Clips to a global norm of `max_norm` (0: measure only); returns the norm before."""
    parameters = [p for p in parameters if p.grad is not None]
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm).item()
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters])).item()
