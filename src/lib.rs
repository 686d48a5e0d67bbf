//! ringmerge: a compaction accelerator for RocksDB 10.1.3.
//!
//! The data flows through the modules in this order:
//! [`sst_map`] (which blocks of which files, in which sorted run) -> [`reader`] (batched,
//! coalesced reads through io_uring, or pread where io_uring is unavailable) -> [`block`]
//! (trailer checksums, data block decoding) -> [`merge`] (internal-key order merge of the runs)
//! -> [`compaction`] (one compaction's session, producing batches for the C++ side) -> [`ahead`]
//! (the session on a companion thread, batches handed over a few ahead) -> [`api`] (what the
//! patched RocksDB calls) and [`report`] (the LOG line and event fields of what it did).
//!
//! Two modules sit beside the flow, below everything: [`contract`], the types C++ and Rust share
//! (a leaf), and [`config`], every `RINGMERGE_*` setting read once.

pub mod ahead;
mod api;
pub mod block;
pub mod compaction;
pub mod config;
pub mod contract;
mod cpu_pressure;
pub mod error;
pub mod merge;
pub mod reader;
pub mod report;
pub mod sst_map;
mod thread_attrs;
pub mod wrapped_fs;

/// Helpers the test suites share (unit and integration tests); not part of the API.
#[doc(hidden)]
pub mod test_support;

pub use error::{Error, Result};
