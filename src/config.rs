//! ringmerge's configuration: every `RINGMERGE_*` environment variable, read once per process
//! into one typed [`Config`] that the rest of the crate receives.
//!
//! Nothing else in the crate (nor the C++ glue, which gets the part it uses through
//! `api::settings`) reads the environment. A value that is not understood falls back to the
//! default and says so in [`Config::warnings`], which the C++ side logs once to RocksDB's LOG.

use crate::merge::bpf::Selection;
use crate::reader::{Backend, FaultSpec};
use std::path::PathBuf;
use std::sync::OnceLock;

/// How compactions are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Stock RocksDB, as if the patch were not there.
    Off,
    /// ringmerge reads and merges natively in Rust.
    Native,
    /// ringmerge reads in Rust and merges in its eBPF program (natively where BPF is
    /// unavailable, with the reason logged).
    Bpf,
}

/// Whether the merge runs on the compaction thread's companion thread (ahead.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeAhead {
    Off,
    On,
    /// On, except while the CPUs are contended (cpu_pressure.rs).
    Auto,
}

/// The I/O class of an accelerated compaction's reads and write-behind writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoPriority {
    /// Idle, unless RocksDB has writes delayed when the compaction starts.
    Auto,
    Idle,
    /// The compaction thread's own.
    Inherit,
}

pub use crate::reader::DEFAULT_MEMORY_BUDGET;
/// Output writes queued behind the table builder: eight of RocksDB's default 1 MiB write buffers
/// (`writable_file_max_buffer_size`), enough to keep a disk busy while the merge runs.
pub const DEFAULT_WRITE_BEHIND: u64 = 8 << 20;
/// Default bound on input reads in flight at once (0: unbounded; no gain measured from a bound).
pub const DEFAULT_INFLIGHT_BYTES: usize = 0;
/// The smallest byte count the byte-valued settings accept.
const MIN_BYTES: u64 = 1 << 20;

/// Linux's idle I/O class (include/uapi/linux/ioprio.h): served when no other class waits (the
/// mq-deadline and BFQ schedulers; `none` ignores classes), with the schedulers' own bound on how
/// long it may wait.
const IOPRIO_CLASS_IDLE: i32 = 3;
const IOPRIO_CLASS_SHIFT: i32 = 13;

#[derive(Clone, Debug)]
pub struct Config {
    /// `RINGMERGE_MODE=off|native|bpf` (default native; anything else: off).
    pub mode: Mode,
    /// `RINGMERGE_MEMORY_BUDGET`: bytes of read buffers one compaction may hold.
    pub memory_budget: usize,
    /// `RINGMERGE_WRITE_BEHIND=off|on|<bytes>`: output bytes queued behind the table builder
    /// (0: off).
    pub write_behind: u64,
    /// `RINGMERGE_POOL_CAP`: bytes of read buffers each thread keeps between compactions (None:
    /// the pool's default).
    pub pool_cap: Option<usize>,
    /// `RINGMERGE_MERGE_AHEAD=off|on|auto`.
    pub merge_ahead: MergeAhead,
    /// `RINGMERGE_INFLIGHT=off|<bytes>`: bytes of input reads in flight at once (0: unbounded).
    pub inflight_bytes: usize,
    /// `RINGMERGE_IO_PRIORITY=auto|idle|inherit`.
    pub io_priority: IoPriority,
    /// `RINGMERGE_WRAPPED_FS=refuse|verify`: accelerate over a wrapped FileSystem when its files
    /// verify as plain local files.
    pub verify_wrapped_fs: bool,
    /// Why `RINGMERGE_WRAPPED_FS` was not understood (part of the fallback reason it causes).
    pub wrapped_fs_warning: Option<String>,
    /// `RINGMERGE_IO=pread` forces the synchronous reader (benchmarks, tests).
    pub io_backend: Backend,
    /// `RINGMERGE_BPF_SELECTION=linear|heap` forces the BPF program's selection (benchmarks,
    /// tests); None follows the run count like the native merge.
    pub bpf_selection: Option<Selection>,
    /// `RINGMERGE_OUTCOME_LOG=<path>`: one line per subcompaction appended to a file that
    /// outlives the DB (RocksDB's test suites delete their LOGs).
    pub outcome_log: Option<PathBuf>,
    /// TEST HOOK `RINGMERGE_FAULT_EIO`, `RINGMERGE_FAULT_SHORT_READS`: injected read faults.
    pub read_faults: Option<FaultSpec>,
    /// TEST HOOK `RINGMERGE_FAULT_CODEC`: a codec the C++ side treats as undecodable.
    pub fault_undecodable_codec: Option<String>,
    /// Settings that were not understood, each with what was used instead.
    pub warnings: Vec<String>,
}

