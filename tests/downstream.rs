//! End-to-end tests of what comes after pre-training, through the binary on flex with tiny
//! models: generate, fill-mask, score, finetune (full, probe, from scratch), classify and
//! prompt-classify, and their one-line errors.

use std::path::Path;

use serde_json::Value;

mod common;
use common::*;

#[test]
fn generate_fill_mask_and_score_use_the_right_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, clm, mlm) = (tmp.path(), tmp.path().join("clm"), tmp.path().join("mlm"));
    pretrain_tiny(cache, &clm, "clm", 150);
    pretrain_tiny(cache, &mlm, "mlm", 150);

    // Sampling is seeded; the key/value cache changes the cost, not the text.
    let generate = |extra: &str| {
        let output = primer(
            cache,
            &format!(
                "generate --run {} --prompt ROMEO: --max-new-tokens 24 {extra}",
                clm.display()
            ),
        );
        assert_ok(&output);
        (String::from_utf8_lossy(&output.stdout).into_owned(), stderr(&output))
    };
    let (text, report) = generate("--seed 7");
    assert!(text.starts_with("ROMEO:") && text.len() > "ROMEO:".len(), "{text}");
    assert!(report.contains("tokens/s"), "{report}");
    assert_eq!(generate("--seed 7").0, text);
    assert_eq!(generate("--seed 7 --no-cache").0, text);
    assert_ne!(generate("--seed 8").0, text);
    let long_prompt = "x".repeat(40);
    assert_error(
        cache,
        &format!("generate --run {} --prompt {long_prompt}", clm.display()),
        &["40 tokens", "--truncate"],
    );
    primer_ok(
        cache,
        &format!(
            "generate --run {} --prompt {long_prompt} --truncate --max-new-tokens 4",
            clm.display()
        ),
    );
    assert_error(
        cache,
        &format!("generate --run {} --prompt x", mlm.display()),
        &["masked-LM (mlm) run", "`primer generate` needs", "pre-trained with clm"],
    );
    assert_error(
        cache,
        &format!("generate --run {} --top-p 1.5", clm.display()),
        &["--top-p 1.5"],
    );

    let filled = json_lines(&primer_ok(
        cache,
        &format!(
            "fill-mask --run {} --json --top-k 4 th[MASK]_king a[MASK]d",
            mlm.display()
        ),
    ));
    assert_eq!(filled.len(), 2);
    for text in &filled {
        let masks = text["masks"].as_array().unwrap();
        assert_eq!(masks.len(), 1);
        let probs: Vec<f64> = masks[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["probability"].as_f64().unwrap())
            .collect();
        assert_eq!(probs.len(), 4);
        assert!(probs.windows(2).all(|w| w[0] >= w[1]) && probs.iter().sum::<f64>() <= 1.0 + 1e-6);
    }
    assert_error(
        cache,
        &format!("fill-mask --run {} th[MASK]", clm.display()),
        &[
            "causal-LM (clm) run",
            "`primer fill-mask` needs",
            "pre-trained with mlm",
        ],
    );
    assert_error(
        cache,
        &format!("fill-mask --run {} the_king", mlm.display()),
        &["no [MASK]"],
    );

    // A trained model finds English verse likelier than a jumble of rare letters.
    let docs = tmp.path().join("docs.txt");
    std::fs::write(&docs, "Now is the winter of our discontent\nqzxj vqzk jxqz zzxq kqjv\n").unwrap();
    for run in [&clm, &mlm] {
        let scores = json_lines(&primer_ok(
            cache,
            &format!("score --run {} --file {} --json", run.display(), docs.display()),
        ));
        assert_eq!(scores.len(), 2);
        let ppl = |i: usize| scores[i]["ppl"].as_f64().unwrap();
        assert!(ppl(0) > 1.0 && ppl(0) < ppl(1), "{scores:?}");
    }
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    assert_error(
        cache,
        &format!("score --run {} --file {}", clm.display(), empty.display()),
        &["empty.txt"],
    );
}

