"""Loads a `primer export` directory with transformers itself and compares it with primer.

Usage: python check_export.py EXPORT_DIR CASE.json

CASE.json holds `rows` (token ids of texts of different lengths), `logits` (primer's, per row,
each row read alone), `pad_id`, `bidirectional`, and `texts` with primer's `text_ids`. The rows
run as one right-padded batch with the usual 2-D attention mask: causal models through
AutoModelForCausalLM, masked ones through AutoModelForMaskedLM with the export's own code
(trust_remote_code=True), as docs/huggingface.md says to load them. Prints one JSON object:
the loading info, the largest logit difference over real positions, whether AutoTokenizer
gives primer's ids, and for a masked model whether AutoModelForCausalLM refuses it.
"""

import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

directory, case_path = sys.argv[1], sys.argv[2]
case = json.load(open(case_path))
causal_refused = None
if case["bidirectional"]:
    model, info = AutoModelForMaskedLM.from_pretrained(
        directory, output_loading_info=True, trust_remote_code=True
    )
    try:
        AutoModelForCausalLM.from_pretrained(directory, trust_remote_code=True)
        causal_refused = False
    except ValueError:
        causal_refused = True
else:
    model, info = AutoModelForCausalLM.from_pretrained(directory, output_loading_info=True)
model.eval()

rows = case["rows"]
lengths = [len(row) for row in rows]
longest = max(lengths)
ids = torch.tensor([row + [case["pad_id"]] * (longest - len(row)) for row in rows])
keep = torch.tensor([[1] * n + [0] * (longest - n) for n in lengths])
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=keep).logits

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
            "bos_token": tokenizer.bos_token,
            "causal_refused": causal_refused,
        }
    )
)
