"""primer against PyTorch on one NVIDIA GPU, in one run: GPT-2 small (context 1024, the largest
batch that fits) and the standard config (4 layers, width 256, context 128, batch 16), trained
by primer on tch-cuda and on burn's cuda backend (f32 and bf16) and by PyTorch (eager and
torch.compile, bf16 autocast, SDPA, fused AdamW), printing tokens/s, MFU against the card's
bf16 peak and peak GPU memory side by side.

Both sides train on the same sizes and vocabulary (primer's BPE tokenizer of GPT-2's 50257
tokens, trained once on gutenberg-10m) for STEPS steps; a run's throughput is the median over
its steps after the first two. MFU counts FLOPs as primer does (6 N + 12 L d T per token, N
without the learned positions). Peak GPU memory is what nvidia-smi saw in use during the run
(allocator caches included), sampled every 100 ms.

usage: python bench/gpu.py --primer target/release/primer [--steps 12] [--peak-tflops 989]
(scripts/bench-gpu installs, builds and runs it)
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Dense bf16 peaks, TFLOP/s, by the name nvidia-smi gives; the first match wins.
PEAKS = [("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0),
         ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0)]
GPT2 = {"name": "gpt2-small", "layers": 12, "d_model": 768, "heads": 12, "seq_len": 1024,
        "positions": "learned", "batches": [32, 24, 16, 12, 8, 4]}
STANDARD = {"name": "standard", "layers": 4, "d_model": 256, "heads": 4, "seq_len": 128, "positions": "rotary",
            "batches": [16]}
PRIMER_RUNS = [("tch", "cuda", "f32"), ("tch", "cuda", "bf16"), ("cuda", None, "f32"), ("cuda", None, "bf16")]
TORCH_RUNS = [("eager", False), ("compile", True)]


def gpu_name():
    return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                          text=True, check=True).stdout.splitlines()[0].strip()


class MemoryWatch:
    """The most GPU memory in use (MiB) nvidia-smi reports while the block runs."""

    def __enter__(self):
        self.peak, self.done = 0, False
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()
        return self

    def poll(self):
        while not self.done:
            used = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True).stdout.split()
            if used:
                self.peak = max(self.peak, int(used[0]))
            time.sleep(0.1)

    def __exit__(self, *_):
        self.done = True
        self.thread.join()


def primer_tokenizer(primer, corpus, workdir):
    """A GPT-2-sized BPE tokenizer (and the prepared data, cached) from one tiny flex step."""
    out = Path(workdir) / "tokenizer-run"
    subprocess.run([primer, "pretrain", "--model", "gpt2-small", "--objective", "clm", "--corpus", corpus,
                    "--layers", "1", "--d-model", "64", "--heads", "1", "--d-ff", "64", "--seq-len", "1024",
                    "--batch-size", "1", "--steps", "1", "--eval-batches", "1", "--out", str(out), "--no-tui"],
                   check=True, capture_output=True)
    return out / "tokenizer.json"


def run_primer(args, size, batch, backend, device, precision, tokenizer, workdir):
    out = Path(workdir) / f"primer-{size['name']}-{backend}-{precision}-{batch}"
    command = [args.primer, "pretrain", "--backend", backend, "--precision", precision, "--objective", "clm",
               "--corpus", args.corpus, "--tokenizer", str(tokenizer), "--layers", str(size["layers"]),
               "--d-model", str(size["d_model"]), "--heads", str(size["heads"]), "--seq-len", str(size["seq_len"]),
               "--positions", size["positions"], "--batch-size", str(batch), "--steps", str(args.steps),
               "--warmup-steps", "2", "--eval-every", str(args.steps), "--eval-batches", "1",
               "--checkpoint-every", str(args.steps), "--out", str(out), "--no-tui"]
    known_peak = math.isfinite(args.peak_tflops)
    if known_peak:
        command += ["--peak-gflops", str(args.peak_tflops * 1000)]
    if device:
        command += ["--device", device]
    with MemoryWatch() as memory:
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["no output"])[-1]
    train = [r for r in map(json.loads, open(out / "metrics.jsonl")) if r["split"] == "train"]
    config = json.load(open(out / "config.json"))
    tokens_per_s = statistics.median(r["tokens_per_s"] for r in train[2:] or train)
    # primer's own MFU is against --peak-gflops; without a known peak it is not comparable.
    mfu = statistics.median(r["mfu"] for r in train[2:] or train) if known_peak else float("nan")
    return {"tokens_per_s": tokens_per_s, "mfu": mfu,
            "peak_gpu_gb": memory.peak * 2**20 / 1e9, "vocab_size": config["model"]["vocab_size"]}, None


def run_torch(args, size, batch, compiled, vocab):
    command = [sys.executable, str(ROOT / "bench/torch_reference.py"), "--device", "cuda", "--dtype", "bf16",
               "--objective", "clm", "--vocab-size", str(vocab), "--layers", str(size["layers"]),
               "--d-model", str(size["d_model"]), "--heads", str(size["heads"]), "--seq-len", str(size["seq_len"]),
               "--positions", size["positions"], "--batch-size", str(batch), "--steps", str(args.steps)]
    if compiled:
        command.append("--compile")
    with MemoryWatch() as memory:
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["no output"])[-1]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    mfu = result["tokens_per_s"] * result["flops_per_token"] / (args.peak_tflops * 1e12)
    return {"tokens_per_s": result["tokens_per_s"], "mfu": mfu, "peak_gpu_gb": memory.peak * 2**20 / 1e9}, None


def largest_batch(size, attempt):
    """The first batch of `size`'s list (largest first) that trains, with its result."""
    errors = []
    for batch in size["batches"]:
        result, error = attempt(batch)
        if result is not None:
            return batch, result, None
        errors.append(f"batch {batch}: {error}")
    return None, None, errors[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--primer", default=str(ROOT / "target/release/primer"))
    parser.add_argument("--corpus", help="default: gutenberg-10m's books.txt under PRIMER_DATA")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--peak-tflops", type=float, help="the card's dense bf16 peak (default: by its name)")
    args = parser.parse_args()
    args.corpus = args.corpus or str(Path(os.environ.get("PRIMER_DATA", ROOT.parent / "shared/data"))
                                     / "gutenberg-10m/books.txt")
    name = gpu_name()
    if args.peak_tflops is None:
        args.peak_tflops = next((peak for key, peak in PEAKS if key in name), float("nan"))
    print(f"GPU: {name}; MFU against {args.peak_tflops:.0f} TFLOP/s (dense bf16)", flush=True)
    started = time.time()
    with tempfile.TemporaryDirectory() as workdir:
        tokenizer = primer_tokenizer(args.primer, args.corpus, workdir)
        print(f"tokenizer and prepared data in {time.time() - started:.0f} s")
        print(f"{'model':<11} {'implementation':<24} {'batch':>5} {'tokens/s':>10} {'MFU':>7} {'GPU GB':>7}")
        for size in (GPT2, STANDARD):
            vocab = None
            for backend, device, precision in PRIMER_RUNS:
                attempt = lambda batch: run_primer(args, size, batch, backend, device, precision, tokenizer, workdir)
                batch, result, error = largest_batch(size, attempt)
                vocab = vocab or (result or {}).get("vocab_size")
                label = f"primer {backend}{'-' + device if device else ''} {precision}"
                print_row(size["name"], label, batch, result, error)
            for label, compiled in TORCH_RUNS:
                attempt = lambda batch: run_torch(args, size, batch, compiled, vocab or 50257)
                batch, result, error = largest_batch(size, attempt)
                print_row(size["name"], f"pytorch {label} bf16", batch, result, error)
    print(f"measured in {time.time() - started:.0f} s")


def print_row(size, label, batch, result, error):
    """One line of the table: a run's numbers, or why it failed."""
    if result is None:
        print(f"{size:<11} {label:<24} {'-':>5} failed: {error}", flush=True)
        return
    print(f"{size:<11} {label:<24} {batch:>5} {result['tokens_per_s']:>10.0f} {100 * result['mfu']:>6.1f}% "
          f"{result['peak_gpu_gb']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
