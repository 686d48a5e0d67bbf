//! The io_uring backend: the per-thread ring, and a Reader's reads through it.
//!
//! **The ring** is made once per thread and lent to one Reader at a time. Setting up a ring
//! costs a few syscalls and mmaps, and a compaction thread runs many compactions, so the ring
//! outlives a Reader. If the kernel cannot give us a ring at all the reason is remembered for
//! the thread, so later compactions go straight to pread.
//!
//! **Reads** are queued as soon as a stream has a free buffer (read-ahead), put in the SQ in
//! batches so one `io_uring_enter` carries many of them, and reaped off the CQ when the consumer
//! needs a chunk that is not in yet. A slot's buffer belongs to the kernel from the moment its
//! SQE is pushed until its completion is reaped (`SlotState::InFlight`), and a Reader is only
//! dropped after every such read was reaped.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use io_uring::{opcode, types, IoUring, Probe};

use super::slot::{
    ask_throttle, finish_read, mark_start, next_ask, start_slot, SlotState, Step, MAX_RETRIES,
};
use super::{all_lent, errno_text, oversized, oversized_allocated, Chunk, Engine, Reader};
use crate::error::{self, Error};

/// Submission queue size of the cached ring (the completion queue is twice this).
pub const RING_ENTRIES: u32 = 256;

/// `IORING_ENTER_GETEVENTS`: the io-uring crate keeps its flag type private.
const ENTER_GETEVENTS: u32 = 1;

enum Cache {
    Untried,
    Idle(Box<IoUring>),
    /// Lent to a live Reader on this thread.
    Busy,
    Unavailable(String),
}

thread_local! {
    static RING: RefCell<Cache> = const { RefCell::new(Cache::Untried) };
}

/// A ring lent to one Reader. Goes back to the thread's cache through [`Ring::release`].
pub struct Ring {
    ring: Box<IoUring>,
    /// Whether this is the thread's cached ring (a second Reader alive on the same thread gets a
    /// private one that is simply closed afterwards).
    cached: bool,
    /// Which setup flags the kernel accepted, for logs and tests.
    flags: &'static str,
}

impl Ring {
    /// The thread's ring, creating it on first use; Err(reason) when io_uring cannot be used.
    pub fn acquire() -> Result<Ring, String> {
        let taken = RING.try_with(|c| {
            let mut c = c.borrow_mut();
            match std::mem::replace(&mut *c, Cache::Busy) {
                Cache::Idle(ring) => Ok(Some(ring)),
                Cache::Untried => Ok(None),
                Cache::Busy => Err(None),
                Cache::Unavailable(reason) => {
                    *c = Cache::Unavailable(reason.clone());
                    Err(Some(reason))
                }
            }
        });
        match taken {
            Ok(Ok(Some(ring))) => {
                let flags = flags_of(&ring);
                Ok(Ring {
                    ring,
                    cached: true,
                    flags,
                })
            }
            Ok(Ok(None)) => match build() {
                Ok(ring) => {
                    let flags = flags_of(&ring);
                    log::debug!("ringmerge reader: io_uring ready ({flags})");
                    Ok(Ring {
                        ring,
                        cached: true,
                        flags,
                    })
                }
                Err(reason) => {
                    log::warn!("ringmerge reader: io_uring unavailable, using pread: {reason}");
                    let _ = RING.try_with(|c| *c.borrow_mut() = Cache::Unavailable(reason.clone()));
                    Err(reason)
                }
            },
            Ok(Err(Some(reason))) => Err(reason),
            // Busy (a second Reader on this thread) or thread-local storage being torn down.
            Ok(Err(None)) | Err(_) => build().map(|ring| {
                let flags = flags_of(&ring);
                Ring {
                    ring,
                    cached: false,
                    flags,
                }
            }),
        }
    }

