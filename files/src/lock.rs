//! Exclusive locks on the folders one process writes: a run directory, a compare report, a
//! prepared-data entry.
//!
//! A lock is an advisory `flock` on a file, held for as long as the [`FolderLock`] lives and
//! released by the kernel when its process ends in any way, `kill -9` included, so a lock is
//! never left behind. On Linux the holder's process id is read back from `/proc/locks`, which
//! the kernel keeps: nothing a user or another program writes can make primer signal a process
//! that does not hold the lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::{FileError, Result};

/// The lock file inside a locked folder.
pub const LOCK_FILE: &str = ".lock";

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    /// Takes the lock of `folder` (its [`LOCK_FILE`]), creating the folder if needed, or says
    /// which process holds it. `what` names the folder's kind in the message ("run", "report").
    pub fn acquire(folder: &Path, what: &str) -> Result<Self> {
        std::fs::create_dir_all(folder).map_err(FileError::io(folder))?;
        Self::acquire_file(&folder.join(LOCK_FILE), folder, what)
    }

    /// Takes the lock file `path` guarding `folder`, failing at once when another holds it.
    pub fn acquire_file(path: &Path, folder: &Path, what: &str) -> Result<Self> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(FileError::InUse {
                what: what.to_string(),
                folder: folder.to_path_buf(),
                holder: holder_of(path),
            }),
            Err(TryLockError::Error(e)) => Err(FileError::io(path)(e)),
        }
    }

    /// Takes the lock file `path`, waiting while another process holds it.
    pub fn wait_for(path: &Path) -> Result<Self> {
        let file = open(path)?;
        file.lock().map_err(FileError::io(path))?;
        Ok(Self { _file: file })
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(FileError::io(path))
}

/// Whether some process holds the lock of `folder` now.
pub fn is_locked(folder: &Path) -> bool {
    let Ok(file) = File::open(folder.join(LOCK_FILE)) else {
        return false;
    };
    matches!(file.try_lock(), Err(TryLockError::WouldBlock))
}

/// The process holding the lock of `folder`, from the kernel's own table (`/proc/locks`);
/// `None` when nobody holds it, the table cannot be read (not Linux), or the lock file is not
/// the folder's own: a link (symbolic, or hard: a second name of another file, whose holder
/// locked that file, not this folder).
pub fn holder(folder: &Path) -> Option<u32> {
    holder_of(&folder.join(LOCK_FILE))
}

fn holder_of(lock_file: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(lock_file).ok()?;
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        return None;
    }
    let (dev, inode) = (meta.dev(), meta.ino());
    // glibc's gnu_dev_major / gnu_dev_minor; /proc/locks prints them in hex.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let id = format!("{major:02x}:{minor:02x}:{inode}");
    // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
    std::fs::read_to_string("/proc/locks").ok()?.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&id.as_str()))
            .then(|| fields.get(4)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_has_one_holder_named_by_the_kernel_until_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("run");
        assert!(!is_locked(&folder));
        let lock = FolderLock::acquire(&folder, "run").unwrap();
        assert!(is_locked(&folder));
        assert_eq!(holder(&folder), Some(std::process::id()));
        let refused = FolderLock::acquire(&folder, "run").unwrap_err().to_string();
        assert!(
            refused.contains(&format!("in use by process {}", std::process::id())),
            "{refused}"
        );
        drop(lock);
        assert!(!is_locked(&folder));
        assert_eq!(holder(&folder), None);
        FolderLock::acquire(&folder, "run").unwrap();
    }

    #[test]
    fn a_lock_file_linked_to_another_file_names_no_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = dir.path().join("held");
        let _lock = FolderLock::wait_for(&held).unwrap();
        for name in ["hard", "soft"] {
            let folder = dir.path().join(name);
            std::fs::create_dir_all(&folder).unwrap();
            let lock_file = folder.join(LOCK_FILE);
            match name {
                "hard" => std::fs::hard_link(&held, &lock_file).unwrap(),
                _ => std::os::unix::fs::symlink(&held, &lock_file).unwrap(),
            }
            assert!(
                is_locked(&folder),
                "{name}: the other file's lock shows through the link"
            );
            assert_eq!(holder(&folder), None, "{name}");
        }
    }
}
