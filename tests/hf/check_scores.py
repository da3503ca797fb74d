"""Scores minimal pairs on a `primer export` with the field's own evaluators, for tests/hf.rs.

Usage: python check_scores.py EXPORT PAIRS_DIR WORK_DIR

PAIRS_DIR holds BLiMP JSON Lines files, read in file-name order, each pair's acceptable sentence
first, as `primer minimal-pairs --pairs PAIRS_DIR` reads them. A masked export (model_type
primer) is scored by minicons' MaskedLMScorer with PLL_metric `original` and `within_word_l2r`;
a causal one by minicons' IncrementalLMScorer (bos_token=True: the export's bos_token is the
[EOS] that opens every document in training) and by lm-evaluation-harness's command line
(--model hf --model_args pretrained=EXPORT) on the tasks scripts/lm-eval-blimp-tasks.py writes
for PAIRS_DIR, its per-sentence log-likelihoods read from --log_samples. WORK_DIR takes lm-eval's
tasks, outputs and data cache. Prints one JSON object: per scorer, the sentences' summed
log-probabilities (nats) in order, and lm-eval's accuracy per paradigm.
"""

import glob
import json
import os
import pathlib
import subprocess
import sys

from minicons import scorer

export, pairs_dir, work = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
paradigms = sorted(pairs_dir.glob("*.jsonl"))
sentences = []
for path in paradigms:
    for line in path.read_text().splitlines():
        pair = json.loads(line)
        sentences += [pair["sentence_good"], pair["sentence_bad"]]


def summed(x):
    return x.sum(0).item()


def lm_eval():
    """lm-eval's log-likelihood of each sentence, in order, and its accuracy per paradigm."""
    root = pathlib.Path(__file__).resolve().parents[2]
    tasks, out = work / "tasks", work / "lm-eval"
    subprocess.run(
        [sys.executable, root / "scripts/lm-eval-blimp-tasks.py", pairs_dir, tasks],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    command = [
        pathlib.Path(sys.executable).parent / "lm-eval",
        "run",
        "--model", "hf",
        "--model_args", f"pretrained={export}",
        "--include_path", tasks,
        "--tasks", "blimp_local",
        "--device", "cpu",
        "--batch_size", "16",
        "--log_samples",
        "--output_path", out,
    ]
    env = dict(os.environ, HF_DATASETS_CACHE=str(work / "datasets"))
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scores, accuracy = [], {}
    for path in paradigms:
        (samples,) = glob.glob(str(out / "**" / f"samples_blimp_local_{path.stem}_*.jsonl"), recursive=True)
        docs = sorted((json.loads(line) for line in open(samples)), key=lambda doc: doc["doc_id"])
        for doc in docs:
            scores += [float(response[0]) for response in doc["filtered_resps"]]
        accuracy[path.stem] = sum(doc["acc"] for doc in docs) / len(docs)
    return scores, accuracy


config = json.load(open(pathlib.Path(export) / "config.json"))
if config["model_type"] == "primer":
    masked = scorer.MaskedLMScorer(export, "cpu", trust_remote_code=True)
    report = {
        metric: masked.sequence_score(sentences, reduction=summed, PLL_metric=metric)
        for metric in ["original", "within_word_l2r"]
    }
else:
    causal = scorer.IncrementalLMScorer(export, "cpu")
    report = {"incremental": causal.sequence_score(sentences, reduction=summed, bos_token=True)}
    report["lm_eval"], report["lm_eval_accuracy"] = lm_eval()
print(json.dumps(report))
