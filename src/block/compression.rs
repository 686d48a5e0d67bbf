//! Block decompression exactly as RocksDB 10.1.3 reads what it wrote (util/compression.h,
//! `UncompressData`): the codec is the block trailer's compression-type byte, per block.
//!
//! With format_version >= 2 (`GetCompressFormatForVersion` = 2, the only one the C++ side hands
//! over), the payload of a compressed block is:
//!
//! - Snappy: a raw Snappy stream (its own varint length inside, no RocksDB prefix);
//! - LZ4 and LZ4HC: varint32 uncompressed size, then an LZ4 block, decoded with the file's
//!   compression dictionary as the stream prefix (`LZ4_setStreamDecode`);
//! - Zlib: varint32 uncompressed size, then raw deflate (`inflateInit2(-14)`, window bits -14
//!   whatever the writer's `window_bits`), the dictionary set with `inflateSetDictionary`;
//! - ZSTD: varint32 uncompressed size, then a ZSTD frame decoded with the dictionary
//!   (`ZSTD_decompress_usingDict`/`usingDDict`: same bytes); the size must match the prefix.
//!
//! BZip2 and Xpress are not decoded: the C++ side falls back before output for files whose
//! `compression_name` names them, so meeting one here means the file lies about itself.
//!
//! The codecs come from maintained crates (snap, lz4_flex, flate2 over the system zlib, zstd-safe
//! over the system libzstd, the same libraries RocksDB links). Output goes into a caller-owned,
//! reused buffer: no allocation per block once it has grown to the largest block.

use crate::block::varint::get_varint32;
use crate::error::{Error, Result};
use flate2::{Decompress, FlushDecompress, Status};

/// `rocksdb::CompressionType` values as stored in the block trailer.
pub mod ctype {
    pub const NONE: u8 = 0x0;
    pub const SNAPPY: u8 = 0x1;
    pub const ZLIB: u8 = 0x2;
    pub const BZIP2: u8 = 0x3;
    pub const LZ4: u8 = 0x4;
    pub const LZ4HC: u8 = 0x5;
    pub const XPRESS: u8 = 0x6;
    pub const ZSTD: u8 = 0x7;
}

/// `CompressionTypeToString` for the types a trailer can hold.
pub fn compression_name(t: u8) -> &'static str {
    match t {
        ctype::NONE => "NoCompression",
        ctype::SNAPPY => "Snappy",
        ctype::ZLIB => "Zlib",
        ctype::BZIP2 => "BZip2",
        ctype::LZ4 => "LZ4",
        ctype::LZ4HC => "LZ4HC",
        ctype::XPRESS => "Xpress",
        ctype::ZSTD => "ZSTD",
        _ => "Unknown",
    }
}

/// Whether [`Decompressor`] decodes blocks of this trailer type.
pub fn is_supported(t: u8) -> bool {
    matches!(
        t,
        ctype::SNAPPY | ctype::ZLIB | ctype::LZ4 | ctype::LZ4HC | ctype::ZSTD
    )
}

/// `Zlib_Uncompress`'s default `windowBits = -14` (raw deflate, 16 KiB window).
const ZLIB_WINDOW_BITS: u8 = 14;

