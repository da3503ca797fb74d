//! Hugging Face interop, checked against transformers itself (installed in the torch venv by
//! `scripts/setup-torch`; nothing is downloaded), and every objective's training checked against
//! the PyTorch reference of bench/reference, masks against transformers' collators.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Int, Tensor, TensorData};
use common::*;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::AttentionMode;
use primer_objectives::info::Scoring;
use primer_trainer::config::RunConfig;
use primer_trainer::networks::load_model;
use primer_trainer::run_dir::RunDir;
use serde_json::{Value, json};

/// Texts for the logits (of different lengths, so the batch is padded) and for the tokenizer
/// (several scripts, so byte-level pieces and merges both show).
const TEXTS: [&str; 3] = [
    "First Citizen: Before we proceed any further, hear me speak.",
    "All: Speak, speak.",
    "Naïve café — 北京欢迎你! Привет, мир. ¿Qué tal? 🙂",
];

/// A small run that trains at a high rate, so that biases leave zero and LayerNorm gains leave
/// one: byte-level BPE, 2 layers, 2 heads of 16.
fn pretrain(cache: &Path, run: &Path, objective: &str, positions: &str, tied: bool) {
    primer_ok(
        cache,
        &format!(
            "pretrain --objective {objective} --positions {positions} --tie-embeddings {tied} --corpus {} --out {} --no-tui \
             --tokenizer-kind bpe --vocab-size 400 --layers 2 --d-model 32 --heads 2 --seq-len 64 \
             --batch-size 8 --steps 40 --lr 1e-2 --warmup-steps 4 --eval-every 40 --eval-batches 1",
            shakespeare(),
            run.display()
        ),
    );
}

/// How a run's model reads a text when it is scored: both ways for a masked model, left to
/// right for the rest (prefix-LM included), as its export runs it.
fn scored_reading(config: &RunConfig) -> AttentionMode {
    match config.objective.info().scoring {
        Scoring::LogLikelihood => AttentionMode::Causal,
        _ => AttentionMode::Bidirectional,
    }
}

/// What the checker needs: the texts' ids (each row read alone by primer) and primer's logits.
fn case(run: &Path) -> Value {
    let device = Device::flex();
    let dir = RunDir::new(run);
    let config = dir.read_config().unwrap();
    let tokenizer = PrimerTokenizer::from_file(&dir.tokenizer()).unwrap();
    let model = load_model(&dir, &config, &device).unwrap();
    let mode = scored_reading(&config);
    // Trained far enough that a misplaced bias or gain would show in the logits.
    let largest = |tensor: Tensor<1>| tensor.abs().max().into_scalar::<f32>();
    let qkv_bias = model.blocks[0].attn.qkv.bias.as_ref().unwrap().val();
    assert!(largest(qkv_bias) > 1e-3, "qkv biases still zero");
    assert!(
        largest(model.norm.gamma.val().sub_scalar(1.0)) > 1e-3,
        "LayerNorm gains still one"
    );
    let rows: Vec<Vec<u32>> = TEXTS[..2].iter().map(|text| tokenizer.encode(text).unwrap()).collect();
    let logits: Vec<Vec<Vec<f32>>> = rows
        .iter()
        .map(|row| {
            let ids: Vec<i64> = row.iter().map(|&id| id as i64).collect();
            let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, row.len()]), &device);
            let values = model
                .forward(tokens, mode.clone())
                .into_data()
                .try_into_vec::<f32>()
                .unwrap();
            values.chunks(config.model.vocab_size).map(<[f32]>::to_vec).collect()
        })
        .collect();
    let text_ids: Vec<Vec<u32>> = TEXTS.iter().map(|text| tokenizer.encode(text).unwrap()).collect();
    json!({
        "rows": rows,
        "logits": logits,
        "pad_id": tokenizer.specials().pad,
        "bidirectional": mode == AttentionMode::Bidirectional,
        "texts": TEXTS,
        "text_ids": text_ids,
    })
}

