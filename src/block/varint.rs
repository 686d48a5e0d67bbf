//! RocksDB's integer encodings (util/coding.h, util/coding_lean.h): little-endian fixed-width
//! integers, LEB128-style varints and zigzag "varsigned" integers.
//!
//! Decoders take the whole buffer plus a cursor so callers can walk a block without re-slicing;
//! they return `None` (and leave `pos` untouched) when the bytes run out or a varint is too long,
//! exactly where RocksDB's `Get*Ptr` helpers return `nullptr`.

/// Decodes a varint32 at `*pos`, advancing `pos` past it.
///
/// Like RocksDB's `GetVarint32Ptr`, at most 5 bytes are read and bits above 32 in the fifth byte
/// are silently dropped (RocksDB shifts them out of a `uint32_t`), so the accepted inputs are the
/// same as the C++ reader's.
#[inline]
pub fn get_varint32(buf: &[u8], pos: &mut usize) -> Option<u32> {
    let mut p = *pos;
    let mut result: u32 = 0;
    let mut shift: u32 = 0;
    while shift <= 28 {
        let byte = *buf.get(p)?;
        p += 1;
        result |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            *pos = p;
            return Some(result);
        }
        shift += 7;
    }
    None
}

/// Decodes a varint64 at `*pos`, advancing `pos` past it (at most 10 bytes, as `GetVarint64Ptr`).
#[inline]
pub fn get_varint64(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut p = *pos;
    let mut result: u64 = 0;
    let mut shift: u32 = 0;
    while shift <= 63 {
        let byte = *buf.get(p)?;
        p += 1;
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            *pos = p;
            return Some(result);
        }
        shift += 7;
    }
    None
}

/// Decodes a zigzag-encoded signed varint64 (`GetVarsignedint64`).
#[inline]
pub fn get_varsigned64(buf: &[u8], pos: &mut usize) -> Option<i64> {
    get_varint64(buf, pos).map(zigzag_to_i64)
}

/// Decodes a little-endian fixed32 at `*pos`.
#[inline]
pub fn get_fixed32(buf: &[u8], pos: &mut usize) -> Option<u32> {
    let end = pos.checked_add(4)?;
    let bytes: [u8; 4] = buf.get(*pos..end)?.try_into().ok()?;
    *pos = end;
    Some(u32::from_le_bytes(bytes))
}

/// Decodes a little-endian fixed64 at `*pos`.
#[inline]
pub fn get_fixed64(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let end = pos.checked_add(8)?;
    let bytes: [u8; 8] = buf.get(*pos..end)?.try_into().ok()?;
    *pos = end;
    Some(u64::from_le_bytes(bytes))
}

/// Decodes a little-endian fixed16 at `*pos` (the hash index's bucket count).
#[inline]
pub fn get_fixed16(buf: &[u8], pos: &mut usize) -> Option<u16> {
    let end = pos.checked_add(2)?;
    let bytes: [u8; 2] = buf.get(*pos..end)?.try_into().ok()?;
    *pos = end;
    Some(u16::from_le_bytes(bytes))
}

/// Appends `v` as a varint32 (`PutVarint32`).
pub fn put_varint32(dst: &mut Vec<u8>, v: u32) {
    put_varint64(dst, u64::from(v));
}