impl Config {
    /// The process's configuration, read from the environment on first use.
    pub fn get() -> &'static Config {
        static CONFIG: OnceLock<Config> = OnceLock::new();
        CONFIG.get_or_init(|| Config::from_vars(|name| std::env::var(name).ok()))
    }

    /// The configuration `var` describes (`var(name)`: the variable's value, None when unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Config {
        let mut warnings = Vec::new();
        let mut warn = |w: String| warnings.push(w);
        let mode = match var("RINGMERGE_MODE").as_deref() {
            None | Some("") | Some("native") => Mode::Native,
            Some("off") => Mode::Off,
            Some("bpf") => Mode::Bpf,
            Some(other) => {
                warn(format!(
                    "RINGMERGE_MODE={other} is not one of off|native|bpf: running stock"
                ));
                Mode::Off
            }
        };
        let memory_budget = match var("RINGMERGE_MEMORY_BUDGET") {
            None => DEFAULT_MEMORY_BUDGET,
            Some(v) => match bytes_at_least_1mib(&v) {
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => {
                    warn(format!(
                        "RINGMERGE_MEMORY_BUDGET={v} is not a byte count >= 1 MiB: using {} MiB",
                        DEFAULT_MEMORY_BUDGET >> 20
                    ));
                    DEFAULT_MEMORY_BUDGET
                }
            },
        };
        let write_behind = match var("RINGMERGE_WRITE_BEHIND").as_deref() {
            None | Some("") | Some("on") => DEFAULT_WRITE_BEHIND,
            Some("off") | Some("0") => 0,
            Some(v) => bytes_at_least_1mib(v).unwrap_or_else(|| {
                warn(format!(
                    "RINGMERGE_WRITE_BEHIND={v} is not off|on or a byte count >= 1 MiB: using {} \
                     MiB",
                    DEFAULT_WRITE_BEHIND >> 20
                ));
                DEFAULT_WRITE_BEHIND
            }),
        };
        let pool_cap = match var("RINGMERGE_POOL_CAP") {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(_) => {
                    warn(format!(
                        "RINGMERGE_POOL_CAP={v} is not a byte count: keeping up to {} MiB per \
                         thread",
                        crate::reader::pool::POOL_CAP >> 20
                    ));
                    None
                }
            },
        };
        let merge_ahead = match var("RINGMERGE_MERGE_AHEAD").as_deref() {
            None | Some("") | Some("on") => MergeAhead::On,
            Some("auto") => MergeAhead::Auto,
            Some("off") => MergeAhead::Off,
            Some(v) => {
                warn(format!(
                    "RINGMERGE_MERGE_AHEAD={v} is not off|on|auto: using on"
                ));
                MergeAhead::On
            }
        };
        let inflight_bytes = match var("RINGMERGE_INFLIGHT").as_deref() {
            None | Some("") => DEFAULT_INFLIGHT_BYTES,
            Some("off") => 0,
            Some(v) => match bytes_at_least_1mib(v) {
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => {
                    warn(format!(
                        "RINGMERGE_INFLIGHT={v} is not off or a byte count >= 1 MiB: using the default"
                    ));
                    DEFAULT_INFLIGHT_BYTES
                }
            },
        };
        let io_priority = match var("RINGMERGE_IO_PRIORITY").as_deref() {
            None | Some("") | Some("auto") => IoPriority::Auto,
            Some("idle") => IoPriority::Idle,
            Some("inherit") => IoPriority::Inherit,
            Some(v) => {
                warn(format!(
                    "RINGMERGE_IO_PRIORITY={v} is not auto|idle|inherit: using auto"
                ));
                IoPriority::Auto
            }
        };
        let (verify_wrapped_fs, wrapped_fs_warning) = match var("RINGMERGE_WRAPPED_FS").as_deref() {
            None | Some("") | Some("refuse") => (false, None),
            Some("verify") => (true, None),
            Some(other) => (
                false,
                Some(format!(
                    "RINGMERGE_WRAPPED_FS={other} is not one of verify|refuse"
                )),
            ),
        };
        let io_backend = match var("RINGMERGE_IO").as_deref() {
            Some("pread") => Backend::Pread,
            _ => Backend::Auto,
        };
        let bpf_selection = match var("RINGMERGE_BPF_SELECTION").as_deref() {
            Some("linear") => Some(Selection::Linear),
            Some("heap") => Some(Selection::Heap),
            _ => None,
        };
        let outcome_log = var("RINGMERGE_OUTCOME_LOG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let read_faults = FaultSpec::parse(
            var("RINGMERGE_FAULT_EIO").as_deref(),
            var("RINGMERGE_FAULT_SHORT_READS").as_deref(),
        );
        let fault_undecodable_codec = var("RINGMERGE_FAULT_CODEC").filter(|c| !c.is_empty());
        Config {
            mode,
            memory_budget,
            write_behind,
            pool_cap,
            merge_ahead,
            inflight_bytes,
            io_priority,
            verify_wrapped_fs,
            wrapped_fs_warning,
            io_backend,
            bpf_selection,
            outcome_log,
            read_faults,
            fault_undecodable_codec,
            warnings,
        }
    }

    /// The ioprio_set value of an accelerated compaction's I/O (0: the thread's own), and
    /// whether it reverts to the thread's own while RocksDB has writes delayed.
    pub fn compaction_io_priority(&self) -> (i32, bool) {
        let idle = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT;
        match self.io_priority {
            IoPriority::Auto => (idle, true),
            IoPriority::Idle => (idle, false),
            IoPriority::Inherit => (0, false),
        }
    }
}