/// Runs `tests/hf/SCRIPT` with the torch venv's Python, offline; the JSON of its last line.
fn python(script: &str, args: &[&Path]) -> Value {
    let venv = std::env::var("VIRTUAL_ENV").expect("transformers lives in the torch venv: `. scripts/env`");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hf").join(script);
    let output = Command::new(Path::new(&venv).join("bin/python"))
        .args(["-W", "ignore"])
        .arg(script)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .unwrap();
    assert_ok(&output);
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// Runs `tests/hf/check_export.py` on an export.
fn check_with_transformers(export: &Path, case: &Value, dir: &Path) -> Value {
    let case_path = dir.join("case.json");
    std::fs::write(&case_path, case.to_string()).unwrap();
    python("check_export.py", &[export, &case_path])
}

#[test]
fn exports_load_in_transformers_and_give_primers_logits() {
    let tmp = tempfile::tempdir().unwrap();
    for (objective, positions, tied, class) in [
        ("clm", "rotary", true, "GPTNeoXForCausalLM"),
        ("clm", "learned", true, "GPT2LMHeadModel"),
        ("mlm", "rotary", true, "PrimerForMaskedLM"),
        ("mlm", "learned", true, "PrimerForMaskedLM"),
        ("clm", "rotary", false, "GPTNeoXForCausalLM"),
        ("clm", "learned", false, "GPT2LMHeadModel"),
        ("mlm", "learned", false, "PrimerForMaskedLM"),
        ("prefix", "rotary", true, "GPTNeoXForCausalLM"),
    ] {
        let name = format!("{objective}-{positions}{}", if tied { "" } else { "-untied" });
        let run = tmp.path().join(&name);
        pretrain(tmp.path(), &run, objective, positions, tied);
        let export = tmp.path().join(format!("{name}-hf"));
        primer_ok(
            tmp.path(),
            &format!("export --run {} --format hf --out {}", run.display(), export.display()),
        );
        let report = check_with_transformers(&export, &case(&run), tmp.path());
        assert_eq!(report["class"], class, "{name}: {report}");
        for keys in ["missing", "unexpected", "mismatched"] {
            assert_eq!(report[keys], json!([]), "{name}: {keys} keys: {report}");
        }
        let diff = report["max_abs_diff"].as_f64().unwrap();
        assert!(diff < 1e-5, "{name}: logits differ by {diff}");
        // A masked model cannot be taken for a causal one: transformers refuses to.
        let masked = objective == "mlm";
        assert_eq!(
            report["causal_refused"],
            if masked { json!(true) } else { json!(null) },
            "{name}"
        );
        eprintln!("{name} as {class}: largest logit difference {diff:.1e}");
        // Imported back, the model gives primer's logits bit for bit.
        let back = tmp.path().join(format!("{name}-back"));
        primer_ok(
            tmp.path(),
            &format!("import --from {} --out {}", export.display(), back.display()),
        );
        let ids = PrimerTokenizer::from_file(&RunDir::new(&run).tokenizer())
            .unwrap()
            .encode(TEXTS[0])
            .unwrap();
        assert!(
            logits_of(&back, &ids) == logits_of(&run, &ids),
            "{name}: export then import changed the logits"
        );
        assert_eq!(report["tokenizer_ids_equal"], true, "{name}: {report}");
        assert_eq!(report["mask_token"], "[MASK]", "{name}: {report}");
        assert_eq!(report["bos_token"], "[EOS]", "{name}: the token documents open with");
    }
}

/// BLiMP paradigms whose first pairs the evaluator tests score: agreement across a word, a
/// phrase and a clause.
const PARADIGMS: [&str; 3] = [
    "anaphor_gender_agreement",
    "determiner_noun_agreement_1",
    "regular_plural_subject_verb_agreement_1",
];

/// The first `pairs` pairs of each of [`PARADIGMS`], one file each in `dir/pairs`, as
/// `--pairs` and lm-eval's local tasks read them.
fn blimp_sample(dir: &Path, pairs: usize) -> std::path::PathBuf {
    let out = dir.join("pairs");
    std::fs::create_dir_all(&out).unwrap();
    for paradigm in PARADIGMS {
        let file = format!("{paradigm}.jsonl");
        let text = std::fs::read_to_string(shared_data().join("blimp").join(&file)).unwrap();
        let head: String = text.lines().take(pairs).map(|line| format!("{line}\n")).collect();
        std::fs::write(out.join(file), head).unwrap();
    }
    out
}

/// `primer minimal-pairs --scores` of `run` on `pairs` with `extra` flags: each sentence's
/// score in order (acceptable first), and the accuracy per paradigm.
fn primer_pair_scores(cache: &Path, run: &Path, pairs: &Path, extra: &str) -> (Vec<f64>, Value) {
    let printed: Value = serde_json::from_str(&primer_ok(
        cache,
        &format!(
            "minimal-pairs --run {} --pairs {} --json --scores {extra}",
            run.display(),
            pairs.display()
        ),
    ))
    .unwrap();
    let scores = printed["scores"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|pair| pair.as_array().unwrap().iter().map(|s| s.as_f64().unwrap()))
        .collect();
    let accuracy = printed["paradigms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| (group["name"].as_str().unwrap().to_string(), group["accuracy"].clone()))
        .collect();
    (scores, accuracy)
}

/// The largest difference between primer's scores and a reference's, both in sentence order.
fn largest_difference(ours: &[f64], theirs: &Value) -> f64 {
    let theirs = theirs.as_array().unwrap();
    assert_eq!(ours.len(), theirs.len(), "one score per sentence");
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b.as_f64().unwrap()).abs())
        .fold(0.0, f64::max)
}

