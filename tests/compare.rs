//! `primer compare` end to end through the binary: a miniature comparison (tiny model, few
//! steps, both objectives, one task) and its report files, resuming, and the refusals.

use std::path::Path;

use serde_json::Value;

mod common;
use common::*;

/// A tiny corpus and a sentiment task file (`text`, `label` columns) in `dir`.
fn write_inputs(dir: &Path) -> (String, String) {
    let good = ["a fine", "a great", "lovely", "a wonderful"];
    let bad = ["an awful", "a dull", "a terrible", "boring"];
    let things = ["film", "movie", "story", "plot", "cast"];
    let mut corpus = String::new();
    for i in 0..300 {
        let (a, b) = (
            [good[i % 4], bad[i % 4]][i % 2],
            [good[(i / 2) % 4], bad[(i / 3) % 4]][(i / 5) % 2],
        );
        corpus += &format!("{a} {} and {b} {}.\n\n", things[i % 5], things[(i / 7) % 5]);
    }
    let mut task = String::from("text\tlabel\n");
    for i in 0..120 {
        let words = if i % 2 == 1 { good } else { bad };
        let label = if i % 2 == 1 { "pos" } else { "neg" };
        task += &format!("{} {} indeed\t{label}\n", words[(i / 2) % 4], things[i % 5]);
    }
    let (corpus_path, task_path) = (dir.join("corpus.txt"), dir.join("task.tsv"));
    std::fs::write(&corpus_path, corpus).unwrap();
    std::fs::write(&task_path, task).unwrap();
    (corpus_path.display().to_string(), task_path.display().to_string())
}

/// The arguments of the miniature comparison, writing to `out`.
fn compare_args(corpus: &str, task: &str, out: &str, seeds: &str) -> Vec<String> {
    [
        "compare",
        "--corpus",
        corpus,
        "--task",
        task,
        "--template",
        "{text} it was [LABEL].",
        "--verbalizer",
        "neg=bad,pos=good",
        "--label-budgets",
        "20,all",
        "--seeds",
        seeds,
        "--tokenizer-kind",
        "char",
        "--layers",
        "1",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
        "--steps",
        "20",
        "--finetune-epochs",
        "2",
        // BLiMP's first 2 pairs of each paradigm at the end, a subset of 20 at every validation;
        // the masked model's within-word masked (only a masked model takes --pll).
        "--pairs-limit",
        "2",
        "--pll",
        "word-l2r",
        "--minimal-pairs-limit",
        "20",
        "--out",
        out,
    ]
    .map(String::from)
    .to_vec()
}

/// The tables of a Markdown file: header, then rows, each a list of cells.
fn markdown_tables(md: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let mut tables = Vec::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('|') && lines.get(i + 1).is_some_and(|l| l.starts_with("| ---")) {
            let header = cells(lines[i]);
            let mut rows = Vec::new();
            i += 2;
            while i < lines.len() && lines[i].starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
            tables.push((header, rows));
        } else {
            i += 1;
        }
    }
    tables
}

fn mean_pm_std(cell: &Value) -> String {
    format!(
        "{:.3} ± {:.3}",
        cell["mean"].as_f64().unwrap(),
        cell["std"].as_f64().unwrap()
    )
}