fn bytes_at_least_1mib(v: &str) -> Option<u64> {
    v.parse::<u64>().ok().filter(|&n| n >= MIN_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = config(&[]);
        assert_eq!(c.mode, Mode::Native);
        assert_eq!(c.memory_budget, DEFAULT_MEMORY_BUDGET);
        assert_eq!(c.write_behind, DEFAULT_WRITE_BEHIND);
        assert_eq!(c.pool_cap, None);
        assert_eq!(c.merge_ahead, MergeAhead::On);
        assert_eq!(c.inflight_bytes, DEFAULT_INFLIGHT_BYTES);
        assert_eq!(c.io_priority, IoPriority::Auto);
        assert_eq!(c.compaction_io_priority(), (3 << 13, true));
        assert!(!c.verify_wrapped_fs && c.wrapped_fs_warning.is_none());
        assert_eq!(c.io_backend, Backend::Auto);
        assert_eq!(c.bpf_selection, None);
        assert!(c.outcome_log.is_none());
        assert!(c.read_faults.is_none() && c.fault_undecodable_codec.is_none());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn every_setting_is_read() {
        let c = config(&[
            ("RINGMERGE_MODE", "bpf"),
            ("RINGMERGE_MEMORY_BUDGET", "16777216"),
            ("RINGMERGE_WRITE_BEHIND", "off"),
            ("RINGMERGE_POOL_CAP", "0"),
            ("RINGMERGE_MERGE_AHEAD", "auto"),
            ("RINGMERGE_INFLIGHT", "4194304"),
            ("RINGMERGE_IO_PRIORITY", "inherit"),
            ("RINGMERGE_WRAPPED_FS", "verify"),
            ("RINGMERGE_IO", "pread"),
            ("RINGMERGE_BPF_SELECTION", "heap"),
            ("RINGMERGE_OUTCOME_LOG", "/tmp/outcomes"),
            ("RINGMERGE_FAULT_EIO", "000012.sst@4096"),
            ("RINGMERGE_FAULT_CODEC", "Snappy"),
        ]);
        assert_eq!(c.mode, Mode::Bpf);
        assert_eq!(c.memory_budget, 16 << 20);
        assert_eq!(c.write_behind, 0);
        assert_eq!(c.pool_cap, Some(0));
        assert_eq!(c.merge_ahead, MergeAhead::Auto);
        assert_eq!(c.inflight_bytes, 4 << 20);
        assert_eq!(c.compaction_io_priority(), (0, false));
        assert!(c.verify_wrapped_fs);
        assert_eq!(c.io_backend, Backend::Pread);
        assert_eq!(c.bpf_selection, Some(Selection::Heap));
        assert_eq!(c.outcome_log, Some(PathBuf::from("/tmp/outcomes")));
        let faults = c.read_faults.expect("fault spec");
        assert_eq!(faults.eio_path_contains.as_deref(), Some("000012.sst"));
        assert_eq!(faults.eio_from_offset, 4096);
        assert_eq!(c.fault_undecodable_codec.as_deref(), Some("Snappy"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn values_not_understood_warn_and_use_the_default() {
        let c = config(&[
            ("RINGMERGE_MODE", "fast"),
            ("RINGMERGE_MEMORY_BUDGET", "12"),
            ("RINGMERGE_WRITE_BEHIND", "lots"),
            ("RINGMERGE_POOL_CAP", "x"),
            ("RINGMERGE_MERGE_AHEAD", "maybe"),
            ("RINGMERGE_INFLIGHT", "1"),
            ("RINGMERGE_IO_PRIORITY", "high"),
            ("RINGMERGE_WRAPPED_FS", "trust"),
        ]);
        assert_eq!(c.mode, Mode::Off, "an unknown mode runs stock");
        assert_eq!(c.memory_budget, DEFAULT_MEMORY_BUDGET);
        assert_eq!(c.write_behind, DEFAULT_WRITE_BEHIND);
        assert_eq!(c.pool_cap, None);
        assert_eq!(c.merge_ahead, MergeAhead::On);
        assert_eq!(c.inflight_bytes, DEFAULT_INFLIGHT_BYTES);
        assert_eq!(c.io_priority, IoPriority::Auto);
        assert!(!c.verify_wrapped_fs);
        assert!(c.wrapped_fs_warning.as_deref().unwrap().contains("trust"));
        // Every setting that was not understood is reported, not only the last.
        assert_eq!(c.warnings.len(), 7, "{:?}", c.warnings);
        for name in [
            "MODE",
            "MEMORY_BUDGET",
            "WRITE_BEHIND",
            "POOL_CAP",
            "MERGE_AHEAD",
            "INFLIGHT",
            "IO_PRIORITY",
        ] {
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.starts_with(&format!("RINGMERGE_{name}="))),
                "{name}: {:?}",
                c.warnings
            );
        }
    }
}