/// Minimal pairs that a character model of Shakespeare must get right (the text against the
/// same text with rare letters put in, once with more of them), scored by each objective's own
/// method and counted apart where the sentences' lengths differ; bad pair files stop with the
/// file and line.
#[test]
fn minimal_pairs_are_scored_by_each_objectives_method() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let pairs = tmp.path().join("pairs.jsonl");
    // The same sentences with rare letters in odd places.
    let lines = [
        ("What say you to this?", "Whqt sxy yoz tq thjs?"),
        ("I will not go with thee.", "I wzll nqt gx wjth thqe."),
        ("The king is dead.", "Thq kjng zs dxad."),
        ("Good night.", "Gqqd nxght, zqxj."),
    ];
    let text: String = lines
        .iter()
        .map(|(good, bad)| {
            format!(
                "{}\n",
                serde_json::json!({"sentence_good": good, "sentence_bad": bad, "field": "test"})
            )
        })
        .collect();
    std::fs::write(&pairs, text).unwrap();
    for (objective, scoring) in [("clm", "log-likelihood"), ("mlm", "pseudo-log-likelihood")] {
        let run = tmp.path().join(objective);
        pretrain_tiny(cache, &run, objective, 150);
        let out = tmp.path().join(format!("{objective}.json"));
        let printed: Value = serde_json::from_str(&primer_ok(
            cache,
            &format!(
                "minimal-pairs --run {} --pairs {} --json --out {}",
                run.display(),
                pairs.display(),
                out.display()
            ),
        ))
        .unwrap();
        assert_eq!(printed, read_json(&out));
        assert_eq!(printed["scoring"], scoring);
        assert_eq!(printed["pairs"], 4);
        assert_eq!(printed["accuracy"], 1.0, "{objective}: {printed}");
        assert_eq!(printed["equal_length_accuracy"], 1.0);
        let lengths: Vec<(&str, u64)> = printed["lengths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|group| (group["name"].as_str().unwrap(), group["pairs"].as_u64().unwrap()))
            .collect();
        assert_eq!(lengths, [("acceptable shorter", 1), ("equal length", 3)]);
        assert_eq!(printed["fields"][0]["name"], "test");
        assert_eq!(printed["paradigms"][0]["name"], "pairs");
    }
    std::fs::write(&pairs, "{\"sentence_good\": \"a\", \"sentence_bad\": \"b\"}\n{oops\n").unwrap();
    assert_error(
        cache,
        &format!(
            "minimal-pairs --run {} --pairs {}",
            tmp.path().join("clm").display(),
            pairs.display()
        ),
        &["pairs.jsonl:2", "invalid JSON"],
    );
}

#[test]
fn finetune_probe_and_scratch_then_classify_and_prompt() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path(), tmp.path());
    let mlm = dir.join("mlm");
    pretrain_tiny(cache, &mlm, "mlm", 150);
    let (train, valid) = write_task(dir);
    let task = format!("--task {train} --valid-file {valid} --text-column sentence");
    let finetune = |out: &str, extra: &str| -> Value {
        let out = dir.join(out);
        primer_ok(
            cache,
            &format!(
                "finetune --from {} {task} --out {} --no-tui --epochs 6 --lr 2e-3 --pooling mean {extra}",
                mlm.display(),
                out.display()
            ),
        );
        for file in ["finetune.json", "tokenizer.json", "metrics.jsonl", "model.bpk"] {
            assert!(out.join(file).exists(), "{file} missing");
        }
        let log = metrics(&out);
        let valid = records(&log, "valid");
        assert!(!valid.is_empty() && valid.iter().all(|r| r["macro_f1"].is_number()));
        assert!(!records(&log, "train").is_empty());
        read_json(&out.join("summary.json"))
    };

    let full = finetune("full", "");
    assert!(full["valid"]["accuracy"].as_f64().unwrap() >= 0.9, "{full}");
    assert_eq!(full["train_examples"], 160);
    let probe = finetune("probe", "--freeze-encoder --train-limit 40");
    // The head alone: d_model * 2 labels + 2 biases.
    assert_eq!(probe["trained_parameters"], 32 * 2 + 2);
    assert_eq!(probe["train_examples"], 40);
    let scratch = finetune("scratch", "--from-scratch --patience 1");
    assert_eq!(scratch["start"], "scratch");

    let full_dir = dir.join("full").display().to_string();
    let output = primer_command_args(
        cache,
        &[
            "classify",
            "--run",
            &full_dir,
            "--json",
            "the king good so",
            "the night bad so",
        ],
    )
    .output()
    .unwrap();
    assert_ok(&output);
    let labelled = json_lines(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(labelled.len(), 2);
    assert_eq!(
        (labelled[0]["label"].as_str(), labelled[1]["label"].as_str()),
        (Some("1"), Some("0"))
    );
    for row in &labelled {
        let total: f64 = row["probabilities"]
            .as_object()
            .unwrap()
            .values()
            .map(|p| p.as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-4);
    }

    let prompt = |template: &str| {
        let run = mlm.display().to_string();
        let mut args = vec!["prompt-classify", "--run", &run, "--template", template];
        args.extend(task.split_whitespace());
        args.extend(["--verbalizer", "0=bad,1=good", "--json"]);
        primer_command_args(cache, &args).output().unwrap()
    };
    let output = prompt("{text} : [LABEL]");
    assert_ok(&output);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["examples"], 40);
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert_eq!(report["words"], serde_json::json!(["bad", "good"]));
    let output = prompt("It was [LABEL]");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("{text}"), "{}", stderr(&output));
}

