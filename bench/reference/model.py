"""primer's Transformer (primer-model) and ELECTRA's companion (primer-objectives' companion.rs)
in plain PyTorch, module for module, so that parameter names are primer's own
(`blocks.0.attn.qkv.weight`) and weights load from a primer run one to one (see weights.py).

- Token embedding, plus learned positions or rotary positions on queries and keys: primer's
  pair-wise rotation, (a, b) -> (a cos - b sin, b cos + a sin) for the pairs (2i, 2i + 1) of the
  first `rotary_dims` features of each head, at angle pos * 10000^(-2i / rotary_dims) (Burn's
  RotaryEncoding, `rotate` in model/src/attention.rs).
- Pre-LayerNorm blocks: x + proj(attention(qkv(norm_1(x)))), then x + mlp(norm_2(x)) (both
  branches read x with a parallel residual); fused QKV split as q | k | v; scores scaled by
  head_dim^-0.5, hidden keys at -inf; MLP fc -> GELU (exact or tanh) -> proj.
- Final LayerNorm; LM head tied to the token embedding unless untied.
- Attention masks: causal, bidirectional, and prefix (a row's first `length` positions see each
  other; every position sees them, itself and the positions before it).

Dropout is not modelled: parity runs train without it.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Rotary(nn.Module):
    """Rotary positions on the first `dims` features of each head."""

    def __init__(self, max_len, dims):
        super().__init__()
        # Burn computes the frequencies in f32 as 1 / exp(ln(theta) * 2i / dims).
        exponent = torch.arange(0, dims, 2, dtype=torch.float32) / dims
        frequencies = torch.exp(exponent * math.log(10000.0)).reciprocal()
        angles = torch.arange(max_len, dtype=torch.float32)[:, None] * frequencies[None, :]
        self.dims = dims
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x):  # [batch, heads, seq, head_dim]
        seq = x.shape[2]
        rotated, rest = x[..., : self.dims], x[..., self.dims:]
        even, odd = rotated[..., 0::2], rotated[..., 1::2]
        cos, sin = self.cos[:seq], self.sin[:seq]
        rotated = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)
        return torch.cat((rotated, rest), dim=-1)


def hidden_keys(mode, batch, seq, device=None):
    """[batch, 1, seq, seq], true where a query may not see a key; None when every key is seen.

    mode: "causal", "bidirectional", or a list of prefix lengths, one per row."""
    if mode == "bidirectional":
        return None
    future = torch.ones(seq, seq, dtype=torch.bool, device=device).triu(1)
    if mode == "causal":
        return future[None, None]
    lengths = torch.tensor(mode, device=device)
    outside = torch.arange(seq, device=device)[None, :] >= lengths[:, None]  # [batch, keys]
    return (future[None] & outside[:, None, :])[:, None]


class SelfAttention(nn.Module):
    def __init__(self, d_model, heads, rotary=None, sdpa=False):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.rotary = rotary
        self.sdpa = sdpa

    def forward(self, x, mode):
        batch, seq, d = x.shape
        head_dim = d // self.heads
        q, k, v = (
            t.view(batch, seq, self.heads, head_dim).transpose(1, 2) for t in self.qkv(x).split(d, dim=2)
        )
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        if self.sdpa:  # PyTorch's fused kernel: what a PyTorch user writes (speed benchmark)
            causal = mode == "causal"
            hidden = None if causal else hidden_keys(mode, batch, seq, x.device)
            mask = None if hidden is None else ~hidden
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        else:  # primer's own formulation: scores, -inf where hidden, softmax, weighted sum
            scores = (q @ k.transpose(2, 3)) * head_dim ** -0.5
            hidden = hidden_keys(mode, batch, seq, x.device)
            if hidden is not None:
                scores = scores.masked_fill(hidden, float("-inf"))
            context = scores.softmax(dim=3) @ v
        return self.proj(context.transpose(1, 2).reshape(batch, seq, d))


class Mlp(nn.Module):
    def __init__(self, d_model, d_ff, activation="gelu"):
        super().__init__()
        self.fc = nn.Linear(d_model, d_ff)
        self.proj = nn.Linear(d_ff, d_model)
        self.approximate = "tanh" if activation == "gelu-tanh" else "none"

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate=self.approximate))


class Block(nn.Module):
    def __init__(self, config, rotary=None, sdpa=False):
        super().__init__()
        d, eps = config["d_model"], config.get("norm_eps", 1e-5)
        self.norm_1 = nn.LayerNorm(d, eps=eps)
        self.attn = SelfAttention(d, config["n_heads"], rotary, sdpa)
        self.norm_2 = nn.LayerNorm(d, eps=eps)
        self.mlp = Mlp(d, config["d_ff"], config.get("activation", "gelu"))
        self.parallel_residual = config.get("parallel_residual", False)

    def forward(self, x, mode):
        attended = self.attn(self.norm_1(x), mode)
        if self.parallel_residual:
            return x + attended + self.mlp(self.norm_2(x))
        x = x + attended
        return x + self.mlp(self.norm_2(x))


def rotary_for(config):
    """The config's rotary encoding (shared by its blocks), or None for learned positions."""
    if config.get("positions", "rotary") != "rotary":
        return None
    head_dim = config["d_model"] // config["n_heads"]
    dims = int(head_dim * config.get("rotary_fraction", 1.0))
    return Rotary(config["max_seq_len"], dims)


