//! Internal keys (db/dbformat.h): `user_key | fixed64(seq << 8 | type)`, ordered by user key
//! ascending, then by the packed (sequence, type) trailer descending so newer entries come first.

use crate::error::{Error, Result};
use std::cmp::Ordering;

/// `kTypeDeletion`.
pub const TYPE_DELETION: u8 = 0x0;
/// `kTypeValue`.
pub const TYPE_VALUE: u8 = 0x1;
/// `kTypeMerge`.
pub const TYPE_MERGE: u8 = 0x2;
/// `kTypeSingleDeletion`.
pub const TYPE_SINGLE_DELETION: u8 = 0x7;
/// `kTypeRangeDeletion` (range-deletion meta block only).
pub const TYPE_RANGE_DELETION: u8 = 0xF;
/// `kTypeBlobIndex` (BlobDB / integrated blob files).
pub const TYPE_BLOB_INDEX: u8 = 0x11;
/// `kTypeDeletionWithTimestamp`.
pub const TYPE_DELETION_WITH_TIMESTAMP: u8 = 0x14;
/// `kTypeWideColumnEntity`.
pub const TYPE_WIDE_COLUMN_ENTITY: u8 = 0x16;
/// `kTypeValuePreferredSeqno` (value carrying a preferred sequence number / write time).
pub const TYPE_VALUE_PREFERRED_SEQNO: u8 = 0x18;

/// `kNumInternalBytes`: the packed trailer length.
pub const INTERNAL_KEY_TRAILER_LEN: usize = 8;

/// `kMaxSequenceNumber` (56 bits).
pub const MAX_SEQUENCE_NUMBER: u64 = (1 << 56) - 1;

/// Splits an internal key into (user key, packed trailer). Shorter than 8 bytes -> Corruption.
#[inline]
pub fn split_internal_key(ikey: &[u8]) -> Result<(&[u8], u64)> {
    let Some(user_len) = ikey.len().checked_sub(INTERNAL_KEY_TRAILER_LEN) else {
        return Err(Error::corruption(format!(
            "Corrupted Key: Internal Key too small. Size={}",
            ikey.len()
        )));
    };
    let (user, trailer) = ikey.split_at(user_len);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(trailer);
    Ok((user, u64::from_le_bytes(bytes)))
}

/// Sequence number of a packed trailer (`packed >> 8`).
#[inline]
pub fn seq_of(packed: u64) -> u64 {
    packed >> 8
}

/// Value type of a packed trailer (low byte).
#[inline]
pub fn type_of(packed: u64) -> u8 {
    // Truncation intended: the type is the low 8 bits.
    (packed & 0xff) as u8
}

/// `PackSequenceAndType`: `seq << 8 | t`. `seq` should be at most [`MAX_SEQUENCE_NUMBER`]
/// (RocksDB asserts it); larger values lose their top bits.
#[inline]
pub fn pack(seq: u64, t: u8) -> u64 {
    (seq << 8) | u64::from(t)
}

/// How user keys sort: RocksDB's built-in comparators ringmerge merges with (and MyRocks' two,
/// which order as the first and the third).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserKeyOrder {
    /// `leveldb.BytewiseComparator`: bytes ascending.
    #[default]
    Bytewise,
    /// `leveldb.BytewiseComparator.u64ts` (`BytewiseComparatorWithU64Ts`): every user key ends
    /// with an 8-byte timestamp (fixed64, little-endian); the key without it sorts bytes
    /// ascending, then the timestamp descending (the newest version first).
    BytewiseU64Ts,
    /// `rocksdb.ReverseBytewiseComparator` (and MyRocks' `rev:` column families): bytes
    /// descending.
    ReverseBytewise,
    /// `ReverseBytewiseComparatorWithU64Ts`: the key without its timestamp descending, then the
    /// timestamp descending.
    ReverseBytewiseU64Ts,
}

/// Bytes of the timestamp `BytewiseU64Ts` keys end with.
pub const U64_TS_LEN: usize = 8;

