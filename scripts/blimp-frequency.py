#!/usr/bin/env python3
"""How much of a run's minimal-pair verdicts a scorer that knows only token frequencies shares.

Usage: blimp-frequency.py PREPARED_DIR BLIMP_DIR LIMIT RESULTS.json...

PREPARED_DIR is the run's prepared data (`train.bin` and `tokenizer.json`, as `primer prepare`
writes them); each RESULTS.json is `primer minimal-pairs --pairs BLIMP_DIR --limit-per-paradigm
LIMIT --json` of one run. The pairs are read as primer reads them (files in name order, the
first LIMIT of each) and tokenized with the run's tokenizer (the `tokenizers` library; the
token counts are checked against primer's length groups). The unigram scorer gives a sentence
the sum over its tokens of their log-frequency in the training split, add-one smoothed. For the
unigram scorer and each file it prints accuracy over all pairs, over the pairs of equal token
counts, and where the acceptable sentence is shorter or longer, and for each file how often it
agrees with the unigram scorer on the pairs of equal token counts.
"""

import json
import pathlib
import sys

import numpy as np
from tokenizers import Tokenizer


def pairs(blimp, limit):
    """(good, bad) sentences as `primer minimal-pairs --pairs blimp` reads them."""
    out = []
    for path in sorted(pathlib.Path(blimp).glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        out += [(line["sentence_good"], line["sentence_bad"]) for line in lines[:limit]]
    return out


def main():
    prepared, blimp, limit, results = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    tokenizer = Tokenizer.from_file(f"{prepared}/tokenizer.json")
    meta = json.loads(pathlib.Path(f"{prepared}/meta.json").read_text())
    tokens = np.fromfile(f"{prepared}/train.bin", dtype=np.uint16 if meta["dtype"] == "u16" else np.uint32)
    counts = np.bincount(tokens, minlength=tokenizer.get_vocab_size()).astype(np.float64)
    log_frequency = np.log((counts + 1) / (counts.sum() + len(counts)))
    ids = [[tokenizer.encode(s, add_special_tokens=False).ids for s in pair] for pair in pairs(blimp, limit)]
    lengths = np.array([[len(good), len(bad)] for good, bad in ids])
    unigram = np.array([log_frequency[good].sum() >= log_frequency[bad].sum() for good, bad in ids])
    groups = {
        "equal": lengths[:, 0] == lengths[:, 1],
        "shorter": lengths[:, 0] < lengths[:, 1],
        "longer": lengths[:, 0] > lengths[:, 1],
    }
    print(f"{len(ids)} pairs: " + ", ".join(f"{name} {mask.sum()}" for name, mask in groups.items()))
    print(f"{'scorer':<40} {'all':>6} {'equal':>6} {'shorter':>8} {'longer':>7}  agrees with unigram, equal")

    def row(name, right, agree):
        cells = " ".join(f"{right[mask].mean():{w}.3f}" for mask, w in zip(groups.values(), (6, 8, 7)))
        print(f"{name:<40} {right.mean():6.3f} {cells}  {agree}")

    row("unigram frequency", unigram, "")
    for path in results:
        result = json.loads(pathlib.Path(path).read_text())
        equal = {g["name"]: g["pairs"] for g in result.get("lengths", [])}.get("equal length")
        if equal is not None and equal != groups["equal"].sum():
            sys.exit(f"{path}: {equal} pairs of equal length, the tokenizer here finds {groups['equal'].sum()}")
        right = np.array([c == "1" for c in result["correct"]])
        row(pathlib.Path(path).name, right, f"{(right == unigram)[groups['equal']].mean():.3f}")


if __name__ == "__main__":
    main()
