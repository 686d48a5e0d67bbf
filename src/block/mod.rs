//! Decoding of RocksDB 10.1.3 block-based table pieces: the file footer, block trailers and
//! checksums, data blocks and index blocks. Everything here works on caller-owned byte slices and
//! returns `Error::Corruption` instead of panicking on malformed input.

pub mod checksum;
pub mod compression;
pub mod data;
pub mod footer;
pub mod index;
pub mod key;
pub mod varint;

use crate::error::{Error, Result};

/// `BlockBasedTable::kBlockTrailerSize`: compression-type byte + fixed32 checksum.
pub const BLOCK_TRAILER_SIZE: usize = 5;

/// Location of a block in the file (`rocksdb::BlockHandle`); `size` excludes the trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHandle {
    /// File offset of the first payload byte.
    pub offset: u64,
    /// Payload length, without the 5-byte trailer.
    pub size: u64,
}

impl BlockHandle {
    /// Decodes `varint64 offset, varint64 size` at `*pos` (`BlockHandle::DecodeFrom`).
    pub fn decode_from(buf: &[u8], pos: &mut usize) -> Result<BlockHandle> {
        let mut p = *pos;
        let offset = varint::get_varint64(buf, &mut p);
        let size = varint::get_varint64(buf, &mut p);
        match (offset, size) {
            (Some(offset), Some(size)) => {
                *pos = p;
                Ok(BlockHandle { offset, size })
            }
            _ => Err(Error::corruption("bad block handle")),
        }
    }

    /// Appends `varint64 offset, varint64 size` (`BlockHandle::EncodeTo`).
    pub fn encode_to(&self, dst: &mut Vec<u8>) {
        varint::put_varint64(dst, self.offset);
        varint::put_varint64(dst, self.size);
    }
}

/// Encoders that produce blocks, trailers and footers byte for byte as RocksDB 10.1.3 writes them
/// (block_builder.cc, data_block_hash_index.cc, block_based_table_builder.cc, format.cc), so the
/// decoders can be tested without a C++ toolchain.
#[cfg(test)]
pub(crate) mod testutil {
    use super::checksum::{compute, context_modifier, ChecksumType};
    use super::varint::{put_fixed16, put_fixed32, put_fixed64, put_varint32, put_varsigned64};
    use super::{BlockHandle, BLOCK_TRAILER_SIZE};

    /// `kMaxBlockSizeSupportedByHashIndex`.
    const MAX_BLOCK_SIZE_FOR_HASH_INDEX: usize = 1 << 16;
    /// `kMaxRestartSupportedByHashIndex`.
    const MAX_RESTART_FOR_HASH_INDEX: usize = 253;

    /// `rocksdb::Hash` (MurmurHash1 variant) from util/hash.cc, used by `GetSliceHash`.
    pub(crate) fn rocksdb_hash(data: &[u8], seed: u32) -> u32 {
        const M: u32 = 0xc6a4_a793;
        const R: u32 = 24;
        let mut h = seed ^ (data.len() as u32).wrapping_mul(M);
        let mut chunks = data.chunks_exact(4);
        for c in &mut chunks {
            let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            h = h.wrapping_add(w).wrapping_mul(M);
            h ^= h >> 16;
        }
        let rest = chunks.remainder();
        // Bytes are sign-extended, as the C++ code does via int8_t.
        let sx = |b: u8| b as i8 as i32 as u32;
        if rest.len() == 3 {
            h = h.wrapping_add(sx(rest[2]) << 16);
        }
        if rest.len() >= 2 {
            h = h.wrapping_add(sx(rest[1]) << 8);
        }
        if !rest.is_empty() {
            h = h.wrapping_add(sx(rest[0]));
            h = h.wrapping_mul(M);
            h ^= h >> R;
        }
        h
    }

    /// RocksDB's `BlockBuilder` with delta (shared-prefix) key encoding.
    pub(crate) struct BlockBuilder {
        restart_interval: usize,
        use_value_delta_encoding: bool,
        buffer: Vec<u8>,
        restarts: Vec<u32>,
        counter: usize,
        last_key: Vec<u8>,
        /// `Some(bucket_per_key)` when building a data block hash index.
        hash_bucket_per_key: Option<f64>,
        hash_valid: bool,
        estimated_num_buckets: f64,
        hash_pairs: Vec<(u32, u8)>,
    }

    impl BlockBuilder {
        pub(crate) fn new(restart_interval: usize) -> Self {
            BlockBuilder {
                restart_interval,
                use_value_delta_encoding: false,
                buffer: Vec::new(),
                restarts: vec![0],
                counter: 0,
                last_key: Vec::new(),
                hash_bucket_per_key: None,
                hash_valid: false,
                estimated_num_buckets: 0.0,
                hash_pairs: Vec::new(),
            }
        }

