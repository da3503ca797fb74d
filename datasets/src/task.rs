//! Labelled classification tasks: examples read from TSV, CSV or JSON Lines files, the label set
//! taken from the training file, named tasks (`sst2`, `waimai`) and seeded, label-stratified
//! training subsets.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::named::{self, NamedFile};
use primer_files::lines::{LineBounded, LineTooLong};

/// One labelled example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The text (two text columns are joined by a `[SEP]`-marked pair, see [`TaskSource`]).
    pub text: String,
    /// Index into the task's label names.
    pub label: usize,
}

/// A classification task: label names and train/valid examples.
#[derive(Debug, Clone)]
pub struct Task {
    /// Name (the named task, or the training file).
    pub name: String,
    /// Label names in index order: sorted, numerically when every label is an integer.
    pub labels: Vec<String>,
    /// Training examples.
    pub train: Vec<Example>,
    /// Validation examples.
    pub valid: Vec<Example>,
}

/// Where a task's examples come from and which columns hold what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSource {
    /// The training file.
    pub train: PathBuf,
    /// The validation file; `None` holds out a seeded, stratified share of `train`.
    pub valid: Option<PathBuf>,
    /// Text column(s) (JSON Lines: fields); two columns form a sentence pair, joined by
    /// `separator`.
    pub text_columns: Vec<String>,
    /// The label column (field).
    pub label_column: String,
}

/// A named task.
#[derive(Debug, Clone, Copy)]
pub struct NamedTask {
    /// The name given to `--task`.
    pub name: &'static str,
    /// One line about it.
    pub about: &'static str,
    /// Training file.
    pub train: NamedFile<'static>,
    /// Validation file; `None` holds out part of `train` with a seeded split.
    pub valid: Option<NamedFile<'static>>,
    /// Text column.
    pub text_column: &'static str,
    /// Label column.
    pub label_column: &'static str,
    /// A zero-shot prompt: `{text}` is the example, `[LABEL]` the slot for a label word.
    pub template: &'static str,
    /// A word per label for the zero-shot prompt, `LABEL=WORD` pairs, comma-separated.
    pub verbalizer: &'static str,
}

/// Every named task primer knows.
pub const TASKS: &[NamedTask] = &[
    NamedTask {
        name: "sst2",
        about: "SST-2 movie-review sentiment (GLUE): 67k train, 872 dev; labels 0/1",
        train: named::SST2_TRAIN,
        valid: Some(named::SST2_DEV),
        text_column: "sentence",
        label_column: "label",
        template: "{text} It was [LABEL].",
        verbalizer: "0=terrible,1=great",
    },
    NamedTask {
        name: "waimai",
        about: "waimai_10k Chinese food-delivery review sentiment: 12k reviews, 10% held out; labels 0/1",
        train: named::WAIMAI,
        valid: None,
        text_column: "review",
        label_column: "label",
        template: "{text}总之，很[LABEL]。",
        verbalizer: "0=差,1=好",
    },
];

/// Share of a single-file task held out for validation.
pub const HELD_OUT_SHARE: f64 = 0.1;

/// The source of a named task, its files checked and fetched like named corpora.
pub fn named_source(task: &NamedTask, home: &Path, mirror: Option<&str>, progress: bool) -> Result<TaskSource> {
    let path = |file: &NamedFile| named::checked_path(task.name, file, home, mirror, progress);
    Ok(TaskSource {
        train: path(&task.train)?,
        valid: task.valid.as_ref().map(path).transpose()?,
        text_columns: vec![task.text_column.into()],
        label_column: task.label_column.into(),
    })
}

/// Looks a name up in [`TASKS`].
pub fn lookup(name: &str) -> Option<&'static NamedTask> {
    TASKS.iter().find(|task| task.name == name)
}

