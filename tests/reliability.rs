//! Nothing lost, nothing let in (docs/reliability.md): run locks, verified checkpoints and
//! weights, files checked for what they must hold, divergence caught before it is saved, sizes
//! checked before allocating, long lines read in bounded memory, and one-line errors where
//! inputs are wrong. Each test meets the case as a user would: through the binary, with real
//! races, kills and corrupted files, asserting the exit code, the message and what is on disk.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

mod common;
use common::*;

/// `pretrain` of a tiny character-level causal model on Tiny Shakespeare into `run`.
fn tiny_args(run: &Path, extra: &str) -> String {
    format!(
        "pretrain --objective clm --corpus {} --out {} --no-tui --tokenizer-kind char --layers 2 \
         --d-model 32 --heads 2 --seq-len 32 --batch-size 8 --eval-batches 1 {extra}",
        shakespeare(),
        run.display()
    )
}

/// Starts a run in the background and waits until it has logged `lines` metrics lines.
fn start_training(cache: &Path, args: &str, run: &Path, lines: usize) -> Child {
    let mut child = start_and_wait(cache, args, run, lines);
    let logged = std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |m| m.lines().count());
    if logged < lines {
        let _ = child.kill();
        panic!("the run did not start training: {logged} metrics lines");
    }
    child
}

/// The entries of a folder, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|e| {
            e.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Flips one bit of the byte `from_end` bytes before the end of a file.
fn flip_byte(path: &Path, from_end: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() - from_end;
    bytes[at] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_run_has_one_writer_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    let long = tiny_args(&run, "--steps 100000 --eval-every 1000 --checkpoint-every 20");
    let mut trainer = start_training(&cache, &long, &run, 30);
    let holder = format!("in use by process {}", trainer.id());

    // A second resume, and an --overwrite, are refused at once and touch nothing.
    assert_error(
        &cache,
        &format!("pretrain --resume {} --no-tui", run.display()),
        &[&run.display().to_string(), &holder],
    );
    let before = entries(&run);
    assert_error(&cache, &format!("{long} --overwrite"), &[&holder]);
    for file in [
        "config.json",
        "tokenizer.json",
        "metrics.jsonl",
        "samples.jsonl",
        "status.json",
    ] {
        assert!(
            run.join(file).exists(),
            "--overwrite of a run in training deleted {file}"
        );
    }
    assert_eq!(entries(&run), before);

    // Stopped, the run is whole: it resumes, and its checkpoint evaluates.
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &trainer.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert_eq!(trainer.wait().unwrap().code(), Some(130));
    let eval = primer(&cache, &format!("eval {} --json", run.display()));
    assert_ok(&eval);
    let lines = metrics(&run).len();
    assert!(lines >= 30, "metrics.jsonl lost lines: {lines}");

    // Once its writer is gone, the run's lock is free again: it is resumed, and killed.
    let mut resumed = start_training(
        &cache,
        &format!("pretrain --resume {} --no-tui", run.display()),
        &run,
        lines + 5,
    );
    resumed.kill().unwrap();
    resumed.wait().unwrap();
    let mut again = start_training(
        &cache,
        &format!("pretrain --resume {} --no-tui", run.display()),
        &run,
        lines + 5,
    );
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn what_killed_writers_leave_is_removed_and_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    let args = tiny_args(
        &run,
        "--steps 12 --eval-every 6 --checkpoint-every 3 --keep-checkpoints 2",
    );
    primer_ok(&cache, &format!("{args} --halt-after 6"));
    let checkpoints = run.join("checkpoints");
    assert_eq!(entries(&checkpoints), ["step-00000003", "step-00000006"]);
    for file in ["model.bpk", "optim.bpk", "state.json", "SHA256SUMS"] {
        assert!(checkpoints.join("step-00000006").join(file).exists(), "{file}");
    }

    // What a kill -9 leaves while a checkpoint is written or pruned, and an incomplete step
    // folder as versions before checksums left; and a killed preparation's folder.
    for leftover in [".tmp-step-a1B2c3", ".prune-step-00000003", "step-00000009"] {
        std::fs::create_dir_all(checkpoints.join(leftover)).unwrap();
        std::fs::write(checkpoints.join(leftover).join("model.bpk"), b"partial").unwrap();
    }
    let entry = entries(&cache)
        .into_iter()
        .find(|e| !e.ends_with(".lock") && !e.starts_with('.'))
        .unwrap();
    for leftover in [format!(".prepare-{entry}-x7Yz"), ".prepare-Ab12Cd".to_string()] {
        std::fs::create_dir_all(cache.join(&leftover)).unwrap();
        std::fs::write(cache.join(&leftover).join("train.bin"), [0u8; 4096]).unwrap();
    }
    primer_ok(&cache, &format!("pretrain --resume {} --no-tui", run.display()));
    assert_eq!(entries(&checkpoints), ["step-00000009", "step-00000012"]);
    assert!(
        entries(&cache).iter().all(|e| !e.starts_with(".prepare-")),
        "{:?}",
        entries(&cache)
    );
    assert!(
        checkpoints.join("step-00000009/SHA256SUMS").exists(),
        "step 9 was written anew"
    );
}