#[test]
fn exports_score_minimal_pairs_as_minicons_and_lm_eval_do() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = blimp_sample(tmp.path(), 20);
    // The masked model: byte-level BPE of 400 tokens splits most words, so the two masks differ.
    let mlm = tmp.path().join("mlm");
    pretrain(tmp.path(), &mlm, "mlm", "rotary", true);
    let export = tmp.path().join("mlm-hf");
    primer_ok(
        tmp.path(),
        &format!("export --run {} --out {}", mlm.display(), export.display()),
    );
    let minicons = python("check_scores.py", &[&export, &pairs, &tmp.path().join("mlm-work")]);
    // `primer score` reads the same sentences, one per line.
    let sentences = tmp.path().join("sentences.txt");
    std::fs::write(&sentences, read_sentences(&pairs).join("\n") + "\n").unwrap();
    let mut by_pll = Vec::new();
    for (pll, metric) in [("original", "original"), ("word-l2r", "within_word_l2r")] {
        let (ours, _) = primer_pair_scores(tmp.path(), &mlm, &pairs, &format!("--pll {pll}"));
        let diff = largest_difference(&ours, &minicons[metric]);
        assert!(
            diff < 1e-4,
            "minimal-pairs --pll {pll} against minicons {metric}: {diff}"
        );
        eprintln!("mlm, --pll {pll}: largest difference from minicons' {metric} {diff:.1e}");
        let scored: Vec<f64> = json_lines(&primer_ok(
            tmp.path(),
            &format!(
                "score --run {} --file {} --json --pll {pll}",
                mlm.display(),
                sentences.display()
            ),
        ))
        .iter()
        .map(|doc| doc["log_prob"].as_f64().unwrap())
        .collect();
        let diff = largest_difference(&scored, &minicons[metric]);
        assert!(diff < 1e-4, "score --pll {pll} against minicons {metric}: {diff}");
        by_pll.push(ours);
    }
    assert_ne!(by_pll[0], by_pll[1], "words of several tokens are masked differently");

    let clm = tmp.path().join("clm");
    pretrain(tmp.path(), &clm, "clm", "rotary", true);
    let export = tmp.path().join("clm-hf");
    primer_ok(
        tmp.path(),
        &format!("export --run {} --out {}", clm.display(), export.display()),
    );
    let references = python("check_scores.py", &[&export, &pairs, &tmp.path().join("clm-work")]);
    let (ours, accuracy) = primer_pair_scores(tmp.path(), &clm, &pairs, "");
    for reference in ["incremental", "lm_eval"] {
        let diff = largest_difference(&ours, &references[reference]);
        assert!(diff < 1e-4, "clm against {reference}: {diff}");
        eprintln!("clm: largest difference from {reference} {diff:.1e}");
    }
    assert_eq!(
        accuracy, references["lm_eval_accuracy"],
        "accuracy per paradigm, lm-eval's and primer's"
    );
    assert_error(
        tmp.path(),
        &format!(
            "minimal-pairs --run {} --pairs {} --pll word-l2r",
            clm.display(),
            pairs.display()
        ),
        &["--pll", "log-likelihood"],
    );
}