impl Task {
    /// Reads a task. The label set comes from the training file; a validation label outside it
    /// is an error naming the line. Without a validation file, a seeded stratified
    /// [`HELD_OUT_SHARE`] of the training file is held out.
    pub fn read(name: &str, source: &TaskSource, seed: u64) -> Result<Self> {
        if source.text_columns.is_empty() || source.text_columns.len() > 2 {
            return Err(DataError::InvalidOption(format!(
                "--text-column takes one column or two (a sentence pair), not {}",
                source.text_columns.len()
            )));
        }
        let train_rows = read_rows(&source.train, &source.text_columns, &source.label_column)?;
        let mut labels: Vec<String> = train_rows.iter().map(|row| row.label.clone()).collect();
        labels.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => a.cmp(b),
        });
        labels.dedup();
        if labels.len() < 2 {
            return Err(DataError::InvalidOption(format!(
                "{}: every example has the label {:?}: a classification task needs at least two labels",
                source.train.display(),
                labels[0]
            )));
        }
        let index: BTreeMap<&str, usize> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
        let to_example = |row: Row, path: &Path| -> Result<Example> {
            let label = *index.get(row.label.as_str()).ok_or_else(|| DataError::BadRecord {
                path: path.to_path_buf(),
                line: row.line,
                message: format!(
                    "label {:?} is not among the training file's labels ({}): fix the label or the file",
                    row.label,
                    labels.join(", ")
                ),
            })?;
            Ok(Example { text: row.text, label })
        };
        let train: Vec<Example> = train_rows
            .into_iter()
            .map(|row| to_example(row, &source.train))
            .collect::<Result<_>>()?;
        let (train, valid) = match &source.valid {
            Some(path) => {
                let valid = read_rows(path, &source.text_columns, &source.label_column)?
                    .into_iter()
                    .map(|row| to_example(row, path))
                    .collect::<Result<_>>()?;
                (train, valid)
            }
            None => {
                let held_out = ((train.len() as f64) * HELD_OUT_SHARE).round() as usize;
                let mut rest = stratified(&train, labels.len(), held_out, seed);
                rest.sort_unstable();
                let mut valid = Vec::with_capacity(held_out);
                let mut kept = Vec::with_capacity(train.len() - held_out);
                let mut chosen = rest.into_iter().peekable();
                for (i, example) in train.into_iter().enumerate() {
                    if chosen.next_if_eq(&i).is_some() {
                        valid.push(example);
                    } else {
                        kept.push(example);
                    }
                }
                (kept, valid)
            }
        };
        if valid.is_empty() {
            let fix = match &source.valid {
                Some(path) => format!("{} has no examples: give a validation file with rows", path.display()),
                None => format!(
                    "{} has too few examples to hold some out: give more, or a --valid-file",
                    source.train.display()
                ),
            };
            return Err(DataError::InvalidOption(format!(
                "task {name}: no validation examples; {fix}"
            )));
        }
        Ok(Self {
            name: name.into(),
            labels,
            train,
            valid,
        })
    }

    /// Keeps a seeded, label-stratified subset of `n` training examples (in their file order).
    pub fn limit_train(&mut self, n: usize, seed: u64) -> Result<()> {
        if n > self.train.len() {
            return Err(DataError::InvalidOption(format!(
                "--train-limit {n} is more than the {} training examples of {}: give at most {}",
                self.train.len(),
                self.name,
                self.train.len()
            )));
        }
        if n < self.labels.len() {
            return Err(DataError::InvalidOption(format!(
                "--train-limit {n} cannot hold one example of each of the {} labels: give at least {}",
                self.labels.len(),
                self.labels.len()
            )));
        }
        let mut chosen = stratified(&self.train, self.labels.len(), n, seed);
        chosen.sort_unstable();
        self.train = chosen.into_iter().map(|i| self.train[i].clone()).collect();
        Ok(())
    }

    /// Examples per label in the training split.
    pub fn train_label_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.labels.len()];
        for example in &self.train {
            counts[example.label] += 1;
        }
        counts
    }
}

