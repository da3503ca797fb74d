//! The libtorch that the tch backend loaded at run time, checked against the one primer was
//! built for: a different PyTorch behind the same file names fails deep inside libtorch, so
//! say which version to install instead.

use std::ffi::{CStr, c_int, c_void};
use std::path::{Path, PathBuf};

use anyhow::bail;

/// The PyTorch version primer was built against (see build.rs).
pub const BUILT_FOR: &str = env!("PRIMER_LIBTORCH_VERSION");

/// Fails with a one-line error when the loaded libtorch is not the version primer was built
/// for. Passes when the version cannot be read (a libtorch without version files).
pub fn check_version() -> anyhow::Result<()> {
    let Some(lib) = loaded_lib_dir() else {
        return Ok(());
    };
    let Some(found) = version_at(&lib) else {
        return Ok(());
    };
    if release(&found) != release(BUILT_FOR) {
        bail!(
            "libtorch at {} is PyTorch {found}, but primer was built for {BUILT_FOR}: install `torch=={}` (scripts/setup-torch) or rebuild primer against this one",
            lib.display(),
            release(BUILT_FOR)
        );
    }
    Ok(())
}

/// libtorch allocates its CPU tensors with glibc's `malloc`, not primer's allocator, and glibc
/// serves every buffer over its mmap threshold (at most 32 MiB) with a fresh `mmap`, unmapped on
/// free: each training step paid page faults and kernel zeroing for the buffers the step before
/// had released (14% of a causal tch step). This makes glibc keep freed memory in its heap for
/// reuse, as PyTorch's guide suggests doing with jemalloc or tcmalloc.
pub fn keep_freed_memory() {
    // SAFETY: `mallopt` only changes glibc's allocation policy (under its own lock); memory
    // already allocated is untouched.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, c_int::MAX);
    }
}

/// `2.9.0` of `2.9.0+cu128`.
fn release(version: &str) -> &str {
    version.split('+').next().unwrap_or(version).trim()
}

/// The version of the libtorch in `lib`: PyTorch's `torch/version.py` for pip installs,
/// `build-version` for the standalone libtorch archive.
fn version_at(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        let line = text.lines().find(|line| line.starts_with("__version__"))?;
        return Some(line.split(['\'', '"']).nth(1)?.to_string());
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|text| text.trim().to_string())
}

/// The folder `libtorch_cpu.so` was loaded from, as the dynamic loader found it (through
/// `LD_LIBRARY_PATH` or the binary's run path).
fn loaded_lib_dir() -> Option<PathBuf> {
    unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _: usize, found: *mut c_void) -> c_int {
        // SAFETY: the loader passes a valid entry; `found` is the `Option<PathBuf>` below.
        let (info, found) = unsafe { (&*info, &mut *(found as *mut Option<PathBuf>)) };
        if info.dlpi_name.is_null() {
            return 0;
        }
        // SAFETY: a non-null name is a NUL-terminated path owned by the loader.
        let name = unsafe { CStr::from_ptr(info.dlpi_name) }.to_string_lossy();
        let path = Path::new(name.as_ref());
        if path.file_name().is_some_and(|file| file == "libtorch_cpu.so") {
            *found = path.parent().map(Path::to_path_buf);
            return 1;
        }
        0
    }
    let mut found: Option<PathBuf> = None;
    // SAFETY: `visit` only reads the entries and writes through the pointer to `found`.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut found as *mut Option<PathBuf> as *mut c_void) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pip_and_archive_versions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        assert_eq!(version_at(&dir.path().join("lib")), None);
        std::fs::write(dir.path().join("build-version"), "2.9.0+cpu\n").unwrap();
        assert_eq!(version_at(&dir.path().join("lib")).as_deref(), Some("2.9.0+cpu"));
        std::fs::write(dir.path().join("version.py"), "x = 1\n__version__ = '2.8.1+cu126'\n").unwrap();
        assert_eq!(version_at(&dir.path().join("lib")).as_deref(), Some("2.8.1+cu126"));
        assert_eq!(release("2.8.1+cu126"), "2.8.1");
    }

    #[test]
    fn finds_the_loaded_libtorch() {
        let lib = loaded_lib_dir().expect("the tch build links libtorch_cpu.so");
        assert!(lib.join("libtorch_cpu.so").exists());
        check_version().expect("the libtorch primer was built against");
    }
}
