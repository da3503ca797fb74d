//! Hugging Face interop, checked against transformers itself (installed in the torch venv by
//! `scripts/setup-torch`; nothing is downloaded).

mod common;

use std::path::Path;
use std::process::Command;

use burn::tensor::{Device, Int, Tensor, TensorData};
use common::*;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_trainer::run::load_model;
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

/// What the checker needs: the texts' ids (each row read alone by primer) and primer's logits.
fn case(run: &Path, bidirectional: bool) -> Value {
    let device = Device::flex();
    let dir = RunDir::new(run);
    let config = dir.read_config().unwrap();
    let tokenizer = PrimerTokenizer::from_file(&dir.tokenizer()).unwrap();
    let model = load_model(&dir, &config, &device).unwrap();
    let mode = config.objective.info().attention.clone();
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
        "bidirectional": bidirectional,
        "texts": TEXTS,
        "text_ids": text_ids,
    })
}

/// Runs `tests/hf/check_export.py` on an export with the torch venv's Python.
fn check_with_transformers(export: &Path, case: &Value, dir: &Path) -> Value {
    let venv = std::env::var("VIRTUAL_ENV").expect("transformers lives in the torch venv: `. scripts/env`");
    let case_path = dir.join("case.json");
    std::fs::write(&case_path, case.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hf/check_export.py");
    let output = Command::new(Path::new(&venv).join("bin/python"))
        .args(["-W", "ignore"])
        .arg(script)
        .arg(export)
        .arg(&case_path)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .unwrap();
    assert_ok(&output);
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn exports_load_in_transformers_and_give_primers_logits() {
    let tmp = tempfile::tempdir().unwrap();
    for (objective, positions, tied, class) in [
        ("clm", "rotary", true, "GPTNeoXForCausalLM"),
        ("clm", "learned", true, "GPT2LMHeadModel"),
        ("mlm", "rotary", true, "GPTNeoXForCausalLM"),
        ("mlm", "learned", true, "GPT2LMHeadModel"),
        ("clm", "rotary", false, "GPTNeoXForCausalLM"),
        ("clm", "learned", false, "GPT2LMHeadModel"),
    ] {
        let name = format!("{objective}-{positions}{}", if tied { "" } else { "-untied" });
        let run = tmp.path().join(&name);
        pretrain(tmp.path(), &run, objective, positions, tied);
        let export = tmp.path().join(format!("{name}-hf"));
        primer_ok(
            tmp.path(),
            &format!("export --run {} --format hf --out {}", run.display(), export.display()),
        );
        let report = check_with_transformers(&export, &case(&run, objective == "mlm"), tmp.path());
        assert_eq!(report["class"], class, "{name}: {report}");
        for keys in ["missing", "unexpected", "mismatched"] {
            assert_eq!(report[keys], json!([]), "{name}: {keys} keys: {report}");
        }
        let diff = report["max_abs_diff"].as_f64().unwrap();
        assert!(diff < 1e-4, "{name}: logits differ by {diff}");
        eprintln!("{name} as {class}: largest logit difference {diff:.1e}");
        assert_eq!(report["tokenizer_ids_equal"], true, "{name}: {report}");
        assert_eq!(report["mask_token"], "[MASK]", "{name}: {report}");
    }
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
        &["electra", "discriminator", "clm or mlm"],
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
