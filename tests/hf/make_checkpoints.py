"""Builds small random transformers checkpoints for `primer import` to read, with their logits.

Usage: python make_checkpoints.py OUT_DIR

Writes OUT_DIR/NAME/ for GPT-NeoX (a quarter or all of each head rotated, parallel residual on
and off, tied and untied heads) and GPT-2 (tanh GELU, tied): `save_pretrained`'s files, a
byte-level BPE tokenizer whose only special token is `<|endoftext|>` (as GPT-2's and Pythia's)
with its `special_tokens_map.json`, and `expected.json`: a text, its ids and the model's logits.
Weights are drawn with a fixed seed and every parameter is perturbed, so that no bias is zero
and no LayerNorm gain is one. Nothing is downloaded.
"""

import json
import os
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

TEXT = "First Citizen: Before we proceed any further, hear me speak. Naïve café — 北京!"
CORPUS = [
    "First Citizen: Before we proceed any further, hear me speak.",
    "All: Speak, speak. You are all resolved rather to die than to famish?",
    "We are accounted poor citizens, the patricians good.",
] * 20


def tokenizer():
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )


def neox(rotary_pct, parallel, tied, vocab):
    config = GPTNeoXConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, rotary_pct=rotary_pct, use_parallel_residual=parallel,
        tie_word_embeddings=tied, hidden_act="gelu", bos_token_id=0, eos_token_id=0,
    )
    return GPTNeoXForCausalLM(config)


def gpt2(vocab):
    config = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config)


def main(out):
    tok = tokenizer()
    # A model vocabulary padded beyond the tokenizer's, as Pythia's is.
    vocab = len(tok) + 12
    cases = {
        "neox-quarter-parallel-untied": lambda: neox(0.25, True, False, vocab),
        "neox-full-sequential-tied": lambda: neox(1.0, False, True, vocab),
        "neox-quarter-sequential-tied": lambda: neox(0.25, False, True, vocab),
        "neox-full-parallel-untied": lambda: neox(1.0, True, False, vocab),
        "gpt2": lambda: gpt2(vocab),
    }
    ids = tok(TEXT)["input_ids"]
    for seed, (name, build) in enumerate(cases.items()):
        torch.manual_seed(seed)
        model = build().eval()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))
            logits = model(torch.tensor([ids])).logits[0]
        directory = os.path.join(out, name)
        model.save_pretrained(directory, safe_serialization=True)
        tok.save_pretrained(directory)
        with open(os.path.join(directory, "expected.json"), "w") as f:
            json.dump({"text": TEXT, "ids": ids, "logits": logits.tolist()}, f)
    print(json.dumps(sorted(cases)))


if __name__ == "__main__":
    main(sys.argv[1])