#[test]
fn altered_checkpoints_weights_and_logs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    let args = tiny_args(&run, "--steps 8 --eval-every 4 --checkpoint-every 4");
    primer_ok(&cache, &format!("{args} --halt-after 4"));
    let checkpoint = run.join("checkpoints/step-00000004");
    let resume = format!("pretrain --resume {} --no-tui", run.display());
    let keep = |name: &str| std::fs::read(checkpoint.join(name)).unwrap();
    let restore = |name: &str, bytes: &[u8]| std::fs::write(checkpoint.join(name), bytes).unwrap();

    // One flipped byte of the weights or the optimizer state: refused, naming the file.
    for file in ["model.bpk", "optim.bpk"] {
        let original = keep(file);
        flip_byte(&checkpoint.join(file), 100);
        assert_error(
            &cache,
            &resume,
            &["step-00000004 is corrupt", file, "sha256", "--overwrite"],
        );
        restore(file, &original);
    }
    // The state edited to a step beyond the run: its checksum fails; without checksums (a
    // checkpoint of an older version) the step itself is refused.
    let state = keep("state.json");
    let edited = String::from_utf8(state.clone())
        .unwrap()
        .replace("\"step\": 4", "\"step\": 4000000");
    restore("state.json", edited.as_bytes());
    assert_error(&cache, &resume, &["state.json does not match its sha256"]);
    let sums = keep("SHA256SUMS");
    std::fs::remove_file(checkpoint.join("SHA256SUMS")).unwrap();
    assert_error(&cache, &resume, &["state.json says step 4000000"]);
    restore("state.json", &state);
    restore("SHA256SUMS", &sums);

    // A truncated or deleted metrics log would leave a silent gap: refused.
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        log.lines().take(2).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    assert_error(&cache, &resume, &["metrics.jsonl", "steps 3 to 4", "restore the file"]);
    std::fs::remove_file(run.join("metrics.jsonl")).unwrap();
    assert_error(&cache, &resume, &["metrics.jsonl", "steps 1 to 4"]);
    std::fs::write(run.join("metrics.jsonl"), &log).unwrap();
    primer_ok(&cache, &resume);

    // The finished weights: a flipped byte, and NaN in weights without checksums.
    let model = run.join("model.bpk");
    let original = std::fs::read(&model).unwrap();
    flip_byte(&model, 100);
    let eval = format!("eval {} --json", run.display());
    assert_error(&cache, &eval, &["model.bpk is corrupt", "sha256"]);
    std::fs::remove_file(run.join("SHA256SUMS")).unwrap();
    let mut nan = original.clone();
    let end = nan.len();
    nan[end - 64..].copy_from_slice(&[0xff; 64]);
    std::fs::write(&model, nan).unwrap();
    assert_error(&cache, &eval, &["model.bpk is corrupt", "non-finite values"]);
    let generate = format!("generate --run {} --prompt ROMEO:", run.display());
    assert_error(&cache, &generate, &["non-finite values"]);
    std::fs::write(&model, &original).unwrap();
    primer_ok(&cache, &eval);
}

#[test]
fn divergence_stops_the_run_before_a_diverged_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    let args = tiny_args(
        &run,
        "--steps 200 --eval-every 100 --checkpoint-every 1 --keep-checkpoints 1000 --lr 1 \
         --warmup-steps 20 --grad-clip 0",
    );
    let output = primer(&cache, &args);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    let line = err.lines().find(|l| l.starts_with("error")).unwrap();
    assert!(
        line.contains("diverged") && line.contains("--lr") && line.contains("--grad-clip"),
        "{line}"
    );
    let status = read_json(&run.join("status.json"));
    assert_eq!(status["state"], "failed");
    // Every checkpoint kept is of weights that still predict: the newest one evaluates to a
    // loss below the divergence limit (2 ln V), and the message names it.
    let newest = entries(&run.join("checkpoints"))
        .pop()
        .expect("a good checkpoint before divergence");
    assert!(line.contains(&newest), "{line} does not name {newest}");
    let eval = primer_ok(&cache, &format!("eval {} --json", run.display()));
    let report: serde_json::Value = serde_json::from_str(eval.trim()).unwrap();
    let vocab = read_json(&run.join("config.json"))["model"]["vocab_size"]
        .as_f64()
        .unwrap();
    let loss = report["loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss <= 2.0 * vocab.ln(), "loss {loss}");
}