#[test]
fn a_miniature_comparison_writes_a_report_that_matches_its_results_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let (corpus, task) = write_inputs(tmp.path());
    let report = tmp.path().join("report");
    let out = report.display().to_string();
    let args = compare_args(&corpus, &task, &out, "2");
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = primer_command_args(cache, &args_ref).output().unwrap();
    assert_ok(&output);

    // Every run is an ordinary run directory under runs/.
    let results = read_json(&report.join("results.json"));
    let pretrain = results["pretrain"].as_array().unwrap();
    assert_eq!(pretrain.len(), 4, "2 objectives x 2 seeds");
    for run in pretrain {
        let dir = report.join(run["run"].as_str().unwrap());
        assert!(dir.join("model.bpk").exists() && dir.join("config.json").exists());
        assert_eq!(run["steps"], 20);
    }
    // The matched quantities match, and MLM is judged by masked accuracy and
    // pseudo-perplexity, the causal model by bits per byte.
    for row in results["fairness"].as_array().unwrap().iter().take(3) {
        assert_eq!(row["matched"], true, "{row}");
    }
    // Minimal pairs: each model and its untrained twin, every difference, and a verdict.
    let pairs = &results["minimal_pairs"];
    assert_eq!(pairs["pairs"], 134, "2 pairs of each of 67 paradigms");
    assert_eq!(pairs["rows"].as_array().unwrap().len(), 2);
    assert_eq!(
        pairs["comparisons"].as_array().unwrap().len(),
        3,
        "mlm-clm, and each vs untrained"
    );
    for row in pairs["rows"].as_array().unwrap() {
        assert_eq!(row["accuracies"].as_array().unwrap().len(), 2, "one per seed");
        let equal_length = row["equal_length"].as_array().unwrap();
        assert_eq!(equal_length.len(), 2, "on pairs of equal token counts, one per seed");
        assert!(equal_length.iter().all(|a| (0.0..=1.0).contains(&a.as_f64().unwrap())));
    }
    for point in pretrain[0]["curve"].as_array().unwrap() {
        let accuracy = point["minimal_pairs"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy));
    }
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("## Minimal pairs") && md.contains("Verdict: "), "{md}");
    assert!(
        md.contains("| objective | accuracy | equal length | untrained |"),
        "{md}"
    );
    assert!(
        md.contains("mlm by pseudo-log-likelihood (word-l2r); clm by log-likelihood"),
        "the report names each scoring: {md}"
    );
    assert!(md.contains("masked-token accuracy") && md.contains("pseudo-perplexity"));
    assert!(md.contains("bits per byte"));

    // Every table cell is present, and the task table shows results.json's numbers.
    let tables = markdown_tables(&md);
    // Each pre-training metric is read against its unigram value.
    let (_, pretraining) = tables
        .iter()
        .find(|(header, _)| header.get(1).is_some_and(|h| h == "main metric"))
        .expect("the pre-training table");
    for row in pretraining {
        assert!(row[1].contains("(unigram ") && row[2].contains("(unigram "), "{row:?}");
    }
    assert!(tables.len() >= 6, "{} tables", tables.len());
    for (header, rows) in &tables {
        assert!(!rows.is_empty(), "table {header:?} has no rows");
        for row in rows {
            assert_eq!(row.len(), header.len(), "row {row:?} under {header:?}");
            assert!(row.iter().all(|c| !c.is_empty() && c != "NaN"), "{row:?}");
        }
    }
    let task_result = &results["tasks"][0];
    let (header, rows) = &tables[0];
    assert_eq!(header, &["objective", "method", "20 labels", "all labels"]);
    let cells = task_result["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        2 + 2 * 3 * 2,
        "zero-shot per objective + objective x method x budget"
    );
    for cell in cells {
        let accuracies: Vec<f64> = cell["accuracies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap())
            .collect();
        assert_eq!(accuracies.len(), 2);
        let mean = accuracies.iter().sum::<f64>() / 2.0;
        assert!((cell["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
        let (objective, method) = (
            cell["objective"]["name"].as_str().unwrap(),
            cell["method"].as_str().unwrap(),
        );
        if method == "zero-shot" {
            let (_, zero_shot) = &tables[1];
            let row = zero_shot.iter().find(|r| r[0] == objective).unwrap();
            assert_eq!(row[1], mean_pm_std(cell));
            continue;
        }
        // Each accuracy is its run's own summary.
        for (run, accuracy) in cell["runs"].as_array().unwrap().iter().zip(&accuracies) {
            let summary = read_json(&report.join(run.as_str().unwrap()).join("summary.json"));
            assert_eq!(summary["valid"]["accuracy"].as_f64().unwrap(), *accuracy);
        }
        let column = format!(
            "{} labels",
            cell["budget"].as_u64().map_or("all".into(), |b| b.to_string())
        );
        let column = header.iter().position(|h| *h == column).unwrap();
        let method_name = if method == "finetune" { "fine-tune" } else { method };
        let row = rows
            .iter()
            .find(|r| r[0] == objective && r[1] == method_name)
            .unwrap_or_else(|| panic!("no row for {objective} {method}"));
        assert_eq!(row[column], mean_pm_std(cell), "{objective} {method}");
    }
    let comparisons = task_result["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2 * 3, "per budget: mlm vs clm, and each vs scratch");
    for c in comparisons {
        let (d, lo, hi) = (
            c["difference"].as_f64().unwrap(),
            c["ci_low"].as_f64().unwrap(),
            c["ci_high"].as_f64().unwrap(),
        );
        assert!(lo <= d + 1e-9 && d <= hi + 1e-9, "{c}");
        assert_eq!(c["supported"].as_bool().unwrap(), lo > 0.0 || hi < 0.0);
    }

    // Charts are valid SVG; the HTML carries them inline and needs no network.
    for name in ["pretrain-mlm.svg", "pretrain-clm.svg", "label-efficiency-task.svg"] {
        let svg = std::fs::read_to_string(report.join(name)).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(doc.descendants().count() > 20, "{name} is nearly empty");
        assert!(md.contains(&format!("]({name})")));
    }
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    for external in ["src=", "href=", "<link", "@import", "url("] {
        assert!(!html.contains(external), "report.html holds {external}");
    }
    for cell in cells {
        assert!(html.contains(&mean_pm_std(cell)));
    }

    // Resume: a lost fine-tune runs again; everything else is skipped.
    let lost = report.join(cells[4]["runs"][1].as_str().unwrap());
    let kept = report.join(cells[5]["runs"][0].as_str().unwrap()).join("summary.json");
    let kept_before = std::fs::metadata(&kept).unwrap().modified().unwrap();
    std::fs::remove_file(lost.join("summary.json")).unwrap();
    let resumed = primer(cache, &format!("compare --resume {out}"));
    assert_ok(&resumed);
    assert!(
        stderr(&resumed).contains("43 of 44 jobs already finished"),
        "{}",
        stderr(&resumed)
    );
    assert!(lost.join("summary.json").exists());
    assert_eq!(std::fs::metadata(&kept).unwrap().modified().unwrap(), kept_before);
    let again = read_json(&report.join("results.json"));
    assert_eq!(again["tasks"], results["tasks"], "fine-tuning is deterministic");

    // The same comparison again, or a different one, into the same directory: refused.
    let mut same = args.clone();
    same.retain(|a| a != "--out" && a != &out);
    let run = |extra: &[String]| {
        let mut all: Vec<&str> = extra.iter().map(String::as_str).collect();
        all.extend(["--out", out.as_str()]);
        primer_command_args(cache, &all).output().unwrap()
    };
    let output = run(&same);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("already holds this comparison"),
        "{}",
        stderr(&output)
    );
    let mut other = same.clone();
    let seeds = other.iter().position(|a| a == "--seeds").unwrap();
    other[seeds + 1] = "1".into();
    let output = run(&other);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("differs in seeds"), "{}", stderr(&output));
    // --resume with flags that describe another comparison.
    let mut resume_other: Vec<&str> = other.iter().map(String::as_str).collect();
    resume_other.extend(["--resume", out.as_str()]);
    let output = primer_command_args(cache, &resume_other).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("differs in seeds"), "{}", stderr(&output));
}

#[test]
fn bad_comparisons_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let (corpus, task) = write_inputs(tmp.path());
    let out = tmp.path().join("report");
    let base = |extra: &str| {
        format!(
            "compare --corpus {corpus} --task {task} --template {{text}}:[LABEL] --verbalizer neg=bad,pos=good --seeds 1 --tokenizer-kind char \
             --layers 1 --d-model 16 --heads 2 --seq-len 16 --batch-size 4 --out {} {extra}",
            out.display()
        )
    };
    assert_error(cache, &base("--steps 5 --objectives mlm,t5"), &["--objectives"]);
    assert_error(
        cache,
        &format!(
            "compare --corpus {corpus} --task nosuchtask --seeds 1 --steps 5 --out {}",
            out.display()
        ),
        &["nosuchtask", "sst2"],
    );
    assert_error(cache, &base("--tokens 10"), &["--tokens 10", "one optimizer step"]);
    assert_error(
        cache,
        &base("--steps 5 --eval-every 50"),
        &["--eval-every 50", "5 steps"],
    );
    assert_error(
        cache,
        &base("--steps 5 --label-budgets 50,5000"),
        &["--label-budgets 5000", "108 training examples"],
    );
    assert_error(cache, &base("--steps 5 --objective mlm"), &["--objectives"]);
    // K-shot rows: a K a label cannot supply, objectives that read no demonstrations, and a
    // task with no prompt.
    assert_error(
        cache,
        &base("--steps 5 --label-budgets 20 --shots 0,200"),
        &["--shots 200 takes 100 examples of label", "at most 108"],
    );
    assert_error(
        cache,
        &base("--steps 5 --label-budgets 20 --shots 4 --objectives mlm,electra"),
        &["--shots 4", "(electra) runs cannot be prompted", "drop electra"],
    );
    assert_error(
        cache,
        &format!(
            "compare --corpus {corpus} --task {task} --shots 4 --label-budgets 20 --seeds 1 --steps 5 --out {}",
            out.display()
        ),
        &["--shots needs a task with a prompt"],
    );
    assert_error(cache, &base("--steps 5 --pairs-limit 0"), &["--pairs-limit 0"]);
    assert_error(
        cache,
        &base("--steps 5 --minimal-pairs /no/such/pairs"),
        &["/no/such/pairs"],
    );
    // A template needs label words (a task file without either is fine-tuned, not prompted).
    assert_error(
        cache,
        &format!(
            "compare --corpus {corpus} --task {task} --template {{text}}:[LABEL] --seeds 1 --steps 5 --out {}",
            out.display()
        ),
        &["needs label words", "--verbalizer"],
    );
    // Two tasks of one name would share one set of runs: two files of one stem, two tables.
    let other_dir = tmp.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let same_stem = other_dir.join(Path::new(&task).file_name().unwrap());
    std::fs::copy(&task, &same_stem).unwrap();
    assert_error(
        cache,
        &format!(
            "compare --corpus {corpus} --task {task},{} --seeds 1 --steps 5 --out {}",
            same_stem.display(),
            out.display()
        ),
        &["two tasks are named", "own `name`"],
    );
    let twice = tmp.path().join("twice.toml");
    std::fs::write(
        &twice,
        format!("[[task]]\ntask = \"{task}\"\nname = \"a\"\n\n[[task]]\ntask = \"sst2\"\nname = \"a\"\n"),
    )
    .unwrap();
    assert_error(
        cache,
        &format!(
            "compare --corpus {corpus} --config {} --seeds 1 --steps 5 --out {}",
            twice.display(),
            out.display()
        ),
        &["two tasks are named \"a\""],
    );
    assert!(!out.exists(), "a refused comparison writes nothing");
    // A directory that is not a comparison.
    std::fs::create_dir_all(out.join("something")).unwrap();
    assert_error(cache, &base("--steps 5"), &["not empty", "another --out"]);
    assert_error(
        cache,
        &format!("compare --resume {}", out.display()),
        &["compare.json", "not a comparison"],
    );
}

