//! Writing files so that a reader never sees half of one.

use std::io::Write;
use std::path::Path;

use crate::error::{DataError, Result};

/// Writes a file atomically: a temporary file in the same folder, synced, then renamed over
/// the target. A reader never sees a half-written file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(DataError::io(parent))?;
    tmp.write_all(bytes).map_err(DataError::io(path))?;
    tmp.as_file().sync_all().map_err(DataError::io(path))?;
    tmp.persist(path).map_err(|e| DataError::io(path)(e.error))?;
    Ok(())
}