#[test]
fn a_corrupt_token_shard_is_refused_or_prepared_again() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    primer_ok(&cache, &tiny_args(&run, "--steps 4 --eval-every 4"));
    let entry = entries(&cache).into_iter().find(|e| !e.ends_with(".lock")).unwrap();
    let data = cache.join(&entry);
    let shard = data.join("valid.bin");
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
    std::fs::write(&shard, &bytes).unwrap();

    // Given as --data, it is refused; as the cache of a run, it is prepared again, with a word.
    assert_error(
        &cache,
        &format!(
            "pretrain --objective clm --data {} --out {}",
            data.display(),
            tmp.path().join("other").display()
        ),
        &["valid.bin holds token id 65535 at position 5", "prepare the data again"],
    );
    // meta.json cannot vouch for ids the tokenizer does not have: the tokenizer is the judge.
    let meta_path = data.join("meta.json");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    let mut raised: serde_json::Value = serde_json::from_str(&meta).unwrap();
    raised["vocab_size"] = 70000.into();
    std::fs::write(&meta_path, raised.to_string()).unwrap();
    assert_error(
        &cache,
        &format!(
            "pretrain --objective clm --data {} --out {}",
            data.display(),
            tmp.path().join("other").display()
        ),
        &[
            "meta.json does not describe its tokenizer.json",
            "prepare the data again",
        ],
    );
    assert!(!tmp.path().join("other").exists());
    std::fs::write(&meta_path, meta).unwrap();
    let eval = primer(&cache, &format!("eval {} --json", run.display()));
    assert_ok(&eval);
    assert!(stderr(&eval).contains("preparing it again"), "{}", stderr(&eval));
    assert_ne!(
        std::fs::read(&shard).unwrap(),
        bytes,
        "the shard was not prepared again"
    );
}

#[test]
fn sizes_that_cannot_fit_are_refused_before_allocating() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    // Sizes past the machine's memory; then sizes that multiply (a step's micro-batches are
    // held together) or overflow, past primer's limits.
    let (memory, limit) = ("more than the machine's", "above primer's limit");
    for (sizes, needle, reason) in [
        ("--d-model 100000 --heads 4", "d_model 100000", memory),
        ("--layers 1000000", "1000000 layers", memory),
        ("--batch-size 100000000", "batch 100000000", memory),
        ("--grad-accum 1000000000", "--grad-accum 1000000000", limit),
        (
            "--grad-accum 18446744073709551615",
            "--grad-accum 18446744073709551615",
            limit,
        ),
        (
            "--seq-len 18446744073709551615",
            "--seq-len 18446744073709551615",
            limit,
        ),
    ] {
        let args = format!(
            "pretrain --objective clm --corpus {} --out {} --tokenizer-kind char --steps 4 {sizes}",
            shakespeare(),
            run.display()
        );
        assert_error(&cache, &args, &[needle, reason, "lower"]);
        assert!(!run.exists(), "`{sizes}` left a run directory");
    }
    let args = format!(
        "pretrain --objective clm --corpus {} --out {} --vocab-size 100000000",
        shakespeare(),
        run.display()
    );
    assert_error(&cache, &args, &["--vocab-size 100000000", "at most"]);
    assert!(!run.exists());
}

