//! Backends give the same numbers: the first training steps of both objectives agree with
//! flex, and a run started on one backend continues on another.

#![cfg(any(feature = "wgpu", feature = "tch"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::*;

/// Runs `primer`, failing the test unless it succeeds. Software Vulkan is slow: few kernel
/// variants are tried.
fn primer_ok_on(cache: &Path, args: &str) -> Output {
    let output = primer_command(cache, args)
        .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
        .output()
        .expect("primer runs");
    assert_ok(&output);
    output
}

/// Train losses of a tiny run (small enough for lavapipe's software Vulkan).
fn losses(cache: &Path, run: &Path, objective: &str, backend: &str, extra: &str) -> Vec<f64> {
    let args = format!(
        "pretrain --objective {objective} --backend {backend} --corpus {} --out {} --no-tui --tokenizer-kind char \
         --layers 2 --d-model 32 --heads 2 --seq-len 16 --batch-size 4 --steps 4 --warmup-steps 1 \
         --eval-every 4 --eval-batches 1 {extra}",
        shakespeare(),
        run.display()
    );
    primer_ok_on(cache, &args);
    train_losses(run)
}

fn train_losses(run: &Path) -> Vec<f64> {
    records(&metrics(run), "train")
        .iter()
        .map(|record| record["loss"].as_f64().unwrap())
        .collect()
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Initial loss within 1e-4 relative of flex's, loss after 3 optimizer steps within 1e-3.
fn assert_agrees_with_flex(backend: &str) {
    let tmp = tempfile::tempdir().unwrap();
    for objective in ["clm", "mlm", "prefix", "electra"] {
        let flex = losses(
            tmp.path(),
            &tmp.path().join(format!("{objective}-flex")),
            objective,
            "flex",
            "",
        );
        let other = losses(
            tmp.path(),
            &tmp.path().join(format!("{objective}-{backend}")),
            objective,
            backend,
            "",
        );
        assert!(
            relative(other[0], flex[0]) < 1e-4,
            "{objective} initial loss: {backend} {} vs flex {}",
            other[0],
            flex[0]
        );
        assert!(
            relative(other[3], flex[3]) < 1e-3,
            "{objective} loss after 3 steps: {backend} {} vs flex {}",
            other[3],
            flex[3]
        );
        assert!(flex[3] < flex[0], "{objective}: the loss should fall in 3 steps");
    }
}

/// A run halted on `backend` resumes on flex (and the reverse) with the numbers of a run done
/// on flex alone.
fn assert_checkpoints_cross(backend: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let flex = losses(tmp.path(), &tmp.path().join("flex"), "clm", "flex", "");
    for (first, then) in [(backend, "flex"), ("flex", backend)] {
        let run = tmp.path().join(format!("{first}-then-{then}"));
        losses(tmp.path(), &run, "clm", first, "--halt-after 2 --checkpoint-every 2");
        primer_ok_on(
            tmp.path(),
            &format!("pretrain --resume {} --backend {then} --no-tui", run.display()),
        );
        let resumed = train_losses(&run);
        assert_eq!(resumed.len(), 4);
        for (step, (a, b)) in resumed.iter().zip(&flex).enumerate() {
            assert!(
                relative(*a, *b) < 1e-3,
                "step {}: {first} then {then} {a} vs flex {b}",
                step + 1
            );
        }
        let eval = primer_ok_on(tmp.path(), &format!("eval {} --json --backend {first}", run.display()));
        let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
        let summary: Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
        let (evaluated, final_loss) = (
            report["loss"].as_f64().unwrap(),
            summary["valid"]["loss"].as_f64().unwrap(),
        );
        assert!(
            relative(evaluated, final_loss) < 1e-4,
            "eval on {first}: {evaluated} vs {final_loss}"
        );
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_agrees_with_flex() {
    assert_agrees_with_flex("wgpu");
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_checkpoints_continue_on_flex_and_back() {
    assert_checkpoints_cross("wgpu");
}

#[cfg(feature = "tch")]
#[test]
fn tch_agrees_with_flex() {
    assert_agrees_with_flex("tch");
}

#[cfg(feature = "tch")]
#[test]
fn tch_checkpoints_continue_on_flex_and_back() {
    assert_checkpoints_cross("tch");
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_without_an_adapter_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let args = format!(
        "pretrain --objective clm --backend wgpu --corpus {} --out {} --no-tui --tokenizer-kind char \
         --layers 1 --d-model 16 --heads 1 --seq-len 8 --batch-size 2 --steps 1 --eval-batches 1",
        shakespeare(),
        run.display()
    );
    // Point the Vulkan loader and EGL (wgpu's OpenGL fallback) at no driver at all.
    let output = Command::new(env!("CARGO_BIN_EXE_primer"))
        .args(args.split_whitespace())
        .env("PRIMER_CACHE", tmp.path())
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("no usable adapter") && errors[0].contains("mesa-vulkan-drivers"),
        "{stderr}"
    );
    assert!(!run.exists());
}

/// A libtorch of another PyTorch release found first on the library path: primer names the
/// version to install instead of failing inside libtorch.
#[cfg(feature = "tch")]
#[test]
fn tch_with_another_pytorch_names_the_version_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    // The real libraries under a torch folder whose version.py says 2.8.0.
    let torch = tmp.path().join("torch");
    let lib = torch.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let real_lib = std::env::var("LD_LIBRARY_PATH")
        .unwrap()
        .split(':')
        .map(PathBuf::from)
        .find(|dir| dir.join("libtorch_cpu.so").exists())
        .expect("scripts/env puts torch's lib/ on LD_LIBRARY_PATH");
    for entry in std::fs::read_dir(&real_lib).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), lib.join(entry.file_name())).unwrap();
    }
    // libtorch finds the CUDA runtime wheels at $ORIGIN/../../nvidia.
    std::os::unix::fs::symlink(real_lib.join("../../nvidia"), tmp.path().join("nvidia")).unwrap();
    std::fs::write(torch.join("version.py"), "__version__ = '2.8.0+cpu'\n").unwrap();
    let run = tmp.path().join("run");
    let args = format!(
        "pretrain --objective clm --backend tch --corpus {} --out {} --no-tui --tokenizer-kind char --steps 1",
        shakespeare(),
        run.display()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_primer"))
        .args(args.split_whitespace())
        .env("PRIMER_CACHE", tmp.path())
        .env("LD_LIBRARY_PATH", &lib)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PyTorch 2.8.0+cpu") && stderr.contains("torch==2.9.0"),
        "{stderr}"
    );
    assert!(!run.exists());
}

