//! Named public data sets: `--corpus tinyshakespeare` resolves to checked files under the data
//! home, fetching them from their public URL when missing.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::corpus::{CorpusFile, DocSplit, FileFormat};
use crate::error::{DataError, Result};
use primer_files::checksums::sha256_file;

/// One file of a named data set.
#[derive(Debug, Clone, Copy)]
pub struct NamedFile<'a> {
    /// Path under the data home, e.g. `tinyshakespeare/input.txt`.
    pub path: &'a str,
    /// Expected sha256 of the file.
    pub sha256: &'a str,
    /// Public URL of a byte-identical copy; `None` for files derived from a source.
    pub url: Option<&'a str>,
    /// How to read it as a corpus.
    pub read_as: ReadAs,
}

/// How a named file is read as a corpus.
#[derive(Debug, Clone, Copy)]
pub enum ReadAs {
    /// Plain text with this document split.
    Text(DocSplit),
    /// Delimited rows: delimiter and text column.
    Column(u8, &'static str),
    /// JSON Lines of minimal pairs, read by [`crate::pairs`]: not a corpus.
    MinimalPairs,
}

/// A named data set.
#[derive(Debug, Clone, Copy)]
pub struct NamedDataset {
    /// The name given to `--corpus`.
    pub name: &'static str,
    /// One line about it.
    pub about: &'static str,
    /// Its files.
    pub files: &'static [NamedFile<'static>],
}

/// A public GitHub file at a fixed commit.
macro_rules! gh {
    ($repo:literal, $commit:literal, $path:literal) => {
        Some(concat!(
            "https://raw.githubusercontent.com",
            "/",
            $repo,
            "/",
            $commit,
            "/",
            $path
        ))
    };
}

/// SST-2's GLUE train split (`sentence`, `label`): a corpus of its sentences, and the train split
/// of the `sst2` task.
pub const SST2_TRAIN: NamedFile = NamedFile {
    path: "sst2/train.tsv",
    sha256: "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
    url: gh!(
        "eyalbd2/Reproducing-AutoPrompt",
        "6288fb5bec9c572f2492875ae0111df5b6daed11",
        "glue_data/SST-2/train_full.tsv"
    ),
    read_as: ReadAs::Column(b'\t', "sentence"),
};

/// SST-2's GLUE dev split: the validation split of the `sst2` task.
pub const SST2_DEV: NamedFile = NamedFile {
    path: "sst2/dev.tsv",
    sha256: "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
    url: gh!(
        "eyalbd2/Reproducing-AutoPrompt",
        "6288fb5bec9c572f2492875ae0111df5b6daed11",
        "glue_data/SST-2/dev.tsv"
    ),
    read_as: ReadAs::Column(b'\t', "sentence"),
};

/// waimai_10k (`label`, `review`): Chinese food-delivery reviews, a corpus and the `waimai` task.
pub const WAIMAI: NamedFile = NamedFile {
    path: "waimai-10k/waimai_10k.csv",
    sha256: "b8b5c11c00b51578d35937fca56e03a126b45381f1ea4b22893237cb377a26fe",
    url: gh!(
        "SophonPlus/ChineseNlpCorpus",
        "a0b781d72158bde242c0626c9e354d2b328865ff",
        "datasets/waimai_10k/waimai_10k.csv"
    ),
    read_as: ReadAs::Column(b',', "review"),
};