#[test]
fn bad_task_input_gets_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path(), tmp.path());
    let mlm = dir.join("mlm");
    pretrain_tiny(cache, &mlm, "mlm", 150);
    let (train, valid) = write_task(dir);
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let out = dir.join("ft");
    let finetune = |task: &str, extra: &str| {
        format!(
            "finetune --from {} --task {task} --text-column sentence --out {} --no-tui {extra}",
            mlm.display(),
            out.display()
        )
    };
    let one_label = write("one.tsv", "sentence\tlabel\na\t1\nb\t1\n");
    assert_error(cache, &finetune(&one_label, ""), &["one.tsv", "at least two labels"]);
    let unknown = write("unknown.tsv", "sentence\tlabel\na\t0\nb\tmaybe\n");
    assert_error(
        cache,
        &finetune(&train, &format!("--valid-file {unknown}")),
        &["unknown.tsv:3", "\"maybe\""],
    );
    assert_error(
        cache,
        &finetune(&train, "--train-limit 1000"),
        &["--train-limit 1000", "144"],
    );
    let empty = write("empty.tsv", "");
    assert_error(cache, &finetune(&empty, ""), &["empty.tsv"]);
    let four = write("four.tsv", "sentence\tlabel\na\t0\nb\t1\nc\t0\nd\t1\n");
    assert_error(
        cache,
        &finetune(&four, ""),
        &[
            "no validation examples",
            "four.tsv has too few examples",
            "--valid-file",
        ],
    );
    let no_column = write("nocol.tsv", "text\tlabel\na\t0\nb\t1\n");
    assert_error(
        cache,
        &finetune(&no_column, ""),
        &["no column \"sentence\"", "--text-column"],
    );
    assert_error(cache, &finetune("nosuchtask", ""), &["nosuchtask", "sst2"]);
    assert!(!out.exists(), "a refused fine-tune left its directory behind");

    assert_error(
        cache,
        &format!("classify --run {} something", mlm.display()),
        &["not a fine-tuned classifier", "primer finetune"],
    );

    // A fine-tuned run is not a pre-training run, and its tokenizer must stay the one it used.
    primer_ok(cache, &finetune(&train, &format!("--valid-file {valid} --epochs 1")));
    assert_error(
        cache,
        &format!("eval {}", out.display()),
        &["fine-tuned classifier", "primer classify"],
    );
    let other = dir.join("other");
    primer_ok(
        cache,
        &format!(
            "tokenizer train --corpus {} --column sentence --kind char --out {}",
            valid,
            other.with_extension("json").display()
        ),
    );
    std::fs::copy(other.with_extension("json"), out.join("tokenizer.json")).unwrap();
    assert_error(
        cache,
        &format!("classify --run {} something", out.display()),
        &["not the tokenizer this classifier was trained with"],
    );
}

/// A pre-training corpus (JSON Lines) that teaches a model to copy a label from earlier lines:
/// documents of 40 `xY` lines, a blank line after each, each document mapping three of the
/// letters a to h to capitals A to D of its own and repeating them, so that only the lines
/// before say which capital follows a letter. A byte-level BPE learns each `xY` as one token,
/// so a model need only learn to repeat tokens it has seen (one attention hop), which a tiny one
/// does in a minute.
fn write_copy_corpus(dir: &Path) -> String {
    let mut state = 7u64;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let letter = |base: u8, i: u64| char::from(base + i as u8);
    let mut corpus = String::new();
    for _ in 0..1500 {
        let pairs: Vec<(char, char)> = (0..3).map(|_| (letter(b'a', next(8)), letter(b'A', next(4)))).collect();
        let lines: Vec<String> = (0..40)
            .map(|_| {
                let (x, _) = pairs[next(3) as usize];
                // A letter drawn twice for a document keeps its first capital.
                let (_, y) = pairs.iter().find(|(first, _)| *first == x).expect("x is one of them");
                format!("{x}{y}")
            })
            .collect();
        corpus += &format!("{}\n", serde_json::json!({ "text": lines.join("\n\n") }));
    }
    let path = dir.join("copy.jsonl");
    std::fs::write(&path, corpus).unwrap();
    path.display().to_string()
}