/// Every command that runs a model after pre-training runs on `backend` and gives flex's numbers.
fn assert_after_pretraining_agrees(backend: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path(), tmp.path());
    // Trained enough that greedy decoding meets no near-ties.
    let run = |objective: &str| {
        let run = dir.join(objective);
        pretrain_tiny(cache, &run, objective, 100);
        run.display().to_string()
    };
    let (clm, mlm) = (run("clm"), run("mlm"));
    let docs = dir.join("docs.txt");
    std::fs::write(&docs, "Now is the winter of our discontent\nMade glorious summer\n").unwrap();
    let task = dir.join("task.tsv");
    let rows: String = (0..40)
        .map(|i| format!("{} the king\t{}\n", if i % 2 == 1 { "good" } else { "bad" }, i % 2))
        .collect();
    std::fs::write(&task, format!("sentence\tlabel\n{rows}")).unwrap();
    let task = format!("--task {} --text-column sentence", task.display());
    let on = |backend: &str, args: String| -> Vec<Value> {
        let output = primer_ok_on(cache, &format!("{args} --backend {backend}"));
        json_lines(&String::from_utf8(output.stdout).unwrap())
    };
    let numbers = |records: &[Value], pointer: &str| -> Vec<f64> {
        records
            .iter()
            .flat_map(|r| match r.pointer(pointer) {
                Some(Value::Array(items)) => items.iter().map(|v| v.as_f64().unwrap()).collect(),
                Some(value) => vec![value.as_f64().unwrap()],
                None => panic!("no {pointer} in {r}"),
            })
            .collect()
    };
    let assert_close = |what: &str, a: Vec<f64>, b: Vec<f64>| {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-3 * y.abs().max(1e-3),
                "{what} on {backend}: {a:?} vs flex {b:?}"
            );
        }
    };
    for (run, pointer) in [(&clm, "/ppl"), (&mlm, "/ppl")] {
        let args = format!("score --run {run} --file {} --json", docs.display());
        assert_close(
            "score",
            numbers(&on(backend, args.clone()), pointer),
            numbers(&on("flex", args), pointer),
        );
    }
    let args = format!("fill-mask --run {mlm} --json th[MASK]");
    let probabilities = |records: Vec<Value>| -> Vec<f64> {
        records[0]["masks"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["probability"].as_f64().unwrap())
            .collect()
    };
    assert_close(
        "fill-mask",
        probabilities(on(backend, args.clone())),
        probabilities(on("flex", args)),
    );
    // Greedy decoding: the same text when the logits agree.
    let generated = |backend: &str| {
        let output = primer_ok_on(
            cache,
            &format!("generate --run {clm} --prompt ROMEO: --temperature 0 --max-new-tokens 12 --backend {backend}"),
        );
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(generated(backend), generated("flex"));
    let prompted = |backend: &str| {
        on(
            backend,
            format!("prompt-classify --run {clm} {task} --verbalizer 0=bad,1=good --json"),
        )
    };
    assert_close(
        "prompt-classify",
        numbers(&prompted(backend), "/loss"),
        numbers(&prompted("flex"), "/loss"),
    );
    for b in [backend, "flex"] {
        let out = dir.join(format!("ft-{b}"));
        primer_ok_on(
            cache,
            &format!(
                "finetune --from {mlm} {task} --out {} --epochs 2 --head-dropout 0 --no-tui --backend {b}",
                out.display()
            ),
        );
    }
    let summary = |b: &str| read_json(&dir.join(format!("ft-{b}/summary.json")));
    assert_close(
        "finetune",
        numbers(&[summary(backend)], "/valid/loss"),
        numbers(&[summary("flex")], "/valid/loss"),
    );
    let classify = format!("classify --run {} --json good", dir.join("ft-flex").display());
    let probs = |records: Vec<Value>| numbers(&records, "/probability");
    assert_close(
        "classify",
        probs(on(backend, classify.clone())),
        probs(on("flex", classify)),
    );
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_runs_every_command_after_pretraining_with_flex_numbers() {
    assert_after_pretraining_agrees("wgpu");
}

#[cfg(feature = "tch")]
#[test]
fn tch_runs_every_command_after_pretraining_with_flex_numbers() {
    assert_after_pretraining_agrees("tch");
}

/// The records of a run's `metrics.jsonl` without their timings and machine load: what a
/// resumed run must repeat exactly.
fn numbers_of(run: &Path) -> Vec<Value> {
    let mut records = metrics(run);
    for record in &mut records {
        let record = record.as_object_mut().unwrap();
        for timing in ["elapsed_s", "tokens_per_s", "mfu", "cpu_percent", "memory_gb"] {
            record.remove(timing);
        }
    }
    records
}

/// Whether every tensor a burnpack file holds is f32: each `dtype` key of its (CBOR) metadata
/// is followed by the three-letter text `F32` (`BF16` or `F16` otherwise).
fn tensors_are_f32(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    let count = |needle: &[u8]| bytes.windows(needle.len()).filter(|window| *window == needle).count();
    let tensors = count(b"dtype");
    tensors > 0 && count(b"dtype\x63F32") == tensors
}

/// Mixed precision on tch's CPU: 200 steps in bf16, and in f16 with dynamic loss scaling, end
/// within 2% of f32's validation loss; the saved weights and the optimizer state stay f32; a run
/// halted halfway resumes to the numbers of an uninterrupted one, loss scale included.
///
/// The model is `pretrain_tiny`'s (2 layers, width 32, context 32, batch 8), not the standard
/// config (4 layers, width 256, context 128, batch 16): without AVX512-BF16, libtorch computes
/// bf16 on the CPU by converting (a bf16 matmul ran at 0.4 GFLOP/s against 12 in f32), and a
/// bf16 step of the standard config took 37 s on tch (f32: 18 s) on the shared 2-core CI
/// machine, so its 200 steps in three precisions would take hours; this test took 441 s there.
#[cfg(feature = "tch")]
#[test]
fn tch_trains_in_bf16_and_f16_to_f32s_loss_with_f32_weights_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, precision: &str, extra: &str| {
        let run = tmp.path().join(name);
        primer_ok_on(
            tmp.path(),
            &format!(
                "pretrain --objective clm --backend tch --precision {precision} --corpus {} --out {} --no-tui \
                 --tokenizer-kind char --layers 2 --d-model 32 --heads 2 --seq-len 32 --batch-size 8 --steps 200 \
                 --lr 3e-3 --warmup-steps 20 --eval-every 100 --eval-batches 4 --checkpoint-every 100 {extra}",
                shakespeare(),
                run.display()
            ),
        );
        run
    };
    let valid_loss = |run: &Path| read_json(&run.join("summary.json"))["valid"]["loss"].as_f64().unwrap();
    let optim = |run: &Path| run.join("checkpoints/step-00000200/optim.bpk");
    let reference = run("f32", "f32", "");
    let f32_loss = valid_loss(&reference);
    assert!(f32_loss < 3.0, "200 steps should learn something: {f32_loss}");
    for precision in ["bf16", "f16"] {
        let full = run(precision, precision, "");
        let loss = valid_loss(&full);
        assert!(
            relative(loss, f32_loss) < 0.02,
            "{precision} valid loss {loss} vs f32 {f32_loss}"
        );
        assert!(tensors_are_f32(&full.join("model.bpk")), "{precision}: model.bpk");
        assert!(tensors_are_f32(&optim(&full)), "{precision}: optim.bpk");
        let train = numbers_of(&full);
        let scaled = train
            .iter()
            .filter(|r| r["split"] == "train")
            .all(|r| r["loss_scale"].is_f64());
        assert_eq!(
            scaled,
            precision == "f16",
            "{precision}: loss_scale in every train record"
        );
        let halted = run(&format!("{precision}-halted"), precision, "--halt-after 100");
        primer_ok_on(tmp.path(), &format!("pretrain --resume {} --no-tui", halted.display()));
        assert_eq!(numbers_of(&halted), train, "{precision}: resumed run differs");
    }
}

