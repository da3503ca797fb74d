"""primer against PyTorch eager on the same training work, measured alternately in one run.

For each row (objective x model size x context) and each repetition, it runs `primer pretrain`
on every backend asked for, then bench/torch_reference.py with the same vocabulary, sizes, batch
and steps, one after the other, so that both see the same machine state. A run's throughput is
the median tokens/s of its steps after warm-up; a row reports the median over repetitions and
the ratio primer / PyTorch, with peak resident memory. Writes RESULTS_DIR/vs-torch.json and
RESULTS_DIR/vs-torch.md and prints the table.

usage: python bench/vs_torch.py [--backends flex,tch] [--sweep] [--reps 3] [--steps 12]
(the README's `scripts/bench-vs-torch` runs it with the torch venv's python)
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STANDARD = {"layers": 4, "d_model": 256, "heads": 4, "seq_len": 128, "batch_size": 16}


def rows(sweep):
    """(objective, config) pairs: the standard config, then the width and context sweeps."""
    sizes = [dict(STANDARD)]
    if sweep:
        sizes += [dict(STANDARD, d_model=d) for d in (128, 512)]
        sizes += [dict(STANDARD, seq_len=c) for c in (64, 256, 512)]
    return [(objective, size) for size in sizes for objective in ("clm", "mlm")]


def run_primer(primer, backend, objective, size, steps, workdir):
    out = Path(workdir) / f"{backend}-{objective}"
    command = [
        primer, "pretrain", "--backend", backend, "--objective", objective, "--corpus", "tinyshakespeare",
        "--tokenizer-kind", "char", "--layers", str(size["layers"]), "--d-model", str(size["d_model"]),
        "--heads", str(size["heads"]), "--seq-len", str(size["seq_len"]), "--batch-size", str(size["batch_size"]),
        "--steps", str(steps), "--warmup-steps", "2", "--eval-every", str(steps), "--eval-batches", "1",
        "--out", str(out), "--overwrite", "--no-tui",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"primer failed on {backend} {objective} {size}: {done.stderr.strip().splitlines()[-1:]}")
    train = [r for r in map(json.loads, open(out / "metrics.jsonl")) if r["split"] == "train"]
    timed = train[2:] or train
    summary = json.load(open(out / "summary.json"))
    config = json.load(open(out / "config.json"))
    return {
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in timed),
        "peak_rss_gb": summary.get("peak_rss_gb"),
        "parameters": summary["parameters"],
        "vocab_size": config["model"]["vocab_size"],
    }


def run_torch(python, objective, size, vocab_size, steps, threads):
    command = [
        python, str(ROOT / "bench" / "torch_reference.py"), "--objective", objective, "--vocab-size", str(vocab_size),
        "--layers", str(size["layers"]), "--d-model", str(size["d_model"]), "--heads", str(size["heads"]),
        "--seq-len", str(size["seq_len"]), "--batch-size", str(size["batch_size"]), "--steps", str(steps),
        "--warmup-steps", "2", "--threads", str(threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the PyTorch reference failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(results, backends):
    head = ["objective", "d_model", "context", "parameters"]
    head += [f"{b} tok/s" for b in backends] + ["PyTorch tok/s"] + [f"{b} / PyTorch" for b in backends]
    head += [f"{b} peak RSS GB" for b in backends] + ["PyTorch peak RSS GB"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in results:
        torch_speed = row["pytorch"]["tokens_per_s"]
        cells = [row["objective"], str(row["d_model"]), str(row["seq_len"]), f"{row['parameters'] / 1e6:.2f}M"]
        cells += [f"{row[b]['tokens_per_s']:.0f}" for b in backends] + [f"{torch_speed:.0f}"]
        cells += [f"{row[b]['tokens_per_s'] / torch_speed:.2f}x" for b in backends]
        cells += [f"{row[b]['peak_rss_gb']:.2f}" for b in backends] + [f"{row['pytorch']['peak_rss_gb']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--primer", default=str(ROOT / "target" / "release" / "primer"))
    parser.add_argument("--backends", default="flex,tch", help="primer backends, comma-separated")
    parser.add_argument("--sweep", action="store_true", help="add d_model 128/512 and context 64/256/512 rows")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="per run; the first two are warm-up")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch threads (default: all cores)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    os.environ.setdefault("PRIMER_DATA", str(ROOT.parent / "shared" / "data"))

    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for objective, size in rows(args.sweep):
            samples = {b: [] for b in backends + ["pytorch"]}
            for rep in range(args.reps):
                for backend in backends:
                    samples[backend].append(run_primer(args.primer, backend, objective, size, args.steps, workdir))
                vocab = samples[backends[0]][-1]["vocab_size"] if backends else 263
                samples["pytorch"].append(run_torch(sys.executable, objective, size, vocab, args.steps, args.threads))
            row = {"objective": objective, **size, "parameters": samples["pytorch"][0]["parameters"]}
            for name, runs in samples.items():
                row[name] = {
                    "tokens_per_s": statistics.median(r["tokens_per_s"] for r in runs),
                    "tokens_per_s_reps": [r["tokens_per_s"] for r in runs],
                    "peak_rss_gb": max(r["peak_rss_gb"] or 0.0 for r in runs),
                }
            for backend in backends:
                primer_params = samples[backend][0]["parameters"]
                assert primer_params == row["parameters"], f"{backend}: {primer_params} parameters, PyTorch {row['parameters']}"
            results.append(row)
            ratios = "  ".join(f"{b} {row[b]['tokens_per_s'] / row['pytorch']['tokens_per_s']:.2f}x" for b in backends)
            print(f"{objective} d{size['d_model']} ctx{size['seq_len']}: PyTorch {row['pytorch']['tokens_per_s']:.0f} tok/s; {ratios}", flush=True)

    machine = f"{platform.platform()}, {os.cpu_count()} CPUs"
    command = "python bench/vs_torch.py " + " ".join(sys.argv[1:])
    table = markdown(results, backends)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vs-torch.json").write_text(json.dumps({"command": command, "machine": machine, "rows": results}, indent=1))
    (out / "vs-torch.md").write_text(f"`{command}` on {machine}, {args.reps} repetitions of {args.steps} steps, medians.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    main()