/// The sentences of the pair files in `dir`, in file-name order, acceptable first.
fn read_sentences(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .flat_map(|file| json_lines(&std::fs::read_to_string(file).unwrap()))
        .flat_map(|pair| ["sentence_good", "sentence_bad"].map(|key| pair[key].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn exports_refuse_what_they_cannot_hold_and_never_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("electra");
    pretrain_tiny(tmp.path(), &run, "electra", 4);
    let out = tmp.path().join("out");
    assert_error(
        tmp.path(),
        &format!("export --run {} --out {}", run.display(), out.display()),
        &["electra", "discriminator", "mlm, clm, prefix, gpt-bert"],
    );
    assert!(!out.exists(), "no half-written export");
    let clm = tmp.path().join("clm");
    pretrain_tiny(tmp.path(), &clm, "clm", 4);
    std::fs::create_dir(&out).unwrap();
    assert_error(
        tmp.path(),
        &format!("export --run {} --out {}", clm.display(), out.display()),
        &["already exists", "--out"],
    );
    assert_error(
        tmp.path(),
        &format!(
            "export --run {} --out {}",
            tmp.path().join("none").display(),
            out.display()
        ),
        &["none"],
    );
}

/// Primer's logits for `ids` read as the run `run` reads text, flat.
fn logits_of(run: &Path, ids: &[u32]) -> Vec<f32> {
    let device = Device::flex();
    let dir = RunDir::new(run);
    let config = dir.read_config().unwrap();
    let model = load_model(&dir, &config, &device).unwrap();
    let ids: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [1, ids.len()]), &device);
    model
        .forward(tokens, scored_reading(&config))
        .into_data()
        .try_into_vec::<f32>()
        .unwrap()
}

/// `tests/hf/make_checkpoints.py`'s random GPT-NeoX and GPT-2 checkpoints, in `dir`; their names.
fn make_checkpoints(dir: &Path) -> Vec<String> {
    serde_json::from_value(python("make_checkpoints.py", &[dir])).unwrap()
}

#[test]
fn transformers_checkpoints_import_with_their_logits_and_round_trip_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let checkpoints = tmp.path().join("hf");
    let names = make_checkpoints(&checkpoints);
    assert_eq!(names.len(), 5);
    for name in names {
        let (from, run) = (checkpoints.join(&name), tmp.path().join(&name));
        primer_ok(
            tmp.path(),
            &format!("import --format hf --from {} --out {}", from.display(), run.display()),
        );
        let expected = read_json(&from.join("expected.json"));
        let ids: Vec<u32> = serde_json::from_value(expected["ids"].clone()).unwrap();
        // GPT-2's and Pythia's tokenizers name one special token; its role map reads them.
        let tokenizer = PrimerTokenizer::from_file(&RunDir::new(&run).tokenizer()).unwrap();
        assert_eq!(
            tokenizer.encode(expected["text"].as_str().unwrap()).unwrap(),
            ids,
            "{name}"
        );
        assert_eq!(tokenizer.specials().eos, 0, "{name}: <|endoftext|> plays [EOS]");
        let theirs: Vec<f32> = expected["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
            .collect();
        let ours = logits_of(&run, &ids);
        let diff = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert_eq!(ours.len(), theirs.len(), "{name}");
        assert!(diff < 1e-4, "{name}: logits differ by {diff}");
        eprintln!("{name}: largest logit difference {diff:.1e}");
        // Export the imported run and import it again: the same numbers, bit for bit.
        let (exported, again) = (
            tmp.path().join(format!("{name}-out")),
            tmp.path().join(format!("{name}-again")),
        );
        primer_ok(
            tmp.path(),
            &format!("export --run {} --out {}", run.display(), exported.display()),
        );
        primer_ok(
            tmp.path(),
            &format!("import --from {} --out {}", exported.display(), again.display()),
        );
        assert!(
            logits_of(&again, &ids) == ours,
            "{name}: the round trip changed the logits"
        );
    }
}