impl UserKeyOrder {
    /// Orders two user keys. A `BytewiseU64Ts` key shorter than its timestamp (which the cursor
    /// rejects as corruption before comparing) compares as if its timestamp were empty: no panic.
    #[inline]
    pub fn cmp(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            UserKeyOrder::Bytewise => a.cmp(b),
            UserKeyOrder::ReverseBytewise => b.cmp(a),
            UserKeyOrder::BytewiseU64Ts | UserKeyOrder::ReverseBytewiseU64Ts => {
                let (ak, ats) = a.split_at(a.len().saturating_sub(U64_TS_LEN));
                let (bk, bts) = b.split_at(b.len().saturating_sub(U64_TS_LEN));
                self.cmp_without_ts(ak, bk)
                    .then_with(|| fixed64(bts).cmp(&fixed64(ats)))
            }
        }
    }

    /// Orders two user keys without their timestamps (or keys of an order that has none): how a
    /// key is compared with the subcompaction bounds.
    #[inline]
    pub fn cmp_without_ts(self, a: &[u8], b: &[u8]) -> Ordering {
        match self {
            UserKeyOrder::Bytewise | UserKeyOrder::BytewiseU64Ts => a.cmp(b),
            UserKeyOrder::ReverseBytewise | UserKeyOrder::ReverseBytewiseU64Ts => b.cmp(a),
        }
    }

    /// Every user key ends with an 8-byte timestamp.
    #[inline]
    pub fn has_ts(self) -> bool {
        matches!(
            self,
            UserKeyOrder::BytewiseU64Ts | UserKeyOrder::ReverseBytewiseU64Ts
        )
    }

    /// The same order over keys stored without their timestamps (all of them then equal, the
    /// minimum: `persist_user_defined_timestamps` = false).
    pub fn stored_without_ts(self) -> UserKeyOrder {
        match self {
            UserKeyOrder::BytewiseU64Ts => UserKeyOrder::Bytewise,
            UserKeyOrder::ReverseBytewiseU64Ts => UserKeyOrder::ReverseBytewise,
            other => other,
        }
    }

    /// The part of a user key the subcompaction bounds are compared with: all of it, or the key
    /// without its timestamp (RocksDB strips the bounds' timestamps, and clips every version of
    /// a key alike: `CompactionJob::ProcessKeyValueCompaction`).
    #[inline]
    pub fn without_ts(self, user_key: &[u8]) -> &[u8] {
        if self.has_ts() {
            &user_key[..user_key.len().saturating_sub(U64_TS_LEN)]
        } else {
            user_key
        }
    }

    /// Corruption when a user key cannot be one of this order's (shorter than its timestamp).
    #[inline]
    pub fn check(self, user_key: &[u8]) -> Result<()> {
        if self.has_ts() && user_key.len() < U64_TS_LEN {
            return Err(Error::corruption(format!(
                "user key of {} bytes is shorter than its {U64_TS_LEN}-byte timestamp",
                user_key.len()
            )));
        }
        Ok(())
    }
}

/// `DecodeFixed64` of up to 8 bytes (fewer only for a key the cursor rejects anyway).
#[inline]
fn fixed64(b: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    u64::from_le_bytes(bytes)
}

