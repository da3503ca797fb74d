//! End-to-end tests of the `primer` binary: real runs on Tiny Shakespeare, exact resume, and
//! the one-line errors of bad input.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::*;

/// `pretrain` of a small, fast model on Tiny Shakespeare into `run`, plus `extra` options.
fn pretrain_args(run: &Path, objective: &str, extra: &str) -> String {
    format!(
        "pretrain --objective {objective} --corpus {} --out {} --no-tui \
         --layers 2 --d-model 32 --heads 2 --seq-len 32 --batch-size 8 {extra}",
        shakespeare(),
        run.display()
    )
}

fn pretrain(cache: &Path, run: &Path, objective: &str, extra: &str) -> Output {
    primer(cache, &pretrain_args(run, objective, extra))
}

#[test]
fn causal_run_learns_and_writes_a_complete_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("clm");
    let extra = "--tokenizer-kind char --steps 120 --eval-every 60 --eval-batches 4 --lr 3e-3";
    assert_ok(&pretrain(tmp.path(), &run, "clm", extra));
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
    let fields = [
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
    ];
    for key in fields {
        assert!(train[0].get(key).is_some(), "metrics record lacks {key}");
    }
    assert_eq!(train[119]["tokens_seen"], 120 * 8 * 32);
    // MFU is reported against the device's measured matmul rate: a share, well below 1 for a
    // model this small.
    let mfu = train[119]["mfu"].as_f64().unwrap();
    assert!(mfu > 0.0 && mfu < 1.0, "mfu {mfu}");
    let first = train[0]["loss"].as_f64().unwrap();
    let last = read_json(&run.join("summary.json"))["valid"]["loss"].as_f64().unwrap();
    // Uniform over 72 characters is ln 72 = 4.28; 120 steps reach well below 3.
    assert!(first > 3.5 && last < 3.0, "loss did not fall: {first} -> {last}");
    assert_eq!(records(&metrics, "valid").len(), 2);
    // At each evaluation the model continues the opening of a fixed validation excerpt.
    let samples = json_lines(&std::fs::read_to_string(run.join("samples.jsonl")).unwrap());
    assert_eq!(samples.len(), 2);
    for (sample, step) in samples.iter().zip([60, 120]) {
        assert_eq!(sample["step"], step);
        assert_eq!(sample["kind"], "generate");
        assert!(!sample["prompt"].as_str().unwrap().is_empty(), "{sample}");
        assert!(sample["text"].as_str().unwrap().len() > 10, "{sample}");
    }
    let config = read_json(&run.join("config.json"));
    assert_eq!(config["objective"], serde_json::json!({"name": "clm"}));
    assert_eq!(config["model"]["vocab_size"], 72);
    assert_eq!(config["train"]["seed"], 1337);

    let eval = primer(tmp.path(), &format!("eval {} --json --eval-batches 4", run.display()));
    assert_ok(&eval);
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    let eval_loss = report["loss"].as_f64().unwrap();
    assert!(
        (eval_loss - last).abs() < 1e-6,
        "eval {eval_loss} differs from the run's final validation {last}"
    );
    assert!(report.get("pseudo_ppl").is_none());
}

#[test]
fn masked_run_learns_above_the_unigram_baseline_and_reports_pseudo_perplexity() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("mlm");
    // Short sequences get a small MLM past its early plateau (predicting token frequencies)
    // in ~1000 steps.
    let args = format!(
        "pretrain --objective mlm --corpus {} --out {} --no-tui --tokenizer-kind char --layers 2 --d-model 32 \
         --heads 2 --seq-len 16 --batch-size 32 --lr 3e-3 --steps 1500 --eval-every 500 --eval-batches 8",
        shakespeare(),
        run.display()
    );
    assert_ok(&primer(tmp.path(), &args));
    let eval = primer(
        tmp.path(),
        &format!("eval {} --json --eval-batches 8 --pppl-tokens 64", run.display()),
    );
    assert_ok(&eval);
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(report["objective"]["name"], "mlm");
    let (loss, accuracy) = (report["loss"].as_f64().unwrap(), report["accuracy"].as_f64().unwrap());
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
    // At each evaluation the model fills three masks in a fixed validation excerpt.
    let samples = json_lines(&std::fs::read_to_string(run.join("samples.jsonl")).unwrap());
    assert_eq!(samples.len(), 3);
    let last = &samples[2];
    assert_eq!(last["kind"], "fill-mask");
    assert_eq!(last["text"].as_str().unwrap().matches("[MASK]").count(), 3, "{last}");
    let masks = last["masks"].as_array().unwrap();
    assert_eq!(masks.len(), 3);
    for mask in masks {
        let predictions = mask["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), 3);
        let probability = |i: usize| predictions[i][1].as_f64().unwrap();
        assert!(
            probability(0) >= probability(1) && probability(1) >= probability(2),
            "{mask}"
        );
    }
    let first = records(&metrics(&run), "train")[0]["loss"].as_f64().unwrap();
    assert!(first > 4.0, "training should start near ln(72) = 4.28, got {first}");
    assert_eq!(report["pseudo_ppl_tokens"], 64);
    let pppl = report["pseudo_ppl"].as_f64().unwrap();
    assert!(pppl > 1.0 && pppl < unigram_loss.exp(), "pseudo-perplexity {pppl}");
}

