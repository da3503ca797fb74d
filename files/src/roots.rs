//! Confining what a job reads to the directories it is allowed.

use std::path::{Path, PathBuf};

use crate::{FileError, Result};

/// The environment variable that confines what a process reads: the directories (joined as
/// `PATH` joins them) under which every input it is given must lie. `primer dashboard` sets it
/// on each job it runs; unset, inputs are read wherever they are.
pub const ALLOWED_ROOTS_VAR: &str = "PRIMER_ALLOWED_ROOTS";

/// The directories of [`ALLOWED_ROOTS_VAR`], resolved, when it is set (one that does not exist
/// allows nothing).
pub fn allowed_roots() -> Option<Vec<PathBuf>> {
    let value = std::env::var_os(ALLOWED_ROOTS_VAR)?;
    Some(
        std::env::split_paths(&value)
            .filter_map(|root| root.canonicalize().ok())
            .collect(),
    )
}

/// Checks an input before it is read: under [`ALLOWED_ROOTS_VAR`], a file or folder named by an
/// option, a config file, a stored run config or a task table must resolve, through every link,
/// to a place under one of its directories, and so must each entry of a folder. `what` names
/// the input in the refusal (`--corpus`, `tokenizer`). A path that does not exist passes:
/// reading it fails with its own error. Named data sets never come here: they are names.
pub fn check_input(what: &str, path: &Path) -> Result<()> {
    match allowed_roots() {
        Some(roots) => confine(&roots, what, path).map(|_| ()),
        None => Ok(()),
    }
}

/// The check of [`check_input`] against `roots` (resolved): the resolved path of an input
/// inside them, `None` when it does not exist, or the refusal naming it.
pub fn confine(roots: &[PathBuf], what: &str, path: &Path) -> Result<Option<PathBuf>> {
    let Ok(resolved) = path.canonicalize() else {
        return Ok(None);
    };
    let outside = |place: &Path| !roots.iter().any(|root| place.starts_with(root));
    if outside(&resolved) {
        return Err(refusal(what, path));
    }
    if resolved.is_dir() {
        let entries = std::fs::read_dir(&resolved).map_err(FileError::io(path))?;
        for entry in entries.filter_map(|entry| entry.ok()) {
            if entry.path().canonicalize().is_ok_and(|place| outside(&place)) {
                return Err(refusal(what, &entry.path()));
            }
        }
    }
    Ok(Some(resolved))
}

fn refusal(what: &str, path: &Path) -> FileError {
    FileError::Outside {
        what: what.to_string(),
        path: path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_confined_through_links_and_folder_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (inside, outside) = (dir.path().join("inside"), dir.path().join("outside"));
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(inside.join("a.txt"), "a").unwrap();
        std::fs::write(outside.join("secret.txt"), "s").unwrap();
        let roots = [inside.canonicalize().unwrap()];
        let file = inside.join("a.txt");
        assert_eq!(
            confine(&roots, "--corpus", &file).unwrap(),
            Some(file.canonicalize().unwrap())
        );
        assert_eq!(confine(&roots, "--corpus", &inside.join("missing")).unwrap(), None);
        let refused = confine(&roots, "--corpus", &outside.join("secret.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with("--corpus ") && refused.contains("allowed roots"),
            "{refused}"
        );
        // A link inside that leads out, named itself or met as a folder's entry.
        std::os::unix::fs::symlink(outside.join("secret.txt"), inside.join("link.txt")).unwrap();
        assert!(confine(&roots, "tokenizer", &inside.join("link.txt")).is_err());
        let refused = confine(&roots, "--data", &inside).unwrap_err().to_string();
        assert!(refused.contains("link.txt"), "{refused}");
    }
}
