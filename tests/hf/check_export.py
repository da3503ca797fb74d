"""Loads a `primer export` directory with transformers itself and compares it with primer.

Usage: python check_export.py EXPORT_DIR CASE.json

CASE.json holds `rows` (token ids of texts of different lengths), `logits` (primer's, per row,
each row read alone), `pad_id`, `bidirectional`, and `texts` with primer's `text_ids`. The rows
run as one right-padded batch: causal models with the usual 2-D attention mask, masked models
with a 4-D additive mask that hides only the padding (eager attention; GPT-2's own causal
buffers opened), as the README says to run them. Prints one JSON object:
the loading info, the largest logit difference over real positions, and whether AutoTokenizer
gives primer's ids.
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

directory, case_path = sys.argv[1], sys.argv[2]
case = json.load(open(case_path))
model, info = AutoModelForCausalLM.from_pretrained(
    directory, output_loading_info=True, attn_implementation="eager"
)
model.eval()

rows = case["rows"]
lengths = [len(row) for row in rows]
longest = max(lengths)
ids = torch.tensor([row + [case["pad_id"]] * (longest - len(row)) for row in rows])
keep = torch.tensor([[1] * n + [0] * (longest - n) for n in lengths])
if case["bidirectional"]:
    # GPT-2's eager attention also applies its own causal buffer in every layer: open it.
    if hasattr(model, "transformer"):
        for block in model.transformer.h:
            block.attn.bias.fill_(True)
    mask = torch.zeros(len(rows), 1, longest, longest)
    mask = mask.masked_fill(keep[:, None, None, :] == 0, torch.finfo(torch.float32).min)
else:
    mask = keep
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=mask).logits

worst = 0.0
for row, (n, expected) in enumerate(zip(lengths, case["logits"])):
    expected = torch.tensor(expected)
    worst = max(worst, (logits[row, :n] - expected).abs().max().item())

tokenizer = AutoTokenizer.from_pretrained(directory)
tokens_equal = all(
    tokenizer(text, add_special_tokens=False)["input_ids"] == expected
    for text, expected in zip(case["texts"], case["text_ids"])
)
print(
    json.dumps(
        {
            "class": type(model).__name__,
            "missing": info["missing_keys"],
            "unexpected": info["unexpected_keys"],
            "mismatched": [str(m) for m in info["mismatched_keys"]],
            "max_abs_diff": worst,
            "tokenizer_ids_equal": tokens_equal,
            "pad_token_id": tokenizer.pad_token_id,
            "mask_token": tokenizer.mask_token,
        }
    )
)
