#!/usr/bin/env python3
"""Writes lm-evaluation-harness task configs that read BLiMP from its JSON Lines files, offline.

Usage: lm-eval-blimp-tasks.py BLIMP_DIR OUT_DIR

lm-eval's own `blimp_*` tasks (lm_eval/tasks/blimp/_template_yaml) load BLiMP from the Hugging
Face hub. Each task written here, `blimp_local_PARADIGM`, is that task (the log-likelihood of
`sentence_good` against `sentence_bad`, metric `acc`) reading `BLIMP_DIR/PARADIGM.jsonl`
instead, with one difference: `target_delimiter: ""`. lm-eval's default delimiter puts a space
before each sentence (the context is empty), and a byte-level BPE tokenizer reads " The" as
another token than "The": the sentence would not be the one primer scores, alone after the
token that opens every document. The group `blimp_local` holds them all, averaged as lm-eval
averages `blimp`. Then (docs/huggingface.md):

    lm-eval run --model hf --model_args pretrained=EXPORT --include_path OUT_DIR \
        --tasks blimp_local --log_samples --output_path results

Only the standard library is used; the files are JSON, which YAML readers read.
"""

import json
import pathlib
import sys


def task(name, path):
    """lm-eval's BLiMP task for one paradigm's file."""
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"train": str(path.resolve())}},
        "output_type": "multiple_choice",
        "validation_split": "train",
        "doc_to_text": "",
        "doc_to_target": 0,
        "doc_to_choice": "{{[sentence_good, sentence_bad]}}",
        "target_delimiter": "",
        "num_fewshot": 0,
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} BLIMP_DIR OUT_DIR")
    blimp, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    files = sorted(blimp.glob("*.jsonl"))
    if not files:
        sys.exit(f"{blimp}: no .jsonl files: give BLiMP's folder, e.g. $PRIMER_DATA/blimp")
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for path in files:
        name = f"blimp_local_{path.stem}"
        names.append(name)
        (out / f"{name}.yaml").write_text(json.dumps(task(name, path), indent=2) + "\n")
    group = {
        "group": "blimp_local",
        "task": names,
        "aggregate_metric_list": [{"metric": "acc", "aggregation": "mean", "weight_by_size": False}],
        "metadata": {"version": 2.0},
    }
    (out / "_blimp_local.yaml").write_text(json.dumps(group, indent=2) + "\n")
    print(f"wrote {len(names)} tasks and the group blimp_local into {out}")


if __name__ == "__main__":
    main()
