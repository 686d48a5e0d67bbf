//! The per-thread io_uring: made once per thread, lent to one Reader at a time.
//!
//! Setting up a ring costs a few syscalls and mmaps, and a compaction thread runs many
//! compactions, so the ring outlives a Reader. If the kernel cannot give us a ring at all the
//! reason is remembered for the thread, so later compactions go straight to pread.

use std::cell::RefCell;
use std::io;

use io_uring::{opcode, IoUring, Probe};

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
    pub ring: Box<IoUring>,
    /// Whether this is the thread's cached ring (a second Reader alive on the same thread gets a
    /// private one that is simply closed afterwards).
    cached: bool,
    /// Which setup flags the kernel accepted, for logs and tests.
    pub flags: &'static str,
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
