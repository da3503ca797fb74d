"""Trains the reference on a primer run's record (`pretrain --record-batches DIR`): the same
initial weights, the same batches in the same order, the same AdamW, schedule and clipping,
fp32 on the CPU; compares the loss of every step and the final weights.
"""

import json
from pathlib import Path

import torch

from . import objectives
from .model import Networks
from .optim import adamw, clip, learning_rate
from .weights import largest_difference, load_primer


def read_steps(record):
    """The steps of a record, in order."""
    with open(Path(record) / "steps.jsonl") as lines:
        return [json.loads(line) for line in lines]


def networks_of(config):
    """The reference's networks for a run's config.json (dropout must be 0)."""
    if config["model"].get("dropout", 0.0) != 0.0:
        raise SystemExit("parity needs a run without dropout: give --dropout 0")
    objective = config["objective"]
    width = objective.get("generator_width") if objective["name"] == "electra" else None
    return Networks(config["model"], width)


def train_step(networks, optimizer, objective, train, step, details=None):
    """One optimizer step on a recorded step's micro-batches; returns (loss, gradient norm,
    learning rate). `details`, a list, gets ELECTRA's scores and labels of each micro-batch."""
    batches = step["batches"]
    targets = sum(objectives.n_targets(objective, batch) for batch in batches)
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for batch in batches:
        found = {}
        summed = objectives.loss_sum(networks, objective, batch, found)
        if details is not None and found:
            details.append(found)
        (summed / targets).backward()
        total += summed.item()
    norm = clip(networks.parameters(), train["grad_clip"])
    lr = learning_rate(step["step"], train["steps"], train["warmup_steps"], train["lr"], train["min_lr"])
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return total / targets, norm, lr


def replay(config, record, threads=1):
    """Trains on `record`; returns a dict: steps compared, the largest relative differences of
    the loss, the gradient norm and the learning rate, and the largest final weight
    difference."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)  # nothing is drawn; fixed anyway
    networks = networks_of(config)
    load_primer(networks, Path(record) / "init.safetensors")
    optimizer = adamw(networks.parameters(), config["train"])
    relative = lambda ours, theirs: abs(ours - theirs) / max(abs(theirs), 1e-12)
    result = {"steps": 0, "loss": 0.0, "grad_norm": 0.0, "lr": 0.0, "curve": []}
    for step in read_steps(record):
        loss, norm, lr = train_step(networks, optimizer, config["objective"], config["train"], step)
        result["steps"] += 1
        result["curve"].append((step["step"], step["loss"], loss))
        for key, ours, theirs in (("loss", loss, step["loss"]), ("grad_norm", norm, step["grad_norm"]),
                                  ("lr", lr, step["lr"])):
            result[key] = max(result[key], relative(ours, theirs))
    final = Path(record) / "final.safetensors"
    if final.exists():
        result["weights"] = largest_difference(networks, final)
    return result