/// The fields that must match between an uninterrupted run and a resumed one (timings differ).
fn comparable(record: &Value) -> Value {
    let mut record = record.clone();
    for timing in ["elapsed_s", "tokens_per_s", "mfu", "cpu_percent", "memory_gb"] {
        record.as_object_mut().unwrap().remove(timing);
    }
    record
}

fn assert_same_after(reference: &[Value], resumed: &[Value], step: u64) {
    let after = |m: &[Value]| -> Vec<Value> {
        m.iter()
            .filter(|r| r["step"].as_u64().unwrap() > step)
            .map(comparable)
            .collect()
    };
    let (a, b) = (after(reference), after(resumed));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len(), "different number of records after step {step}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "resumed run differs");
    }
}

#[test]
fn halted_and_resumed_run_logs_the_same_metrics_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    // MLM with dropout and accumulation: masks, dropout, data order and optimizer state all
    // have to be restored; minimal pairs are scored at every validation.
    let extra = format!(
        "--vocab-size 300 --steps 20 --eval-every 5 --eval-batches 2 --dropout 0.1 --grad-accum 2 \
         --checkpoint-every 4 --warmup-steps 3 --minimal-pairs {}",
        write_pairs(tmp.path()).display()
    );
    let extra = extra.as_str();
    let full = tmp.path().join("full");
    assert_ok(&pretrain(tmp.path(), &full, "mlm", extra));
    let halted = tmp.path().join("halted");
    let output = pretrain(tmp.path(), &halted, "mlm", &format!("{extra} --halt-after 10"));
    assert_ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("halted after step 10"));
    assert!(!halted.join("model.bpk").exists());
    assert_eq!(records(&metrics(&halted), "train").len(), 10);
    assert_ok(&primer(
        tmp.path(),
        &format!("pretrain --resume {} --no-tui", halted.display()),
    ));
    assert_same_after(&metrics(&full), &metrics(&halted), 10);
    let summary = |run: &Path| -> Value {
        let mut summary = read_json(&run.join("summary.json"));
        for measured in ["wall_time_s", "peak_rss_gb"] {
            summary.as_object_mut().unwrap().remove(measured);
        }
        summary["valid"].as_object_mut().unwrap().remove("tokens_per_s");
        summary
    };
    assert_eq!(summary(&full), summary(&halted));
}

#[test]
fn whole_word_and_span_masking_train_and_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "--vocab-size 300 --steps 12 --eval-every 6 --eval-batches 2 --checkpoint-every 3";
    for masking in ["word", "span"] {
        let full = tmp.path().join(format!("{masking}-full"));
        let objective = format!("mlm:{masking}");
        assert_ok(&pretrain(tmp.path(), &full, &objective, extra));
        let config = read_json(&full.join("config.json"));
        assert_eq!(config["objective"]["name"], "mlm");
        assert_eq!(config["objective"]["masking"], masking);
        let halted = tmp.path().join(format!("{masking}-halted"));
        let args = format!("{extra} --halt-after 6");
        assert_ok(&pretrain(tmp.path(), &halted, &objective, &args));
        assert_ok(&primer(
            tmp.path(),
            &format!("pretrain --resume {} --no-tui", halted.display()),
        ));
        assert_same_after(&metrics(&full), &metrics(&halted), 6);
        let loss = records(&metrics(&full), "valid").last().unwrap()["loss"]
            .as_f64()
            .unwrap();
        assert!(
            loss.is_finite() && loss < 300f64.ln() * 1.5,
            "{masking}: valid loss {loss}"
        );
    }
    assert_error(
        tmp.path(),
        &pretrain_args(&tmp.path().join("bad"), "mlm:phrase", ""),
        &["objective mlm", "phrase", "token", "word", "span"],
    );

    // The same settings from an `[objective]` table of a TOML config train the same run.
    let toml = tmp.path().join("span.toml");
    std::fs::write(&toml, "[objective]\nname = \"mlm\"\nmasking = \"span\"\n").unwrap();
    let from_toml = tmp.path().join("span-toml");
    let args = pretrain_args(&from_toml, "FROM_CONFIG", extra)
        .replace("--objective FROM_CONFIG", &format!("--config {}", toml.display()));
    assert_ok(&primer(tmp.path(), &args));
    let objective = |run: &str| read_json(&tmp.path().join(run).join("config.json"))["objective"].clone();
    assert_eq!(objective("span-toml"), objective("span-full"));
    assert_same_after(&metrics(&tmp.path().join("span-full")), &metrics(&from_toml), 0);
}