/// Two tasks with different label sets in one comparison, each on its own terms from
/// `[[task]]` tables: a three-way task with its own validation file, name and prompt, and a
/// two-way one with no prompt, fine-tuned and probed but not prompted. The report names them
/// by their short names and ends with a summary across tasks and minimal pairs.
#[test]
fn tasks_with_their_own_labels_files_and_prompts_share_one_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let (corpus, sentiment) = write_inputs(tmp.path());
    let things = ["film", "movie", "story", "plot", "cast"];
    let sizes = ["tiny", "huge", "plain"];
    let (mut train, mut valid) = (String::from("sentence\tsize\n"), String::from("sentence\tsize\n"));
    for i in 0..90 {
        let line = format!("a {} {}\t{}\n", sizes[i % 3], things[i % 5], sizes[i % 3]);
        if i % 5 == 4 { valid += &line } else { train += &line }
    }
    let (train_path, valid_path) = (tmp.path().join("sizes-train.tsv"), tmp.path().join("sizes-valid.tsv"));
    std::fs::write(&train_path, train).unwrap();
    std::fs::write(&valid_path, valid).unwrap();
    let config = tmp.path().join("compare.toml");
    std::fs::write(
        &config,
        format!(
            "layers = 1\nd-model = 16\nheads = 2\nseq-len = 16\nbatch-size = 4\nsteps = 20\n\n\
             [[task]]\ntask = \"{}\"\nname = \"sizes\"\nvalid = \"{}\"\ntext_column = \"sentence\"\n\
             label_column = \"size\"\ntemplate = \"{{text}}: [LABEL]\"\nverbalizer = \"tiny=small,huge=big,plain=plain\"\n\n\
             [[task]]\ntask = \"{sentiment}\"\nname = \"reviews\"\n",
            train_path.display(),
            valid_path.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("report");
    let command = format!(
        "compare --corpus {corpus} --config {} --seeds 1 --tokenizer-kind char --label-budgets all \
         --finetune-epochs 1 --pairs-limit 1 --minimal-pairs-limit 10 --out {}",
        config.display(),
        out.display()
    );
    primer_ok(cache, &command);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Task sizes") && md.contains("## Task reviews"), "{md}");
    assert!(
        md.contains("labels huge/plain/tiny"),
        "the three-way task keeps its own labels"
    );
    assert!(
        md.contains("18 dev examples"),
        "the three-way task reads its own valid file"
    );
    assert!(md.contains("Zero-shot prompting skipped: the task has no prompt"));
    assert!(out.join("label-efficiency-sizes.svg").exists() && out.join("label-efficiency-reviews.svg").exists());
    assert!(!out.join("runs").read_dir().unwrap().any(|e| {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        name.contains("zero-shot") && name.contains("reviews")
    }));
    let tables = markdown_tables(&md);
    let (header, rows) = tables.last().unwrap();
    assert_eq!(header, &["objective", "sizes", "reviews", "minimal pairs"]);
    assert_eq!(rows.len(), 2, "one row per objective");
    let results = read_json(&out.join("results.json"));
    let names: Vec<&str> = results["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sizes", "reviews"]);

    // A [[task]] with a template and no label words is refused before any work.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!("[[task]]\ntask = \"{sentiment}\"\ntemplate = \"{{text}} [LABEL]\"\n"),
    )
    .unwrap();
    assert_error(
        cache,
        &format!(
            "compare --corpus {corpus} --config {} --seeds 1 --steps 5 --out {}",
            bad.display(),
            tmp.path().join("bad").display()
        ),
        &["config", "needs label words", "verbalizer"],
    );
}