/// Every named data set primer knows.
pub const REGISTRY: &[NamedDataset] = &[
    NamedDataset {
        name: "tinyshakespeare",
        about: "Tiny Shakespeare (char-rnn), 1.1 MB; one document per speech",
        files: &[NamedFile {
            path: "tinyshakespeare/input.txt",
            sha256: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            url: gh!(
                "karpathy/char-rnn",
                "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e",
                "data/tinyshakespeare/input.txt"
            ),
            read_as: ReadAs::Text(DocSplit::Paragraph),
        }],
    },
    NamedDataset {
        name: "wikitext-2",
        about: "WikiText-2 raw, valid and test splits, 2.4 MB; one document per paragraph line",
        files: &[
            NamedFile {
                path: "wikitext-2-raw/wiki.valid.raw",
                sha256: "4cd0f6876d07a413aa911261ff6d363c72d757d47f0fdd6015702014c89cb9c7",
                url: gh!(
                    "DRAGNLabs/LLMHumanModeling",
                    "a76c47739e890a857b138b0adc5ca47a10c4c18f",
                    "data/wiki.valid.raw"
                ),
                read_as: ReadAs::Text(DocSplit::Line),
            },
            NamedFile {
                path: "wikitext-2-raw/wiki.test.raw",
                sha256: "173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08",
                url: gh!(
                    "DRAGNLabs/LLMHumanModeling",
                    "a76c47739e890a857b138b0adc5ca47a10c4c18f",
                    "data/wiki.test.raw"
                ),
                read_as: ReadAs::Text(DocSplit::Line),
            },
        ],
    },
    NamedDataset {
        name: "sst2",
        about: "SST-2 train sentences without labels, 67k sentences",
        files: &[SST2_TRAIN],
    },
    NamedDataset {
        name: "tinystories",
        about: "leading 794 KB of the TinyStories validation split; blank-line blocks",
        files: &[NamedFile {
            path: "tinystories/tinystories_val.txt",
            sha256: "5fc1fb0113df62b567fb271806cd645ce8d75f59c58ca0b764c03d3b6ff34ca6",
            url: gh!(
                "yuninxia/moe-routing-bench",
                "bb9bb0bd461aa77cf6ab89423b758f586a6f75d1",
                "data/tinystories_val.txt"
            ),
            read_as: ReadAs::Text(DocSplit::Paragraph),
        }],
    },
    NamedDataset {
        name: "waimai-10k",
        about: "12k Chinese food-delivery reviews, text only (labels unused)",
        files: &[WAIMAI],
    },
    NamedDataset {
        name: "cmrc2018",
        about: "1,104 Chinese Wikipedia paragraphs (CMRC 2018 contexts); one per line",
        files: &[
            NamedFile {
                path: "cmrc2018/cmrc2018_dev.contexts.txt",
                sha256: "dfb1402038c96b128fb6d3378dccd75293d403f4cd64f636a9b56806b1e066a8",
                url: None,
                read_as: ReadAs::Text(DocSplit::Line),
            },
            NamedFile {
                path: "cmrc2018/cmrc2018_trial.contexts.txt",
                sha256: "a942a85e289ea8e071bc63930f7debf24f755c8033f91d8a38ef13cd1161d093",
                url: None,
                read_as: ReadAs::Text(DocSplit::Line),
            },
        ],
    },
    NamedDataset {
        name: "ud-chinese-gsdsimp",
        about: "1,000 Chinese sentences (UD GSDSimp dev and test); one per line",
        files: &[
            NamedFile {
                path: "ud-chinese-gsdsimp/zh_gsdsimp-ud-dev.sentences.txt",
                sha256: "18233a18850c58b48246f578944c06c84fa8bcca9cf1d31745e8df10319009f2",
                url: None,
                read_as: ReadAs::Text(DocSplit::Line),
            },
            NamedFile {
                path: "ud-chinese-gsdsimp/zh_gsdsimp-ud-test.sentences.txt",
                sha256: "c0f564d05e7d3f328d527e17dfe024e10157609baffd4fbe9ba9d08c1225c09c",
                url: None,
                read_as: ReadAs::Text(DocSplit::Line),
            },
        ],
    },
];

/// The data home: `$PRIMER_DATA`, or `~/.cache/primer`.
pub fn data_home() -> PathBuf {
    std::env::var_os("PRIMER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| home_dir().join(".cache/primer"))
}

/// The home folder (`$HOME`, or the current folder when unset).
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Looks a name up in [`REGISTRY`].
pub fn lookup(name: &str) -> Option<&'static NamedDataset> {
    REGISTRY.iter().find(|d| d.name == name)
}

/// The files of a named data set under `home`, each checked by sha256 and fetched when missing.
///
/// `mirror`, when given, replaces the public host: a file is fetched from `{mirror}/{path}`.
pub fn resolve(dataset: &NamedDataset, home: &Path, mirror: Option<&str>, progress: bool) -> Result<Vec<CorpusFile>> {
    let mut files = Vec::new();
    for file in dataset.files {
        let path = checked_path(dataset.name, file, home, mirror, progress)?;
        let format = match file.read_as {
            ReadAs::Text(split) => FileFormat::Text { split },
            ReadAs::Column(delimiter, column) => FileFormat::Delimited {
                delimiter,
                column: column.into(),
            },
            ReadAs::MinimalPairs => {
                return Err(DataError::Named {
                    name: dataset.name.into(),
                    message: "holds minimal pairs, not a corpus: score them with `primer minimal-pairs`".into(),
                });
            }
        };
        files.push(CorpusFile { path, format });
    }
    Ok(files)
}

/// The path of one file of the data set `name` under `home`, checked by sha256 and fetched
/// when missing (from `{mirror}/{path}` when a mirror is given).
pub fn checked_path(
    name: &str,
    file: &NamedFile,
    home: &Path,
    mirror: Option<&str>,
    progress: bool,
) -> Result<PathBuf> {
    let path = home.join(file.path);
    if !path.exists() {
        fetch(name, file, &path, mirror, progress)?;
    }
    let actual = sha256_file(&path)?;
    if actual != file.sha256 {
        return Err(DataError::Named {
            name: name.into(),
            message: format!(
                "{} has sha256 {actual}, expected {}: delete it so primer fetches it again",
                path.display(),
                file.sha256
            ),
        });
    }
    Ok(path)
}