/// A run directory written before objectives had their own settings (`objective: "mlm"`, MLM's
/// rates under `train.mlm`, `--mask-rate` among the options) resumes exactly and evaluates.
#[test]
fn run_directories_from_before_the_objective_registry_resume_and_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "--vocab-size 300 --steps 8 --eval-every 4 --eval-batches 2 --checkpoint-every 4";
    let objective = "mlm:mask_rate=0.2";
    let full = tmp.path().join("full");
    assert_ok(&pretrain(tmp.path(), &full, objective, extra));
    let old = tmp.path().join("old");
    assert_ok(&pretrain(
        tmp.path(),
        &old,
        objective,
        &format!("{extra} --halt-after 4"),
    ));

    let path = old.join("config.json");
    let mut config = read_json(&path);
    let mut rates = config["objective"].as_object().unwrap().clone();
    rates.remove("name");
    rates.remove("masking");
    config["objective"] = "mlm".into();
    config["train"]["mlm"] = rates.into();
    let options = config["options"].as_object_mut().unwrap();
    options.insert("objective".into(), "mlm".into());
    options.insert("mask-rate".into(), 0.2.into());
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();

    assert_ok(&primer(
        tmp.path(),
        &format!("pretrain --resume {} --no-tui", old.display()),
    ));
    assert_same_after(&metrics(&full), &metrics(&old), 4);
    let eval = primer(
        tmp.path(),
        &format!("eval {} --json --eval-batches 2 --pppl-tokens 16", old.display()),
    );
    assert_ok(&eval);
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(report["objective"]["mask_rate"], 0.2);
}

/// The scalars of the TensorBoard event files in `dir` as TensorBoard itself reads them:
/// tag -> [(step, value)].
fn tensorboard_scalars(dir: &Path) -> serde_json::Map<String, Value> {
    let venv = std::env::var("VIRTUAL_ENV").expect("TensorBoard's reader lives in the torch venv: `. scripts/env`");
    let script = "import sys, json\n\
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
        acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0})\n\
        acc.Reload()\n\
        print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()['scalars']}))";
    let output = Command::new(Path::new(&venv).join("bin/python"))
        .args(["-W", "ignore", "-c", script])
        .arg(dir)
        .output()
        .unwrap();
    assert_ok(&output);
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Three minimal pairs in a JSON Lines file.
fn write_pairs(dir: &Path) -> std::path::PathBuf {
    let pairs = dir.join("pairs.jsonl");
    let pair = |good: &str, bad: &str| format!("{}\n", serde_json::json!({"sentence_good": good, "sentence_bad": bad}));
    let text = [
        pair("the king", "teh kqng"),
        pair("good night", "godo nihgt"),
        pair("my lord", "ym lrdo"),
    ]
    .concat();
    std::fs::write(&pairs, text).unwrap();
    pairs
}

