//! How to read a corpus.

use primer_datasets::corpus::{CorpusOptions, DocSplit};

use crate::schema::option_set;

option_set! {
    /// How to read a corpus; shared by every command that takes `--corpus`.
    pub struct CorpusArgs {
        /// Corpus, space- or comma-separated: files, folders (recursive), globs, or named data
        /// sets (tinyshakespeare, wikitext-2, sst2, tinystories, waimai-10k, cmrc2018,
        /// ud-chinese-gsdsimp).
        #[arg(num_args = 1.., value_delimiter = ',', value_name = "PATH|NAME")]
        corpus: Vec<String>,
        /// How .txt files split into documents: paragraph (blank line), line, file.
        doc_split: DocSplit = DocSplit::default(),
        /// The field of .jsonl records that holds the text.
        text_field: String = "text".to_string(),
        /// The column of .tsv/.csv files that holds the text.
        column: String = "text".to_string(),
        /// Replace invalid UTF-8 with U+FFFD instead of stopping with an error.
        #[arg(num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        lossy: bool = false,
    }
}

impl CorpusArgs {
    /// How the corpus's files are read.
    pub fn read_options(&self) -> CorpusOptions {
        CorpusOptions {
            split: self.doc_split(),
            text_field: self.text_field(),
            column: self.column(),
            lossy: self.lossy(),
        }
    }
}
