//! ringmerge: a compaction accelerator for RocksDB 10.1.3.
//!
//! The data flows through the modules in this order:
//! [`sst_map`] (which blocks of which files, in which sorted run) -> [`reader`] (batched,
//! coalesced reads through io_uring, or pread where io_uring is unavailable) -> [`block`]
//! (trailer checksums, data block decoding) -> [`merge`] (internal-key order merge of the runs)
//! -> [`compaction`] (one compaction's session, producing batches for the C++ side) -> [`ahead`]
//! (the session on a companion thread, batches handed over a few ahead) -> [`bridge`] (the cxx
//! contract with the patched RocksDB).

pub mod ahead;
pub mod block;
mod bridge;
pub mod compaction;
mod cpu_pressure;
pub mod error;
pub mod merge;
pub mod reader;
pub mod sst_map;
mod thread_attrs;
pub mod wrapped_fs;

/// Helpers the test suites share (unit and integration tests); not part of the API.
#[doc(hidden)]
pub mod test_support;

pub use error::{Error, Result};