#[test]
fn tensorboard_event_files_hold_every_logged_metric_across_a_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    // Minimal pairs scored at every validation: 2 of these 3, drawn with the run's seed.
    let pairs = write_pairs(tmp.path());
    let extra = format!(
        "--tokenizer-kind char --steps 30 --eval-every 10 --eval-batches 1 --tensorboard \
         --minimal-pairs {} --minimal-pairs-limit 2",
        pairs.display()
    );
    assert_ok(&pretrain(tmp.path(), &run, "clm", &format!("{extra} --halt-after 15")));
    // Resumed without the flag: a run that has event files goes on writing them.
    assert_ok(&primer(
        tmp.path(),
        &format!("pretrain --resume {} --no-tui", run.display()),
    ));
    assert_eq!(
        std::fs::read_dir(run.join("tensorboard")).unwrap().count(),
        2,
        "one event file per process"
    );

    let scalars = tensorboard_scalars(&run.join("tensorboard"));
    let metrics = metrics(&run);
    for (split, name) in [
        ("train", "loss"),
        ("train", "lr"),
        ("train", "grad_norm"),
        ("valid", "bpb"),
        ("valid", "accuracy"),
        ("valid", "minimal_pairs_accuracy"),
    ] {
        let logged: Vec<(u64, f32)> = records(&metrics, split)
            .iter()
            .map(|r| (r["step"].as_u64().unwrap(), r[name].as_f64().unwrap() as f32))
            .collect();
        let read: Vec<(u64, f32)> = scalars[&format!("{split}/{name}")]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap() as f32))
            .collect();
        assert_eq!(read, logged, "{split}/{name}");
    }
    assert_eq!(records(&metrics, "train").len(), 30);
    assert!(!scalars.contains_key("train/step") && !scalars.contains_key("train/split"));
    assert!(!scalars.contains_key("train/minimal_pairs_accuracy"));
    for record in records(&metrics, "valid") {
        let accuracy = record["minimal_pairs_accuracy"].as_f64().unwrap();
        assert!([0.0, 0.5, 1.0].contains(&accuracy), "2 pairs: {accuracy}");
    }
    assert_error(
        tmp.path(),
        &pretrain_args(&tmp.path().join("bad"), "clm", "--minimal-pairs-limit 5"),
        &["--minimal-pairs-limit without --minimal-pairs"],
    );
}

/// Starts a run, waits until it has logged `steps` lines, then sends it `signal` and waits.
fn start_and_signal(
    cache: &Path,
    run: &Path,
    objective: &str,
    extra: &str,
    steps: usize,
    signal: &str,
) -> std::process::ExitStatus {
    let mut child = start_and_wait(cache, &pretrain_args(run, objective, extra), run, steps);
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert!(!run.join("summary.json").exists(), "the run finished before the signal");
    status
}

#[test]
fn killed_or_terminated_runs_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = "--tokenizer-kind char --steps 400 --eval-every 50 --eval-batches 1 --checkpoint-every 7";
    let full = tmp.path().join("full");
    assert_ok(&pretrain(tmp.path(), &full, "clm", extra));

    // kill -9: resumes from the last periodic checkpoint; records written after it are
    // dropped and written again identically.
    let killed = tmp.path().join("killed");
    start_and_signal(tmp.path(), &killed, "clm", extra, 40, "-KILL");
    assert_ok(&primer(
        tmp.path(),
        &format!("pretrain --resume {} --no-tui", killed.display()),
    ));
    assert_same_after(&metrics(&full), &metrics(&killed), 0);
    let samples = |run: &Path| std::fs::read_to_string(run.join("samples.jsonl")).unwrap();
    assert_eq!(samples(&full), samples(&killed), "samples are drawn again identically");

    // SIGTERM (as Ctrl-C): stops at the next step boundary with a checkpoint of that step.
    let terminated = tmp.path().join("terminated");
    let status = start_and_signal(tmp.path(), &terminated, "clm", extra, 30, "-TERM");
    assert_eq!(status.code(), Some(130));
    let last_step = metrics(&terminated).last().unwrap()["step"].as_u64().unwrap();
    let checkpoint = terminated.join(format!("checkpoints/step-{last_step:08}"));
    assert!(
        checkpoint.join("state.json").exists(),
        "no checkpoint at the step it stopped on"
    );
    assert_ok(&primer(
        tmp.path(),
        &format!("pretrain --resume {} --no-tui", terminated.display()),
    ));
    assert_same_after(&metrics(&full), &metrics(&terminated), 0);
}