    /// Hands the ring back to the thread. Only call with nothing in flight and nothing queued.
    pub fn release(self) {
        if !self.cached {
            return;
        }
        let Ring { ring, .. } = self;
        let _ = RING.try_with(|c| {
            let mut c = c.borrow_mut();
            if matches!(*c, Cache::Busy) {
                *c = Cache::Idle(ring);
            }
        });
    }

    /// Submits what is queued in the SQ and, with `wait`, blocks until at least one completion.
    /// Always asks for completions: under DEFER_TASKRUN they are only posted by an enter that
    /// carries GETEVENTS.
    pub fn enter(&mut self, wait: bool) -> io::Result<usize> {
        let to_submit = self.ring.submission().len() as u32;
        // SAFETY: plain io_uring_enter with no extra argument; every SQE in the queue points at
        // a buffer the Reader keeps alive until its completion is reaped.
        unsafe {
            self.ring.submitter().enter::<libc::sigset_t>(
                to_submit,
                u32::from(wait),
                ENTER_GETEVENTS,
                None,
            )
        }
    }
}

fn flags_of(ring: &IoUring) -> &'static str {
    if ring.params().is_setup_single_issuer() {
        "SINGLE_ISSUER|DEFER_TASKRUN"
    } else {
        "plain"
    }
}

fn build() -> Result<Box<IoUring>, String> {
    // SINGLE_ISSUER lets the kernel skip submission locking and DEFER_TASKRUN runs completion
    // work only when we ask for events, so it never interrupts the merge's CPU work. Both need
    // 6.0/6.1; older kernels answer EINVAL and get a plain ring.
    let ring = match IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(RING_ENTRIES)
    {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            IoUring::new(RING_ENTRIES).map_err(|e| format!("io_uring_setup: {e}"))?
        }
        Err(e) => return Err(format!("io_uring_setup: {e}")),
    };
    // IORING_OP_READ arrived in 5.6, together with the probe; a kernel without either would
    // fail every read, so treat it like no io_uring.
    let mut probe = Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut probe) {
        return Err(format!("io_uring probe: {e}"));
    }
    if !probe.is_supported(opcode::Read::CODE) {
        return Err("io_uring: IORING_OP_READ not supported by this kernel".to_string());
    }
    Ok(Box::new(ring))
}

/// A Reader's io_uring backend: the ring it borrowed from the thread, the reads waiting to go
/// into it and those the kernel holds.
pub(super) struct Uring {
    ring: Ring,
    /// Slots waiting to be put in the SQ, oldest first.
    pending: VecDeque<usize>,
    /// Reads in the SQ or the kernel.
    inflight: usize,
    /// Keeps completions from overflowing the CQ.
    max_inflight: usize,
    /// Bytes asked by the reads in flight, and their bound (`ReaderConfig::max_inflight_bytes`;
    /// usize::MAX when unbounded).
    inflight_bytes: usize,
    max_inflight_bytes: usize,
    /// The SQEs' `ioprio` (`ReaderConfig::io_priority`).
    io_priority: u16,
    /// Pending reads are submitted without waiting once this many have piled up.
    submit_batch: usize,
    /// Completions reaped by one `reap`, reused from call to call.
    cqes: Vec<(u64, i32)>,
}

impl Uring {
    /// The backend of a Reader with `nslots` buffers, on `ring`. `max_inflight_bytes`: 0 for no
    /// bound.
    pub(super) fn new(
        ring: Ring,
        nslots: usize,
        max_inflight_bytes: usize,
        io_priority: u16,
    ) -> Uring {
        let max_inflight = ring.ring.params().cq_entries() as usize;
        Uring {
            ring,
            pending: VecDeque::with_capacity(nslots),
            inflight: 0,
            max_inflight,
            inflight_bytes: 0,
            max_inflight_bytes: match max_inflight_bytes {
                0 => usize::MAX,
                n => n,
            },
            io_priority,
            submit_batch: (nslots / 4).max(1),
            cqes: Vec::with_capacity(max_inflight),
        }
    }

