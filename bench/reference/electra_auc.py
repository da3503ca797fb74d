"""Does ELECTRA's discriminator learn? The reference trains on a recorded ELECTRA run's batches
(`pretrain --record-batches`), with primer's sampling draws or with its own, and prints per
window of steps the mean loss, the discriminator's AUC on the training batches (scored
before each update), the generator's cross-entropy and how common its replacements are.

usage: PYTHONPATH=bench python -m reference.electra_auc RUN_DIR [--own-sampling] [--window 50]
"""

import argparse
import json
from pathlib import Path

import torch

from .optim import adamw
from .train import networks_of, read_steps, train_step
from .weights import load_primer


def auc(scores, labels):
    """The probability that a replaced position scores above an original one, ties half."""
    positives = labels > 0.5
    replaced, original = scores[positives], torch.sort(scores[~positives]).values
    if len(replaced) == 0 or len(original) == 0:
        return float("nan")
    below = torch.searchsorted(original, replaced, right=False)
    at_or_below = torch.searchsorted(original, replaced, right=True)
    return ((below + at_or_below).double().sum() / 2 / (len(replaced) * len(original))).item()


def common_share(masked, k):
    """The share of replacements (sampled tokens that differ from the original) that are among
    the `k` commonest original tokens at the masked positions of the same batches: near k's
    share of the vocabulary for a uniform generator, near the text's own for a unigram one."""
    if not masked:
        return float("nan")
    targets = torch.cat([d["targets"] for d in masked])
    sampled = torch.cat([d["sampled"] for d in masked])
    common = torch.bincount(targets).topk(k).indices
    replacements = sampled[sampled != targets]
    return torch.isin(replacements, common).float().mean().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--own-sampling", action="store_true", help="draw the reference's own uniforms")
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = json.loads((args.run / "config.json").read_text())
    networks = networks_of(config)
    load_primer(networks, args.run / "record" / "init.safetensors")
    optimizer = adamw(networks.parameters(), config["train"])
    generator = torch.Generator().manual_seed(0)
    losses, details = [], []
    for step in read_steps(args.run / "record"):
        if args.own_sampling:
            for batch in step["batches"]:
                batch["noise"] = torch.rand(len(batch["noise"]), generator=generator).tolist()
        loss, _, _ = train_step(networks, optimizer, config["objective"], config["train"], step, details)
        losses.append(loss)
        if step["step"] % args.window == 0:
            scores = torch.cat([d["scores"] for d in details])
            labels = torch.cat([d["labels"] for d in details])
            masked = [d for d in details if "targets" in d]
            nll = sum(d["generator_nll"] for d in masked) / max(len(masked), 1)
            print(f"steps {step['step'] - args.window + 1:>5}-{step['step']:<5} loss {sum(losses) / len(losses):8.4f} "
                  f"AUC {auc(scores, labels):.4f} replaced {labels.mean().item():.3f} generator CE {nll:.3f} "
                  f"replacements among the 20 commonest tokens {common_share(masked, 20):.3f}", flush=True)
            losses, details = [], []


if __name__ == "__main__":
    main()