/// Prefix-LM learns, resumes exactly after `--halt-after` and after kill -9, and its runs
/// generate (the prompt read as a prefix), score, prompt and fine-tune.
#[test]
fn prefix_lm_learns_resumes_exactly_and_serves_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let extra = "--tokenizer-kind char --steps 150 --eval-every 50 --eval-batches 4 --checkpoint-every 7 --lr 3e-3";
    let full = tmp.path().join("full");
    assert_ok(&pretrain(cache, &full, "prefix", extra));
    let log = metrics(&full);
    let valid = records(&log, "valid");
    let (first, last) = (valid[0]["loss"].as_f64().unwrap(), valid[2]["loss"].as_f64().unwrap());
    assert!(
        last < first - 0.5 && last < 72f64.ln() * 0.7,
        "valid loss {first} -> {last}"
    );
    let samples = json_lines(&std::fs::read_to_string(full.join("samples.jsonl")).unwrap());
    assert_eq!(samples[0]["kind"], "generate");

    assert_resumes_exactly(cache, &full, "prefix", extra);

    let run = full.display();
    let generated = primer_ok(
        cache,
        &format!("generate --run {run} --prompt ROMEO: --max-new-tokens 12 --seed 1"),
    );
    assert!(generated.starts_with("ROMEO:") && generated.len() > 10, "{generated}");
    let uncached = primer_ok(
        cache,
        &format!("generate --run {run} --prompt ROMEO: --max-new-tokens 12 --seed 1 --no-cache"),
    );
    assert_eq!(generated, uncached, "the cache reads the prompt as a prefix too");
    assert_error(
        cache,
        &format!("fill-mask --run {run} a[MASK]"),
        &["prefix-LM (prefix) run", "mlm"],
    );
    let docs = tmp.path().join("docs.txt");
    std::fs::write(&docs, "ROMEO: What say you?\n").unwrap();
    let scores = json_lines(&primer_ok(
        cache,
        &format!("score --run {run} --file {} --json", docs.display()),
    ));
    assert_eq!(scores[0]["kind"], "perplexity");

    let tuned = tmp.path().join("tuned");
    let best = prompt_and_finetune(cache, &full, &tuned);
    assert!(best > 0.9, "fine-tuned prefix-LM accuracy {best}");
    let tuned = tuned.display().to_string();
    // The first two validation rows of the task.
    let args = [
        "classify",
        "--run",
        &tuned,
        "--json",
        "the a bad a",
        "play the good the",
    ];
    let output = primer_command_args(cache, &args).output().unwrap();
    assert_ok(&output);
    let labels: Vec<Value> = json_lines(&String::from_utf8(output.stdout).unwrap())
        .iter()
        .map(|row| row["label"].clone())
        .collect();
    assert_eq!(labels, ["0", "1"]);

    let eval = primer(cache, &format!("eval {run} --json --eval-batches 2"));
    assert_ok(&eval);
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(report["objective"]["name"], "prefix");
    assert!(report["pseudo_ppl"].is_null() && report["bpb"].as_f64().unwrap() > 0.0);
}

/// ELECTRA learns to detect replaced tokens, resumes exactly (generator, discriminator head and
/// sampling included) after `--halt-after` and after kill -9, and its discriminator scores,
/// prompts, fine-tunes and evaluates; generating and filling masks are refused.
#[test]
fn electra_learns_resumes_exactly_and_its_discriminator_serves_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let extra = "--tokenizer-kind char --steps 150 --eval-every 50 --eval-batches 4 --checkpoint-every 7 --lr 1e-3";
    let full = tmp.path().join("full");
    assert_ok(&pretrain(cache, &full, "electra", extra));
    assert!(full.join("companion.bpk").exists() && full.join("checkpoints/step-00000150/companion.bpk").exists());
    let log = metrics(&full);
    let valid = records(&log, "valid");
    // Early on the generator's samples are rare characters, which the discriminator learns to
    // spot; the loss falls far below guessing (ln 72 + 50 ln 2 for the generator and the
    // discriminator: 38.9 nats). A model this small learns little context in 150 steps.
    let auc = valid[0]["objective_metrics"]["discriminator_auc"].as_f64().unwrap();
    assert!(auc > 0.7, "discriminator AUC at step 50: {auc}");
    let loss = valid[2]["loss"].as_f64().unwrap();
    assert!(loss < 0.7 * (72f64.ln() + 50.0 * 2f64.ln()), "valid loss {loss}");
    let samples = json_lines(&std::fs::read_to_string(full.join("samples.jsonl")).unwrap());
    assert_eq!(samples[0]["kind"], "detect");

    // Where context alone tells a replaced letter (rotations of the alphabet), the
    // discriminator learns to read it: near-perfect detection of even the generator's most
    // frequent letters.
    let alphabet: String = (0..3000)
        .map(|i: u32| {
            (0..40)
                .map(|j| char::from(b'a' + ((i * 7 + j) % 26) as u8))
                .collect::<String>()
                + "\n\n"
        })
        .collect();
    let corpus = tmp.path().join("alphabet.txt");
    std::fs::write(&corpus, alphabet).unwrap();
    let context = tmp.path().join("context");
    primer_ok(
        cache,
        &format!(
            "pretrain --objective electra --corpus {} --out {} --no-tui --tokenizer-kind char --layers 2 --d-model 64 \
             --heads 2 --seq-len 32 --batch-size 16 --steps 300 --eval-every 300 --eval-batches 4 --lr 1e-3",
            corpus.display(),
            context.display()
        ),
    );
    let last = records(&metrics(&context), "valid")[0]["objective_metrics"]["discriminator_auc"]
        .as_f64()
        .unwrap();
    assert!(last > 0.95, "discriminator AUC on rotated alphabets {last}");

    assert_resumes_exactly(cache, &full, "electra", extra);

    let run = full.display();
    assert_error(
        cache,
        &format!("generate --run {run} --prompt ROMEO:"),
        &["replaced-token detection (electra) run", "clm or prefix"],
    );
    assert_error(
        cache,
        &format!("fill-mask --run {run} a[MASK]"),
        &["(electra) run", "mlm"],
    );
    let docs = tmp.path().join("docs.txt");
    std::fs::write(&docs, "ROMEO: What say you?\nyou? say What ROMEO:\n").unwrap();
    let scores = json_lines(&primer_ok(
        cache,
        &format!("score --run {run} --file {} --json", docs.display()),
    ));
    assert_eq!(scores[0]["kind"], "replaced-token perplexity");
    assert!(
        scores[0]["nll"].as_f64().unwrap() < scores[1]["nll"].as_f64().unwrap(),
        "{scores:?}"
    );

    let best = prompt_and_finetune(cache, &full, &tmp.path().join("tuned"));
    assert!(best > 0.9, "fine-tuned ELECTRA accuracy {best}");

    let eval = primer(cache, &format!("eval {run} --json --eval-batches 2"));
    assert_ok(&eval);
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(report["objective"]["name"], "electra");
    let auc = report["objective_metrics"]["discriminator_auc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auc), "{report}");
}