/// Per-cursor codec state, reused across blocks and files.
#[derive(Default)]
pub struct Decompressor {
    zlib: Option<Decompress>,
    zstd: Option<zstd_safe::DCtx<'static>>,
    /// The digested form of the dictionary last used with ZSTD, and the key it was made for.
    zstd_ddict: Option<(u64, zstd_safe::DDict<'static>)>,
}

impl Decompressor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the payload of a block whose trailer says `t` into `out` (its previous contents
    /// are overwritten and cut, its capacity reused). `dict` is the file's compression dictionary (empty when
    /// it has none); `dict_key` names that dictionary for this decompressor's lifetime (the file's
    /// index) so its digested ZSTD form is built once per file, not per block.
    pub fn decompress(
        &mut self,
        t: u8,
        input: &[u8],
        dict: &[u8],
        dict_key: u64,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let corrupt = |why: &str| {
            Error::corruption(format!(
                "Corrupted compressed block contents: {why} ({})",
                compression_name(t)
            ))
        };
        match t {
            ctype::SNAPPY => {
                let n = snap::raw::decompress_len(input).map_err(|e| corrupt(&e.to_string()))?;
                resize(out, n)?;
                let got = snap::raw::Decoder::new()
                    .decompress(input, out)
                    .map_err(|e| corrupt(&e.to_string()))?;
                out.truncate(got);
            }
            ctype::LZ4 | ctype::LZ4HC => {
                let (n, body) = size_prefix(input).ok_or_else(|| corrupt("bad size prefix"))?;
                resize(out, n)?;
                // LZ4_decompress_safe_continue after LZ4_setStreamDecode(dict): the dictionary
                // is the stream's prefix, exactly lz4_flex's external dictionary.
                let got = if dict.is_empty() {
                    lz4_flex::block::decompress_into(body, out)
                } else {
                    lz4_flex::block::decompress_into_with_dict(body, out, dict)
                }
                .map_err(|e| corrupt(&e.to_string()))?;
                // RocksDB takes the decoded length as the block size.
                out.truncate(got);
            }
            ctype::ZLIB => {
                let (n, body) = size_prefix(input).ok_or_else(|| corrupt("bad size prefix"))?;
                self.inflate(body, dict, n, out).map_err(|m| corrupt(&m))?;
            }
            ctype::ZSTD => {
                let (n, body) = size_prefix(input).ok_or_else(|| corrupt("bad size prefix"))?;
                resize(out, n)?;
                let dctx = self.zstd.get_or_insert_with(zstd_safe::DCtx::create);
                let got = if dict.is_empty() {
                    dctx.decompress(out.as_mut_slice(), body)
                } else {
                    if self.zstd_ddict.as_ref().is_none_or(|(k, _)| *k != dict_key) {
                        let d = zstd_safe::DDict::try_create(dict)
                            .ok_or_else(|| corrupt("cannot load the dictionary"))?;
                        self.zstd_ddict = Some((dict_key, d));
                    }
                    let (_, ddict) = self.zstd_ddict.as_ref().expect("set above");
                    dctx.decompress_using_ddict(out.as_mut_slice(), body, ddict)
                }
                .map_err(|code| corrupt(zstd_safe::get_error_name(code)))?;
                if got != n {
                    return Err(corrupt("Decompressed size does not match header."));
                }
            }
            other => {
                return Err(Error::not_supported(format!(
                    "block compressed with {} (type {other}), which ringmerge does not decode",
                    compression_name(other)
                )))
            }
        }
        Ok(())
    }

    /// `Zlib_Uncompress` for compress_format_version 2: inflate with `Z_SYNC_FLUSH` into the
    /// announced size until the stream ends, growing the output by 20% (at least 10 bytes) if it
    /// fills first, as the release build does; a stream that stops making progress is corrupt.
    fn inflate(
        &mut self,
        body: &[u8],
        dict: &[u8],
        n: usize,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        let z = self
            .zlib
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, ZLIB_WINDOW_BITS));
        // Keeps the raw -14 window (flate2 resets raw streams with their own window bits).
        z.reset(false);
        if !dict.is_empty() {
            z.set_dictionary(dict).map_err(|e| e.to_string())?;
        }
        resize(out, n).map_err(|e| e.to_string())?;
        loop {
            let (in_pos, out_pos) = (z.total_in() as usize, z.total_out() as usize);
            let status = z
                .decompress(&body[in_pos..], &mut out[out_pos..], FlushDecompress::Sync)
                .map_err(|e| e.to_string())?;
            let (in_now, out_now) = (z.total_in() as usize, z.total_out() as usize);
            match status {
                Status::StreamEnd => {
                    out.truncate(out_now);
                    return Ok(());
                }
                Status::Ok if in_now != in_pos || out_now != out_pos => {
                    if out_now == out.len() {
                        let grow = (out.len() / 5).max(10);
                        out.try_reserve(grow).map_err(|e| e.to_string())?;
                        out.resize(out.len() + grow, 0);
                    }
                }
                _ => return Err("inflate made no progress".to_owned()),
            }
        }
    }
}

/// The uncompressed size a block of type `t` announces (Snappy's own length header, else the
/// varint32 prefix); `None` if it cannot be read. The decoder allocates this much, as RocksDB
/// does, so callers feeding untrusted bytes (the fuzz target) bound it first.
pub fn announced_len(t: u8, input: &[u8]) -> Option<usize> {
    match t {
        ctype::SNAPPY => snap::raw::decompress_len(input).ok(),
        _ => size_prefix(input).map(|(n, _)| n),
    }
}

