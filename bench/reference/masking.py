"""primer's masks against transformers' collators on the same text.

The sequences are those a recorded masked-LM run trained on (the originals: the recorded inputs
with the targets put back). primer's masks are the run's own; transformers'
`DataCollatorForLanguageModeling` (token masking) and `DataCollatorForWholeWordMask` (whole
words, given primer's word boundaries through its `chinese_ref` field) mask the same sequences
afresh, several times. Every statistic is a mean over sequences of a per-sequence value, so
that its standard error (sd / sqrt(n)) holds for masks drawn per word or per span too:

- rate: selected tokens / ordinary (non-special) tokens;
- plain rate: the rate over the sequences without special tokens, where primer's whole-word
  budget (mask_rate of a sequence's ordinary tokens) and BERT's and transformers' (mask_rate of
  all its tokens, special ones included, though never chosen) are the same;
- mask, random, kept: shares of a sequence's selected tokens shown as [MASK], as another token,
  as themselves;
- special: selected special tokens (must be 0); split: words partly selected (must be 0 for
  whole-word and span masking).
"""

import warnings

import torch

STATISTICS = ("rate", "plain rate", "mask", "random", "kept")


def originals(steps):
    """The unmasked sequences of a masked-LM record's steps, and primer's masked inputs and
    selected positions of each: [(original, inputs, selected)]."""
    rows = []
    for step in steps:
        for batch in step["batches"]:
            n, seq = batch["shape"]
            inputs = list(batch["inputs"])
            original = list(inputs)
            for position, target in zip(batch["predict_at"], batch["targets"]):
                original[position] = target
            selected = set(batch["predict_at"])
            for row in range(n):
                span = range(row * seq, (row + 1) * seq)
                rows.append((original[span.start:span.stop], inputs[span.start:span.stop],
                             {i - span.start for i in selected if i in span}))
    return rows


class Words:
    """primer's word boundaries (datasets/src/tokenizer.rs `word_boundaries`): a token opens a
    word when it is special, when its text starts with white space, or after a token whose text
    ends with white space or that is special."""

    def __init__(self, tokenizer, specials):
        self.specials = set(specials)
        texts = [tokenizer.decode([i], skip_special_tokens=False) for i in range(len(tokenizer))]
        self.opens = [i in self.specials or t[:1].isspace() for i, t in enumerate(texts)]
        self.closes = [i in self.specials or t[-1:].isspace() for i, t in enumerate(texts)]

    def words(self, sequence):
        """The words of a sequence as lists of positions, special tokens left out."""
        words = []
        for i, token in enumerate(sequence):
            if token in self.specials:
                continue
            starts = i == 0 or self.opens[token] or self.closes[sequence[i - 1]]
            if words and words[-1][-1] == i - 1 and not starts:
                words[-1].append(i)
            else:
                words.append([i])
        return words

    def continuations(self, sequence):
        """Positions inside a word but not its first: what `chinese_ref` marks."""
        return [i for word in self.words(sequence) for i in word[1:]]


def sequence_statistics(original, inputs, selected, specials, mask_id, words=None):
    """One masked sequence's statistics (see the module's doc)."""
    ordinary = sum(token not in specials for token in original)
    chosen = sorted(selected)
    shown = [inputs[i] for i in chosen]
    count = max(len(chosen), 1)
    rate = len(chosen) / max(ordinary, 1)
    stats = {
        "rate": rate,
        "plain rate": rate if ordinary == len(original) else None,
        "mask": sum(s == mask_id for s in shown) / count,
        "random": sum(s != mask_id and s != original[i] for s, i in zip(shown, chosen)) / count,
        "kept": sum(s == original[i] for s, i in zip(shown, chosen)) / count,
        "special": sum(original[i] in specials for i in chosen),
        "split": 0,
    }
    if words is not None:
        stats["split"] = sum(0 < sum(i in selected for i in word) < len(word) for word in words.words(original))
    return stats


def summarise(per_sequence):
    """Means and standard errors over sequences, and the totals of the counts."""
    summary = {"sequences": len(per_sequence)}
    for key in STATISTICS:
        values = torch.tensor([s[key] for s in per_sequence if s[key] is not None], dtype=torch.float64)
        summary[key] = (values.mean().item(), (values.std() / len(values) ** 0.5).item())
    for key in ("special", "split"):
        summary[key] = sum(s[key] for s in per_sequence)
    return summary


def hf_tokenizer(tokenizer_json):
    """primer's tokenizer.json as transformers reads it, with primer's special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_json), pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", bos_token="[BOS]", eos_token="[EOS]")


def hf_masks(tokenizer, rows, whole_words, words, repeats, seed):
    """transformers' masks of the sequences, `repeats` times: [(original, inputs, selected)]."""
    from transformers import DataCollatorForLanguageModeling, DataCollatorForWholeWordMask

    collator_class = DataCollatorForWholeWordMask if whole_words else DataCollatorForLanguageModeling
    collator = collator_class(tokenizer=tokenizer, mlm=True, mlm_probability=0.15, return_tensors="pt")
    torch.manual_seed(seed)
    masked = []
    for _ in range(repeats):
        for start in range(0, len(rows), 64):
            chunk = [original for original, _, _ in rows[start:start + 64]]
            examples = [{"input_ids": original} for original in chunk]
            if whole_words:
                for example, original in zip(examples, chunk):
                    example["chinese_ref"] = words.continuations(original)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "only suitable for BertTokenizer-like tokenizers"
                batch = collator(examples)
            for original, inputs, labels in zip(chunk, batch["input_ids"].tolist(), batch["labels"].tolist()):
                masked.append((original, inputs, {i for i, label in enumerate(labels) if label != -100}))
    return masked


def compare(primer_rows, hf_rows, specials, mask_id, words, z_limit=3.0):
    """primer's and transformers' summaries and, per statistic, whether they agree: a difference
    within `z_limit` standard errors of the difference, no special token chosen, and (with
    `words`) no word split by primer."""
    summaries = [summarise([sequence_statistics(*row, specials, mask_id, words) for row in rows])
                 for rows in (primer_rows, hf_rows)]
    agreement = {}
    for key in STATISTICS:
        (ours, our_se), (theirs, their_se) = summaries[0][key], summaries[1][key]
        z = abs(ours - theirs) / max((our_se ** 2 + their_se ** 2) ** 0.5, 1e-12)
        agreement[key] = z <= z_limit
    agreement["special"] = summaries[0]["special"] == 0
    agreement["split"] = summaries[0]["split"] == 0
    return summaries[0], summaries[1], agreement