/// GPT-BERT learns, resumes exactly, and serves both uses: read left to right it generates,
/// scores and prompts as a causal model; with `--pll` it is scored read both ways, each hidden
/// token predicted from the position before it, as its masked rows were trained; it fine-tunes,
/// and filling masks is refused.
#[test]
fn gpt_bert_learns_resumes_exactly_and_is_scored_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let extra = "--tokenizer-kind char --steps 150 --eval-every 50 --eval-batches 4 --checkpoint-every 7 --lr 3e-3";
    let full = tmp.path().join("full");
    assert_ok(&pretrain(cache, &full, "gpt-bert", extra));
    let log = metrics(&full);
    let valid = records(&log, "valid");
    let causal = |i: usize| valid[i]["objective_metrics"]["causal_accuracy"].as_f64().unwrap();
    // Characters by frequency alone reach about 0.15 (`eval`'s unigram baseline); the causal
    // rows learn past it.
    assert!(
        causal(2) > 0.18 && causal(2) > causal(0),
        "causal-row accuracy {} then {}",
        causal(0),
        causal(2)
    );
    assert!(valid[2]["accuracy"].as_f64().unwrap() > 0.18, "{}", valid[2]);

    assert_resumes_exactly(cache, &full, "gpt-bert", extra);

    let run = full.display();
    let generated = primer_ok(
        cache,
        &format!("generate --run {run} --prompt ROMEO: --max-new-tokens 12 --seed 1"),
    );
    assert!(generated.starts_with("ROMEO:") && generated.len() > 10, "{generated}");
    assert_error(
        cache,
        &format!("fill-mask --run {run} a[MASK]"),
        &["(gpt-bert) run", "mlm"],
    );
    let docs = tmp.path().join("docs.txt");
    std::fs::write(&docs, "ROMEO: What say you?\nyou? say What ROMEO:\n").unwrap();
    let scored = |pll: &str| {
        json_lines(&primer_ok(
            cache,
            &format!("score --run {run} --file {} --json {pll}", docs.display()),
        ))
    };
    let (causal_scores, masked_scores) = (scored(""), scored("--pll original"));
    assert_eq!(causal_scores[0]["kind"], "perplexity");
    assert_eq!(masked_scores[0]["kind"], "pseudo-perplexity");
    for scores in [&causal_scores, &masked_scores] {
        // Shakespeare in order reads likelier than its words reversed, either way.
        assert!(
            scores[0]["nll"].as_f64().unwrap() < scores[1]["nll"].as_f64().unwrap(),
            "{scores:?}"
        );
    }
    assert_ne!(causal_scores[0]["nll"], masked_scores[0]["nll"]);

    let best = prompt_and_finetune(cache, &full, &tmp.path().join("tuned"));
    assert!(best > 0.9, "fine-tuned GPT-BERT accuracy {best}");
}