    /// Which ring setup flags the kernel accepted.
    pub(super) fn flags(&self) -> &'static str {
        self.ring.flags
    }

    /// Hands the ring back to the thread. Only call once every read was reaped.
    pub(super) fn release(self) {
        self.ring.release();
    }
}

impl Reader {
    fn uring(&self) -> Option<&Uring> {
        match &self.engine {
            Engine::Uring(u) => Some(u),
            Engine::Pread => None,
        }
    }

    /// Reads in the SQ or the kernel (0 on pread, which has none).
    pub(super) fn inflight(&self) -> usize {
        self.uring().map_or(0, |u| u.inflight)
    }

    /// Bytes asked by the reads in the SQ or the kernel.
    #[cfg(test)]
    pub(super) fn inflight_bytes(&self) -> usize {
        self.uring().map_or(0, |u| u.inflight_bytes)
    }

    fn pending_reads(&self) -> usize {
        self.uring().map_or(0, |u| u.pending.len())
    }

    /// Starts every stream's first reads (io_uring only: pread reads when a chunk is asked for).
    pub(super) fn start_reading(&mut self) -> error::Result<()> {
        let Some(u) = self.uring() else {
            return Ok(());
        };
        let max_inflight = u.max_inflight;
        // Under a read rate limit every read waits for its bytes before it is submitted: start
        // with each stream's first read, so the merge can begin as soon as those are in, and
        // queue the rest as the streams are consumed.
        let first = if self.throttle.is_some() {
            1
        } else {
            usize::MAX
        };
        for s in 0..self.streams.len() {
            self.issue(s, first)?;
        }
        // Every stream's first reads go out in one enter (more only past the SQ's size).
        // (The in-flight byte bound may hold some back; they go out as reads complete.)
        while self.pending_reads() > 0 && self.inflight() < max_inflight {
            if self.submit(false)? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Starts reads for the stream's next plans into its free buffers (queued, not submitted),
    /// at most `limit` of them. Nothing on pread.
    ///
    /// An oversized plan is not read ahead: it is started only once every earlier plan of the
    /// stream has been handed out (`order` is empty), so at most one of the stream's oversized
    /// reads is in flight or ready at a time (see the module docs of `reader`). That can never
    /// stall the consumer: when it asks for that chunk, `order` is empty and the plan is started
    /// here, in a slot of its own like any other.
    pub(super) fn issue(&mut self, s: usize, limit: usize) -> error::Result<()> {
        let Engine::Uring(u) = &mut self.engine else {
            return Ok(());
        };
        let st = &mut self.streams[s];
        let mut issued = 0;
        while st.next_issue < st.plans.len() && issued < limit {
            let plan = &st.plans[st.next_issue];
            let oversized = oversized(plan, self.oversized_above);
            if oversized && !st.order.is_empty() {
                break;
            }
            issued += 1;
            let Some(id) = st.free.pop() else { break };
            let slot = &mut self.slots[id];
            let dedicated = match start_slot(
                slot,
                st.next_issue,
                plan,
                self.files[plan.file].direct,
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
            if plan.len == 0 {
                slot.state = SlotState::Ready;
            } else {
                slot.state = SlotState::Pending;
                u.pending.push_back(id);
            }
            st.order.push_back(id);
            st.next_issue += 1;
        }
        Ok(())
    }

    /// `next_chunk` on io_uring: the stream's oldest issued plan, once its read is in.
    pub(super) fn next_uring(&mut self, s: usize) -> error::Result<Option<Chunk>> {
        self.issue(s, usize::MAX)?;
        loop {
            let st = &self.streams[s];
            let Some(&id) = st.order.front() else {
                if st.next_issue == st.plans.len() {
                    return Ok(None);
                }
                return Err(all_lent(s, st.nslots));
            };
            match self.slots[id].state {
                SlotState::Ready => break,
                SlotState::Failed(_) => {
                    let slot = &mut self.slots[id];
                    let SlotState::Failed(e) = std::mem::replace(&mut slot.state, SlotState::Free)
                    else {
                        unreachable!()
                    };
                    // The failed read is over: an oversized plan's buffer can go.
                    let freed = slot.restore_regular();
                    self.oversized_freed(freed);
                    let st = &mut self.streams[s];
                    st.order.pop_front();
                    st.free.push(id);
                    st.failed = Some(e.clone());
                    return Err(e);
                }
                SlotState::Pending | SlotState::InFlight => {
                    // A plain ring posts completions by itself: look before blocking.
                    let before = self.inflight();
                    self.reap();
                    if self.inflight() == before || self.pending_reads() > 0 {
                        self.submit(true)?;
                    }
                }
                SlotState::Free | SlotState::Lent => {
                    return Err(Error::io(format!(
                        "reader: internal error, stream {s} slot {id} queued in state {:?}",
                        self.slots[id].state
                    )));
                }
            }
        }
        // The device should not idle while the consumer works through ready chunks: once enough
        // reads are queued, send them (this also reaps whatever completed meanwhile).
        if self
            .uring()
            .is_some_and(|u| u.pending.len() >= u.submit_batch)
        {
            self.submit(false)?;
        }
        let id = self.streams[s]
            .order
            .pop_front()
            .expect("front checked above");
        Ok(Some(self.lend(id)))
    }

    /// Puts pending reads in the SQ, enters the kernel once (blocking for a completion with
    /// `wait`), and reaps every completion. Retries EINTR/EAGAIN/EBUSY; anything else is fatal.
    /// Returns how many reads it put in the SQ.
    fn submit(&mut self, wait: bool) -> error::Result<usize> {
        let pushed = self.push_pending();
        let wait = wait && self.inflight() > 0;
        let mut tries = 0u32;
        loop {
            match self.enter(wait) {
                Ok(()) => break,
                Err(e) if is_retryable(&e) && tries < MAX_RETRIES => {
                    tries += 1;
                    // EBUSY/EAGAIN mean the kernel wants completions consumed first.
                    self.reap();
                    if tries > 10 {
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                }
                Err(e) => {
                    let err = Error::io(format!("io_uring_enter: {}", errno_text(&e)));
                    self.fatal = Some(err.clone());
                    return Err(err);
                }
            }
        }
        self.reap();
        Ok(pushed)
    }

    fn enter(&mut self, wait: bool) -> io::Result<()> {
        let Engine::Uring(u) = &mut self.engine else {
            return Ok(());
        };
        self.stats.enter_calls += 1;
        if wait {
            let t0 = Instant::now();
            let r = u.ring.enter(true);
            self.stats.wait_ns += t0.elapsed().as_nanos() as u64;
            r.map(drop)
        } else {
            u.ring.enter(false).map(drop)
        }
    }

    fn push_pending(&mut self) -> usize {
        let Engine::Uring(u) = &mut self.engine else {
            return 0;
        };
        let mut sq = u.ring.ring.submission();
        let mut pushed = 0;
        while u.inflight < u.max_inflight && !sq.is_full() {
            // Under a read rate limit, one read per submission: a read's bytes are granted just
            // before it goes out, not while it waits behind others in the SQ.
            if self.throttle.is_some() && pushed > 0 {
                break;
            }
            let Some(id) = u.pending.pop_front() else {
                break;
            };
            let slot = &mut self.slots[id];
            let plan = &self.streams[slot.stream].plans[slot.plan];
            let file = &self.files[plan.file];
            let (off, len) = next_ask(slot, file.direct, self.short_fault);
            if u.inflight > 0 && u.inflight_bytes.saturating_add(len) > u.max_inflight_bytes {
                // Over the in-flight bound: it goes out when a read in flight completes
                // (next_ask recomputes the same ask then).
                u.pending.push_front(id);
                break;
            }
            ask_throttle(&self.throttle, len, &mut self.stats);
            mark_start(slot, &self.accounting);
            let buf = slot
                .buf
                .as_mut()
                .expect("a pending slot holds its buffer")
                .as_mut_ptr();
            // SAFETY: off + len <= span <= buffer size (start_slot checks it), so the pointer
            // stays inside the buffer.
            let ptr = unsafe { buf.add(off) };
            let sqe = opcode::Read::new(types::Fd(file.file.as_raw_fd()), ptr, len as u32)
                .offset(slot.base + off as u64)
                .ioprio(u.io_priority)
                .build()
                .user_data(id as u64);
            // SAFETY: the buffer is owned by the slot, which stays InFlight (so the buffer is
            // neither lent nor freed: Drop waits for all InFlight slots) until this read's
            // completion is reaped; the file stays open for the Reader's lifetime.
            if unsafe { sq.push(&sqe) }.is_err() {
                u.pending.push_front(id);
                break;
            }
            slot.state = SlotState::InFlight;
            u.inflight += 1;
            u.inflight_bytes += len;
            self.stats.reads_submitted += 1;
            pushed += 1;
        }
        pushed
    }

    /// Takes every completion off the CQ (no syscall) and advances the slots they belong to.
    fn reap(&mut self) {
        let Engine::Uring(u) = &mut self.engine else {
            return;
        };
        u.cqes.clear();
        u.cqes.extend(
            u.ring
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result())),
        );
        for &(user_data, res) in &u.cqes {
            let id = user_data as usize;
            let Some(slot) = self.slots.get_mut(id) else {
                log::warn!("ringmerge reader: completion for unknown slot {user_data}");
                continue;
            };
            if !matches!(slot.state, SlotState::InFlight) {
                log::warn!(
                    "ringmerge reader: completion for slot {id} in state {:?}",
                    slot.state
                );
                continue;
            }
            u.inflight -= 1;
            u.inflight_bytes = u.inflight_bytes.saturating_sub(slot.ask);
            let plan = &self.streams[slot.stream].plans[slot.plan];
            let file = &self.files[plan.file];
            let res = if res < 0 { Err(-res) } else { Ok(res as usize) };
            match finish_read(slot, res, file, plan, &mut self.stats, &self.accounting) {
                Step::Done => slot.state = SlotState::Ready,
                Step::Again => {
                    slot.state = SlotState::Pending;
                    u.pending.push_back(id);
                }
                Step::Fail(e) => slot.state = SlotState::Failed(e),
            }
        }
    }

    /// Waits for every read in flight (the kernel may still be writing into their buffers);
    /// reads never submitted are simply dropped. True when none is left in flight (always on
    /// pread); false when waiting failed, and the buffers of the reads left must never be
    /// freed or reused.
    pub(super) fn drain_reads(&mut self) -> bool {
        let Engine::Uring(u) = &mut self.engine else {
            return true;
        };
        u.pending.clear();
        let mut tries = 0u32;
        while self.inflight() > 0 {
            match self.enter(true) {
                Ok(()) => {}
                Err(e) if is_retryable(&e) && tries < MAX_RETRIES => tries += 1,
                Err(e) => {
                    log::error!(
                        "ringmerge reader: cannot wait for {} reads in flight ({}); leaking their buffers",
                        self.inflight(),
                        errno_text(&e)
                    );
                    break;
                }
            }
            self.reap();
            if let Engine::Uring(u) = &mut self.engine {
                u.pending.clear();
            }
        }
        self.inflight() == 0
    }
}

fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
    )
}

/// Test hooks: make this thread's cached ring a plain one (no SINGLE_ISSUER/DEFER_TASKRUN), as
/// an older kernel would give, or mark io_uring unavailable with `reason`.
#[cfg(test)]
pub fn set_thread_ring_for_test(plain: bool, unavailable: Option<&str>) {
    RING.with(|c| {
        *c.borrow_mut() = match unavailable {
            Some(reason) => Cache::Unavailable(reason.to_string()),
            None if plain => Cache::Idle(Box::new(IoUring::new(RING_ENTRIES).unwrap())),
            None => Cache::Untried,
        }
    });
}
