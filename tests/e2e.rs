//! End-to-end tests of the `primer` binary: real runs on Tiny Shakespeare, exact resume, and
//! the one-line errors of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

fn shakespeare() -> String {
    shared_data()
        .join("tinyshakespeare/input.txt")
        .display()
        .to_string()
}

/// Runs `primer` with a private cache and the shared data home.
fn primer(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_primer"))
        .args(args)
        .env("PRIMER_DATA", shared_data())
        .env("PRIMER_CACHE", cache)
        .output()
        .expect("primer runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "primer failed: {}\n{}",
        stderr(output),
        String::from_utf8_lossy(&output.stdout)
    );
}

fn metrics(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn records<'a>(metrics: &'a [Value], split: &str) -> Vec<&'a Value> {
    metrics.iter().filter(|m| m["split"] == split).collect()
}

/// A small, fast model: every test run shares these options.
const SMALL: &[&str] = &[
    "--layers",
    "2",
    "--d-model",
    "32",
    "--heads",
    "2",
    "--seq-len",
    "32",
    "--batch-size",
    "8",
    "--no-tui",
];

fn pretrain(cache: &Path, run: &Path, objective: &str, extra: &[&str]) -> Output {
    let run = run.display().to_string();
    let shakespeare = shakespeare();
    let mut args = vec![
        "pretrain",
        "--objective",
        objective,
        "--corpus",
        &shakespeare,
        "--out",
        &run,
    ];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    primer(cache, &args)
}

#[test]
fn causal_run_learns_and_writes_a_complete_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("clm");
    let extra = [
        "--tokenizer-kind",
        "char",
        "--steps",
        "120",
        "--eval-every",
        "60",
        "--eval-batches",
        "4",
        "--lr",
        "3e-3",
    ];
    assert_ok(&pretrain(tmp.path(), &run, "clm", &extra));
    for file in [
        "config.json",
        "tokenizer.json",
        "metrics.jsonl",
        "model.bpk",
        "summary.json",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let metrics = metrics(&run);
    let train = records(&metrics, "train");
    assert_eq!(train.len(), 120);
    for key in [
        "step",
        "split",
        "tokens_seen",
        "elapsed_s",
        "loss",
        "ppl",
        "accuracy",
        "bpb",
        "lr",
        "tokens_per_s",
    ] {
        assert!(train[0].get(key).is_some(), "metrics record lacks {key}");
    }
    assert_eq!(train[119]["tokens_seen"], 120 * 8 * 32);
    let first = train[0]["loss"].as_f64().unwrap();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let last = summary["valid"]["loss"].as_f64().unwrap();
    // Uniform over 72 characters is ln 72 = 4.28; 120 steps reach well below 3.
    assert!(
        first > 3.5 && last < 3.0,
        "loss did not fall: {first} -> {last}"
    );
    assert_eq!(records(&metrics, "valid").len(), 2);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["objective"], "clm");
    assert_eq!(config["model"]["vocab_size"], 72);
    assert_eq!(config["train"]["seed"], 1337);

    let eval = primer(
        tmp.path(),
        &[
            "eval",
            run.to_str().unwrap(),
            "--json",
            "--eval-batches",
            "4",
        ],
    );
    assert_ok(&eval);
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!(
        (report["loss"].as_f64().unwrap() - last).abs() < 1e-6,
        "eval differs from the run's final validation"
    );
    assert!(report.get("pseudo_ppl").is_none());
}

