"""PyTorch reference for primer's training step: the same model, objective, optimizer and
schedule as `primer pretrain`, in plain PyTorch eager, timed the same way.

Model (primer-model): token embedding (+ learned positions, or rotary on queries and keys),
pre-LayerNorm blocks (fused QKV, attention, output projection; GELU MLP), a final LayerNorm and
an LM head tied to the embedding. Every weight ~ N(0, 0.02), residual projections
N(0, 0.02 / sqrt(2 * layers)), biases zero, LayerNorm eps 1e-5.
Objectives (primer-objectives): causal LM on every position; MLM selects 15% of non-special
tokens, replaces 80% of them by [MASK], 10% by a random token, keeps 10%, and computes the head
only at the selected positions.
Optimizer (primer-trainer): AdamW (betas 0.9/0.99, eps 1e-8, weight decay 0.1 on tensors of two
or more dimensions only), linear warm-up then cosine decay to lr/10, global-norm clipping at 1.

It trains on random tokens (throughput does not depend on the text) and prints one JSON line:
median tokens/s and ms/step over the steps after warm-up, peak RSS (and on CUDA peak GPU
memory) and the final loss. The model is the parity reference's (bench/reference/model.py).
On CUDA (`--device cuda`) it can train as a PyTorch user would: bf16 autocast
(`--dtype bf16`), `torch.compile` (`--compile`, causal LM only) and fused AdamW.
Run it with the torch venv `scripts/setup-torch` makes: `.venv/bin/python bench/torch_reference.py --help`.
"""

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F

from reference.model import Transformer, init_gpt2
from reference.optim import learning_rate

SPECIALS = 7  # [PAD] [UNK] [CLS] [SEP] [MASK] [BOS] [EOS], ids 0..6 as primer's tokenizers
MASK_ID = 4


def mlm_batch(tokens, vocab, generator):
    """BERT masking of non-special tokens: (inputs, flat selected positions, targets)."""
    selectable = tokens >= SPECIALS
    selected = (torch.rand(tokens.shape, generator=generator) < 0.15) & selectable
    draw = torch.rand(tokens.shape, generator=generator)
    inputs = tokens.clone()
    inputs[selected & (draw < 0.8)] = MASK_ID
    random = selected & (draw >= 0.8) & (draw < 0.9)
    inputs[random] = torch.randint(SPECIALS, vocab, tokens.shape, generator=generator)[random]
    flat = selected.flatten().nonzero().squeeze(1)
    return inputs, flat, tokens.flatten()[flat]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objective", choices=["clm", "mlm"], default="clm")
    parser.add_argument("--vocab-size", type=int, default=256 + SPECIALS)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-ff", type=int, help="default: 4 x d-model")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--positions", choices=["rotary", "learned"], default="rotary")
    parser.add_argument("--attention", choices=["sdpa", "manual"], default="sdpa",
                        help="sdpa: PyTorch's fused scaled_dot_product_attention, what a PyTorch user writes; "
                             "manual: scores, mask and softmax as separate ops, as primer computes them")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup-steps", type=int, default=2, help="also the steps left out of the timing")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                        help="bf16: the forward pass and loss under torch.autocast(bfloat16), f32 weights")
    parser.add_argument("--compile", action="store_true", help="torch.compile the forward pass and loss (clm only)")
    args = parser.parse_args()
    if args.compile and args.objective != "clm":
        parser.error("--compile takes --objective clm: MLM's selected positions change shape every step")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    config = {"vocab_size": args.vocab_size, "d_model": args.d_model, "n_layers": args.layers, "n_heads": args.heads,
              "d_ff": args.d_ff or 4 * args.d_model, "max_seq_len": args.seq_len, "positions": args.positions}
    model = Transformer(config, sdpa=args.attention == "sdpa")
    init_gpt2(model)
    model.to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    # On CUDA, PyTorch's fused AdamW: one kernel for every parameter, what nanoGPT uses.
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.99), eps=1e-8, fused=cuda or None)
    causal = args.objective == "clm"
    block = args.seq_len + 1 if causal else args.seq_len
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def clm_loss(tokens):
        hidden = model.hidden(tokens[:, :-1], "causal")
        return F.cross_entropy(model.logits(hidden).flatten(0, 1), tokens[:, 1:].flatten())

    if args.compile:
        clm_loss = torch.compile(clm_loss)
    timings, loss = [], float("nan")
    for step in range(1, args.steps + 1):
        started = time.perf_counter()
        tokens = torch.randint(SPECIALS, args.vocab_size, (args.batch_size, block), generator=generator)
        with autocast:
            if causal:
                loss_t = clm_loss(tokens.to(device))
            else:
                inputs, selected, targets = mlm_batch(tokens, args.vocab_size, generator)
                hidden = model.hidden(inputs.to(device), "bidirectional").flatten(0, 1)
                logits = model.logits(hidden[selected.to(device)])
                loss_t = F.cross_entropy(logits, targets.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.warmup_steps, args.lr, args.lr / 10)
        optimizer.step()
        loss = loss_t.item()  # primer reads its loss every step too (and so waits for the GPU)
        timings.append(time.perf_counter() - started)

    timed = timings[args.warmup_steps:] or timings
    seconds = statistics.median(timed)
    tokens_per_step = args.batch_size * args.seq_len
    parameters = sum(p.numel() for p in model.parameters())
    positions = model.position_embedding.weight.numel() if model.position_embedding is not None else 0
    print(json.dumps({
        "impl": "pytorch",
        "torch": torch.__version__,
        "threads": args.threads,
        "device": str(device),
        "dtype": args.dtype,
        "compile": args.compile,
        "attention": args.attention,
        "objective": args.objective,
        "parameters": parameters,
        # Counted as primer counts them (TransformerConfig::train_flops_per_token).
        "flops_per_token": 6 * (parameters - positions) + 12 * args.layers * args.d_model * args.seq_len,
        "tokens_per_s": tokens_per_step / seconds,
        "ms_per_step": 1000 * seconds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
        "peak_gpu_gb": torch.cuda.max_memory_allocated(device) / 1e9 if cuda else None,
        "loss_end": loss,
    }))


if __name__ == "__main__":
    main()