/// The task the copy corpus prepares for: letters a to d labelled 0, 1, 0, 1 (a mapping of its
/// own, unrelated to any document's), with the label words A and B; 10 training and 8
/// validation rows of each letter.
fn write_copy_task(dir: &Path) -> (String, String) {
    let file = |name: &str, per_letter: usize| {
        let mut text = String::from("text\tlabel\n");
        for _ in 0..per_letter {
            for i in 0..4u8 {
                text += &format!("{}\t{}\n", char::from(b'a' + i), i % 2);
            }
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    (file("copy-train.tsv", 10), file("copy-valid.tsv", 8))
}

/// On the copy model (context 64): a text of 30 letters leaves out exactly as many
/// demonstrations as it must, says so, and `--no-truncate` refuses it instead.
fn demonstrations_make_room_for_a_long_text(cache: &Path, dir: &Path, args_on: &dyn Fn(&str, &str) -> String) {
    // A text of 30 letters (29 tokens `a` and one `aA`): 1 + 16 x 3 + 30 = 79 tokens, 15 over
    // the context of 64, so its prompt leaves out its first 5 demonstrations (3 tokens each:
    // `xY` and two newlines), and nothing else.
    let long = dir.join("long.tsv");
    std::fs::write(&long, format!("text\tlabel\n{}\t0\na\t0\n", "a".repeat(30))).unwrap();
    let long = long.display().to_string();
    let output = primer(cache, &args_on(&long, "--shots 16"));
    assert_ok(&output);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["demonstrations_dropped"], 5);
    assert_eq!(
        (
            report["truncated"].as_u64(),
            report["draws"][0]["prompts_short"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let note = stderr(&output);
    assert!(
        note.contains("1 of 2 prompts left out some of their demonstrations (5 in all)"),
        "{note}"
    );
    assert_error(
        cache,
        &args_on(&long, "--shots 16 --no-truncate"),
        &["validation example 1", "with its demonstrations", "drop --no-truncate"],
    );
}

/// k-shot prompting as GPT-3 does it, on a model that can only know a label by copying it
/// from the demonstrations: accuracy rises with K far above zero-shot, a prompt too long for
/// the context leaves out its first demonstrations (counted exactly), calibration is reported
/// beside, and a K too large for the context or the training split is refused in one line.
#[test]
fn k_shot_prompting_copies_labels_from_demonstrations() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path(), tmp.path());
    let corpus = write_copy_corpus(dir);
    let run = dir.join("copy");
    primer_ok(
        cache,
        &format!(
            "pretrain --objective clm --corpus {corpus} --out {} --no-tui --tokenizer-kind bpe --vocab-size 512 \
             --layers 2 --d-model 64 --heads 2 --seq-len 64 --batch-size 16 --steps 1500 --lr 3e-3 --eval-every 1500 \
             --eval-batches 2",
            run.display()
        ),
    );
    let (train, valid) = write_copy_task(dir);
    let args_for = |run: &Path, valid: &str, extra: &str| {
        format!(
            "prompt-classify --run {} --task {train} --valid-file {valid} --template {{text}}[LABEL] \
             --verbalizer 0=A,1=B --json {extra}",
            run.display()
        )
    };
    let args_on = |valid: &str, extra: &str| args_for(&run, valid, extra);
    let args = |extra: &str| args_on(&valid, extra);
    let prompt = |extra: &str| -> Value { serde_json::from_str(&primer_ok(cache, &args(extra))).unwrap() };
    let accuracy = |report: &Value| report["accuracy"].as_f64().unwrap();
    let zero = prompt("");
    let four = prompt("--shots 4 --shot-seeds 3");
    let sixteen = prompt("--shots 16 --shot-seeds 3 --calibrate");
    let (a0, a4, a16) = (accuracy(&zero), accuracy(&four), accuracy(&sixteen));
    eprintln!("k-shot accuracy: 0 shots {a0}, 4 shots {a4}, 16 shots {a16}");
    assert!(a0 <= 0.6 && a4 > a0 && a16 >= 0.9 && a16 - a0 >= 0.3, "{a0} {a4} {a16}");
    assert_eq!(sixteen["draws"].as_array().unwrap().len(), 3);
    assert_eq!(sixteen["draws"][0]["demonstrations"].as_array().unwrap().len(), 16);
    assert!(sixteen["accuracy_std"].as_f64().unwrap() >= 0.0);
    let calibrated = sixteen["calibrated"]["accuracy"].as_f64().unwrap();
    assert!(calibrated >= 0.8, "{calibrated}");
    assert_eq!(sixteen["calibrated"]["predicted"].as_array().unwrap().len(), 32);
    assert_eq!(sixteen["demonstrations_dropped"], 0);

    demonstrations_make_room_for_a_long_text(cache, dir, &args_on);

    // A masked run fills a [MASK] after the demonstrations, as LM-BFF does (briefly trained:
    // the numbers are not the point).
    let mlm = dir.join("copy-mlm");
    primer_ok(
        cache,
        &format!(
            "pretrain --objective mlm --corpus {corpus} --out {} --no-tui --tokenizer-kind char --layers 1 \
             --d-model 32 --heads 2 --seq-len 96 --batch-size 8 --steps 10 --eval-every 10 --eval-batches 1",
            mlm.display()
        ),
    );
    let masked: Value =
        serde_json::from_str(&primer_ok(cache, &args_for(&mlm, &valid, "--shots 4 --calibrate"))).unwrap();
    assert_eq!(
        (masked["shots"].as_u64(), masked["examples"].as_u64()),
        (Some(4), Some(32))
    );
    assert!((0.0..=1.0).contains(&masked["calibrated"]["accuracy"].as_f64().unwrap()));

    // K larger than fits the context (40 x 3 tokens), or than a label has examples (20 each).
    assert_error(
        cache,
        &args("--shots 40"),
        &["--shots 40", "more than the model's context of 64", "lower --shots"],
    );
    assert_error(
        cache,
        &args("--shots 100"),
        &["--shots 100 takes 50 examples of label", "has 20", "at most 40"],
    );
    assert_error(cache, &args("--shot-seeds 2"), &["--shot-seeds 2", "--shots K"]);
}

/// Multiple-choice questions as lm-evaluation-harness scores them: a character model of
/// Shakespeare picks the English continuation over a jumble of rare letters by summed
/// log-probability (acc) and per character (acc_norm), zero-shot and after demonstrations read
/// from HellaSwag's own fields; bad input is one line.
#[test]
fn multiple_choice_picks_the_likelier_continuation() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, dir) = (tmp.path(), tmp.path());
    let clm = dir.join("clm");
    primer_ok(
        cache,
        &format!(
            "pretrain --objective clm --corpus {} --out {} --no-tui --tokenizer-kind char --layers 2 --d-model 32 \
             --heads 2 --seq-len 128 --batch-size 8 --steps 150 --lr 3e-3 --eval-every 150 --eval-batches 2",
            shakespeare(),
            clm.display()
        ),
    );
    let questions = [
        ("ROMEO: I will not go", ["with thee.", "qzxj vqkz."]),
        ("KING: What say you to", ["this, my lord?", "zqxv jkqz xqj?"]),
        ("JULIET: Good night, good", ["night!", "qjxz!"]),
    ];
    let write = |name: &str, hellaswag: bool| {
        let lines: String = questions
            .iter()
            .enumerate()
            .map(|(i, (context, [good, bad]))| {
                // The right continuation first, then second, then first.
                let (choices, label) = if i % 2 == 0 { ([good, bad], 0) } else { ([bad, good], 1) };
                let line = match hellaswag {
                    true => serde_json::json!({"ctx": context, "endings": choices, "label": label.to_string()}),
                    false => serde_json::json!({"context": context, "choices": choices, "label": label}),
                };
                format!("{line}\n")
            })
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, lines).unwrap();
        path.display().to_string()
    };
    let (valid, train) = (write("valid.jsonl", false), write("train.jsonl", true));
    let answer = |extra: &str| -> Value {
        let args = format!("multiple-choice --run {} --file {valid} --json {extra}", clm.display());
        serde_json::from_str(&primer_ok(cache, &args)).unwrap()
    };
    for report in [answer(""), answer(&format!("--train-file {train} --shots 2 --seed 3"))] {
        assert_eq!(
            (report["acc"].as_f64(), report["acc_norm"].as_f64()),
            (Some(1.0), Some(1.0)),
            "{report}"
        );
        assert_eq!(report["predicted"], serde_json::json!([0, 1, 0]));
        assert_eq!(
            (report["questions"].as_u64(), report["chance"].as_f64()),
            (Some(3), Some(0.5))
        );
    }
    let base = format!("multiple-choice --run {} --file {valid}", clm.display());
    assert_error(cache, &format!("{base} --shots 2"), &["--shots 2", "--train-file"]);
    assert_error(
        cache,
        &format!("{base} --train-file {train} --shots 5"),
        &["--shots 5", "3 questions of", "train.jsonl"],
    );
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 0}\n{\"context\": \"a\", \"choices\": [\"b\"], \"label\": 0}\n").unwrap();
    assert_error(
        cache,
        &format!("multiple-choice --run {} --file {}", clm.display(), bad.display()),
        &["bad.jsonl:2", "at least two"],
    );
}