/// A precision a backend cannot train in is refused in one line before the run exists.
#[cfg(feature = "wgpu")]
#[test]
fn bf16_on_wgpu_is_a_one_line_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    assert_error(
        tmp.path(),
        &format!(
            "pretrain --objective clm --backend wgpu --precision bf16 --corpus {} --out {} --no-tui \
             --tokenizer-kind char --layers 1 --d-model 16 --heads 1 --seq-len 8 --steps 1",
            shakespeare(),
            run.display()
        ),
        &["--precision bf16", "wgpu", "no bfloat16"],
    );
    assert!(!run.exists());
}

/// Without an NVIDIA GPU, `scripts/bench-gpu` says so and succeeds, installing and building
/// nothing (CI machines have none; on a GPU machine, run the script itself).
#[test]
fn bench_gpu_without_a_gpu_says_so_and_succeeds() {
    let gpu = Command::new("nvidia-smi").arg("-L").output();
    if gpu.is_ok_and(|output| output.status.success()) {
        eprintln!("SKIPPED bench_gpu_without_a_gpu_says_so_and_succeeds: this machine has an NVIDIA GPU");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench-gpu");
    let output = Command::new(script).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "bench-gpu: no NVIDIA GPU here (nvidia-smi finds none): nothing to measure"
    );
}