/// Indices of `n` examples drawn per label in proportion to the label's share (largest
/// remainders round), each label's examples in a seeded random order.
fn stratified(examples: &[Example], n_labels: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut by_label: Vec<Vec<usize>> = vec![Vec::new(); n_labels];
    for (i, example) in examples.iter().enumerate() {
        by_label[example.label].push(i);
    }
    let total = examples.len() as f64;
    let quotas: Vec<f64> = by_label.iter().map(|ids| ids.len() as f64 * n as f64 / total).collect();
    let mut take: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut order: Vec<usize> = (0..n_labels).collect();
    order.sort_by(|&a, &b| (quotas[b] - quotas[b].floor()).total_cmp(&(quotas[a] - quotas[a].floor())));
    for &label in order.iter().cycle().take(n - take.iter().sum::<usize>()) {
        take[label] += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::with_capacity(n);
    for (ids, take) in by_label.iter_mut().zip(take) {
        ids.shuffle(&mut rng);
        chosen.extend_from_slice(&ids[..take.min(ids.len())]);
    }
    chosen
}

/// One row: text, label string and 1-based line.
struct Row {
    text: String,
    label: String,
    line: u64,
}

/// Reads the rows of a .tsv, .csv or .jsonl task file.
fn read_rows(path: &Path, text_columns: &[String], label_column: &str) -> Result<Vec<Row>> {
    crate::corpus::check_file(path, "task file")?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let rows = match ext.as_str() {
        "tsv" => read_delimited(path, b'\t', text_columns, label_column)?,
        "csv" => read_delimited(path, b',', text_columns, label_column)?,
        "jsonl" => read_jsonl(path, text_columns, label_column)?,
        _ => {
            return Err(DataError::InvalidOption(format!(
                "{}: unsupported task file type: use .tsv, .csv or .jsonl",
                path.display()
            )));
        }
    };
    if rows.is_empty() {
        return Err(DataError::Empty(path.display().to_string()));
    }
    Ok(rows)
}

fn read_delimited(path: &Path, delimiter: u8, text_columns: &[String], label_column: &str) -> Result<Vec<Row>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        // GLUE's TSVs hold bare quotes inside sentences.
        .quoting(delimiter != b'\t')
        .from_reader(LineBounded::new(
            std::fs::File::open(path).map_err(DataError::io(path))?,
        ));
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, 1, e, "cannot read the header"))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            bad(
                path,
                1,
                format!(
                    "no column {name:?} (columns: {}): name the right one with --text-column/--label-column",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    };
    let texts: Vec<usize> = text_columns.iter().map(|c| column(c)).collect::<Result<_>>()?;
    let label = column(label_column)?;
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| csv_error(path, line, e, "malformed row"))?;
        let field = |index: usize| {
            record.get(index).map(str::trim).ok_or_else(|| {
                bad(
                    path,
                    line,
                    format!("has {} fields, fewer than the header", record.len()),
                )
            })
        };
        let label = field(label)?.to_string();
        if label.is_empty() {
            return Err(bad(path, line, "the label is empty: label every row".into()));
        }
        let parts: Vec<&str> = texts.iter().map(|&i| field(i)).collect::<Result<_>>()?;
        rows.push(Row {
            text: join_pair(&parts),
            label,
            line,
        });
    }
    Ok(rows)
}

fn read_jsonl(path: &Path, text_fields: &[String], label_field: &str) -> Result<Vec<Row>> {
    let file = std::fs::File::open(path).map_err(DataError::io(path))?;
    let mut rows = Vec::new();
    for (i, line) in BufReader::new(LineBounded::new(file)).lines().enumerate() {
        let line_no = i as u64 + 1;
        let line = line.map_err(|e| bad(path, line_no, primer_files::lines::line_error(&e)))?;
        let line = line.as_str();
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| bad(path, line_no, format!("not a JSON object ({e}): one object per line")))?;
        let field = |name: &str| match record.get(name) {
            Some(serde_json::Value::String(s)) => Ok(s.trim().to_string()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            Some(serde_json::Value::Bool(b)) => Ok(b.to_string()),
            _ => Err(bad(
                path,
                line_no,
                format!("no string or number field {name:?}: name the right one with --text-column/--label-column"),
            )),
        };
        let parts: Vec<String> = text_fields.iter().map(|f| field(f)).collect::<Result<_>>()?;
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        rows.push(Row {
            text: join_pair(&parts),
            label: field(label_field)?,
            line: line_no,
        });
    }
    Ok(rows)
}

/// The separator placed between the two texts of a sentence pair.
pub const PAIR_SEPARATOR: &str = " [SEP] ";

fn join_pair(parts: &[&str]) -> String {
    parts.join(PAIR_SEPARATOR)
}

/// A CSV reader's error at `line`: a line over the bound as such, else `what` with the cause.
fn csv_error(path: &Path, line: u64, error: csv::Error, what: &str) -> DataError {
    match error.kind() {
        csv::ErrorKind::Io(io) if LineTooLong::is(io) => bad(path, line, io.to_string()),
        _ => bad(path, line, format!("{what} ({error}): fix the file")),
    }
}