/// Downloads one file to a temporary name, checks its sha256, then renames it into place.
fn fetch(name: &str, file: &NamedFile, dest: &Path, mirror: Option<&str>, progress: bool) -> Result<()> {
    let fail = |message: String| DataError::Named {
        name: name.into(),
        message,
    };
    let url = match (mirror, file.url) {
        (Some(mirror), _) => format!("{}/{}", mirror.trim_end_matches('/'), file.path),
        (None, Some(url)) => url.to_string(),
        (None, None) => {
            return Err(fail(format!(
                "{} is missing and is derived from its source (no public copy to fetch): set PRIMER_DATA to a folder that has it",
                dest.display()
            )));
        }
    };
    let parent = dest.parent().expect("named paths have a folder");
    std::fs::create_dir_all(parent).map_err(DataError::io(parent))?;
    let mut response = ureq::get(&url).call().map_err(|e| {
        fail(format!(
            "cannot fetch {url} ({e}): check the network, or set PRIMER_DATA to a folder that has {}",
            file.path
        ))
    })?;
    let length = response.body().content_length();
    let bar = match (progress, length) {
        (true, Some(length)) => ProgressBar::new(length),
        (true, None) => ProgressBar::no_length(),
        (false, _) => ProgressBar::hidden(),
    }
    .with_style(
        ProgressStyle::with_template("fetching {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template"),
    )
    .with_message(file.path.to_string());
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(DataError::io(parent))?;
    let mut reader = response.body_mut().as_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| fail(format!("download of {url} broke off ({e}): run again")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(DataError::io(tmp.path()))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    let actual = hex::encode(hasher.finalize());
    if actual != file.sha256 {
        return Err(fail(format!(
            "{url} served a file with sha256 {actual}, expected {}: the source changed; nothing was saved",
            file.sha256
        )));
    }
    tmp.persist(dest).map_err(|e| DataError::io(dest)(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    const SHARED: &str = "../../shared/data";

    /// Serves files from `root` over HTTP/1.1 on loopback for `requests` requests.
    fn serve(root: PathBuf, requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut request_line = String::new();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                reader.read_line(&mut request_line).unwrap();
                let mut header = String::new();
                while reader.read_line(&mut header).unwrap() > 2 {
                    header.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap().trim_start_matches('/');
                match std::fs::read(root.join(path)) {
                    Ok(body) => {
                        write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .unwrap();
                        stream.write_all(&body).unwrap();
                    }
                    Err(_) => {
                        write!(
                            stream,
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .unwrap();
                    }
                }
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn shared_data_matches_the_registry() {
        for dataset in REGISTRY {
            let files = resolve(dataset, Path::new(SHARED), Some("http://127.0.0.1:9"), false).unwrap();
            assert_eq!(files.len(), dataset.files.len());
        }
    }

    #[test]
    fn fetches_missing_files_checks_sha256_and_leaves_no_partial_file() {
        let home = tempfile::tempdir().unwrap();
        let mirror = serve(PathBuf::from(SHARED), 1);
        let dataset = lookup("tinyshakespeare").unwrap();
        let files = resolve(dataset, home.path(), Some(&mirror), false).unwrap();
        assert_eq!(files[0].path, home.path().join("tinyshakespeare/input.txt"));
        assert_eq!(sha256_file(&files[0].path).unwrap(), dataset.files[0].sha256);

        // A server that serves other bytes under the expected name: refused, nothing saved.
        let wrong_root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(wrong_root.path().join("sst2")).unwrap();
        std::fs::write(wrong_root.path().join("sst2/train.tsv"), "sentence\tlabel\nx\t1\n").unwrap();
        let mirror = serve(wrong_root.path().to_path_buf(), 1);
        let err = resolve(lookup("sst2").unwrap(), home.path(), Some(&mirror), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sha256") && err.contains("nothing was saved"), "{err}");
        let sst2_dir: Vec<_> = std::fs::read_dir(home.path().join("sst2")).unwrap().collect();
        assert!(sst2_dir.is_empty(), "partial download left behind");

        // Unreachable server: a clear error naming the data set.
        let err = resolve(
            lookup("tinystories").unwrap(),
            home.path(),
            Some("http://127.0.0.1:9"),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("tinystories") && err.contains("PRIMER_DATA"), "{err}");
    }
}