/// Runs of `objective` halted after step 60 and killed with SIGKILL after step 40, then
/// resumed, log exactly what the uninterrupted run `full` (made with `extra`) logged.
fn assert_resumes_exactly(cache: &Path, full: &Path, objective: &str, extra: &str) {
    let halted = cache.join(format!("{objective}-halted"));
    assert_ok(&pretrain(
        cache,
        &halted,
        objective,
        &format!("{extra} --halt-after 60"),
    ));
    assert_ok(&primer(
        cache,
        &format!("pretrain --resume {} --no-tui", halted.display()),
    ));
    assert_same_after(&metrics(full), &metrics(&halted), 60);
    let killed = cache.join(format!("{objective}-killed"));
    start_and_signal(cache, &killed, objective, extra, 40, "-KILL");
    assert_ok(&primer(
        cache,
        &format!("pretrain --resume {} --no-tui", killed.display()),
    ));
    assert_same_after(&metrics(full), &metrics(&killed), 0);
}

/// Prompts `run` zero-shot on the two-word sentiment task (an accuracy comes back), fine-tunes
/// it into `tuned` and returns the fine-tune's best validation accuracy.
fn prompt_and_finetune(cache: &Path, run: &Path, tuned: &Path) -> f64 {
    let (train, valid) = write_task(cache);
    let task = format!("--task {train} --valid-file {valid} --text-column sentence");
    let run_path = run.display().to_string();
    let mut args = vec!["prompt-classify", "--run", &run_path, "--template", "{text} : [LABEL]"];
    args.extend(task.split_whitespace());
    args.extend(["--verbalizer", "0=bad,1=good", "--json"]);
    let prompted = primer_command_args(cache, &args).output().unwrap();
    assert_ok(&prompted);
    let accuracy = serde_json::from_slice::<Value>(&prompted.stdout).unwrap()["accuracy"]
        .as_f64()
        .unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    primer_ok(
        cache,
        &format!(
            "finetune --from {run_path} {task} --out {} --no-tui --epochs 6 --lr 2e-3",
            tuned.display()
        ),
    );
    read_json(&tuned.join("summary.json"))["valid"]["accuracy"]
        .as_f64()
        .unwrap()
}

/// Runs `primer` expecting exit code 2, one error line containing every needle, and no run
/// directory left behind.
fn assert_refused(cache: &Path, args: &str, run: &Path, needles: &[&str]) {
    assert_error(cache, args, needles);
    assert!(!run.exists(), "`{args}` left a run directory behind");
}