        /// Index-block flavour: values are delta-encoded block handles without a length.
        pub(crate) fn with_value_delta_encoding(mut self) -> Self {
            self.use_value_delta_encoding = true;
            self
        }

        /// `kDataBlockBinaryAndHash` with the given util ratio.
        pub(crate) fn with_hash_index(mut self, util_ratio: f64) -> Self {
            let ratio = if util_ratio <= 0.0 { 0.75 } else { util_ratio };
            self.hash_bucket_per_key = Some(1.0 / ratio);
            self.hash_valid = true;
            self
        }

        /// `BlockBuilder::Add`. `delta_value` is required with value delta encoding.
        pub(crate) fn add(&mut self, key: &[u8], value: &[u8], delta_value: Option<&[u8]>) {
            let mut shared = 0;
            if self.counter >= self.restart_interval {
                self.restarts.push(self.buffer.len() as u32);
                self.counter = 0;
            } else {
                shared = key
                    .iter()
                    .zip(self.last_key.iter())
                    .take_while(|(a, b)| a == b)
                    .count();
            }
            let non_shared = key.len() - shared;
            put_varint32(&mut self.buffer, shared as u32);
            put_varint32(&mut self.buffer, non_shared as u32);
            if !self.use_value_delta_encoding {
                put_varint32(&mut self.buffer, value.len() as u32);
            }
            self.buffer.extend_from_slice(&key[shared..]);
            if shared != 0 && self.use_value_delta_encoding {
                self.buffer
                    .extend_from_slice(delta_value.expect("delta value"));
            } else {
                self.buffer.extend_from_slice(value);
            }
            if let Some(bpk) = self.hash_bucket_per_key {
                if self.hash_valid {
                    let restart_index = self.restarts.len() - 1;
                    if restart_index > MAX_RESTART_FOR_HASH_INDEX {
                        self.hash_valid = false;
                    } else {
                        // ExtractUserKey: data block keys are internal keys.
                        let user = &key[..key.len() - 8];
                        self.hash_pairs
                            .push((rocksdb_hash(user, 397), restart_index as u8));
                        self.estimated_num_buckets += bpk;
                    }
                }
            }
            self.last_key.clear();
            self.last_key.extend_from_slice(key);
            self.counter += 1;
        }

        /// `BlockBuilder::Finish`: restart array, optional hash index, packed footer.
        pub(crate) fn finish(mut self) -> Vec<u8> {
            for r in &self.restarts {
                put_fixed32(&mut self.buffer, *r);
            }
            let num_restarts = self.restarts.len() as u32;
            let mut footer = num_restarts;
            let mut num_buckets = (self.estimated_num_buckets as u16).max(1);
            num_buckets |= 1;
            let est = self.buffer.len() + 4 + usize::from(num_buckets) + 2;
            if self.hash_bucket_per_key.is_some()
                && self.hash_valid
                && est <= MAX_BLOCK_SIZE_FOR_HASH_INDEX
            {
                let mut buckets = vec![255u8; usize::from(num_buckets)];
                for &(h, ri) in &self.hash_pairs {
                    let idx = (h % u32::from(num_buckets)) as usize;
                    if buckets[idx] == 255 {
                        buckets[idx] = ri;
                    } else if buckets[idx] != ri {
                        buckets[idx] = 254;
                    }
                }
                self.buffer.extend_from_slice(&buckets);
                put_fixed16(&mut self.buffer, num_buckets);
                footer |= 1 << 31;
            }
            put_fixed32(&mut self.buffer, footer);
            self.buffer
        }
    }

    /// An internal key `user | fixed64(seq << 8 | t)`.
    pub(crate) fn ikey(user: &[u8], seq: u64, t: u8) -> Vec<u8> {
        let mut k = user.to_vec();
        put_fixed64(&mut k, super::key::pack(seq, t));
        k
    }

    /// Builds an index block the way `ShortenedIndexBuilder` drives `BlockBuilder`: the value is
    /// the full handle, the delta value (when `delta`) the varsigned size difference.
    pub(crate) fn build_index(
        entries: &[(Vec<u8>, BlockHandle)],
        restart_interval: usize,
        delta: bool,
        first_keys: Option<&[Vec<u8>]>,
    ) -> Vec<u8> {
        let mut b = BlockBuilder::new(restart_interval);
        if delta {
            b = b.with_value_delta_encoding();
        }
        let mut prev: Option<BlockHandle> = None;
        for (i, (k, h)) in entries.iter().enumerate() {
            let mut full = Vec::new();
            h.encode_to(&mut full);
            let mut dv = Vec::new();
            if let Some(p) = prev {
                put_varsigned64(&mut dv, h.size.wrapping_sub(p.size) as i64);
            }
            if let Some(fk) = first_keys {
                for v in [&mut full, &mut dv] {
                    put_varint32(v, fk[i].len() as u32);
                    v.extend_from_slice(&fk[i]);
                }
            }
            b.add(k, &full, prev.map(|_| &dv[..]));
            prev = Some(*h);
        }
        b.finish()
    }