#[test]
fn masked_run_learns_above_the_unigram_baseline_and_reports_pseudo_perplexity() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("mlm");
    let run_s = run.display().to_string();
    let shakespeare = shakespeare();
    // Short sequences get a small MLM past its early plateau (predicting token frequencies)
    // in ~1000 steps.
    let args = [
        "pretrain",
        "--objective",
        "mlm",
        "--corpus",
        &shakespeare,
        "--out",
        &run_s,
        "--tokenizer-kind",
        "char",
        "--layers",
        "2",
        "--d-model",
        "32",
        "--heads",
        "2",
        "--seq-len",
        "16",
        "--batch-size",
        "32",
        "--lr",
        "3e-3",
        "--steps",
        "1500",
        "--eval-every",
        "500",
        "--eval-batches",
        "8",
        "--no-tui",
    ];
    assert_ok(&primer(tmp.path(), &args));
    let eval = primer(
        tmp.path(),
        &[
            "eval",
            &run_s,
            "--json",
            "--eval-batches",
            "8",
            "--pppl-tokens",
            "64",
        ],
    );
    assert_ok(&eval);
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(report["objective"], "mlm");
    let (loss, accuracy) = (
        report["loss"].as_f64().unwrap(),
        report["accuracy"].as_f64().unwrap(),
    );
    let baseline = &report["unigram_baseline"];
    let (unigram_loss, unigram_accuracy) = (
        baseline["loss"].as_f64().unwrap(),
        baseline["accuracy"].as_f64().unwrap(),
    );
    // Predicting the most frequent character (space) is right ~16% of the time.
    assert!(
        (0.1..0.25).contains(&unigram_accuracy),
        "unigram accuracy {unigram_accuracy}"
    );
    assert!(
        loss < unigram_loss - 0.5,
        "masked loss {loss} not clearly below unigram {unigram_loss}"
    );
    assert!(
        accuracy > unigram_accuracy + 0.1,
        "masked accuracy {accuracy} not clearly above unigram {unigram_accuracy}"
    );
    let first = records(&metrics(&run), "train")[0]["loss"]
        .as_f64()
        .unwrap();
    assert!(
        first > 4.0,
        "training should start near ln(72) = 4.28, got {first}"
    );
    assert_eq!(report["pseudo_ppl_tokens"], 64);
    let pppl = report["pseudo_ppl"].as_f64().unwrap();
    assert!(
        pppl > 1.0 && pppl < unigram_loss.exp(),
        "pseudo-perplexity {pppl}"
    );
}

/// The fields that must match between an uninterrupted run and a resumed one (timings differ).
fn comparable(record: &Value) -> Value {
    let mut record = record.clone();
    for timing in ["elapsed_s", "tokens_per_s", "cpu_percent", "memory_gb"] {
        record.as_object_mut().unwrap().remove(timing);
    }
    record
}

fn assert_same_from(reference: &[Value], resumed: &[Value], after: u64) {
    let pick = |m: &[Value]| -> Vec<Value> {
        m.iter()
            .filter(|r| r["step"].as_u64().unwrap() > after)
            .map(comparable)
            .collect()
    };
    let (a, b) = (pick(reference), pick(resumed));
    assert!(!a.is_empty());
    assert_eq!(
        a.len(),
        b.len(),
        "different number of records after step {after}"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "resumed run differs");
    }
}

#[test]
fn halted_and_resumed_run_logs_the_same_metrics_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    // MLM with dropout and accumulation: masks, dropout, data order and optimizer state all
    // have to be restored.
    let extra = [
        "--vocab-size",
        "300",
        "--steps",
        "20",
        "--eval-every",
        "5",
        "--eval-batches",
        "2",
        "--dropout",
        "0.1",
        "--grad-accum",
        "2",
        "--checkpoint-every",
        "4",
        "--warmup-steps",
        "3",
    ];
    let full = tmp.path().join("full");
    assert_ok(&pretrain(tmp.path(), &full, "mlm", &extra));
    let halted = tmp.path().join("halted");
    let mut args = extra.to_vec();
    args.extend(["--halt-after", "10"]);
    let output = pretrain(tmp.path(), &halted, "mlm", &args);
    assert_ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("halted after step 10"));
    assert!(!halted.join("model.bpk").exists());
    assert_eq!(records(&metrics(&halted), "train").len(), 10);
    assert_ok(&primer(
        tmp.path(),
        &["pretrain", "--resume", halted.to_str().unwrap(), "--no-tui"],
    ));
    assert_same_from(&metrics(&full), &metrics(&halted), 10);
    let summary = |run: &Path| -> Value {
        let mut s: Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap())
                .unwrap();
        s.as_object_mut().unwrap().remove("wall_time_s");
        s["valid"].as_object_mut().unwrap().remove("tokens_per_s");
        s
    };
    assert_eq!(summary(&full), summary(&halted));
}