#[test]
fn bad_input_is_refused_with_one_line_naming_it_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, cache, run) = (tmp.path(), tmp.path().join("cache"), tmp.path().join("run"));
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    };
    let pretrain = |corpus: &str, extra: &str| {
        format!(
            "pretrain --objective clm --tokenizer-kind char --out {} --no-tui --corpus {corpus} {extra}",
            run.display()
        )
    };
    let refuse = |args: String, needles: &[&str]| assert_refused(&cache, &args, &run, needles);

    refuse(
        pretrain("/no/such/corpus.txt", ""),
        &["/no/such/corpus.txt", "matched no file"],
    );
    refuse(pretrain(&write("empty.txt", b""), ""), &["empty.txt", "empty"]);
    refuse(pretrain(&write("blank.txt", b"\n\n  \n"), ""), &["blank.txt", "empty"]);
    refuse(
        pretrain(&write("binary.txt", b"text\x00\x01\x02"), ""),
        &["binary.txt", "binary"],
    );
    refuse(
        pretrain(&write("latin1.txt", b"caf\xe9 au lait\n"), ""),
        &["latin1.txt", "byte 3", "--lossy"],
    );
    let tiny = write("tiny.txt", b"one short line\n\nanother short line\n");
    refuse(
        pretrain(&tiny, &format!("--valid {tiny}")),
        &["tokens", "fewer than one block", "--seq-len"],
    );
    refuse(pretrain(&write("data.parquet", b"PAR1"), ""), &["data.parquet", ".txt"]);

    let shakespeare = shakespeare();
    refuse(pretrain(&shakespeare, "--heads 3"), &["--heads 3", "--d-model 128"]);
    refuse(pretrain(&shakespeare, "--layers 0"), &["--layers"]);
    refuse(pretrain(&shakespeare, "--lr=-0.1"), &["--lr"]);
    refuse(pretrain(&shakespeare, "--dropout 1.5"), &["--dropout"]);
    let with_objective = |objective: &str| pretrain(&shakespeare, "").replace("clm", objective);
    refuse(
        with_objective("mlm:mask_rate=0"),
        &["objective mlm: mask_rate 0 must be in (0, 1]"],
    );
    refuse(with_objective("bert"), &["unknown objective `bert`", "mlm, clm"]);
    refuse(
        pretrain(&shakespeare, "--peak-gflops 0"),
        &["--peak-gflops 0", "positive"],
    );
    refuse(
        pretrain(&shakespeare, "--steps 5 --tokens 100"),
        &["--steps", "--tokens"],
    );
    let run_s = run.display();
    refuse(
        format!("pretrain --objective t5 --corpus {shakespeare} --out {run_s}"),
        &["t5", "mlm", "clm"],
    );
    refuse(
        format!("pretrain --corpus {shakespeare} --out {run_s}"),
        &["--objective"],
    );

    // Tokenizers without primer's special tokens, or not tokenizers at all.
    let plain = write(
        "plain.json",
        br#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
            "pre_tokenizer":null,"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"a":0,"b":1},"unk_token":"a"}}"#,
    );
    refuse(
        pretrain(&shakespeare, &format!("--tokenizer {plain}")),
        &["plain.json", "[PAD]"],
    );
    let garbage = write("garbage.json", b"{not json");
    refuse(
        pretrain(&shakespeare, &format!("--tokenizer {garbage}")),
        &["garbage.json", "tokenizer"],
    );

    // Backends: an unknown name (flag or environment) and one not compiled into this build.
    refuse(
        pretrain(&shakespeare, "--backend nosuch"),
        &["nosuch", "flex", "wgpu", "tch"],
    );
    let from_env = primer_command(&cache, &pretrain(&shakespeare, ""))
        .env("PRIMER_BACKEND", "bogus")
        .output()
        .unwrap();
    assert_eq!(from_env.status.code(), Some(2));
    assert!(
        stderr(&from_env).contains("PRIMER_BACKEND=bogus"),
        "{}",
        stderr(&from_env)
    );
    assert!(!run.exists());
    #[cfg(not(feature = "cuda"))]
    refuse(
        pretrain(&shakespeare, "--backend cuda"),
        &["cuda is not compiled", "--features cuda"],
    );

    // A config file with an unknown key.
    let config = write("run.toml", b"objective = \"clm\"\nlayerz = 3\n");
    refuse(
        pretrain(&shakespeare, &format!("--config {config}")),
        &["run.toml", "layerz"],
    );

    // Prepared data made with another tokenizer than the one given.
    let (char_tok, bpe_tok) = (dir.join("char.json"), dir.join("bpe.json"));
    for (kind, out) in [("char", &char_tok), ("bpe", &bpe_tok)] {
        let args = format!(
            "tokenizer train --corpus {shakespeare} --kind {kind} --vocab-size 300 --out {}",
            out.display()
        );
        assert_ok(&primer(&cache, &args));
    }
    let prepared = primer(
        &cache,
        &format!("prepare --corpus {shakespeare} --tokenizer {}", char_tok.display()),
    );
    assert_ok(&prepared);
    let prepared = String::from_utf8_lossy(&prepared.stdout).trim().to_string();
    refuse(
        format!(
            "pretrain --objective clm --data {prepared} --tokenizer {} --out {run_s}",
            bpe_tok.display()
        ),
        &["another tokenizer", "vocabulary 300", "vocabulary 72"],
    );
}

#[test]
fn run_directories_are_not_overwritten_or_resumed_with_another_config() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, run) = (tmp.path().join("cache"), tmp.path().join("run"));
    let extra = "--tokenizer-kind char --steps 6 --eval-every 3 --eval-batches 1 --checkpoint-every 3";
    assert_ok(&pretrain(&cache, &run, "clm", &format!("{extra} --halt-after 3")));

    let again = primer(
        &cache,
        &format!(
            "pretrain --objective clm --corpus {} --out {} --no-tui",
            shakespeare(),
            run.display()
        ),
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists") && stderr(&again).contains("--overwrite"));

    let changed = primer(
        &cache,
        &format!("pretrain --resume {} --d-model 64 --no-tui", run.display()),
    );
    assert_eq!(changed.status.code(), Some(2));
    let err = stderr(&changed);
    assert!(
        err.contains("cannot resume") && err.contains("model.d_model: 32 vs 64"),
        "{err}"
    );

    // A corrupt checkpoint is named, with the way out.
    std::fs::write(run.join("checkpoints/step-00000003/model.bpk"), b"not a burnpack file").unwrap();
    let corrupt = primer(&cache, &format!("pretrain --resume {} --no-tui", run.display()));
    assert_eq!(corrupt.status.code(), Some(2));
    let err = stderr(&corrupt);
    assert!(
        err.contains("step-00000003 is corrupt") && err.contains("model.bpk does not match its sha256"),
        "{err}"
    );

    // --overwrite starts over.
    assert_ok(&pretrain(&cache, &run, "clm", &format!("{extra} --overwrite")));
    assert!(run.join("summary.json").exists());
}