#[test]
fn imported_checkpoints_continue_pre_training_resume_exactly_and_serve_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    make_checkpoints(&tmp.path().join("hf"));
    let imported = tmp.path().join("pythia-like");
    primer_ok(
        tmp.path(),
        &format!(
            "import --from {} --out {}",
            tmp.path().join("hf/neox-quarter-parallel-untied").display(),
            imported.display()
        ),
    );
    let continued = |out: &Path, extra: &str| {
        primer_ok(
            tmp.path(),
            &format!(
                "pretrain --init-from {} --objective clm --corpus {} --out {} --no-tui --seq-len 32 \
                 --batch-size 4 --steps 8 --eval-every 4 --eval-batches 1 --checkpoint-every 4 {extra}",
                imported.display(),
                shakespeare(),
                out.display()
            ),
        )
    };
    let (whole, halted) = (tmp.path().join("whole"), tmp.path().join("halted"));
    continued(&whole, "");
    continued(&halted, "--halt-after 4");
    primer_ok(tmp.path(), &format!("pretrain --resume {} --no-tui", halted.display()));
    let losses = |run: &Path| -> Vec<f64> { metrics(run).iter().map(|r| r["loss"].as_f64().unwrap()).collect() };
    assert_eq!(
        losses(&whole),
        losses(&halted),
        "a resumed continued run logs what an uninterrupted one does"
    );
    // It starts from the imported weights: its first loss is the imported model's, not a fresh draw's.
    let fresh = tmp.path().join("fresh");
    primer_ok(
        tmp.path(),
        &format!(
            "pretrain --objective clm --corpus {} --out {} --no-tui --seq-len 32 --batch-size 4 --steps 1 \
             --eval-every 1 --eval-batches 1 --tokenizer {} --layers 2 --d-model 32 --heads 2",
            shakespeare(),
            fresh.display(),
            RunDir::new(&imported).tokenizer().display()
        ),
    );
    assert_ne!(losses(&whole)[0], losses(&fresh)[0]);
    assert_error(
        tmp.path(),
        &format!(
            "pretrain --init-from {} --layers 3 --objective clm --corpus {} --out {}",
            imported.display(),
            shakespeare(),
            tmp.path().join("x").display()
        ),
        &["--layers", "--init-from"],
    );
    // A preset would shape another model too.
    assert_error(
        tmp.path(),
        &format!(
            "pretrain --init-from {} --model gpt2-small --objective clm --corpus {} --out {}",
            imported.display(),
            shakespeare(),
            tmp.path().join("x").display()
        ),
        &["--model", "--init-from"],
    );
    // The commands after pre-training read an imported run like any other.
    primer_ok(
        tmp.path(),
        &format!(
            "generate --run {} --prompt First --max-new-tokens 5",
            imported.display()
        ),
    );
    let file = tmp.path().join("docs.txt");
    std::fs::write(&file, "First Citizen: speak.\n\nAll: speak, speak.\n").unwrap();
    primer_ok(
        tmp.path(),
        &format!("score --run {} --file {}", imported.display(), file.display()),
    );
    let (train, valid) = write_task(tmp.path());
    primer_ok(
        tmp.path(),
        &format!(
            "finetune --from {} --task {train} --valid-file {valid} --text-column sentence --epochs 1 --out {} --no-tui",
            imported.display(),
            tmp.path().join("classifier").display()
        ),
    );
}