#[test]
fn killed_run_resumes_from_its_last_checkpoint_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let shakespeare = shakespeare();
    let extra = [
        "--tokenizer-kind",
        "char",
        "--steps",
        "400",
        "--eval-every",
        "50",
        "--eval-batches",
        "1",
        "--checkpoint-every",
        "7",
    ];
    let full = tmp.path().join("full");
    assert_ok(&pretrain(tmp.path(), &full, "clm", &extra));

    let killed = tmp.path().join("killed");
    let mut args: Vec<&str> = vec!["pretrain", "--objective", "clm", "--corpus", &shakespeare];
    let killed_str = killed.display().to_string();
    args.extend(["--out", &killed_str]);
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_primer"))
        .args(&args)
        .env("PRIMER_DATA", shared_data())
        .env("PRIMER_CACHE", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has written a few checkpoints and some steps after the last.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let steps = std::fs::read_to_string(killed.join("metrics.jsonl"))
            .map(|m| m.lines().count())
            .unwrap_or(0);
        if steps >= 40 || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("summary.json").exists(),
        "the run finished before it was killed"
    );
    assert_ok(&primer(
        tmp.path(),
        &["pretrain", "--resume", killed.to_str().unwrap(), "--no-tui"],
    ));
    // Records written after the last checkpoint were dropped and written again identically.
    assert_same_from(&metrics(&full), &metrics(&killed), 0);
}

/// Runs `primer` expecting exit code 2, a one-line error containing every `needles`, and no
/// run directory left behind.
fn assert_refused(cache: &Path, args: &[&str], run: Option<&Path>, needles: &[&str]) {
    let output = primer(cache, args);
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "args {args:?}: expected exit 2, stderr: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "error for {args:?} lacks `{needle}`: {}",
            lines[0]
        );
    }
    if let Some(run) = run {
        assert!(!run.exists(), "{args:?} left a run directory behind");
    }
}