/// Internal key order (`InternalKeyComparator` with the bytewise user comparator): user key
/// ascending, then packed trailer descending.
#[inline]
pub fn cmp_internal(a_user: &[u8], a_packed: u64, b_user: &[u8], b_packed: u64) -> Ordering {
    a_user.cmp(b_user).then_with(|| b_packed.cmp(&a_packed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ikey(user: &[u8], seq: u64, t: u8) -> Vec<u8> {
        let mut k = user.to_vec();
        k.extend_from_slice(&pack(seq, t).to_le_bytes());
        k
    }

    #[test]
    fn split_and_pack() {
        let k = ikey(b"hello", 42, TYPE_MERGE);
        let (u, p) = split_internal_key(&k).unwrap();
        assert_eq!(u, b"hello");
        assert_eq!(seq_of(p), 42);
        assert_eq!(type_of(p), TYPE_MERGE);
        let k = ikey(b"", MAX_SEQUENCE_NUMBER, TYPE_VALUE);
        let (u, p) = split_internal_key(&k).unwrap();
        assert!(u.is_empty());
        assert_eq!(seq_of(p), MAX_SEQUENCE_NUMBER);
        assert_eq!(type_of(p), TYPE_VALUE);
        for n in 0..8 {
            assert!(matches!(
                split_internal_key(&vec![0; n]),
                Err(Error::Corruption(_))
            ));
        }
    }

    #[test]
    fn value_types_match_dbformat() {
        assert_eq!(
            [
                TYPE_DELETION,
                TYPE_VALUE,
                TYPE_MERGE,
                TYPE_SINGLE_DELETION,
                TYPE_RANGE_DELETION,
                TYPE_BLOB_INDEX,
                TYPE_DELETION_WITH_TIMESTAMP,
                TYPE_WIDE_COLUMN_ENTITY,
                TYPE_VALUE_PREFERRED_SEQNO
            ],
            [0, 1, 2, 7, 0xf, 0x11, 0x14, 0x16, 0x18]
        );
    }

    fn ts_key(key: &[u8], ts: u64) -> Vec<u8> {
        let mut k = key.to_vec();
        k.extend_from_slice(&ts.to_le_bytes());
        k
    }

    #[test]
    fn u64ts_order_is_key_ascending_then_timestamp_descending() {
        let o = UserKeyOrder::BytewiseU64Ts;
        // The timestamp's bytes are little-endian: 256 > 1 though its first byte is smaller.
        assert_eq!(o.cmp(&ts_key(b"a", 256), &ts_key(b"a", 1)), Ordering::Less);
        assert_eq!(o.cmp(&ts_key(b"a", 1), &ts_key(b"a", 1)), Ordering::Equal);
        assert_eq!(o.cmp(&ts_key(b"a", 1), &ts_key(b"b", 9)), Ordering::Less);
        // "a" < "ab" without timestamps, whatever the timestamps' bytes are.
        assert_eq!(
            o.cmp(&ts_key(b"a", 0), &ts_key(b"ab", u64::MAX)),
            Ordering::Less
        );
        // Where the two orders differ: the newer version first, not the smaller bytes.
        assert_eq!(o.cmp(&ts_key(b"a", 2), &ts_key(b"a", 1)), Ordering::Less);
        assert_eq!(
            UserKeyOrder::Bytewise.cmp(&ts_key(b"a", 2), &ts_key(b"a", 1)),
            Ordering::Greater
        );
        assert_eq!(o.without_ts(&ts_key(b"key", 7)), b"key");
        assert_eq!(UserKeyOrder::Bytewise.without_ts(b"key"), b"key");
        assert!(o.check(b"short").is_err());
        assert!(o.check(&ts_key(b"", 0)).is_ok());
        // Never panics on a short key.
        let _ = o.cmp(b"x", b"");
        assert_eq!(o.without_ts(b"x"), b"");
    }

    #[test]
    fn reverse_orders() {
        let r = UserKeyOrder::ReverseBytewise;
        assert_eq!(r.cmp(b"b", b"a"), Ordering::Less);
        assert_eq!(r.cmp(b"ab", b"a"), Ordering::Less);
        assert_eq!(r.cmp(b"a", b"a"), Ordering::Equal);
        assert_eq!(r.cmp_without_ts(b"b", b"a"), Ordering::Less);
        assert!(!r.has_ts());
        let rt = UserKeyOrder::ReverseBytewiseU64Ts;
        // Key descending, then (as every u64ts comparator) the newer timestamp first.
        assert_eq!(rt.cmp(&ts_key(b"b", 1), &ts_key(b"a", 9)), Ordering::Less);
        assert_eq!(rt.cmp(&ts_key(b"a", 9), &ts_key(b"a", 1)), Ordering::Less);
        assert_eq!(rt.without_ts(&ts_key(b"key", 3)), b"key");
        assert_eq!(rt.stored_without_ts(), r);
        assert_eq!(
            UserKeyOrder::BytewiseU64Ts.stored_without_ts(),
            UserKeyOrder::Bytewise
        );
    }

    #[test]
    fn ordering() {
        // User key ascending first.
        assert_eq!(
            cmp_internal(b"a", pack(1, 1), b"b", pack(100, 1)),
            Ordering::Less
        );
        assert_eq!(
            cmp_internal(b"ab", pack(1, 1), b"a", pack(1, 1)),
            Ordering::Greater
        );
        // Same user key: higher sequence first.
        assert_eq!(
            cmp_internal(b"a", pack(9, 1), b"a", pack(8, 1)),
            Ordering::Less
        );
        // Same sequence: higher type first.
        assert_eq!(
            cmp_internal(b"a", pack(9, TYPE_VALUE), b"a", pack(9, TYPE_DELETION)),
            Ordering::Less
        );
        assert_eq!(
            cmp_internal(b"a", pack(9, 1), b"a", pack(9, 1)),
            Ordering::Equal
        );
    }
}
