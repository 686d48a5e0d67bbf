//! The synchronous fallback: one pread(2) per read, made when the consumer asks for a chunk
//! (no read-ahead: a stream's plans are read one at a time, into its first free buffer).

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use super::slot::{ask_throttle, finish_read, mark_start, next_ask, start_slot, SlotState, Step};
use super::{all_lent, oversized, oversized_allocated, Chunk, Reader};
use crate::error::Result;

/// One pread of up to `buf.len()` bytes at `offset` into `buf`. Ok(bytes read) or Err(errno),
/// like a CQE's result.
pub fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> std::result::Result<usize, i32> {
    let Ok(off) = libc::off_t::try_from(offset) else {
        return Err(libc::EINVAL);
    };
    // SAFETY: `buf` is a live, exclusively borrowed slice, so its `len()` bytes are writable
    // and nothing else reads or writes them until the call returns; pread writes at most that
    // many bytes.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), off) };
    if n < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(n as usize)
    }
}

impl Reader {
    /// `next_chunk` on pread: reads the stream's next plan now, continuing short reads.
    pub(super) fn next_pread(&mut self, s: usize) -> Result<Option<Chunk>> {
        let st = &mut self.streams[s];
        if st.next_issue == st.plans.len() {
            return Ok(None);
        }
        let Some(id) = st.free.pop() else {
            return Err(all_lent(s, st.nslots));
        };
        let plan = st.plans[st.next_issue].clone();
        let file = &self.files[plan.file];
        let slot = &mut self.slots[id];
        // An oversized plan gets a buffer of its own (see the module docs of `reader`); pread
        // reads nothing ahead, so it is read now like any other.
        let oversized = oversized(&plan, self.oversized_above);
        let dedicated = match start_slot(
            slot,
            st.next_issue,
            &plan,
            file.direct,
            self.memory,
            oversized,
        ) {
            Ok(bytes) => bytes,
            Err(e) => {
                st.free.push(id);
                return Err(e);
            }
        };
        oversized_allocated(&mut self.stats, &mut self.oversized_live, dedicated);
        while slot.done < slot.target {
            let (off, len) = next_ask(slot, file.direct, self.short_fault);
            ask_throttle(&self.throttle, len, &mut self.stats);
            mark_start(slot, &self.accounting);
            let buf = slot.buf.as_mut().expect("start_slot allocates");
            let t0 = Instant::now();
            // off + len <= span <= buffer size (start_slot checks it), so the range is in the
            // buffer; no read is in flight into it (pread has none in the background).
            let res = pread(
                file.file.as_raw_fd(),
                &mut buf.as_mut_slice()[off..off + len],
                slot.base + off as u64,
            );
            self.stats.wait_ns += t0.elapsed().as_nanos() as u64;
            self.stats.reads_submitted += 1;
            match finish_read(slot, res, file, &plan, &mut self.stats, &self.accounting) {
                Step::Done => break,
                Step::Again => {}
                Step::Fail(e) => {
                    slot.state = SlotState::Free;
                    // The failed read is over: an oversized plan's buffer can go.
                    let freed = slot.restore_regular();
                    self.oversized_live = self.oversized_live.saturating_sub(freed);
                    st.free.push(id);
                    st.failed = Some(e.clone());
                    return Err(e);
                }
            }
        }
        st.next_issue += 1;
        Ok(Some(self.lend(id)))
    }
}
