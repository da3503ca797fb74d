//! Helpers shared by the end-to-end tests of the `primer` binary.

#![allow(dead_code)] // Each test binary uses its own share of these.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The shared data sets (`../shared/data` next to the project).
pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// Tiny Shakespeare's one file.
pub fn shakespeare() -> String {
    shared_data().join("tinyshakespeare/input.txt").display().to_string()
}

/// A `primer` command with a private prepared-data cache and the shared data home. `args` is
/// split on whitespace (paths in these tests have no spaces).
pub fn primer_command(cache: &Path, args: &str) -> Command {
    primer_command_args(cache, &args.split_whitespace().collect::<Vec<_>>())
}

/// [`primer_command`] with arguments given one by one (for arguments with spaces).
pub fn primer_command_args(cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_primer"));
    command
        .args(args)
        .env("PRIMER_DATA", shared_data())
        .env("PRIMER_CACHE", cache)
        .env_remove("PRIMER_BACKEND");
    command
}

/// Runs `primer` and returns what it did.
pub fn primer(cache: &Path, args: &str) -> Output {
    primer_command(cache, args).output().expect("primer runs")
}

/// Runs `primer`, failing the test unless it succeeds; returns its stdout.
pub fn primer_ok(cache: &Path, args: &str) -> String {
    let output = primer(cache, args);
    assert_ok(&output);
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails the test, showing stderr and stdout, unless `output` is a success.
pub fn assert_ok(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "primer failed: {}\n{stdout}", stderr(output));
}

/// Runs `primer` expecting exit code 2 and one error line containing every needle.
pub fn assert_error(cache: &Path, args: &str, needles: &[&str]) {
    assert_refusal(args, &primer(cache, args), needles);
}

/// Checks that `output`, of `primer ARGS`, is a refusal: exit code 2 and one error line
/// containing every needle; returns that line.
pub fn assert_refusal(args: &str, output: &Output, needles: &[&str]) -> String {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "`{args}`: expected exit code 2, stderr: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "error for `{args}` lacks `{needle}`: {}",
            lines[0]
        );
    }
    lines[0].to_string()
}

/// A JSON file.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every line of JSON Lines text.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// The records of a run's `metrics.jsonl`.
pub fn metrics(run: &Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(run.join("metrics.jsonl")).unwrap())
}

/// The records of one split.
pub fn records<'a>(metrics: &'a [Value], split: &str) -> Vec<&'a Value> {
    metrics.iter().filter(|m| m["split"] == split).collect()
}

/// A tiny character-level run of `objective` on Tiny Shakespeare (2 layers, d 32, context 32),
/// trained on flex for `steps` steps.
pub fn pretrain_tiny(cache: &Path, run: &Path, objective: &str, steps: usize) {
    primer_ok(
        cache,
        &format!(
            "pretrain --objective {objective} --corpus {} --out {} --no-tui --tokenizer-kind char \
             --layers 2 --d-model 32 --heads 2 --seq-len 32 --batch-size 8 --steps {steps} --lr 3e-3 \
             --eval-every {steps} --eval-batches 2",
            shakespeare(),
            run.display()
        ),
    );
}

/// Starts `primer ARGS` in the background and waits until `run/metrics.jsonl` has `lines`
/// lines (at most two minutes).
pub fn start_and_wait(cache: &Path, args: &str, run: &Path, lines: usize) -> Child {
    let child = primer_command(cache, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let logged = || std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |m| m.lines().count());
    while logged() < lines && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// A sentiment task a model can learn from few examples: "good" or "bad" among filler words.
pub fn write_task(dir: &Path) -> (String, String) {
    let filler = ["the", "play", "was", "a", "king", "night", "and", "so", "very", "quite"];
    let row = |i: usize, label: usize| {
        let word = if label == 1 { "good" } else { "bad" };
        let a = filler[i % filler.len()];
        let b = filler[(i * 7 + 3) % filler.len()];
        format!("{a} {b} {word} {b}\t{label}\n")
    };
    let file = |name: &str, range: std::ops::Range<usize>| {
        let mut text = String::from("sentence\tlabel\n");
        for i in range {
            text += &row(i, i % 2);
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    (file("train.tsv", 0..160), file("valid.tsv", 1000..1040))
}