/// Appends `v` as a varint64 (`PutVarint64`).
pub fn put_varint64(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        // Truncation is the point: keep the low 7 bits and flag a continuation byte.
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint64 (`PutVarsignedint64`).
pub fn put_varsigned64(dst: &mut Vec<u8>, v: i64) {
    put_varint64(dst, i64_to_zigzag(v));
}

/// Appends `v` as a little-endian fixed32 (`PutFixed32`).
pub fn put_fixed32(dst: &mut Vec<u8>, v: u32) {
    dst.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as a little-endian fixed64 (`PutFixed64`).
pub fn put_fixed64(dst: &mut Vec<u8>, v: u64) {
    dst.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as a little-endian fixed16 (`PutFixed16`).
pub fn put_fixed16(dst: &mut Vec<u8>, v: u16) {
    dst.extend_from_slice(&v.to_le_bytes());
}

/// `i64ToZigzag` from util/coding.h.
#[inline]
fn i64_to_zigzag(v: i64) -> u64 {
    ((v as u64) << 1) ^ ((v >> 63) as u64)
}

/// `zigzagToI64` from util/coding.h.
#[inline]
fn zigzag_to_i64(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint32_round_trip() {
        let vals = [
            0u32,
            1,
            127,
            128,
            255,
            300,
            16383,
            16384,
            1 << 21,
            1 << 28,
            u32::MAX,
        ];
        let mut buf = Vec::new();
        for &v in &vals {
            put_varint32(&mut buf, v);
        }
        let mut pos = 0;
        for &v in &vals {
            assert_eq!(get_varint32(&buf, &mut pos), Some(v));
        }
        assert_eq!(pos, buf.len());
        assert_eq!(get_varint32(&buf, &mut pos), None);
    }

    #[test]
    fn varint64_round_trip() {
        let vals = [
            0u64,
            1,
            127,
            128,
            1 << 35,
            (1 << 56) - 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut buf = Vec::new();
        for &v in &vals {
            put_varint64(&mut buf, v);
        }
        let mut pos = 0;
        for &v in &vals {
            assert_eq!(get_varint64(&buf, &mut pos), Some(v));
        }
        assert_eq!(pos, buf.len());
        // u64::MAX takes the maximal 10 bytes.
        let mut b = Vec::new();
        put_varint64(&mut b, u64::MAX);
        assert_eq!(b.len(), 10);
    }

    #[test]
    fn known_encodings() {
        let mut b = Vec::new();
        put_varint32(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        let mut b = Vec::new();
        put_varsigned64(&mut b, -1);
        assert_eq!(b, [0x01]);
        let mut b = Vec::new();
        put_varsigned64(&mut b, 1);
        assert_eq!(b, [0x02]);
        let mut b = Vec::new();
        put_fixed32(&mut b, 0x0403_0201);
        assert_eq!(b, [1, 2, 3, 4]);
    }

    #[test]
    fn varsigned_round_trip() {
        let vals = [0i64, 1, -1, 63, -64, 64, i64::MAX, i64::MIN, -123_456_789];
        let mut buf = Vec::new();
        for &v in &vals {
            put_varsigned64(&mut buf, v);
        }
        let mut pos = 0;
        for &v in &vals {
            assert_eq!(get_varsigned64(&buf, &mut pos), Some(v));
        }
    }

    #[test]
    fn truncated_and_overlong() {
        let mut pos = 0;
        assert_eq!(get_varint32(&[0x80, 0x80], &mut pos), None);
        assert_eq!(pos, 0);
        // Six continuation bytes: longer than any varint32.
        assert_eq!(get_varint32(&[0x80; 6], &mut pos), None);
        assert_eq!(get_varint64(&[0xff; 11], &mut pos), None);
        assert_eq!(get_fixed32(&[1, 2, 3], &mut pos), None);
        assert_eq!(get_fixed64(&[0; 7], &mut pos), None);
        let mut pos = usize::MAX - 1;
        assert_eq!(get_fixed32(&[0; 8], &mut pos), None);
        assert_eq!(get_fixed64(&[0; 8], &mut pos), None);
        assert_eq!(get_varint32(&[0; 8], &mut pos), None);
    }

    #[test]
    fn varint32_drops_high_bits_like_rocksdb() {
        // Fifth byte 0x7f: RocksDB keeps only its low 4 bits.
        let buf = [0xff, 0xff, 0xff, 0xff, 0x7f];
        let mut pos = 0;
        assert_eq!(get_varint32(&buf, &mut pos), Some(u32::MAX));
        assert_eq!(pos, 5);
    }

    #[test]
    fn fixed_round_trip() {
        let mut b = Vec::new();
        put_fixed32(&mut b, 0xdead_beef);
        put_fixed64(&mut b, 0x0123_4567_89ab_cdef);
        put_fixed16(&mut b, 0xbeef);
        let mut pos = 0;
        assert_eq!(get_fixed32(&b, &mut pos), Some(0xdead_beef));
        assert_eq!(get_fixed64(&b, &mut pos), Some(0x0123_4567_89ab_cdef));
        assert_eq!(get_fixed16(&b, &mut pos), Some(0xbeef));
        assert_eq!(pos, b.len());
    }
}