/// `GetDecompressedSizeInfo`: the varint32 uncompressed size and the bytes after it.
fn size_prefix(input: &[u8]) -> Option<(usize, &[u8])> {
    let mut pos = 0;
    let n = get_varint32(input, &mut pos)?;
    Some((n as usize, &input[pos..]))
}

/// Sets `out` to `n` bytes, reusing its capacity; an impossible size is an error, not an abort.
fn resize(out: &mut Vec<u8>, n: usize) -> Result<()> {
    // Only what the buffer grows by is zero-filled: every decoder overwrites the bytes it
    // produces and the result is cut to that length, so an earlier block's bytes never show.
    if out.len() >= n {
        out.truncate(n);
        return Ok(());
    }
    out.try_reserve(n - out.len())
        .map_err(|_| Error::corruption(format!("cannot allocate {n} bytes for a block")))?;
    out.resize(n, 0);
    Ok(())
}

/// Compressors that write blocks byte for byte in RocksDB's format_version >= 2 layout, for the
/// decoder's tests (the real files come from RocksDB itself in tests/differential.rs).
#[cfg(test)]
pub(crate) mod testutil {
    use super::{ctype, ZLIB_WINDOW_BITS};
    use crate::block::varint::put_varint32;
    use flate2::{Compress, Compression, FlushCompress};