/// Every objective trained beside the PyTorch reference (bench/reference; a short
/// `scripts/parity`): from the same weights on the same batches, the loss of every step agrees
/// within 1e-4 relative, and primer's masks agree with transformers' collators within sampling
/// error (the script fails otherwise).
#[test]
fn every_objective_trains_as_the_pytorch_reference_does() {
    let tmp = tempfile::tempdir().unwrap();
    let venv = std::env::var("VIRTUAL_ENV").expect("PyTorch lives in the torch venv: `. scripts/env`");
    let report = tmp.path().join("parity.json");
    let output = Command::new(Path::new(&venv).join("bin/python"))
        .args(["-W", "ignore", "-m", "reference.parity", "--steps", "10", "--primer"])
        .arg(env!("CARGO_BIN_EXE_primer"))
        .arg("--json")
        .arg(&report)
        .env("PYTHONPATH", Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench"))
        .env("PRIMER_DATA", shared_data())
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .unwrap();
    assert_ok(&output);
    let runs = read_json(&report)["runs"].as_array().unwrap().clone();
    let names: Vec<&str> = runs.iter().map(|run| run["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "clm",
            "clm learned",
            "mlm token",
            "mlm word",
            "mlm span",
            "prefix",
            "electra"
        ]
    );
    for run in &runs {
        assert_eq!(run["steps"], 10, "{run}");
        assert!(run["loss"].as_f64().unwrap() <= 1e-4, "{run}");
    }
    // A record holds a whole run from its first step, in a folder of its own.
    let args = |extra: &str| {
        format!(
            "pretrain --objective clm --corpus {} --out {} --no-tui {extra}",
            shakespeare(),
            tmp.path().join("run").display()
        )
    };
    let busy = format!("--record-batches {}", tmp.path().display());
    assert_error(tmp.path(), &args(&busy), &["--record-batches", "is not empty"]);
    let resume = format!("--record-batches new --resume {}", tmp.path().join("run").display());
    assert_error(tmp.path(), &args(&resume), &["--record-batches", "drop --resume"]);
}

/// Runs `primer ARGS`, killing it after a minute (a FIFO must not hang an import), and checks
/// the refusal: exit code 2, stderr one line starting `error: ` that holds every needle and no
/// Rust debug text (`Safetensors(TensorInvalidInfo)`), and no run directory at `out`.
fn assert_refused_in_time(cache: &Path, args: &str, needles: &[&str], out: &Path) {
    let mut child = primer_command(cache, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`{args}` still ran after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let line = assert_refusal(args, &output, needles);
    assert_eq!(stderr(&output).trim_end(), line, "`{args}`: more than one line");
    assert!(line.starts_with("error: "), "{line}");
    let debug = line
        .as_bytes()
        .windows(2)
        .any(|pair| pair[0].is_ascii_alphabetic() && pair[1] == b'(');
    assert!(!debug, "`{args}`: debug text in {line}");
    assert!(!out.exists(), "`{args}` left {}", out.display());
}

/// Sets `key` of `dir/config.json` to `value`.
fn set_config(dir: &Path, key: &str, value: Value) {
    let path = dir.join("config.json");
    let mut config = read_json(&path);
    config[key] = value;
    std::fs::write(&path, config.to_string()).unwrap();
}

/// Overwrites the first value of tensor `name` in `dir/model.safetensors` (an `f32` tensor).
fn set_first_value(dir: &Path, name: &str, value: f32) {
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(header[name]["dtype"], "F32", "{name}");
    let at = 8 + header_len + header[name]["data_offsets"][0].as_u64().unwrap() as usize;
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
}

/// Replaces `dir/name` by a symbolic link to `target`.
fn link(dir: &Path, name: &str, target: &str) {
    std::fs::remove_file(dir.join(name)).unwrap();
    std::os::unix::fs::symlink(target, dir.join(name)).unwrap();
}

/// Replaces `dir/model.safetensors` by a FIFO, which no writer will ever open.
fn weights_as_fifo(dir: &Path) {
    let path = dir.join("model.safetensors");
    std::fs::remove_file(&path).unwrap();
    assert!(Command::new("mkfifo").arg(&path).status().unwrap().success());
}

/// Cuts `dir/model.safetensors` in half.
fn truncate_weights(dir: &Path) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
}

/// Overwrites the start of `dir/model.safetensors`' JSON header.
fn garble_header(dir: &Path) {
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..40].fill(b'#');
    std::fs::write(&path, bytes).unwrap();
}

