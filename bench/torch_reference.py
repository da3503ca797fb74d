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
memory) and the final loss. On CUDA (`--device cuda`) it can train as a PyTorch user would:
bf16 autocast (`--dtype bf16`), `torch.compile` (`--compile`, causal LM only) and fused AdamW.
Run it with the torch venv `scripts/setup-torch` makes: `.venv/bin/python bench/torch_reference.py --help`.
"""

import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SPECIALS = 7  # [PAD] [UNK] [CLS] [SEP] [MASK] [BOS] [EOS], ids 0..6 as primer's tokenizers
MASK_ID = 4


class Rotary(nn.Module):
    """Rotary positions as Burn's RotaryEncoding: pairs (2i, 2i+1) rotated by pos * 10000^(-2i/d)."""

    def __init__(self, max_len, head_dim):
        super().__init__()
        freqs = 10000.0 ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), freqs)  # [len, head_dim/2]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x):  # [batch, heads, seq, head_dim]
        seq = x.shape[2]
        even, odd = x[..., 0::2], x[..., 1::2]
        cos, sin = self.cos[:seq], self.sin[:seq]
        return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, d, heads, d_ff, residual_std, rotary, fused):
        super().__init__()
        self.heads = heads
        self.fused = fused
        self.norm_1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm_2 = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, d_ff)
        self.fc_proj = nn.Linear(d_ff, d)
        self.rotary = rotary
        for linear, std in ((self.qkv, 0.02), (self.proj, residual_std), (self.fc, 0.02), (self.fc_proj, residual_std)):
            nn.init.normal_(linear.weight, 0.0, std)
            nn.init.zeros_(linear.bias)

    def forward(self, x, causal):
        batch, seq, d = x.shape
        q, k, v = (
            t.view(batch, seq, self.heads, d // self.heads).transpose(1, 2)
            for t in self.qkv(self.norm_1(x)).split(d, dim=2)
        )
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        if self.fused:
            context = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        else:  # primer's own formulation: scores, -inf above the diagonal, softmax, weighted sum
            scores = (q @ k.transpose(2, 3)) * (d // self.heads) ** -0.5
            if causal:
                future = torch.ones(seq, seq, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(future, float("-inf"))
            context = scores.softmax(dim=3) @ v
        x = x + self.proj(context.transpose(1, 2).reshape(batch, seq, d))
        return x + self.fc_proj(F.gelu(self.fc(self.norm_2(x))))


class Transformer(nn.Module):
    def __init__(self, vocab, d, layers, heads, d_ff, max_len, positions, fused):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)
        self.positions = None
        rotary = None
        if positions == "learned":
            self.positions = nn.Embedding(max_len, d)
            nn.init.normal_(self.positions.weight, 0.0, 0.02)
        else:
            rotary = Rotary(max_len, d // heads)
        residual_std = 0.02 / math.sqrt(2 * layers)
        self.blocks = nn.ModuleList(Block(d, heads, d_ff, residual_std, rotary, fused) for _ in range(layers))
        self.norm = nn.LayerNorm(d, eps=1e-5)

    def hidden(self, tokens, causal):  # [batch, seq] -> [batch, seq, d]
        x = self.embed(tokens)
        if self.positions is not None:
            x = x + self.positions.weight[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x, causal)
        return self.norm(x)

    def logits(self, hidden):  # tied head
        return hidden @ self.embed.weight.t()


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


def learning_rate(step, steps, warmup, lr, min_lr):
    """primer-trainer's schedule: linear warm-up to lr, cosine decay to min_lr at the last step."""
    if step <= warmup:
        return lr * step / max(warmup, 1)
    progress = (step - warmup) / max(steps - warmup, 1)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


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

    model = Transformer(args.vocab_size, args.d_model, args.layers, args.heads, args.d_ff or 4 * args.d_model,
                        args.seq_len, args.positions, args.attention == "sdpa").to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    # On CUDA, PyTorch's fused AdamW: one kernel for every parameter, what nanoGPT uses.
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.99), eps=1e-8, fused=cuda or None)
    causal = args.objective == "clm"
    block = args.seq_len + 1 if causal else args.seq_len
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    def clm_loss(tokens):
        hidden = model.hidden(tokens[:, :-1], causal=True)
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
                hidden = model.hidden(inputs.to(device), causal=False).flatten(0, 1)
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
    positions = model.positions.weight.numel() if model.positions is not None else 0
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