    pub(crate) fn compress(t: u8, raw: &[u8], dict: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if t != ctype::SNAPPY {
            put_varint32(&mut out, raw.len() as u32);
        }
        match t {
            ctype::SNAPPY => out.extend(snap::raw::Encoder::new().compress_vec(raw).unwrap()),
            ctype::LZ4 | ctype::LZ4HC => {
                out.extend(lz4_flex::block::compress_with_dict(raw, dict));
            }
            ctype::ZLIB => {
                // Zlib_Compress: deflateInit2(level, Z_DEFLATED, -14, 8, strategy),
                // deflateSetDictionary, deflate(Z_FINISH).
                let mut z =
                    Compress::new_with_window_bits(Compression::default(), false, ZLIB_WINDOW_BITS);
                if !dict.is_empty() {
                    z.set_dictionary(dict).unwrap();
                }
                let mut buf = vec![0u8; raw.len() * 2 + 64];
                let st = z.compress(raw, &mut buf, FlushCompress::Finish).unwrap();
                assert_eq!(st, flate2::Status::StreamEnd);
                buf.truncate(z.total_out() as usize);
                out.extend(buf);
            }
            ctype::ZSTD => {
                let mut cctx = zstd_safe::CCtx::create();
                let mut buf = vec![0u8; zstd_safe::compress_bound(raw.len())];
                let n = if dict.is_empty() {
                    cctx.compress(&mut buf[..], raw, 3).unwrap()
                } else {
                    cctx.compress_using_dict(&mut buf[..], raw, dict, 3)
                        .unwrap()
                };
                buf.truncate(n);
                out.extend(buf);
            }
            other => panic!("no test compressor for type {other}"),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::compress;
    use super::*;

    /// Compressible, block-like bytes: repeated keys and values with small variations.
    fn sample(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| b"key0000value-abcdefgh"[i % 21].wrapping_add(((i / 97) as u8) ^ seed))
            .collect()
    }

    const ALL: [u8; 5] = [
        ctype::SNAPPY,
        ctype::ZLIB,
        ctype::LZ4,
        ctype::LZ4HC,
        ctype::ZSTD,
    ];

    #[test]
    fn round_trips_every_codec_with_and_without_dictionary() {
        let dict = sample(8 << 10, 7);
        let mut d = Decompressor::new();
        let mut out = Vec::new();
        for t in ALL {
            for (key, dict) in [(0u64, &[][..]), (1, &dict[..])] {
                for len in [0usize, 1, 100, 4096, 70_000] {
                    let raw = sample(len, t);
                    let block = compress(t, &raw, dict);
                    d.decompress(t, &block, dict, key, &mut out)
                        .unwrap_or_else(|e| panic!("type {t} len {len}: {e}"));
                    assert!(out == raw, "type {t} len {len} dict {}", dict.len());
                }
            }
        }
    }

    #[test]
    fn dictionary_is_needed_and_used() {
        // A block that is mostly dictionary bytes only decodes with the dictionary.
        let dict = sample(4096, 3);
        let raw = dict[100..3000].to_vec();
        let mut d = Decompressor::new();
        let mut out = Vec::new();
        for t in [ctype::LZ4, ctype::ZLIB, ctype::ZSTD] {
            let block = compress(t, &raw, &dict);
            assert!(block.len() < raw.len() / 4, "type {t} did not use the dict");
            d.decompress(t, &block, &dict, 9, &mut out).unwrap();
            assert!(out == raw, "type {t}");
            let wrong = d.decompress(t, &block, &[], 0, &mut out);
            assert!(
                wrong.is_err() || out != raw,
                "type {t} decoded without its dict"
            );
        }
    }

    #[test]
    fn zstd_ddict_follows_the_dictionary_key() {
        let (a, b) = (sample(2048, 1), sample(2048, 200));
        let mut d = Decompressor::new();
        let mut out = Vec::new();
        let ra = a[10..1500].to_vec();
        let rb = b[10..1500].to_vec();
        for _ in 0..2 {
            d.decompress(
                ctype::ZSTD,
                &compress(ctype::ZSTD, &ra, &a),
                &a,
                1,
                &mut out,
            )
            .unwrap();
            assert!(out == ra);
            d.decompress(
                ctype::ZSTD,
                &compress(ctype::ZSTD, &rb, &b),
                &b,
                2,
                &mut out,
            )
            .unwrap();
            assert!(out == rb);
        }
    }

    #[test]
    fn output_buffer_is_reused() {
        let mut d = Decompressor::new();
        let mut out = Vec::new();
        let raw = sample(4096, 5);
        for t in ALL {
            let block = compress(t, &raw, &[]);
            d.decompress(t, &block, &[], 0, &mut out).unwrap();
        }
        let ptr = out.as_ptr();
        for t in ALL {
            let block = compress(t, &raw, &[]);
            d.decompress(t, &block, &[], 0, &mut out).unwrap();
            assert_eq!(out.as_ptr(), ptr, "type {t} reallocated the output");
        }
    }

    #[test]
    fn corrupt_payloads_are_errors_not_panics() {
        let raw = sample(4096, 9);
        let mut d = Decompressor::new();
        let mut out = Vec::new();
        for t in ALL {
            let block = compress(t, &raw, &[]);
            // Truncated, empty, and garbage payloads.
            for bad in [&block[..block.len() / 2], &[][..], &[0xff; 40][..]] {
                let _ = d.decompress(t, bad, &[], 0, &mut out);
            }
            assert!(d
                .decompress(t, &block[..block.len() / 2], &[], 0, &mut out)
                .is_err());
            // A size prefix that disagrees with the stream.
            if t == ctype::ZSTD || t == ctype::LZ4 {
                let mut wrong = Vec::new();
                crate::block::varint::put_varint32(&mut wrong, raw.len() as u32 + 1);
                let mut p = 0;
                get_varint32(&block, &mut p).unwrap();
                wrong.extend_from_slice(&block[p..]);
                let r = d.decompress(t, &wrong, &[], 0, &mut out);
                if t == ctype::ZSTD {
                    assert!(r.is_err());
                } else {
                    assert!(out == raw, "LZ4 keeps the decoded length, as RocksDB does");
                }
            }
        }
    }

    #[test]
    fn zlib_stream_longer_than_announced_grows_like_rocksdb() {
        let raw = sample(5000, 4);
        let mut block = Vec::new();
        crate::block::varint::put_varint32(&mut block, 1000);
        let full = compress(ctype::ZLIB, &raw, &[]);
        let mut p = 0;
        get_varint32(&full, &mut p).unwrap();
        block.extend_from_slice(&full[p..]);
        let mut out = Vec::new();
        Decompressor::new()
            .decompress(ctype::ZLIB, &block, &[], 0, &mut out)
            .unwrap();
        assert!(out == raw, "got {} bytes", out.len());
    }

    #[test]
    fn unsupported_types_are_not_supported() {
        let mut out = Vec::new();
        for t in [ctype::BZIP2, ctype::XPRESS, 0x42] {
            assert!(!is_supported(t));
            let e = Decompressor::new()
                .decompress(t, b"xx", &[], 0, &mut out)
                .unwrap_err();
            assert!(matches!(e, Error::NotSupported(_)), "{e}");
        }
    }
}
