#!/usr/bin/env python3
"""How much a masked model's minimal-pair verdicts follow sentence length, per PLL masking.

Usage: pll-bias.py TOKENIZER.json BLIMP_DIR LIMIT SCORES.json...

Each SCORES.json is `primer minimal-pairs --pairs BLIMP_DIR --limit-per-paradigm LIMIT --json
--scores` of one run (e.g. `--pll original` and `--pll word-l2r`). The pairs are read as primer
reads them (files in name order, the first LIMIT of each) and split into tokens and words by
TOKENIZER.json (the run's), with the `tokenizers` library. For each file it prints:

- accuracy over all pairs;
- over the pairs whose two sentences have the same number of words but not of tokens (a word
  of one is split into more pieces than its counterpart), the share where the model prefers
  the sentence of more tokens, and its accuracy when that sentence is the acceptable one and
  when it is not: a measure free of this bias prefers neither (Kauf & Ivanova 2023 found the
  original PLL inflates words of several tokens);
- the same over pairs whose sentences differ in their number of words.

With two files, the difference in accuracy with a 95% paired bootstrap interval over pairs.
"""

import json
import pathlib
import random
import sys

from tokenizers import Tokenizer


def pairs(blimp, limit):
    for path in sorted(pathlib.Path(blimp).glob("*.jsonl")):
        for line in path.read_text().splitlines()[:limit]:
            pair = json.loads(line)
            yield pair["sentence_good"], pair["sentence_bad"]


def shape(tokenizer, sentence):
    """(tokens, words) of a sentence."""
    encoding = tokenizer.encode(sentence, add_special_tokens=False)
    return len(encoding.ids), len(set(encoding.word_ids))


def split(rows, more_of):
    """Share preferring the sentence with more of `more_of`, and accuracy when it is the good
    one and when it is the bad one, over pairs that differ in it."""
    differing = [r for r in rows if r[more_of][0] != r[more_of][1]]
    prefer_more = [(r["good"] >= r["bad"]) == (r[more_of][0] > r[more_of][1]) for r in differing]
    good_more = [r["good"] >= r["bad"] for r in differing if r[more_of][0] > r[more_of][1]]
    good_fewer = [r["good"] >= r["bad"] for r in differing if r[more_of][0] < r[more_of][1]]
    mean = lambda xs: sum(xs) / max(len(xs), 1)
    return len(differing), mean(prefer_more), (mean(good_more), len(good_more)), (mean(good_fewer), len(good_fewer))


def report(name, rows):
    right = [r["good"] >= r["bad"] for r in rows]
    print(f"{name}: accuracy {sum(right) / len(right):.4f} over {len(rows)} pairs")
    same_words = [r for r in rows if r["words"][0] == r["words"][1]]
    for label, subset, key in [
        ("same words, tokens differ", same_words, "tokens"),
        ("words differ", rows, "words"),
    ]:
        n, prefer, (acc_more, n_more), (acc_fewer, n_fewer) = split(subset, key)
        print(
            f"  {label}: {n} pairs; prefers the longer {prefer:.3f}; accuracy when the acceptable one "
            f"is longer {acc_more:.3f} ({n_more}), shorter {acc_fewer:.3f} ({n_fewer}); gap {acc_more - acc_fewer:+.3f}"
        )
    return right


def main():
    tokenizer = Tokenizer.from_file(sys.argv[1])
    blimp, limit, files = sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    shapes = [(shape(tokenizer, good), shape(tokenizer, bad)) for good, bad in pairs(blimp, limit)]
    verdicts = []
    for path in files:
        scores = json.load(open(path))["scores"]
        assert len(scores) == len(shapes), f"{path}: {len(scores)} pairs, the files hold {len(shapes)}"
        rows = [
            {"good": g, "bad": b, "tokens": (sg[0], sb[0]), "words": (sg[1], sb[1])}
            for (g, b), (sg, sb) in zip(scores, shapes)
        ]
        verdicts.append(report(path, rows))
    if len(verdicts) == 2:
        a, b = verdicts
        rng = random.Random(0)
        n = len(a)
        diffs = []
        for _ in range(2000):
            draw = [rng.randrange(n) for _ in range(n)]
            diffs.append(sum(b[i] - a[i] for i in draw) / n)
        diffs.sort()
        print(
            f"{files[1]} minus {files[0]}: {sum(b) / n - sum(a) / n:+.4f} "
            f"(95% interval {diffs[50]:+.4f} to {diffs[1949]:+.4f})"
        )


if __name__ == "__main__":
    main()