/// The peak resident memory of a child, GB, sampled until it exits.
fn peak_memory_gb(mut child: Child) -> (std::process::ExitStatus, f64) {
    let mut peak_kib = 0.0f64;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak_kib = peak_kib.max(line.split_whitespace().nth(1).unwrap().parse().unwrap());
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak_kib / (1024.0 * 1024.0));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_file_without_line_breaks_is_read_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    // 24 MB of words and no newline: tokenizing it whole took about 200 bytes per byte.
    let words = ["alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta "];
    let mut text = String::with_capacity(24 << 20);
    let mut i = 0usize;
    while text.len() < 24 << 20 {
        text.push_str(words[(i * 7 + i / 5) % words.len()]);
        i += 1;
    }
    let corpus = tmp.path().join("one-line.txt");
    std::fs::write(&corpus, &text).unwrap();
    let args = format!(
        "pretrain --objective clm --corpus {} --out {} --no-tui --tokenizer-kind char --layers 1 \
         --d-model 16 --heads 2 --seq-len 16 --batch-size 4 --steps 2 --eval-every 2 --eval-batches 1 \
         --valid-fraction 0.3",
        corpus.display(),
        run.display()
    );
    let child = primer_command(&cache, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak) = peak_memory_gb(child);
    assert!(status.success());
    // Measured: 0.74 GB for this file and for one twice its size (tokenizer training 0.53 GB).
    assert!(peak < 1.5, "peak memory {peak:.2} GB");
    let meta = read_json(
        &cache
            .join(entries(&cache).into_iter().find(|e| !e.ends_with(".lock")).unwrap())
            .join("meta.json"),
    );
    let docs = meta["train"]["documents"].as_u64().unwrap() + meta["valid"]["documents"].as_u64().unwrap();
    assert!(
        docs >= 24,
        "the line was not cut into documents of at most 1 MiB: {docs}"
    );

    // score --file reads it in the same bounded documents.
    std::fs::write(&corpus, &text[..3 << 20]).unwrap();
    let scored = primer_ok(
        &cache,
        &format!("score --run {} --file {} --json", run.display(), corpus.display()),
    );
    let tokens: Vec<u64> = scored
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["tokens"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(tokens.len() >= 3, "3 MiB in documents of at most 1 MiB: {tokens:?}");
    assert!(tokens.iter().all(|&t| t <= 1 << 20), "{tokens:?}");
}

#[test]
fn a_full_disk_while_creating_a_run_leaves_no_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, disk) = (tmp.path().join("cache"), tmp.path().join("disk"));
    std::fs::create_dir(&disk).unwrap();
    let tokenizer = tmp.path().join("tok.json");
    primer_ok(
        &cache,
        &format!(
            "tokenizer train --corpus {} --kind char --out {}",
            shakespeare(),
            tokenizer.display()
        ),
    );
    // A file system with room for the run marker and tokenizer.json and nothing more (tmpfs
    // counts whole pages), mounted in a private mount namespace.
    let pages = 1 + std::fs::metadata(&tokenizer).unwrap().len().div_ceil(4096);
    let run = disk.join("run");
    let args = format!("{} --tokenizer {} --steps 4", tiny_args(&run, ""), tokenizer.display());
    let script = format!(
        "mount -t tmpfs -o size={}k tmpfs {} && exec {} {args}",
        pages * 4,
        disk.display(),
        env!("CARGO_BIN_EXE_primer")
    );
    let output = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", &script, "--"])
        .env("PRIMER_DATA", shared_data())
        .env("PRIMER_CACHE", &cache)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("config.json") && lines[0].contains("No space left"),
        "{}",
        lines[0]
    );
    // The namespace is gone with its mount: check what it held through a second run in it.
    let listing = std::process::Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            &format!(
                "mount -t tmpfs -o size={}k tmpfs {d} && {} {args}; ls -A {d}",
                pages * 4,
                env!("CARGO_BIN_EXE_primer"),
                d = disk.display()
            ),
        ])
        .env("PRIMER_DATA", shared_data())
        .env("PRIMER_CACHE", &cache)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout).trim(),
        "",
        "a failed start left files"
    );
}