fn bad(path: &Path, line: u64, message: String) -> DataError {
    DataError::BadRecord {
        path: path.to_path_buf(),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &Path, train: &str, valid: Option<&str>) -> TaskSource {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        TaskSource {
            train: write("train.tsv", train),
            valid: valid.map(|text| write("valid.tsv", text)),
            text_columns: vec!["sentence".into()],
            label_column: "label".into(),
        }
    }

    #[test]
    fn labels_come_from_the_training_file_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        let src = source(
            dir.path(),
            "sentence\tlabel\na \"quoted\" one\t10\nb\t2\nc\t10\n",
            Some("sentence\tlabel\nd\t2\n"),
        );
        let task = Task::read("t", &src, 0).unwrap();
        assert_eq!(task.labels, ["2", "10"]);
        assert_eq!(task.train[0].text, "a \"quoted\" one");
        assert_eq!(task.train.iter().map(|e| e.label).collect::<Vec<_>>(), [1, 0, 1]);
        assert_eq!(
            task.valid,
            [Example {
                text: "d".into(),
                label: 0
            }]
        );
    }

    #[test]
    fn bad_task_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let err = |train: &str, valid: Option<&str>| {
            Task::read("t", &source(dir.path(), train, valid), 0)
                .unwrap_err()
                .to_string()
        };
        let unknown = err(
            "sentence\tlabel\na\t0\nb\t1\n",
            Some("sentence\tlabel\nc\t0\nd\tmaybe\n"),
        );
        assert!(
            unknown.contains("valid.tsv:3") && unknown.contains("\"maybe\""),
            "{unknown}"
        );
        assert!(err("sentence\tlabel\na\t1\nb\t1\n", None).contains("at least two labels"));
        assert!(err("sentence\tlabel\n", None).contains("empty"));
        assert!(err("text\tlabel\na\t1\n", None).contains("no column \"sentence\""));
        assert!(err("sentence\tlabel\na\t\n", None).contains("label is empty"));
    }

    #[test]
    fn held_out_split_and_train_limit_are_seeded_and_stratified() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("sentence\tlabel\n");
        for i in 0..300 {
            text += &format!("s{i}\t{}\n", if i % 3 == 0 { "pos" } else { "neg" });
        }
        let src = source(dir.path(), &text, None);
        let task = Task::read("t", &src, 7).unwrap();
        assert_eq!((task.train.len(), task.valid.len()), (270, 30));
        assert_eq!(task.valid.iter().filter(|e| task.labels[e.label] == "pos").count(), 10);
        let again = Task::read("t", &src, 7).unwrap();
        assert_eq!(task.valid, again.valid);
        assert_ne!(task.valid, Task::read("t", &src, 8).unwrap().valid);

        let mut limited = task.clone();
        limited.limit_train(30, 1).unwrap();
        assert_eq!(limited.train_label_counts(), [20, 10]);
        let err = task.clone().limit_train(271, 1).unwrap_err().to_string();
        assert!(err.contains("--train-limit 271") && err.contains("270"), "{err}");
    }

    #[test]
    fn jsonl_tasks_take_string_or_integer_labels_and_sentence_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.jsonl");
        std::fs::write(
            &path,
            "{\"a\": \"x\", \"b\": \"y\", \"label\": 1}\n{\"a\": \"z\", \"b\": \"w\", \"label\": 0}\n",
        )
        .unwrap();
        let src = TaskSource {
            train: path.clone(),
            valid: Some(path),
            text_columns: vec!["a".into(), "b".into()],
            label_column: "label".into(),
        };
        let task = Task::read("t", &src, 0).unwrap();
        assert_eq!(task.labels, ["0", "1"]);
        assert_eq!(task.train[0].text, "x [SEP] y");
    }

    #[test]
    fn named_tasks_read_the_shared_data() {
        let home = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
        let sst2 = Task::read(
            "sst2",
            &named_source(lookup("sst2").unwrap(), &home, None, false).unwrap(),
            0,
        )
        .unwrap();
        assert_eq!((sst2.train.len(), sst2.valid.len()), (67_349, 872));
        assert_eq!(sst2.labels, ["0", "1"]);
        let waimai = Task::read(
            "waimai",
            &named_source(lookup("waimai").unwrap(), &home, None, false).unwrap(),
            0,
        )
        .unwrap();
        assert_eq!(waimai.train.len() + waimai.valid.len(), 11_987);
        assert_eq!(waimai.valid.len(), 1_199);
    }
}
