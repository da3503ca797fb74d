//! `SHA256SUMS`: the sha256 of each file a folder holds, in the format `sha256sum -c` reads,
//! written last and checked before any of those files is used.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{FileError, Result};

/// The checksum file of a folder.
pub const SUMS_FILE: &str = "SHA256SUMS";

/// The sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(FileError::io(path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(FileError::io(path))?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Writes `dir/SHA256SUMS` (atomically) for the files `names` of `dir`.
pub fn write_sums(dir: &Path, names: &[&str]) -> Result<()> {
    let files: Vec<(&str, std::path::PathBuf)> = names.iter().map(|&name| (name, dir.join(name))).collect();
    write_sums_of(dir, &files)
}

/// Writes `dir/SHA256SUMS` (atomically), listing each file under its name with the sha256 of
/// the file at its path: a file's sum can be recorded before it is renamed to that name.
pub fn write_sums_of(dir: &Path, files: &[(&str, std::path::PathBuf)]) -> Result<()> {
    let mut text = String::new();
    for (name, path) in files {
        text += &format!("{}  {name}\n", sha256_file(path)?);
    }
    crate::atomic_write(&dir.join(SUMS_FILE), text.as_bytes())
}

/// Checks the files of `dir` against its `SHA256SUMS`. `Ok(false)`: the folder has no
/// checksums (written before primer kept them). `Err`: what is wrong, in a few words naming
/// the file, for the caller's message.
pub fn verify_sums(dir: &Path, required: &[&str]) -> std::result::Result<bool, String> {
    let bytes = match std::fs::read(dir.join(SUMS_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{SUMS_FILE} is unreadable ({e})")),
    };
    let text = String::from_utf8(bytes).map_err(|_| format!("{SUMS_FILE} is corrupt (not text)"))?;
    let mut listed = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, name) = line
            .split_once("  ")
            .ok_or_else(|| format!("{SUMS_FILE} has a malformed line {line:?}"))?;
        let actual = sha256_file(&dir.join(name)).map_err(|_| format!("{name} is missing"))?;
        if actual != sum {
            return Err(format!(
                "{name} does not match its sha256 in {SUMS_FILE} (altered or truncated)"
            ));
        }
        listed.push(name);
    }
    match required.iter().find(|name| !listed.contains(name)) {
        Some(name) => Err(format!("{name} is not listed in {SUMS_FILE}")),
        None => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_a_missing_file_or_an_unlisted_one_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        assert_eq!(verify_sums(path, &["a"]), Ok(false), "no sums yet");
        std::fs::write(path.join("a"), b"weights").unwrap();
        std::fs::write(path.join("b"), b"state").unwrap();
        write_sums(path, &["a", "b"]).unwrap();
        assert_eq!(verify_sums(path, &["a", "b"]), Ok(true));
        let sums = std::fs::read_to_string(path.join(SUMS_FILE)).unwrap();
        assert!(sums.starts_with(&format!("{}  a\n", hex::encode(Sha256::digest(b"weights")))));
        assert!(verify_sums(path, &["c"]).unwrap_err().contains("c is not listed"));
        std::fs::write(path.join("a"), b"weighTs").unwrap();
        assert!(verify_sums(path, &["a"]).unwrap_err().contains("a does not match"));
        std::fs::remove_file(path.join("a")).unwrap();
        assert!(verify_sums(path, &["a"]).unwrap_err().contains("a is missing"));
    }
}