/// `--shots 0,4` on SST-2: the causal model prompted with 4 demonstrations from the training
/// split, calibrated and not, beside a fine-tune on exactly those 4 examples, with paired
/// intervals; the report's k-shot table shows both rows (and zero-shot as K of 0), the chart
/// draws prompting on the fine-tunes' axis, and a resume changes nothing.
#[test]
fn k_shot_rows_on_sst2_sit_beside_fine_tuning_on_the_same_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let out = tmp.path().join("report");
    let command = format!(
        "compare --corpus {} --task sst2 --objectives clm --seeds 1 --shots 0,4 --label-budgets 8 \
         --tokenizer-kind char --layers 1 --d-model 16 --heads 2 --seq-len 512 --batch-size 4 --steps 10 \
         --finetune-epochs 1 --minimal-pairs none --out {}",
        shakespeare(),
        out.display()
    );
    primer_ok(cache, &command);
    let results = read_json(&out.join("results.json"));
    assert_eq!(results["spec"]["shots"], serde_json::json!([0, 4]));
    let task = &results["tasks"][0];
    let cell = |method: &str, budget: Value| {
        task["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["method"] == method && c["budget"] == budget)
            .unwrap_or_else(|| panic!("no {method} cell at {budget}"))
            .clone()
    };
    let (prompted, tuned) = (cell("k-shot", 4.into()), cell("shot-finetune", 4.into()));
    for c in [
        &prompted,
        &tuned,
        &cell("k-shot-calibrated", 4.into()),
        &cell("k-shot-calibrated", Value::Null),
    ] {
        let accuracy = c["mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{c}");
    }
    assert_eq!(tuned["labels_used"], 4);
    // The fine-tune trained on the 4 examples the prompts showed.
    let run = out.join(tuned["runs"][0].as_str().unwrap());
    assert_eq!(read_json(&run.join("finetune.json"))["shots"], 4);
    assert_eq!(read_json(&run.join("summary.json"))["train_examples"], 4);
    let shown = read_json(&out.join(prompted["runs"][0].as_str().unwrap()));
    assert_eq!(shown["draws"][0]["demonstrations"].as_array().unwrap().len(), 4);
    let pairs: Vec<(&str, &str)> = task["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["budget"] == 4)
        .map(|c| (c["a"].as_str().unwrap(), c["b"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("clm k-shot", "clm shot fine-tune"),
            ("clm k-shot calibrated", "clm shot fine-tune")
        ]
    );

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let tables = markdown_tables(&md);
    let (header, rows) = tables
        .iter()
        .find(|(header, _)| header.last().is_some_and(|h| h == "4 labels") && header.contains(&"0 labels".to_string()))
        .expect("the k-shot table");
    assert_eq!(header, &["objective", "method", "0 labels", "4 labels"]);
    let row = |method: &str| rows.iter().find(|r| r[1] == method).unwrap().clone();
    assert_eq!(row("k-shot")[3], mean_pm_std(&prompted));
    assert_eq!(row("k-shot")[2], mean_pm_std(&cell("zero-shot", Value::Null)));
    assert_eq!(row("shot fine-tune")[3], mean_pm_std(&tuned));
    assert_eq!(row("shot fine-tune")[2], "—");
    assert!(
        md.contains("At 4 labels, clm k-shot") || md.contains("At 4 labels, clm shot fine-tune"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("label-efficiency-sst2.svg")).unwrap();
    assert!(svg.contains("clm k-shot") && svg.contains("clm shot fine-tune"));

    // Every job is done: a resume writes the same results.
    let resumed = primer(cache, &format!("compare --resume {}", out.display()));
    assert_ok(&resumed);
    let again = read_json(&out.join("results.json"));
    assert_eq!(again["tasks"], results["tasks"]);
}
