//! Whether this machine's CPUs are busy, from Linux pressure stall information.
//!
//! Merge-ahead (src/ahead.rs) puts the read, decode and merge of a compaction on a companion
//! thread. With a core idle, that halves the compaction's time; with every core taken (a live
//! database's writer, flush and other compactions), the companion only takes CPU from them and
//! the handoff costs cycles of its own, so `RINGMERGE_MERGE_AHEAD=auto` merges in line then.
//! The kernel's `/proc/pressure/cpu` line `some avg10=P` is the share of the last ten seconds in
//! which at least one runnable task waited for a CPU: a direct measure of "no core to spare",
//! smoothed over about one compaction, and one read of a small file per compaction.

use std::fs;

/// `some avg10` of `/proc/pressure/cpu`, in percent; None without PSI (kernel built without it,
/// booted with `psi=0`, or the file unreadable in a sandbox).
pub fn some_avg10() -> Option<f64> {
    parse_some_avg10(&fs::read_to_string("/proc/pressure/cpu").ok()?)
}

fn parse_some_avg10(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    let field = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("avg10="))?;
    field.parse().ok()
}

/// Why a companion thread should not be used now, if the CPUs are contended: `some avg10` at or
/// above `threshold_pct`. None when a core is to spare, or when PSI cannot tell.
pub fn contended(threshold_pct: f64) -> Option<String> {
    let p = some_avg10()?;
    (p >= threshold_pct).then(|| {
        format!(
            "cores busy (RINGMERGE_MERGE_AHEAD=auto): /proc/pressure/cpu some avg10={p:.2}% >= \
             {threshold_pct}%"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernels_format() {
        let t = "some avg10=12.50 avg60=3.62 avg300=11.34 total=4932100560\n\
                 full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        assert_eq!(parse_some_avg10(t), Some(12.5));
        assert_eq!(parse_some_avg10("full avg10=1.00\n"), None);
        assert_eq!(parse_some_avg10("some avg60=1.00\n"), None);
    }

    /// The real file on this kernel: present and in range (the suite runs on Linux >= 6.9,
    /// which has PSI unless booted with psi=0; then this fails loudly rather than skip).
    #[test]
    fn reads_this_kernels_pressure() {
        let p = some_avg10().expect("/proc/pressure/cpu readable with a `some avg10=` field");
        assert!((0.0..=100.0).contains(&p), "{p}");
        assert!(contended(101.0).is_none());
        assert!(contended(0.0).is_some_and(|w| w.contains("avg10=")));
    }
}
