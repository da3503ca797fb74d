//! With the `tch` feature, compiles `src/libtorch/fused_adamw.cpp` (a shim over libtorch's
//! `_fused_adamw_`, which tch does not bind) against the libtorch torch-sys found, with the
//! flags torch-sys compiles its own wrapper with.

use std::path::Path;

fn main() {
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let source = "src/libtorch/fused_adamw.cpp";
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    // torch-sys (`links = "tch"`) tells its dependents where libtorch's libraries are; the
    // headers sit beside them.
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys names libtorch's lib folder");
    let root = Path::new(&lib).parent().expect("libtorch's lib folder has a parent");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .file(source)
        .compile("primer_fused_adamw");
}