/// A checkpoint made broken: its name, the checkpoint of `make_checkpoints` it alters, how,
/// and what the refusal must say.
type Broken = (&'static str, &'static str, fn(&Path), &'static [&'static str]);

/// The broken checkpoints an import must refuse: sizes past every bound, configs that do not
/// describe their weights, special files, non-finite weights, and damaged weights files.
const BROKEN: [Broken; 13] = [
    (
        "neox-layers",
        "neox-full-parallel-untied",
        |dir| set_config(dir, "num_hidden_layers", json!(1_000_000)),
        &["config.json: `num_hidden_layers` = 1000000 is more than primer imports (1024 at most"],
    ),
    (
        "gpt2-layers",
        "gpt2",
        |dir| set_config(dir, "n_layer", json!(1_000_000)),
        &["config.json: `n_layer` = 1000000 is more than primer imports"],
    ),
    (
        "neox-positions",
        "neox-full-parallel-untied",
        |dir| set_config(dir, "max_position_embeddings", json!(1_000_000_000_000u64)),
        &["`max_position_embeddings` = 1000000000000 is more than primer imports"],
    ),
    (
        "neox-3-layers",
        "neox-full-parallel-untied",
        |dir| set_config(dir, "num_hidden_layers", json!(3)),
        &[
            "config.json: `num_hidden_layers` = 3 but",
            "model.safetensors holds 2 layers",
        ],
    ),
    (
        "gpt2-positions",
        "gpt2",
        |dir| set_config(dir, "n_positions", json!(100)),
        &[
            "config.json: `n_positions` does not match the weights",
            "`transformer.wpe.weight` of shape [64, 32], where this config makes it [100, 32]",
        ],
    ),
    (
        "neox-width",
        "neox-quarter-parallel-untied",
        |dir| set_config(dir, "intermediate_size", json!(96)),
        &[
            "`intermediate_size` does not match the weights",
            "gpt_neox.layers.0.mlp.dense_h_to_4h.weight",
        ],
    ),
    (
        "config-zero",
        "gpt2",
        |dir| link(dir, "config.json", "/dev/zero"),
        &["config.json: is a device, not a regular file"],
    ),
    (
        "roles-zero",
        "gpt2",
        |dir| link(dir, "special_tokens_map.json", "/dev/zero"),
        &["special_tokens_map.json: is a device, not a regular file"],
    ),
    (
        "weights-fifo",
        "gpt2",
        weights_as_fifo,
        &["model.safetensors: is a FIFO, not a regular file"],
    ),
    (
        "neox-nan",
        "neox-quarter-parallel-untied",
        |dir| set_first_value(dir, "gpt_neox.layers.1.mlp.dense_4h_to_h.weight", f32::NAN),
        &["model.safetensors: weight `gpt_neox.layers.1.mlp.dense_4h_to_h.weight` holds NaN or infinite values"],
    ),
    (
        "gpt2-inf",
        "gpt2",
        |dir| set_first_value(dir, "transformer.h.0.attn.c_attn.bias", f32::NEG_INFINITY),
        &["weight `transformer.h.0.attn.c_attn.bias` holds NaN or infinite values"],
    ),
    (
        "truncated",
        "neox-full-sequential-tied",
        truncate_weights,
        &["model.safetensors: not a valid safetensors file", "truncated"],
    ),
    (
        "garbled",
        "neox-full-sequential-tied",
        garble_header,
        &["model.safetensors: not a valid safetensors file: its header is not a JSON object"],
    ),
];

#[test]
fn imports_refuse_unbounded_mismatched_special_and_non_finite_checkpoints_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    make_checkpoints(&tmp.path().join("hf"));
    for (case, checkpoint, alter, needles) in BROKEN {
        let dir = tmp.path().join(case);
        std::fs::create_dir(&dir).unwrap();
        for entry in std::fs::read_dir(tmp.path().join("hf").join(checkpoint)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        alter(&dir);
        let out = tmp.path().join(format!("{case}-run"));
        let args = format!("import --format hf --from {} --out {}", dir.display(), out.display());
        assert_refused_in_time(tmp.path(), &args, needles, &out);
    }
}
