"""primer against the PyTorch reference, objective by objective: `primer pretrain
--record-batches` trains a small model and writes what it trained on; the reference trains on
exactly that (train.py) and the loss curves and final weights are compared. Then primer's masks
are compared with transformers' collators on the same text (masking.py).

usage: PYTHONPATH=bench python -m reference.parity --primer PATH [--steps 50] [--only clm,electra]
(`scripts/parity` runs it with the torch venv's python and the release binary). Exits 1 when an
objective differs beyond --tolerance or a masking statistic beyond sampling error.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import masking
from .train import read_steps, replay

ROOT = Path(__file__).resolve().parents[2]
SHAKESPEARE = Path(os.environ.get("PRIMER_DATA", ROOT.parent / "shared" / "data")) / "tinyshakespeare" / "input.txt"

# (row name, --objective, extra pretrain flags)
RUNS = [
    ("clm", "clm", []),
    ("clm learned", "clm", ["--positions", "learned"]),
    ("mlm token", "mlm:token", []),
    ("mlm word", "mlm:word", []),
    ("mlm span", "mlm:span", []),
    ("prefix", "prefix", []),
    ("electra", "electra", []),
]
# 2 layers, d 64, 4 heads, context 64, char tokenizer; two micro-batches of 4 per step.
MODEL = ["--tokenizer-kind", "char", "--layers", "2", "--d-model", "64", "--heads", "4", "--seq-len", "64",
         "--batch-size", "4", "--grad-accum", "2", "--lr", "2e-3", "--min-lr", "2e-4", "--dropout", "0",
         "--backend", "flex"]


def pretrain(primer, objective, flags, steps, seed, run):
    """Trains primer with its batches recorded in RUN/record."""
    command = [primer, "pretrain", "--objective", objective, "--corpus", str(SHAKESPEARE), "--out", str(run),
               "--no-tui", "--steps", str(steps), "--warmup-steps", str(max(steps // 10, 1)),
               "--eval-every", str(steps), "--eval-batches", "1", "--seed", str(seed),
               "--record-batches", str(run / "record"), *MODEL, *flags]
    env = dict(os.environ, PRIMER_CACHE=str(run.parent / "cache"))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"primer pretrain --objective {objective} failed: {done.stderr.strip()}")


def compare_run(name, run, tolerance):
    """The reference on a run's record; prints and returns its row."""
    config = json.loads((run / "config.json").read_text())
    result = replay(config, run / "record")
    weight, tensor, scale = result.get("weights", (float("nan"), "-", 0.0))
    ok = result["loss"] <= tolerance and result["steps"] > 0
    print(f"{name:<12} {result['steps']:>5} {result['loss']:>12.2e} {result['grad_norm']:>12.2e} "
          f"{weight:>12.2e} {weight / max(scale, 1e-12):>10.2e}  {tensor}  {'ok' if ok else 'DIFFERS'}", flush=True)
    return dict(name=name, ok=ok, **{k: v for k, v in result.items() if k != "curve"}, curve=result["curve"])


def masking_report(runs):
    """primer's masks of the mlm runs against transformers' collators; prints and returns
    whether all agree."""
    tokenizer = masking.hf_tokenizer(runs["mlm token"] / "tokenizer.json")
    specials = set(tokenizer.all_special_ids)
    mask_id = tokenizer.mask_token_id
    words = masking.Words(tokenizer, specials)
    print("\nmasking: primer's masks vs transformers' on the same sequences; means over sequences "
          "+- 1.96 standard errors (95%)")
    print(f"{'':<20}" + "".join(f"{k:>20}" for k in masking.STATISTICS) + "  special  split")
    all_agree = True
    for name, collator, whole in (("mlm token", "LanguageModeling", False), ("mlm word", "WholeWordMask", True),
                                  ("mlm span", "WholeWordMask", True)):
        rows = masking.originals(read_steps(runs[name] / "record"))
        theirs = masking.hf_masks(tokenizer, rows, whole, words, repeats=4, seed=0)
        ours, hf, agree = masking.compare(rows, theirs, specials, mask_id, words if whole else None)
        for label, summary in ((f"{name} ({ours['sequences']})", ours), (f"  {collator}", hf)):
            cells = "".join(f"{summary[k][0]:>11.4f} +-{1.96 * summary[k][1]:.4f}" for k in masking.STATISTICS)
            print(f"{label:<20}{cells}  {summary['special']:>7}  {summary['split']:>5}")
        # Whole words and spans fill a budget of mask_rate of a sequence's ordinary tokens in
        # primer, of all its tokens in BERT and transformers: their rates agree on sequences
        # without special tokens (plain rate) only.
        failed = [key for key, ok in agree.items() if not ok and not (whole and key == "rate")]
        print(f"  {'agree' if not failed else 'DIFFER: ' + ', '.join(failed)}")
        all_agree &= not failed
    return all_agree


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--primer", required=True, help="the primer binary")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative loss difference")
    parser.add_argument("--only", help="comma-separated rows (default: all)")
    parser.add_argument("--no-masking", action="store_true", help="skip the masking statistics")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--work", help="keep the runs in this folder (default: a temporary one)")
    args = parser.parse_args()
    chosen = [run for run in RUNS if args.only is None or run[0] in args.only.split(",")]
    print(f"parity: {args.steps} steps, seed {args.seed}, fp32 on the CPU; relative differences to primer")
    print(f"{'objective':<12} {'steps':>5} {'loss':>12} {'grad norm':>12} {'weights abs':>12} {'rel':>10}  tensor")
    results, runs = [], {}
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or temporary
        for name, objective, flags in chosen:
            run = Path(work) / name.replace(" ", "-")
            pretrain(args.primer, objective, flags, args.steps, args.seed, run)
            runs[name] = run
            results.append(compare_run(name, run, args.tolerance))
        masks_ok = True
        if not args.no_masking and all(name in runs for name in ("mlm token", "mlm word", "mlm span")):
            masks_ok = masking_report(runs)
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": args.steps, "seed": args.seed, "runs": results}))
    failed = [r["name"] for r in results if not r["ok"]]
    if failed or not masks_ok:
        print(f"\nparity FAILED: {', '.join(failed) or 'masking statistics'}", file=sys.stderr)
        sys.exit(1)
    print("\nparity: every objective within tolerance")


if __name__ == "__main__":
    main()
