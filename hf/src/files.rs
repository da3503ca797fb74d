//! A checkpoint's files, opened only when they are regular files (a link is followed only to
//! one) and no larger than a cap: a FIFO cannot hang an import, nor `/dev/zero` or a huge file
//! exhaust its memory.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::HfError;

/// The largest `config.json` or `special_tokens_map.json` read: real ones hold a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// The largest `tokenizer.json` read: the largest public ones (vocabularies of 256k tokens)
/// hold about 35 MB.
pub const MAX_TOKENIZER_BYTES: u64 = 64 << 20;

/// Opens `path` if it is a regular file of at most `cap` bytes; returns it and its size.
/// `what` names the file in errors.
pub fn open_regular(path: &Path, what: &str, cap: u64) -> Result<(File, u64), HfError> {
    // The type is read before opening: opening a FIFO would wait for a writer.
    let metadata =
        std::fs::metadata(path).map_err(|e| HfError::read(path, format!("{e}: give the checkpoint's {what}")))?;
    check_regular(path, what, &metadata, cap)?;
    let file = File::open(path).map_err(|e| HfError::read(path, e))?;
    // The file opened is the file checked, even if the path changed in between.
    let metadata = file.metadata().map_err(|e| HfError::read(path, e))?;
    check_regular(path, what, &metadata, cap)?;
    Ok((file, metadata.len()))
}

/// Checks that `path` is a regular file of at most `cap` bytes, without opening it.
pub fn check_regular_path(path: &Path, what: &str, cap: u64) -> Result<(), HfError> {
    let metadata =
        std::fs::metadata(path).map_err(|e| HfError::read(path, format!("{e}: give the checkpoint's {what}")))?;
    check_regular(path, what, &metadata, cap)
}

/// `path` as UTF-8 text, read under [`open_regular`]'s rules.
pub fn read_text(path: &Path, what: &str, cap: u64) -> Result<String, HfError> {
    let (file, _) = open_regular(path, what, cap)?;
    let mut text = String::new();
    file.take(cap + 1)
        .read_to_string(&mut text)
        .map_err(|e| HfError::read(path, format!("{e}: the {what} must be UTF-8 text")))?;
    if text.len() as u64 > cap {
        return Err(too_large(path, what, cap));
    }
    Ok(text)
}

fn check_regular(path: &Path, what: &str, metadata: &Metadata, cap: u64) -> Result<(), HfError> {
    let kind = metadata.file_type();
    let other = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else {
        Some("a special file")
    };
    if let Some(other) = other {
        return Err(HfError::read(
            path,
            format!("is {other}, not a regular file: give the checkpoint's {what} itself"),
        ));
    }
    if metadata.len() > cap {
        return Err(too_large(path, what, cap));
    }
    Ok(())
}

fn too_large(path: &Path, what: &str, cap: u64) -> HfError {
    HfError::read(
        path,
        format!(
            "is larger than the {} MiB a {what} may hold: give the checkpoint's own {what}",
            cap >> 20
        ),
    )
}
