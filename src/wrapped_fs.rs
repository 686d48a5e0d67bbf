//! Inputs on a file system other than RocksDB's default POSIX one (`RINGMERGE_WRAPPED_FS`).
//!
//! ringmerge reads SST files by path through the OS. When the DB's `FileSystem` is a wrapper
//! (RocksDB's test `SpecialEnv`, a metrics or rate-limiting wrapper, db_stress's
//! `DbStressFSWrapper`), the bytes the OS returns are the bytes RocksDB reads only if the wrapper
//! passes file contents through unchanged. That cannot be proven in general, so it is checked per
//! input file, cheaply, before anything is read for the merge:
//!
//! - the path is a regular file for the OS (an in-memory or remote file system has nothing there),
//! - its size is the size RocksDB's metadata records (an encrypting file system adds a prefix),
//! - its footer, read here from the OS file, decodes to the footer the open `TableReader` parsed
//!   through the wrapper: magic, checksum type, format_version, base context checksum and the
//!   metaindex handle (a file system that transforms bytes changes the footer too).
//!
//! Every data block ringmerge then reads is checksum-verified as always, so a wrapper that changed
//! only some blocks' bytes would fail the compaction with `Corruption`, never merge wrong data.
//! What the check cannot restore is what the wrapper does on its read path besides returning
//! bytes (fault injection, read accounting, rate limiting): reads bypass it. Hence the policy is
//! a setting, and the default refuses (see README.md).

use crate::block::footer::{self, FOOTER_LEN};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What RocksDB's open table reader parsed from the file's footer (`BlockBasedTable::Rep::footer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectedFooter {
    pub checksum_type: u8,
    pub format_version: u32,
    pub base_context_checksum: u32,
    pub metaindex_offset: u64,
    pub metaindex_size: u64,
}

/// Checks that the OS file at `path` is the file RocksDB read through its wrapped file system.
/// `Err` says why not, for the fallback reason.
pub fn verify_local_file(
    path: &Path,
    file_size: u64,
    expected: &ExpectedFooter,
) -> Result<(), String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("{} is not a local file ({e})", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular local file", path.display()));
    }
    if meta.len() != file_size {
        return Err(format!(
            "{} is {} bytes on the OS, {file_size} bytes to RocksDB",
            path.display(),
            meta.len()
        ));
    }
    let tail_len = FOOTER_LEN.min(usize::try_from(file_size).unwrap_or(FOOTER_LEN));
    let mut tail = vec![0u8; tail_len];
    File::open(path)
        .and_then(|f| f.read_exact_at(&mut tail, file_size - tail_len as u64))
        .map_err(|e| format!("reading the footer of {}: {e}", path.display()))?;
    let found = footer::parse(&tail, file_size)
        .map_err(|e| format!("the OS file's footer does not decode ({e})"))?;
    let found = ExpectedFooter {
        checksum_type: found.checksum_type as u8,
        format_version: found.format_version,
        base_context_checksum: found.base_context_checksum,
        metaindex_offset: found.metaindex_handle.offset,
        metaindex_size: found.metaindex_handle.size,
    };
    if found != *expected {
        return Err(format!(
            "the OS file's footer differs from the one RocksDB read ({found:?} vs {expected:?})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::checksum::ChecksumType;
    use crate::block::testutil::build_footer;
    use crate::block::BlockHandle;

    fn write_sst(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A 4 KiB body followed by an fv6 footer, and what RocksDB would have parsed from it.
    fn sample() -> (Vec<u8>, ExpectedFooter) {
        let body = 4096u64;
        let metaindex = BlockHandle {
            offset: body - 5 - 100,
            size: 100,
        };
        let mut bytes = vec![7u8; body as usize];
        bytes.extend(build_footer(
            6,
            body,
            ChecksumType::Xxh3,
            metaindex,
            BlockHandle { offset: 0, size: 0 },
            0x1234_5678,
        ));
        let exp = ExpectedFooter {
            checksum_type: ChecksumType::Xxh3 as u8,
            format_version: 6,
            base_context_checksum: 0x1234_5678,
            metaindex_offset: metaindex.offset,
            metaindex_size: 100,
        };
        (bytes, exp)
    }

    fn tempdir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("ringmerge-wrapped-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn same_file_passes() {
        let d = tempdir("same");
        let (bytes, exp) = sample();
        let p = write_sst(&d, "1.sst", &bytes);
        verify_local_file(&p, bytes.len() as u64, &exp).unwrap();
    }

    #[test]
    fn missing_size_footer_and_field_mismatches_are_refused() {
        let d = tempdir("bad");
        let (bytes, exp) = sample();
        let n = bytes.len() as u64;
        let p = write_sst(&d, "1.sst", &bytes);

        let e = verify_local_file(&d.join("absent.sst"), n, &exp).unwrap_err();
        assert!(e.contains("not a local file"), "{e}");
        let e = verify_local_file(&d, n, &exp).unwrap_err();
        assert!(e.contains("not a regular local file"), "{e}");
        let e = verify_local_file(&p, n + 16, &exp).unwrap_err();
        assert!(e.contains("bytes on the OS"), "{e}");

        // Bytes transformed on disk (as an encrypting file system stores them).
        let xored: Vec<u8> = bytes.iter().map(|b| b ^ 0x5a).collect();
        let px = write_sst(&d, "2.sst", &xored);
        let e = verify_local_file(&px, n, &exp).unwrap_err();
        assert!(e.contains("does not decode"), "{e}");

        // A valid footer that is not the one RocksDB parsed.
        for tweak in 0..4 {
            let mut other = exp;
            match tweak {
                0 => other.checksum_type = ChecksumType::Crc32c as u8,
                1 => other.format_version = 5,
                2 => other.base_context_checksum ^= 1,
                _ => other.metaindex_size += 1,
            }
            let e = verify_local_file(&p, n, &other).unwrap_err();
            assert!(e.contains("differs"), "{e}");
        }
    }
}
