#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One scratch file per fuzzing process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("pacs-net-fuzz-{}.dcm", std::process::id())))
}

fuzz_target!(|data: &[u8]| pacs_net::fuzzing::instance_file(data, scratch()));
