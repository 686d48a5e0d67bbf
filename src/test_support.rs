//! What the test suites share: the one rule for a test whose real part this machine cannot run.
//!
//! Such a test fails, unless the kernel itself refuses the part to a fully privileged process,
//! which no install or build step can change: then it records the test and the kernel's answer
//! in `target/test-skips.txt`, which `scripts/test.sh` prints and counts in its summary. The
//! check that decides is independent of the code under test (a raw `BPF_MAP_CREATE`, not our
//! loader), so a broken loader still fails where the kernel allows the part.

use std::io::Write;
use std::path::PathBuf;

/// `target/test-skips.txt` of this checkout.
pub fn skips_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-skips.txt")
}

/// Records that `what` did not run, and why, for `scripts/test.sh`'s summary (and on stderr).
pub fn record_skip(what: &str, why: &str) {
    let line = format!("SKIPPED {what}: {why}");
    eprintln!("{line}");
    let path = skips_file();
    let _ = std::fs::create_dir_all(path.parent().unwrap());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// `true` (and the skip recorded) when `test` cannot run because the kernel refuses BPF arenas.
pub fn skip_without_bpf_arena(test: &str) -> bool {
    match crate::merge::bpf::kernel_allows_arena() {
        Ok(()) => false,
        Err(why) => {
            record_skip(test, &format!("the kernel refuses BPF arenas ({why})"));
            true
        }
    }
}