#[test]
fn wrong_inputs_get_one_line_naming_them_and_nothing_half_made() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    primer_ok(
        &cache,
        &tiny_args(&run, "--steps 4 --eval-every 4 --halt-after 2 --checkpoint-every 2"),
    );
    let resume = format!("pretrain --resume {} --no-tui", run.display());

    // An edited tokenizer is refused before any data is prepared with it.
    let tokenizer = std::fs::read_to_string(run.join("tokenizer.json")).unwrap();
    std::fs::write(run.join("tokenizer.json"), tokenizer.replacen("\"a\"", "\"á\"", 1)).unwrap();
    let cached = entries(&cache);
    assert_error(
        &cache,
        &resume,
        &["tokenizer.json is not the tokenizer this run was trained with"],
    );
    assert_eq!(entries(&cache), cached, "data was prepared before the refusal");
    std::fs::write(run.join("tokenizer.json"), &tokenizer).unwrap();

    // A config that is not UTF-8 is called corrupt, not missing.
    let config = std::fs::read(run.join("config.json")).unwrap();
    std::fs::write(
        run.join("config.json"),
        [&config[..10], b"\xff\xfe", &config[10..]].concat(),
    )
    .unwrap();
    assert_error(
        &cache,
        &resume,
        &["config.json: corrupt run config (invalid UTF-8 at byte 10)"],
    );
    std::fs::write(run.join("config.json"), &config).unwrap();
    primer_ok(&cache, &resume);

    assert_error(
        &cache,
        &format!("eval {} --eval-batches 0", run.display()),
        &["--eval-batches 0"],
    );

    // A validation corpus too small is named as such, not as the training corpus.
    let small = tmp.path().join("small-valid.txt");
    std::fs::write(&small, "a few words\n").unwrap();
    let other = tmp.path().join("other");
    assert_error(
        &cache,
        &format!("{} --valid {}", tiny_args(&other, "--steps 4"), small.display()),
        &["validation corpus", "small-valid.txt", "fewer than one block"],
    );
    assert!(!other.exists());

    // A comparison refused for a bad corpus leaves nothing that refuses the corrected one.
    let report = tmp.path().join("report");
    let compare = |corpus: &str| {
        format!(
            "compare --corpus {corpus} --task sst2 --seeds 1 --label-budgets 20 --steps 4 --layers 1 \
             --d-model 16 --heads 2 --seq-len 16 --batch-size 4 --tokenizer-kind char --finetune-epochs 1 \
             --objectives clm --out {}",
            report.display()
        )
    };
    assert_error(&cache, &compare("/no/such/corpus.txt"), &["/no/such/corpus.txt"]);
    assert!(!report.exists(), "a refused comparison left {:?}", entries(&report));
}

#[test]
fn prompting_a_named_task_fits_long_texts_to_a_short_context() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    pretrain_tiny(&cache, &run, "clm", 4);
    // Context 32: most SST-2 sentences are longer than that in characters.
    let output = primer(
        &cache,
        &format!("prompt-classify --run {} --task sst2 --limit 40 --json", run.display()),
    );
    assert_ok(&output);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["examples"], 40);
    assert_eq!(report["template"], "{text} It was [LABEL].");
    let cut = report["truncated"].as_u64().unwrap();
    assert!(cut > 20 && cut <= 40, "{cut}");
    assert!(
        stderr(&output).contains(&format!("{cut} of 40 texts were cut")),
        "{}",
        stderr(&output)
    );
    // Refusing to cut, and a template that alone overflows the context, are one-line errors.
    let args = format!("prompt-classify --run {} --task sst2 --limit 40", run.display());
    assert_error(
        &cache,
        &format!("{args} --no-truncate"),
        &["validation example 1", "drop --no-truncate"],
    );
    let long_template = format!("{{text}} {} [LABEL]", "x".repeat(40));
    let mut with_template = vec![
        "prompt-classify",
        "--run",
        run.to_str().unwrap(),
        "--task",
        "sst2",
        "--limit",
        "4",
    ];
    with_template.extend(["--template", &long_template]);
    let output = primer_command_args(&cache, &with_template).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("shorten the template"), "{}", stderr(&output));
}

#[test]
fn overwrite_replaces_only_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    // A folder primer did not make, and a dashboard's own folder, are never emptied.
    let precious = tmp.path().join("precious");
    std::fs::create_dir_all(precious.join("sub")).unwrap();
    std::fs::write(precious.join("precious.txt"), "keep me").unwrap();
    let dashboard = tmp.path().join("runs/.dashboard");
    std::fs::create_dir_all(&dashboard).unwrap();
    std::fs::write(dashboard.join("queue.json"), "{}").unwrap();
    for folder in [&precious, &dashboard, &tmp.path().join("runs")] {
        let before = entries(folder);
        assert_error(
            &cache,
            &tiny_args(folder, "--steps 2 --overwrite"),
            &["is not a primer run", "--overwrite replaces only a run"],
        );
        assert_eq!(entries(folder), before, "{} was changed", folder.display());
    }
    assert_eq!(
        std::fs::read_to_string(precious.join("precious.txt")).unwrap(),
        "keep me"
    );

    // A run is replaced; so is one made before runs were marked (its config and lock).
    primer_ok(&cache, &tiny_args(&run, "--steps 2 --eval-every 2"));
    assert!(run.join(".primer-run").is_file());
    std::fs::remove_file(run.join(".primer-run")).unwrap();
    primer_ok(&cache, &tiny_args(&run, "--steps 3 --eval-every 3 --overwrite"));
    assert_eq!(records(&metrics(&run), "train").len(), 3);
    // A fine-tuned classifier's folder is a run too; a folder that only looks like one is not.
    let (train, valid) = write_task(tmp.path());
    let finetune = |out: &Path, extra: &str| {
        format!(
            "finetune --from {} --task {train} --valid-file {valid} --text-column sentence --epochs 1 \
             --out {} --no-tui {extra}",
            run.display(),
            out.display()
        )
    };
    let classifier = tmp.path().join("classifier");
    primer_ok(&cache, &finetune(&classifier, ""));
    primer_ok(&cache, &finetune(&classifier, "--overwrite"));
    std::fs::write(precious.join("finetune.json"), "{}").unwrap();
    assert_error(&cache, &finetune(&precious, "--overwrite"), &["is not a primer run"]);
    assert!(precious.join("precious.txt").is_file());
}

