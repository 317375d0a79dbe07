//! Compile-time diagnostics of `#[derive(DataSync)]` (trybuild).
//!
//! `tests/ui/fail/*.rs` must fail to compile with exactly the errors in the `.stderr` beside
//! each file; `tests/ui/pass/*.rs` must compile and run. The `.stderr` files are made with
//! the CI toolchain (below): after changing a diagnostic, refresh them with
//! `TRYBUILD=overwrite cargo test --test ui` and review the diff.

/// The compiler the `.stderr` files were made with; other compilers word errors differently.
const PINNED_RUSTC: &str = "rustc 1.95.";

#[test]
fn ui() {
    let version =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
    assert!(
        version.starts_with(PINNED_RUSTC),
        "the UI tests are pinned to {PINNED_RUSTC}x (the CI toolchain), this is {version:?}: \
         run them with that toolchain, or refresh the .stderr files with TRYBUILD=overwrite"
    );
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