#[test]
fn bad_input_is_refused_with_one_line_naming_it_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cache = dir.join("cache");
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let base = |corpus: &str| -> Vec<String> {
        [
            "pretrain",
            "--objective",
            "clm",
            "--tokenizer-kind",
            "char",
            "--out",
            run_s,
            "--no-tui",
            "--corpus",
            corpus,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let refuse = |args: Vec<String>, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_refused(&cache, &args, Some(&run), needles);
    };
    let with = |mut args: Vec<String>, extra: &[&str]| {
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };

    refuse(
        base("/no/such/corpus.txt"),
        &["/no/such/corpus.txt", "matched no file"],
    );
    let empty = write("empty.txt", b"");
    refuse(base(&empty), &["empty.txt", "empty"]);
    let blank = write("blank.txt", b"\n\n  \n");
    refuse(base(&blank), &["blank.txt", "empty"]);
    let binary = write("binary.txt", b"text\x00\x01\x02");
    refuse(base(&binary), &["binary.txt", "binary"]);
    let bad_utf8 = write("latin1.txt", b"caf\xe9 au lait\n");
    refuse(base(&bad_utf8), &["latin1.txt", "byte 3", "--lossy"]);
    let tiny = write("tiny.txt", b"one short line\n\nanother short line\n");
    refuse(
        with(base(&tiny), &["--valid", &tiny]),
        &["tokens", "fewer than one block", "--seq-len"],
    );
    let unsupported = write("data.parquet", b"PAR1");
    refuse(base(&unsupported), &["data.parquet", ".txt"]);

    let shakespeare = shakespeare();
    refuse(
        with(base(&shakespeare), &["--heads", "3"]),
        &["--heads 3", "--d-model 128"],
    );
    refuse(with(base(&shakespeare), &["--layers", "0"]), &["--layers"]);
    refuse(with(base(&shakespeare), &["--lr=-0.1"]), &["--lr"]);
    refuse(
        with(base(&shakespeare), &["--dropout", "1.5"]),
        &["--dropout"],
    );
    refuse(
        with(base(&shakespeare), &["--mask-rate", "0"]),
        &["--mask-rate"],
    );
    refuse(
        with(base(&shakespeare), &["--steps", "5", "--tokens", "100"]),
        &["--steps", "--tokens"],
    );
    refuse(
        [
            "pretrain",
            "--objective",
            "t5",
            "--corpus",
            &shakespeare,
            "--out",
            run_s,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        &["t5", "mlm", "clm"],
    );
    refuse(
        ["pretrain", "--corpus", &shakespeare, "--out", run_s]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        &["--objective"],
    );

    // A tokenizer without primer's special tokens.
    let plain = write("plain.json", br#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"a":0,"b":1},"unk_token":"a"}}"#);
    refuse(
        with(base(&shakespeare), &["--tokenizer", &plain]),
        &["plain.json", "[PAD]"],
    );
    let garbage = write("garbage.json", b"{not json");
    refuse(
        with(base(&shakespeare), &["--tokenizer", &garbage]),
        &["garbage.json", "tokenizer"],
    );

    // A config file with an unknown key.
    let config = write("run.toml", b"objective = \"clm\"\nlayerz = 3\n");
    refuse(
        with(base(&shakespeare), &["--config", &config]),
        &["run.toml", "layerz"],
    );

    // Prepared data made with another tokenizer than the one given.
    let char_tok = dir.join("char.json").display().to_string();
    let bpe_tok = dir.join("bpe.json").display().to_string();
    for (kind, out) in [("char", &char_tok), ("bpe", &bpe_tok)] {
        assert_ok(&primer(
            &cache,
            &[
                "tokenizer",
                "train",
                "--corpus",
                &shakespeare,
                "--kind",
                kind,
                "--vocab-size",
                "300",
                "--out",
                out,
            ],
        ));
    }
    let prepared = primer(
        &cache,
        &[
            "prepare",
            "--corpus",
            &shakespeare,
            "--tokenizer",
            &char_tok,
        ],
    );
    assert_ok(&prepared);
    let prepared = String::from_utf8_lossy(&prepared.stdout).trim().to_string();
    refuse(
        [
            "pretrain",
            "--objective",
            "clm",
            "--data",
            &prepared,
            "--tokenizer",
            &bpe_tok,
            "--out",
            run_s,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        &["another tokenizer", "vocabulary 300", "vocabulary 72"],
    );
}

#[test]
fn run_directories_are_not_overwritten_or_resumed_with_another_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run = tmp.path().join("run");
    let extra = [
        "--tokenizer-kind",
        "char",
        "--steps",
        "6",
        "--eval-every",
        "3",
        "--eval-batches",
        "1",
        "--checkpoint-every",
        "3",
        "--halt-after",
        "3",
    ];
    assert_ok(&pretrain(&cache, &run, "clm", &extra));
    let shakespeare = shakespeare();
    let run_s = run.to_str().unwrap();

    let again = primer(
        &cache,
        &[
            "pretrain",
            "--objective",
            "clm",
            "--corpus",
            &shakespeare,
            "--out",
            run_s,
            "--no-tui",
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists") && stderr(&again).contains("--overwrite"));

    let changed = primer(
        &cache,
        &["pretrain", "--resume", run_s, "--d-model", "64", "--no-tui"],
    );
    assert_eq!(changed.status.code(), Some(2));
    let err = stderr(&changed);
    assert!(
        err.contains("cannot resume") && err.contains("model.d_model: 32 vs 64"),
        "{err}"
    );

    // A corrupt checkpoint is named, with the way out.
    let checkpoint = run.join("checkpoints/step-00000003");
    std::fs::write(checkpoint.join("model.bpk"), b"not a burnpack file").unwrap();
    let corrupt = primer(&cache, &["pretrain", "--resume", run_s, "--no-tui"]);
    assert_eq!(corrupt.status.code(), Some(2));
    let err = stderr(&corrupt);
    assert!(
        err.contains("step-00000003") && err.contains("corrupt model.bpk"),
        "{err}"
    );

    // --overwrite starts over.
    let mut args = extra[..extra.len() - 2].to_vec();
    args.push("--overwrite");
    assert_ok(&pretrain(&cache, &run, "clm", &args));
    assert!(run.join("summary.json").exists());
}
