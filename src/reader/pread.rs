//! The synchronous fallback: one pread(2) per read, issued when the consumer asks.

use std::os::fd::RawFd;

/// One pread. Ok(bytes read) or Err(errno), like a CQE's result.
pub fn pread(fd: RawFd, buf: *mut u8, len: usize, offset: u64) -> Result<usize, i32> {
    let Ok(off) = libc::off_t::try_from(offset) else {
        return Err(libc::EINVAL);
    };
    // SAFETY: the caller passes a pointer to at least `len` writable bytes of a buffer it owns
    // and keeps alive across this call.
    let n = unsafe { libc::pread(fd, buf.cast(), len, off) };
    if n < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(n as usize)
    }
}
