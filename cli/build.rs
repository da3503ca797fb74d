//! With the `tch` feature: bake libtorch's folder into the binary's run-time search path, so
//! `primer` finds libtorch without `LD_LIBRARY_PATH`, and record its version for
//! `primer backends`. libtorch is found as torch-sys finds it: `$LIBTORCH`, or the torch package
//! of the active Python (`LIBTORCH_USE_PYTORCH=1`, see scripts/setup-torch).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let (lib, version) = match std::env::var_os("LIBTORCH") {
        Some(root) => {
            let root = PathBuf::from(root);
            let version = std::fs::read_to_string(root.join("build-version")).unwrap_or_else(|_| "unknown".into());
            (root.join("lib"), version.trim().to_string())
        }
        None => {
            let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
                "python"
            } else {
                "python3"
            };
            let script = "import warnings; warnings.simplefilter('ignore'); import os, torch; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), 'lib'))";
            let output = Command::new(python).args(["-c", script]).output().expect(
                "the tch feature needs Python with torch 2.9.0: run scripts/setup-torch and source scripts/env",
            );
            assert!(
                output.status.success(),
                "the tch feature needs torch 2.9.0 in the active Python: run scripts/setup-torch and source scripts/env ({})",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            let text = String::from_utf8(output.stdout).expect("python prints UTF-8");
            let mut lines = text.lines();
            let version = lines.next().unwrap_or("unknown").to_string();
            (PathBuf::from(lines.next().unwrap_or_default()), version)
        }
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-env=PRIMER_LIBTORCH_VERSION={version}");
}