    /// Appends the 5-byte trailer as `WriteMaybeCompressedBlock` does.
    pub(crate) fn add_trailer(
        payload: &[u8],
        compression_type: u8,
        ctype: ChecksumType,
        base_context_checksum: u32,
        offset: u64,
    ) -> Vec<u8> {
        let mut out = payload.to_vec();
        out.push(compression_type);
        let c = compute(ctype, &out).wrapping_add(context_modifier(base_context_checksum, offset));
        put_fixed32(&mut out, c);
        debug_assert_eq!(out.len(), payload.len() + BLOCK_TRAILER_SIZE);
        out
    }

    /// `FooterBuilder::Build` for the block-based magic and format_version >= 1.
    pub(crate) fn build_footer(
        format_version: u32,
        footer_offset: u64,
        ctype: ChecksumType,
        metaindex: BlockHandle,
        index: BlockHandle,
        base_context_checksum: u32,
    ) -> Vec<u8> {
        let mut out = vec![ctype as u8];
        if format_version >= 6 {
            out.extend_from_slice(&[0x3e, 0x00, 0x7a, 0x00]);
            put_fixed32(&mut out, 0);
            put_fixed32(&mut out, base_context_checksum);
            put_fixed32(&mut out, metaindex.size as u32);
            out.extend_from_slice(&[0u8; 24]);
        } else {
            metaindex.encode_to(&mut out);
            index.encode_to(&mut out);
            out.resize(41, 0);
        }
        put_fixed32(&mut out, format_version);
        put_fixed64(&mut out, super::footer::BLOCK_BASED_TABLE_MAGIC_NUMBER);
        assert_eq!(out.len(), 53);
        if format_version >= 6 {
            let c = compute(ctype, &out)
                .wrapping_add(context_modifier(base_context_checksum, footer_offset));
            out[5..9].copy_from_slice(&c.to_le_bytes());
        }
        out
    }

    /// Tiny deterministic PRNG (xorshift64*) so fuzz-style tests are reproducible.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n.max(1) as u64) as usize
        }

        /// Applies 1..=4 random edits (bit flips, byte sets, truncation, insertion).
        pub(crate) fn mutate(&mut self, v: &[u8]) -> Vec<u8> {
            let mut out = v.to_vec();
            for _ in 0..1 + self.below(4) {
                let len = out.len();
                match self.below(5) {
                    0 if len > 0 => {
                        let i = self.below(len);
                        out[i] ^= 1 << self.below(8);
                    }
                    1 if len > 0 => {
                        let i = self.below(len);
                        out[i] = self.next_u64() as u8;
                    }
                    2 => {
                        let n = self.below(len + 1);
                        out.truncate(n);
                    }
                    3 => {
                        let i = self.below(len + 1);
                        out.insert(i, self.next_u64() as u8);
                    }
                    _ if len > 0 => {
                        let i = self.below(len);
                        out.remove(i);
                    }
                    _ => {}
                }
            }
            out
        }
    }

    #[test]
    fn hash_matches_rocksdb_examples() {
        // Values from RocksDB 10.1.3 util/hash_test.cc (`HashTest.Values`, seed 0xbc9f1d34).
        const SEED: u32 = 0xbc9f_1d34;
        let cases: [(&[u8], u32); 9] = [
            (b"", 3_164_544_308),
            (b"\x08", 422_599_524),
            (b"\x9a", 3_195_034_349),
            (b"\x4d\x76", 2_447_836_956),
            (b"\x91\xf7", 31_066_776),
            (b"\x6a\xb5\xf4", 2_469_105_222),
            (b"\x46\xdc\x54\xbe", 447_346_355),
            (b"\x86\x83\xd5\xa4\xd8", 2_390_603_402),
            (b"\x1a\xb5\xd0\xfe\xab\xc3\x61\xb2\x99", 2_706_087_434),
        ];
        for (data, want) in cases {
            assert_eq!(rocksdb_hash(data, SEED), want, "{data:x?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_round_trip() {
        let h = BlockHandle {
            offset: 1 << 40,
            size: 4096,
        };
        let mut b = Vec::new();
        h.encode_to(&mut b);
        let mut pos = 0;
        assert_eq!(BlockHandle::decode_from(&b, &mut pos).unwrap(), h);
        assert_eq!(pos, b.len());
        for n in 0..b.len() {
            let mut pos = 0;
            assert!(BlockHandle::decode_from(&b[..n], &mut pos).is_err());
            assert_eq!(pos, 0);
        }
    }
}