#[test]
fn record_files_are_read_a_bounded_line_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    pretrain_tiny(&cache, &run, "clm", 2);
    let long = "a".repeat(2 << 20);
    let pairs = tmp.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        format!(
            "{{\"sentence_good\": \"a b\", \"sentence_bad\": \"b a\"}}\n{{\"sentence_good\": \"{long}\", \"sentence_bad\": \"b\"}}\n"
        ),
    )
    .unwrap();
    assert_error(
        &cache,
        &format!("minimal-pairs --run {} --pairs {}", run.display(), pairs.display()),
        &["pairs.jsonl:2", "longer than 1 MiB"],
    );
    for (name, column, text) in [
        (
            "task.jsonl",
            "text",
            format!("{{\"text\": \"good\", \"label\": \"1\"}}\n{{\"text\": \"{long}\", \"label\": \"0\"}}\n"),
        ),
        ("task.tsv", "sentence", format!("sentence\tlabel\ngood\t1\n{long}\t0\n")),
    ] {
        let task = tmp.path().join(name);
        std::fs::write(&task, text).unwrap();
        assert_error(
            &cache,
            &format!(
                "prompt-classify --run {} --task {} --text-column {column} --verbalizer 0=bad,1=good",
                run.display(),
                task.display()
            ),
            &[&format!("{name}:"), "longer than 1 MiB"],
        );
    }
}

#[test]
fn tokenizer_training_on_text_without_spaces_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut letters = |n: usize| -> String {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (b'a' + (state % 26) as u8) as char
            })
            .collect()
    };
    let train = |corpus: &Path| {
        let out = tmp.path().join("tok.json");
        let _ = std::fs::remove_file(&out);
        let args = format!(
            "tokenizer train --corpus {} --kind bpe --vocab-size 1024 --out {}",
            corpus.display(),
            out.display()
        );
        let child = primer_command(&cache, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (peak_memory_gb(child), out.is_file())
    };
    // A few long runs among words train: they are cut into words of at most 256 bytes.
    let words = "the cat sat on the mat and looked at the door ".repeat(20_000);
    let some_runs = tmp.path().join("some-runs.txt");
    std::fs::write(
        &some_runs,
        format!("{words}{} {words}{}\n", letters(50_000), letters(50_000)),
    )
    .unwrap();
    let ((status, _), written) = train(&some_runs);
    assert!(status.success() && written);
    // 8 MiB of letters without a space or newline: whole-document "words" took a BPE trainer
    // past 10 minutes and 2.9 GB at 50 MB; cut into words they still hold gigabytes (every word
    // distinct), so training stops with one line once 1 MiB of such runs has been read.
    let no_spaces = tmp.path().join("no-spaces.txt");
    std::fs::write(&no_spaces, letters(8 << 20)).unwrap();
    let ((status, peak), written) = train(&no_spaces);
    assert_eq!(status.code(), Some(2));
    assert!(!written, "a refused training wrote its tokenizer");
    assert!(peak < 1.0, "peak memory {peak:.2} GB");
    assert_error(
        &cache,
        &format!(
            "tokenizer train --corpus {} --kind bpe --vocab-size 1024 --out {}",
            no_spaces.display(),
            tmp.path().join("tok.json").display()
        ),
        &[
            "no-spaces.txt",
            "runs of more than 256 bytes without a space",
            "--tokenizer-kind char",
        ],
    );
}