class Transformer(nn.Module):
    """primer's Transformer. `config` holds the fields of primer's TransformerConfig
    (config.json's "model"): vocab_size, d_model, n_layers, n_heads, d_ff, max_seq_len,
    positions, tie_embeddings, norm_eps, rotary_fraction, parallel_residual, activation."""

    def __init__(self, config, sdpa=False):
        super().__init__()
        d = config["d_model"]
        self.token_embedding = nn.Embedding(config["vocab_size"], d)
        self.position_embedding = None
        if config.get("positions", "rotary") == "learned":
            self.position_embedding = nn.Embedding(config["max_seq_len"], d)
        rotary = rotary_for(config)
        self.blocks = nn.ModuleList(Block(config, rotary, sdpa) for _ in range(config["n_layers"]))
        self.norm = nn.LayerNorm(d, eps=config.get("norm_eps", 1e-5))
        self.lm_head = None
        if not config.get("tie_embeddings", True):
            self.lm_head = nn.Linear(d, config["vocab_size"], bias=False)

    def embed(self, tokens):  # [batch, seq] -> [batch, seq, d]
        x = self.token_embedding(tokens)
        if self.position_embedding is not None:
            x = x + self.position_embedding.weight[: tokens.shape[1]]
        return x

    def hidden(self, tokens, mode):  # [batch, seq] -> [batch, seq, d], after the final norm
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, mode)
        return self.norm(x)

    def logits(self, hidden):  # [..., d] -> [..., vocab]
        if self.lm_head is not None:
            return self.lm_head(hidden)
        return hidden @ self.token_embedding.weight.t()


def generator_config(config, width_fraction):
    """ELECTRA's generator beside `config`: `width_fraction` as wide (heads and MLP scaled alike,
    at least one head), as deep (primer's CompanionConfig::narrower)."""
    head_dim = config["d_model"] // config["n_heads"]
    heads = max(1, round(config["n_heads"] * width_fraction))
    width = head_dim * heads
    return dict(config, d_model=width, n_heads=heads, d_ff=config["d_ff"] * width // config["d_model"])


class Companion(nn.Module):
    """ELECTRA's generator (a narrower stack reading and predicting through the model's token
    embeddings) and discriminator head (one logit per position of the model's hidden states)."""

    def __init__(self, config, width_fraction):
        super().__init__()
        generator = generator_config(config, width_fraction)
        d, width = config["d_model"], generator["d_model"]
        self.project_in = nn.Linear(d, width)
        rotary = rotary_for(generator)
        self.blocks = nn.ModuleList(Block(generator, rotary) for _ in range(generator["n_layers"]))
        self.norm = nn.LayerNorm(width, eps=generator.get("norm_eps", 1e-5))
        self.project_out = nn.Linear(width, d)
        self.head = nn.Linear(d, 1)

    def generator_logits(self, model, tokens, predict_at):  # -> [n, vocab] at flat positions
        x = self.project_in(model.embed(tokens))
        for block in self.blocks:
            x = block(x, "bidirectional")
        x = self.norm(x)
        picked = x.flatten(0, 1)[predict_at]
        return model.logits(self.project_out(picked))

    def head_logits(self, hidden):  # [batch, seq, d] -> [batch * seq]
        return self.head(hidden.flatten(0, 1)).squeeze(1)


class Networks(nn.Module):
    """What a primer run trains: the model, and the companion its objective trains beside it."""

    def __init__(self, config, generator_width=None):
        super().__init__()
        self.model = Transformer(config)
        self.companion = None if generator_width is None else Companion(config, generator_width)


def init_gpt2(model, std=0.02):
    """primer's initialisation of a Transformer (GPT-2's): every weight ~ N(0, std), residual
    projections N(0, std / sqrt(2 * layers)), biases zero, LayerNorms one and zero."""
    residual_std = std / math.sqrt(2 * len(model.blocks))
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            residual = name.endswith("attn.proj") or name.endswith("mlp.proj")
            nn.init.normal_(module.weight, 0.0, residual_std if residual else std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
