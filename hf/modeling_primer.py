"""primer's Transformer for transformers: the code `primer export` ships beside a masked run.

    AutoModelForMaskedLM.from_pretrained(EXPORT, trust_remote_code=True)

loads `PrimerForMaskedLM`, which reads text both ways as primer trained it and gives primer's
logits; `AutoModel` gives `PrimerModel`, the hidden states before the head. The layers are
primer's (model/src): token embedding (plus learned positions, or rotary ones inside attention),
pre-LayerNorm blocks (attention then MLP, or both on the same input with a parallel residual),
one fused query/key/value projection with biases, rotary positions that turn adjacent feature
pairs (2i, 2i + 1) of the first `rotary_fraction` of each head, a GELU MLP, a final LayerNorm,
and a head tied to the token embedding unless `tie_word_embeddings` is false. Weights keep
primer's own names under `primer.`. Only torch and transformers' base classes are used, so any
transformers that reads `auto_map` runs it.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput


class PrimerConfig(PretrainedConfig):
    """A primer model's shape, as `primer export` writes it in config.json."""

    model_type = "primer"

    def __init__(
        self,
        vocab_size=8192,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=256,
        positions="rotary",
        rotary_fraction=1.0,
        rotary_base=10000.0,
        parallel_residual=False,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        attention_mode="bidirectional",
        tie_word_embeddings=True,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.positions = positions
        self.rotary_fraction = rotary_fraction
        self.rotary_base = rotary_base
        self.parallel_residual = parallel_residual
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.attention_mode = attention_mode
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


class PrimerAttention(nn.Module):
    """Self-attention with one fused query/key/value projection (all queries, then all keys,
    then all values) and rotary positions on the first features of each head."""

    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.rotary_dims = (
            int(self.head_dim * config.rotary_fraction) if config.positions == "rotary" else 0
        )
        if self.rotary_dims:
            exponents = torch.arange(0, self.rotary_dims, 2, dtype=torch.float32) / self.rotary_dims
            self.register_buffer("inv_freq", config.rotary_base**-exponents, persistent=False)

    def rotate(self, x, positions):
        """Turns each pair (a, b) of the first `rotary_dims` features by its position's angle:
        (a cos - b sin, b cos + a sin)."""
        dims = self.rotary_dims
        angles = positions[:, None, :, None].float() * self.inv_freq  # [batch, 1, seq, dims / 2]
        cos = angles.cos().repeat_interleave(2, -1)
        sin = angles.sin().repeat_interleave(2, -1)
        turned, kept = x[..., :dims], x[..., dims:]
        pairs = turned.unflatten(-1, (dims // 2, 2))
        swapped = torch.stack((-pairs[..., 1], pairs[..., 0]), -1).flatten(-2)
        return torch.cat((turned * cos + swapped * sin, kept), -1)

    def forward(self, x, positions, visible):
        batch, seq, width = x.shape
        q, k, v = (
            part.view(batch, seq, self.heads, self.head_dim).transpose(1, 2)
            for part in self.qkv(x).chunk(3, -1)
        )
        if self.rotary_dims:
            q, k = self.rotate(q, positions), self.rotate(k, positions)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
        return self.proj(context.transpose(1, 2).reshape(batch, seq, width))


class PrimerMlp(nn.Module):
    """`hidden -> intermediate -> GELU -> hidden`."""

    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.hidden_size, config.intermediate_size)
        self.proj = nn.Linear(config.intermediate_size, config.hidden_size)
        self.approximate = {"gelu": "none", "gelu_new": "tanh"}[config.hidden_act]

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate=self.approximate))


class PrimerBlock(nn.Module):
    """`x + attn(norm_1(x))`, then `x + mlp(norm_2(x))`; with a parallel residual,
    `x + attn(norm_1(x)) + mlp(norm_2(x))`."""

    def __init__(self, config):
        super().__init__()
        self.norm_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = PrimerAttention(config)
        self.norm_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = PrimerMlp(config)
        self.parallel_residual = config.parallel_residual

    def forward(self, x, positions, visible):
        attended = self.attn(self.norm_1(x), positions, visible)
        if self.parallel_residual:
            return x + attended + self.mlp(self.norm_2(x))
        x = x + attended
        return x + self.mlp(self.norm_2(x))


class PrimerPreTrainedModel(PreTrainedModel):
    """What every primer class shares: its config and weight prefix."""

    config_class = PrimerConfig
    base_model_prefix = "primer"
    _no_split_modules = ["PrimerBlock"]

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, 0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.data.fill_(1.0)
            module.bias.data.zero_()


class PrimerModel(PrimerPreTrainedModel):
    """The Transformer up to its final LayerNorm."""

    def __init__(self, config):
        super().__init__(config)
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.positions == "learned":
            self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.blocks = nn.ModuleList(PrimerBlock(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self):
        return self.token_embedding

    def set_input_embeddings(self, embedding):
        self.token_embedding = embedding

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, return_dict=None, **kwargs):
        """Hidden states of `input_ids` (`[batch, seq]`); `attention_mask` (1 for text, 0 for
        padding, on either side) hides the padding from every query. Positions count the
        text's tokens from 0, as primer numbers them. `token_type_ids` (which tokenizers may
        return) must be zeros: primer has no segment embedding."""
        if token_type_ids is not None and bool(token_type_ids.any()):
            raise ValueError("primer models have no segment embedding: give token_type_ids of zeros or none")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        keep = attention_mask.bool()
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        x = self.token_embedding(input_ids)
        if self.config.positions == "learned":
            x = x + self.position_embedding(positions)
        seq = input_ids.shape[1]
        visible = keep[:, None, None, :].expand(-1, 1, seq, -1)
        if self.config.attention_mode == "causal":
            visible = visible & torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()
        for block in self.blocks:
            x = block(x, positions, visible)
        hidden = self.norm(x)
        if return_dict is False:
            return (hidden,)
        return BaseModelOutput(last_hidden_state=hidden)


class PrimerForMaskedLM(PrimerPreTrainedModel):
    """The Transformer and its LM head: logits at every position, `[MASK]` positions included."""

    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.primer = PrimerModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, head):
        self.lm_head = head

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, return_dict=None, **kwargs):
        """Logits `[batch, seq, vocab]`; with `labels` (-100 where nothing is predicted), the
        mean cross-entropy over the rest as `loss`."""
        hidden = self.primer(input_ids, attention_mask, token_type_ids).last_hidden_state
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        if return_dict is False:
            return (logits,) if loss is None else (loss, logits)
        return MaskedLMOutput(loss=loss, logits=logits)
