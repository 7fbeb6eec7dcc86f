//! Records the versions of the Ed25519 crates in use, read from Cargo.lock, so
//! the library can name them (`cm_ed25519_version`) without a copy to go stale.

use std::{env, fs, path::Path};

fn locked_version(lock: &str, name: &str) -> String {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            if let Some(version) = lines.next() {
                if let Some(rest) = version.trim().strip_prefix("version = \"") {
                    return rest.trim_end_matches('"').to_string();
                }
            }
        }
    }
    "unknown".to_string()
}

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let lock_path = Path::new(&manifest_dir).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock_path.display());
    let lock = fs::read_to_string(&lock_path).unwrap_or_default();
    for (crate_name, variable) in [
        ("ed25519-zebra", "CM_ZEBRA_VERSION"),
        ("curve25519-dalek", "CM_DALEK_VERSION"),
    ] {
        println!("cargo:rustc-env={variable}={}", locked_version(&lock, crate_name));
    }
    println!("cargo:rustc-check-cfg=cfg(curve25519_dalek_backend, values(\"fiat\", \"serial\", \"simd\", \"avx512\"))");
}
