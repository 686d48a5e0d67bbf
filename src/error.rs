//! The error type every stage returns. It maps one to one onto the RocksDB `Status` codes the
//! C++ side builds (`IOError`, `Corruption`, `NotSupported`), so a failure reads in the LOG and in
//! the job's status exactly as the stock path's would.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A read failed or came back short of the bytes the SST-Map says exist.
    Io(String),
    /// A block failed its checksum or does not decode as RocksDB writes it.
    Corruption(String),
    /// The input uses something this version does not handle; the caller falls back.
    NotSupported(String),
}

impl Error {
    pub fn io(msg: impl Into<String>) -> Self {
        Error::Io(msg.into())
    }
    pub fn corruption(msg: impl Into<String>) -> Self {
        Error::Corruption(msg.into())
    }
    pub fn not_supported(msg: impl Into<String>) -> Self {
        Error::NotSupported(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(m) => write!(f, "IO error: {m}"),
            Error::Corruption(m) => write!(f, "Corruption: {m}"),
            Error::NotSupported(m) => write!(f, "Not supported: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// The text of a caught panic's payload (what `panic!` was given), for the status that reports it.
pub fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}
